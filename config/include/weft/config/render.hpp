// Showing a loaded configuration: as TOML that the loader reads back to the same values, each
// value commented with its source (`weft --print-config`), and as JSON (`/debug/config`). Both
// walk the schema, so every key appears in both.
#pragma once

#include <string>

#include "weft/config/load.hpp"
#include "weft/config/schema.hpp"

namespace weft::config {

/// The effective configuration as a valid TOML document: every key of every section, then the
/// plugins; each value followed by a comment naming its source ("# environment WEFT_HUBS").
/// Durations are written with a unit ("100ms"), sizes with a binary suffix when exact ("64KiB").
std::string render_effective(const SchemaBase& schema, const void* root, const Loaded& loaded);

/// The configuration as one JSON object: {"server": {...}, ..., "plugins": [{"path": ...,
/// "config": {...}}]} plus, with `with_sources`, a "sources" object mapping "server.listen"
/// (and "plugins[0].config.key") to its source, and a "shown" object mapping each key to its
/// value as render_effective writes it ("10s", "auto"). Durations are seconds (numbers), sizes
/// bytes, listen addresses strings. Plugin config tables are included as they are: they may hold
/// secrets.
std::string to_json(const SchemaBase& schema, const void* root, const Loaded& loaded,
                    bool with_sources = true);

template <class Root>
std::string render_effective(const Schema<Root>& schema, const Root& root, const Loaded& loaded) {
    return render_effective(static_cast<const SchemaBase&>(schema), static_cast<const void*>(&root),
                            loaded);
}
template <class Root>
std::string to_json(const Schema<Root>& schema, const Root& root, const Loaded& loaded,
                    bool with_sources = true) {
    return to_json(static_cast<const SchemaBase&>(schema), static_cast<const void*>(&root), loaded,
                   with_sources);
}

}  // namespace weft::config

// Showing a loaded configuration: as TOML that the loader reads back to the same values, each
// value commented with its source (`weft --print-config`), and as JSON (`/debug/config`).
#pragma once

#include <string>

#include "weft/config/config.hpp"

namespace weft::config {

/// The effective configuration as a valid TOML document: every key of every section, then the
/// plugins; each value followed by a comment naming its source ("# environment WEFT_HUBS").
/// Durations are written with a unit ("100ms"), sizes with a binary suffix when exact ("64KiB").
std::string render_effective(const Config& config);

/// The configuration as one JSON object: {"server": {...}, "admin": {...}, "monitor": {...},
/// "log": {...}, "plugins": [{"path": ..., "config": {...}}]} plus, with `with_sources`, a
/// "sources" object mapping "server.listen" (and "plugins[0].config.key") to its source.
/// Durations are seconds (numbers), sizes bytes, listen addresses strings.
/// Plugin config tables are included as they are: they may hold secrets.
std::string to_json(const Config& config, bool with_sources = true);

}  // namespace weft::config

// Reading TOML text into the configuration tree (Table/Value with sources). The only door to
// toml++: nothing else in config/ includes it.
#pragma once

#include <optional>
#include <string_view>
#include <vector>

#include "weft/config/error.hpp"
#include "weft/config/table.hpp"

namespace weft::config::detail {

struct Document {
    std::optional<Table> root;        ///< set unless the text is not valid TOML
    std::vector<ConfigError> errors;  ///< a syntax error, or values the tree cannot hold
};

/// Parses `text`; every value's source is {kind, "NAME:LINE"}, a syntax error's
/// "NAME:LINE:COLUMN". `kind` is Source::Kind::file or Source::Kind::embedded_default.
Document parse_toml(std::string_view text, std::string_view name, Source::Kind kind);

}  // namespace weft::config::detail

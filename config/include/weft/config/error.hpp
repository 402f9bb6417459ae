// ConfigError: one thing wrong with a configuration, said so that a user can fix it (which key,
// where it was set, what it was, what is allowed). Values that may be wrong come back as
// weft::Result<T, ConfigError> (Expected<T>), whose value() throws ResultError<ConfigError>.
#pragma once

#include <string>
#include <vector>

#include "weft/config/source.hpp"
#include "weft/core/result.hpp"

namespace weft::config {

/// One configuration problem. Loading collects every problem, not just the first.
struct ConfigError {
    std::string key;      ///< "[server] max_body_bytes", "plugin 'demo' config key 'greeting'";
                          ///< empty when the problem is not about one key (a syntax error)
    Source source;        ///< where the offending value (or text) came from
    std::string value;    ///< the offending value as written ("\"12XB\"", "42"); empty if none
    std::string message;  ///< what is wrong and what is allowed

    /// "KEY: MESSAGE, got VALUE (SOURCE)", e.g.
    /// `[runtime] stack_size: must be between 16KiB and 8MiB, got 4096 (weft.toml:7)`.
    std::string to_string() const;
};

/// Every problem a load found, in the order of the sources (file lines, then variables, then
/// flags). Never empty when it is the error of a Result.
struct ConfigErrors {
    std::vector<ConfigError> list;
    /// Every error's to_string(), one per line.
    std::string to_string() const;
};

/// A value of type T, or the ConfigError that says why there is none.
template <class T>
using Expected = weft::Result<T, ConfigError>;

}  // namespace weft::config

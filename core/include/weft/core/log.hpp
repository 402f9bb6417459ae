// Logging: Weft logs through spdlog. logger() returns the named logger ("weft" by default),
// creating it on first use with the sinks and pattern of the default logger, so a program (or the
// weft server's configuration) sets sinks and format once for everything.
#pragma once

#include <spdlog/spdlog.h>

#include <memory>
#include <string>

namespace weft {

/// The logger `name`, created on first use from the default logger's sinks. Thread-safe.
std::shared_ptr<spdlog::logger> logger(const std::string& name = "weft");

}  // namespace weft

// Engine logging helpers (the "weft" logger).
#pragma once

#include <exception>

#include "weft/core/fiber.hpp"
#include "weft/core/log.hpp"

namespace weft::detail {

inline spdlog::logger& core_log() {
    return *weft::logger();
}
/// Logs an exception that escaped a fiber, with the fiber's name (gevent's handle_error).
void log_fiber_exception(const char* fiber_name, FiberId id, std::exception_ptr e) noexcept;

}  // namespace weft::detail

// Named loggers and reporting of exceptions that escape fibers.
#include "log.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <mutex>

namespace weft {

std::shared_ptr<spdlog::logger> logger(const std::string& name) {
    if (auto l = spdlog::get(name)) return l;
    static std::mutex mu;
    std::lock_guard<std::mutex> g(mu);
    if (auto l = spdlog::get(name)) return l;
    auto def = spdlog::default_logger();
    auto l = std::make_shared<spdlog::logger>(name, def->sinks().begin(), def->sinks().end());
    l->set_level(def->level());
    spdlog::register_logger(l);
    return l;
}

namespace detail {

void log_fiber_exception(const char* fiber_name, FiberId id, std::exception_ptr e) noexcept {
    try {
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& ex) {
            core_log().error("fiber '{}' (id {}) failed with an exception nobody joined: {}",
                             fiber_name, id, ex.what());
        } catch (...) {
            core_log().error("fiber '{}' (id {}) failed with a non-std exception nobody joined",
                             fiber_name, id);
        }
    } catch (...) {
        // Logging itself failed; nothing more can be done from here.
    }
}

}  // namespace detail
}  // namespace weft

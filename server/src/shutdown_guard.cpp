// The shutdown guard's thread: waits for a signal or the limit, in short slices so that the
// destructor can stop it.
#include "shutdown_guard.hpp"

#include <signal.h>

#include <cstdlib>
#include <mutex>
#include <string>

#include "logging.hpp"
#include "signal_pipe.hpp"

#include "weft/core/log.hpp"

namespace weft::server {

namespace {
std::mutex g_step_mu;
std::string g_step;  // what the shutdown does now (shutdown_step)
}  // namespace

void shutdown_step(std::string what) {
    std::lock_guard<std::mutex> g(g_step_mu);
    g_step = std::move(what);
}

ShutdownGuard::ShutdownGuard(std::chrono::nanoseconds limit)
    : thread_([this, limit] { run(limit); }) {}

ShutdownGuard::~ShutdownGuard() {
    done_.store(true, std::memory_order_release);
    thread_.join();
    // Nobody reads the signals from here on: a stop signal ends the process as by default (a
    // plugin's static destructor that hangs at exit must not outlive a second SIGTERM). One
    // that came after the thread's last look, and before this, is in the pipe: it ends the
    // process now, as it would have a moment later.
    signals::done_serving();
    // A handler running on another thread as the flag changed may still be writing: the first
    // look waits a moment for it.
    for (int sig = signals::next(std::chrono::milliseconds(5)); sig != 0;
         sig = signals::next(std::chrono::milliseconds(0))) {
        if (sig != SIGTERM && sig != SIGINT) continue;
        weft::logger()->warn("{} again while shutting down: exiting now",
                             sig == SIGTERM ? "SIGTERM" : "SIGINT");
        spdlog::default_logger()->flush();
        flush_access_log(std::chrono::milliseconds(500));
        std::_Exit(128 + sig);
    }
}

void ShutdownGuard::run(std::chrono::nanoseconds limit) noexcept {
    using Clock = std::chrono::steady_clock;
    const auto deadline = Clock::now() + limit;
    while (!done_.load(std::memory_order_acquire)) {
        if (Clock::now() >= deadline) {
            std::string step;
            {
                std::lock_guard<std::mutex> g(g_step_mu);
                step = g_step;
            }
            weft::logger()->error(
                "shutdown stuck: not finished {:.1f} s after the drain (a handler blocked in its "
                "hub, or a plugin fiber or shutdown hook that does not return){}; exiting now",
                std::chrono::duration<double>(limit).count(),
                step.empty() ? std::string() : ", while " + step);
            spdlog::default_logger()->flush();
            flush_access_log(std::chrono::milliseconds(500));
            std::_Exit(1);
        }
        const int sig = signals::next(std::chrono::milliseconds(50));
        if (sig == SIGTERM || sig == SIGINT) {
            weft::logger()->warn("{} again while shutting down: exiting now",
                                 sig == SIGTERM ? "SIGTERM" : "SIGINT");
            spdlog::default_logger()->flush();
            flush_access_log(std::chrono::milliseconds(500));
            std::_Exit(128 + sig);
        }
    }
}

}  // namespace weft::server

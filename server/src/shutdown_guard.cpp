// The shutdown guard's thread: waits for a signal or the limit, in short slices so that the
// destructor can stop it.
#include "shutdown_guard.hpp"

#include <cstdlib>

#include "weft/core/log.hpp"

namespace weft::server {

ShutdownGuard::ShutdownGuard(std::chrono::nanoseconds limit, const sigset_t& signals)
    : thread_([this, limit, signals] { run(limit, signals); }) {}

ShutdownGuard::~ShutdownGuard() {
    done_.store(true, std::memory_order_release);
    thread_.join();
}

void ShutdownGuard::run(std::chrono::nanoseconds limit, sigset_t signals) noexcept {
    using Clock = std::chrono::steady_clock;
    const auto deadline = Clock::now() + limit;
    while (!done_.load(std::memory_order_acquire)) {
        if (Clock::now() >= deadline) {
            weft::logger()->error(
                "shutdown stuck: not finished {:.1f} s after the drain (a handler blocked in its "
                "hub, or a plugin fiber or shutdown hook that does not return); exiting now",
                std::chrono::duration<double>(limit).count());
            spdlog::default_logger()->flush();
            std::_Exit(1);
        }
        timespec slice{0, 50'000'000};
        siginfo_t info{};
        const int sig = ::sigtimedwait(&signals, &info, &slice);
        if (sig == SIGTERM || sig == SIGINT) {
            weft::logger()->warn("{} again while shutting down: exiting now",
                                 sig == SIGTERM ? "SIGTERM" : "SIGINT");
            spdlog::default_logger()->flush();
            std::_Exit(128 + sig);
        }
    }
}

}  // namespace weft::server

// ShutdownGuard: bounds what follows the drain. Running the shutdown hooks, closing the
// listeners and joining the hubs take moments, unless a handler is stuck in a blocking call or a
// plugin fiber ignores cancellation; then the process would never exit. The guard also takes
// the stop signals over from the main loop, so another SIGTERM/SIGINT still exits at once.
#pragma once

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

namespace weft::server {

/// What the shutdown does now ("the shutdown hook of plugin 'x'"), for the guard's message if
/// it gets stuck there. Any thread.
void shutdown_step(std::string what);

class ShutdownGuard {
  public:
    /// Starts a thread that reads the signals (signal_pipe.hpp). At SIGTERM or SIGINT it logs
    /// and exits with 128 + the signal; once `limit` has passed it logs that
    /// the shutdown is stuck and exits with 1. Both with _Exit: a stuck teardown is never
    /// joined. (What holds a hub was logged before, when the drain gave up on it.)
    explicit ShutdownGuard(std::chrono::nanoseconds limit);
    /// The shutdown finished in time: stops the thread; SIGTERM and SIGINT end the process
    /// as by default from then on.
    ~ShutdownGuard();
    ShutdownGuard(const ShutdownGuard&) = delete;
    ShutdownGuard& operator=(const ShutdownGuard&) = delete;

  private:
    void run(std::chrono::nanoseconds limit) noexcept;

    std::atomic<bool> done_{false};
    std::thread thread_;
};

}  // namespace weft::server

// Runtime: N hubs, one OS thread each; the entry point of every Weft program.
// weft::run(fn) is the quick way: fn runs as the first fiber of a one-hub runtime on the calling
// thread and run() returns its result (gevent's "main greenlet").
#pragma once

#include <chrono>
#include <cstddef>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "weft/core/fiber.hpp"
#include "weft/core/hub.hpp"

namespace weft {

enum class Backend { automatic, io_uring, epoll };
const char* backend_name(Backend b) noexcept;

struct RuntimeOptions {
    /// Number of hubs; 0 = $WEFT_HUBS if set, else the CPUs this process may use (affinity
    /// mask capped by the cgroup CPU quota).
    unsigned hubs = 0;
    /// Where a nonzero `hubs` came from, for the startup log line ("" = "option"; the weft
    /// server names the configuration key's source).
    std::string hubs_source;
    /// automatic = $WEFT_BACKEND if set, else io_uring with a fallback to epoll when the kernel
    /// or a seccomp profile refuses io_uring.
    Backend backend = Backend::automatic;
    /// Why a backend other than automatic was chosen, for the startup log line ("" =
    /// "chosen by configuration").
    std::string backend_source;
    /// Usable stack per fiber (a guard page is added below it).
    std::size_t stack_size = 0;  ///< 0 = 64 KiB (256 KiB in sanitizer builds)
    /// Stacks each hub keeps for reuse.
    std::size_t stack_cache = 1024;
    /// Threads for offload(); 0 = max(4, hubs).
    unsigned offload_threads = 0;
    /// Threads for name lookups (resolve(), patched getaddrinfo and kin), apart from
    /// offload()'s so that they never wait behind its work; 0 = max(4, hubs).
    unsigned resolver_threads = 0;
    /// Fibers run per loop turn before I/O is polled again.
    unsigned run_budget = 64;
    /// Per-slice clock reads, histograms, busy/idle time (the watchdog needs them).
    bool collect_stats = true;
    /// Blocking libc calls made by a fiber of these hubs park only that fiber: socket, pipe and
    /// eventfd I/O, connect and accept, poll and select, sleeps, name resolution (gevent's
    /// monkey patching; see weft/core/fd_wait.hpp for the explicit way). Calls from any other
    /// thread, or outside a fiber, are libc's own. The weft server turns it on.
    bool patch_syscalls = false;
    /// Period of the probe timer behind weft_hub_lag_seconds (0 disables it).
    std::chrono::milliseconds lag_probe_interval{10};
    /// Receive buffers per hub (io_uring provided-buffer ring; a pool on epoll) and their size.
    unsigned recv_buffers = 512;
    std::size_t recv_buffer_size = 16 * 1024;
    /// io_uring submission queue entries per hub.
    unsigned ring_entries = 4096;
    /// Thread name prefix: hubs are "<name>-hub-<i>".
    std::string name = "weft";
};

/// Hub count this process should use by default: affinity mask capped by cgroup CPU quota.
unsigned default_hub_count() noexcept;

namespace detail {
struct RuntimeState;
}

class Runtime {
  public:
    /// Starts the hubs. Throws std::invalid_argument for a bad option or environment value
    /// (the message names it) and std::system_error if a hub cannot start.
    explicit Runtime(RuntimeOptions options = {});
    /// Stops (see stop()) and joins.
    ~Runtime();
    Runtime(const Runtime&) = delete;
    Runtime& operator=(const Runtime&) = delete;

    unsigned hub_count() const noexcept;
    Hub& hub(unsigned i) const;
    /// The backend every hub uses, and why it was chosen (for the log).
    Backend backend() const noexcept;
    const std::string& backend_reason() const noexcept;
    const RuntimeOptions& options() const noexcept;

    /// Asks every hub to stop: fibers still alive are cancelled, and each hub thread exits once
    /// its fibers have finished. Thread-safe; returns at once.
    void stop() noexcept;
    /// Waits for every hub thread to exit (after stop()).
    void join();
    /// Waits at most `limit` for every hub thread to exit (after stop()); true when they have
    /// (and are joined), false when one is still running: a fiber that holds its hub or does
    /// not end once cancelled (the caller can say which, and decide what to do).
    bool join_for(std::chrono::nanoseconds limit);

    /// Runs the loop of hub 0 on the calling thread instead of its own (weft::run uses this).
    /// Returns when the runtime is stopped.
    static std::unique_ptr<Runtime> create_inline(RuntimeOptions options);
    void run_inline();

  private:
    Runtime(RuntimeOptions options, bool inline_hub0);
    std::unique_ptr<detail::RuntimeState> state_;
};

/// Runs `fn` as the first fiber of a one-hub runtime driven by the calling thread, and returns
/// its value (or rethrows its exception). Other fibers still alive when it returns are cancelled.
template <class F>
auto run(F&& fn, RuntimeOptions options = {}) -> std::invoke_result_t<std::decay_t<F>&> {
    using T = std::invoke_result_t<std::decay_t<F>&>;
    options.hubs = 1;
    auto rt = Runtime::create_inline(std::move(options));
    std::optional<detail::StoredValue<T>> value;
    std::exception_ptr error;
    Runtime* raw = rt.get();
    rt->hub(0).post([&, raw, f = std::decay_t<F>(std::forward<F>(fn))]() mutable {
        spawn("main", [&, raw, f = std::move(f)]() mutable {
            try {
                if constexpr (std::is_void_v<T>) {
                    f();
                    value.emplace();
                } else {
                    value.emplace(f());
                }
            } catch (...) {
                error = std::current_exception();
            }
            raw->stop();
        }).detach();
    });
    rt->run_inline();
    rt.reset();
    if (error) std::rethrow_exception(error);
    if constexpr (!std::is_void_v<T>) return std::move(*value);
}

}  // namespace weft

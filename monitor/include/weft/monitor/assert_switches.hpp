// AssertSwitches (gevent's assert_switches) for tests and debugging: a scope that fails if the
// code inside it never let the hub switch, or, given max_blocking_time, if the hub was held
// longer than that between two switches. AllowBlocking marks deliberate blocking, which the
// watchdog reports as allowed and counts apart.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include "weft/core/hub.hpp"

namespace weft::monitor {

/// Thrown when an AssertSwitches scope ends in failure; what() is the report text.
class FailedToSwitch : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

/// Watches the switches of the calling thread's hub while it exists.
///
/// Without max_blocking_time: fails unless at least one switch happened in the scope.
/// With max_blocking_time: fails if the hub was busy for longer than that without a switch.
/// The gaps are measured between every pair of consecutive switches, and from the scope's start
/// to the first switch and from the last switch to the scope's end; time the hub spent idle,
/// waiting for I/O or timers, is not counted (so a fiber that sleeps is not "blocking", unlike
/// in gevent's issue #1517). Idle time is known only with RuntimeOptions::collect_stats (the
/// default); without it, idle time counts as busy.
///
/// hub_only: only switches that let the hub's loop run (poll I/O, fire timers) count; handing
/// the hub from one ready fiber straight to the next one (as yield() does when other fibers are
/// ready) does not. This is gevent's "switches into the hub".
///
/// Threads: construct, check and destroy on one hub thread (usually in a fiber). Scopes may
/// nest and overlap on a hub. Throws std::logic_error when constructed off a hub thread.
class AssertSwitches {
  public:
    struct Options {
        std::optional<std::chrono::nanoseconds> max_blocking_time;
        bool hub_only = false;
    };

    AssertSwitches() : AssertSwitches(Options{}) {}
    explicit AssertSwitches(std::chrono::nanoseconds max_blocking_time, bool hub_only = false)
        : AssertSwitches(Options{max_blocking_time, hub_only}) {}
    explicit AssertSwitches(Options options);
    /// Ends the scope if check() was not called, and throws FailedToSwitch on failure, unless
    /// an exception is already propagating (then the scope only ends; it never hides an error).
    ~AssertSwitches() noexcept(false);
    AssertSwitches(const AssertSwitches&) = delete;
    AssertSwitches& operator=(const AssertSwitches&) = delete;

    /// Ends the scope now; returns "" when it passed, else the failure text.
    std::string check();

    /// Switches counted so far (see hub_only).
    std::uint64_t switches() const noexcept;
    /// The longest busy gap between counted switches so far (the final gap is added by check()).
    std::chrono::nanoseconds longest_gap() const noexcept;

    struct State;

  private:
    std::unique_ptr<State> state_;
    int uncaught_at_start_;
};

/// Marks deliberate blocking by the calling fiber on its hub for the scope's lifetime
/// (weft::internal::begin_allow_blocking): the watchdog still detects it, but reports it marked
/// `allowed` (at info level in the log) and counts it in weft_hub_blocking_allowed_events_total
/// instead of weft_hub_blocking_events_total. Off a hub thread it does nothing.
class AllowBlocking {
  public:
    AllowBlocking() noexcept;
    ~AllowBlocking();
    AllowBlocking(const AllowBlocking&) = delete;
    AllowBlocking& operator=(const AllowBlocking&) = delete;

  private:
    Hub* hub_;
    std::uint64_t previous_ = 0;
};

}  // namespace weft::monitor

// AssertSwitches: one switch observer per hub (a dispatcher) fans each switch out to the scopes
// open on that hub, so that scopes can nest and end in any order. Everything here runs on the
// hub's own thread.
#include "weft/monitor/assert_switches.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <exception>
#include <vector>

#include "weft/core/internal/hub_probe.hpp"
#include "weft/core/runtime.hpp"
#include "weft/monitor/run_info.hpp"

namespace weft::monitor {

namespace {

class Dispatcher;
thread_local Dispatcher* tls_dispatcher = nullptr;

}  // namespace

struct AssertSwitches::State {
    Hub* hub = nullptr;
    Options options;
    bool open = true;
    std::int64_t start_ns = 0;
    std::int64_t last_event_ns = 0;
    std::uint64_t idle_at_last = 0;
    std::int64_t busy_since_switch = 0;
    std::int64_t longest = 0;
    std::uint64_t counted = 0;
    // The fiber that opened the scope holds the hub at its start and at its end.
    FiberId owner = 0;
    std::string owner_name;
    FiberId longest_holder = 0;
    std::string longest_holder_name;
    std::int64_t longest_ended_at = 0;

    std::uint64_t idle_now() const noexcept {
        return internal::probe(*hub).idle_ns.load(std::memory_order_relaxed);
    }

    // Adds the busy time since the last event (wall time minus time spent idle).
    void accumulate(std::int64_t now) noexcept {
        std::uint64_t idle = idle_now();
        std::int64_t busy = (now - last_event_ns) - static_cast<std::int64_t>(idle - idle_at_last);
        if (busy > 0) busy_since_switch += busy;
        last_event_ns = now;
        idle_at_last = idle;
    }

    void end_gap(std::int64_t now, FiberId holder, const std::string& holder_name) {
        if (busy_since_switch > longest) {
            longest = busy_since_switch;
            longest_holder = holder;
            longest_holder_name = holder_name;
            longest_ended_at = now;
        }
        busy_since_switch = 0;
    }

    // Core calls the observer once per switch, on the side that gives the hub up: a fiber
    // (whose slice ends here) or the hub's loop (starting a batch of ready fibers). So the gap
    // that ends now was held by whoever calls.
    void on_switch(std::int64_t now) noexcept {
        if (!open) return;
        accumulate(now);
        FiberId holder = this_fiber::id();
        // hub_only: only the loop's own switches count, i.e. the hub got to poll I/O and fire
        // timers since the last one; fiber-to-fiber hand-offs do not.
        bool counts = !options.hub_only || holder == 0;
        if (!counts) return;
        ++counted;
        try {
            end_gap(now, holder, holder ? std::string(this_fiber::name()) : std::string());
        } catch (...) {
        }
    }
};

namespace {

class Dispatcher final : public SwitchObserver {
  public:
    explicit Dispatcher(Hub* hub) : hub_(hub) {
        prev_ = internal::exchange_switch_observer(*hub_, this);
    }

    void on_switch(std::int64_t now_ns) noexcept override {
        for (auto* s : scopes_)
            s->on_switch(now_ns);
        if (prev_) prev_->on_switch(now_ns);
    }
    void add(AssertSwitches::State* s) { scopes_.push_back(s); }
    // Returns true when no scope is left and the dispatcher uninstalled itself.
    bool remove(AssertSwitches::State* s) {
        std::erase(scopes_, s);
        if (!scopes_.empty()) return false;
        SwitchObserver* cur = internal::exchange_switch_observer(*hub_, prev_);
        if (cur != this) {
            // Someone installed an observer on top of ours and chains to us: stay installed.
            internal::exchange_switch_observer(*hub_, cur);
            return false;
        }
        return true;
    }
    Hub* hub() const noexcept { return hub_; }

  private:
    Hub* hub_;
    SwitchObserver* prev_ = nullptr;
    std::vector<AssertSwitches::State*> scopes_;
};

}  // namespace

AssertSwitches::AssertSwitches(Options options)
    : state_(std::make_unique<State>()), uncaught_at_start_(std::uncaught_exceptions()) {
    Hub* hub = Hub::current();
    if (!hub) throw std::logic_error("AssertSwitches must be used on a hub thread (in a fiber)");
    State& s = *state_;
    s.hub = hub;
    s.options = options;
    s.start_ns = weft::now_ns();
    s.last_event_ns = s.start_ns;
    s.idle_at_last = s.idle_now();
    s.owner = this_fiber::id();
    s.owner_name = std::string(this_fiber::name());
    if (!tls_dispatcher || tls_dispatcher->hub() != hub) tls_dispatcher = new Dispatcher(hub);
    tls_dispatcher->add(&s);
}

AssertSwitches::~AssertSwitches() noexcept(false) {
    if (!state_->open) return;
    if (std::uncaught_exceptions() > uncaught_at_start_) {
        // An exception is on its way out: end quietly, never replace it.
        try {
            check();
        } catch (...) {
        }
        return;
    }
    std::string failure = check();
    if (!failure.empty()) throw FailedToSwitch(failure);
}

std::string AssertSwitches::check() {
    State& s = *state_;
    if (!s.open) return {};
    std::int64_t now = weft::now_ns();
    s.accumulate(now);
    s.end_gap(now, s.owner, s.owner_name);
    s.open = false;
    if (tls_dispatcher && tls_dispatcher->remove(&s)) {
        delete tls_dispatcher;
        tls_dispatcher = nullptr;
    }

    bool failed = s.options.max_blocking_time ? s.longest > s.options.max_blocking_time->count()
                                              : s.counted == 0;
    if (!failed) return {};

    double elapsed = static_cast<double>(now - s.start_ns) / 1e9;
    std::string msg = s.options.hub_only ? "To the hub" : "To any fiber";
    msg += fmt::format(" in {:.4f} seconds", elapsed);
    if (s.options.max_blocking_time)
        msg += fmt::format(" (max allowed {:.4f} seconds)",
                           std::chrono::duration<double>(*s.options.max_blocking_time).count());
    msg += '\n';
    if (s.counted == 0) {
        msg +=
            fmt::format("No {}switch happened in the scope.\n", s.options.hub_only ? "hub " : "");
    }
    if (s.options.max_blocking_time) {
        msg += fmt::format("The longest stretch without a switch was {:.4f} s, ",
                           static_cast<double>(s.longest) / 1e9);
        if (s.longest_holder)
            msg += fmt::format("while fiber {} \"{}\" held hub {}", s.longest_holder,
                               s.longest_holder_name, s.hub->index());
        else
            msg += fmt::format("in hub {}'s own loop", s.hub->index());
        msg += fmt::format("; it ended {:.4f} s after the scope began.\n",
                           static_cast<double>(s.longest_ended_at - s.start_ns) / 1e9);
    }
    msg += fmt::format("{} switch(es) counted{}.\n", s.counted,
                       s.options.hub_only ? " (loop turns only)" : "");
    try {
        auto hubs = snapshot_hubs(s.hub->runtime(), 64, this_fiber::id());
        std::vector<HubFibers> mine;
        for (auto& h : hubs)
            if (h.hub == s.hub->index()) mine.push_back(std::move(h));
        msg += format_fiber_trees(mine);
    } catch (...) {
    }
    return msg;
}

std::uint64_t AssertSwitches::switches() const noexcept {
    return state_->counted;
}
std::chrono::nanoseconds AssertSwitches::longest_gap() const noexcept {
    return std::chrono::nanoseconds(state_->longest);
}

AllowBlocking::AllowBlocking() noexcept : hub_(Hub::current()) {
    if (hub_) previous_ = internal::begin_allow_blocking(*hub_);
}

AllowBlocking::~AllowBlocking() {
    if (hub_) internal::end_allow_blocking(*hub_, previous_);
}

}  // namespace weft::monitor

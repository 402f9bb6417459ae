// Runtime: picks the hub count and the I/O backend (saying why in the log), starts one thread per
// hub, stops and joins them.
#include "weft/core/runtime.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <string_view>
#include <system_error>

#include "hub_impl.hpp"
#include "log.hpp"
#include "runtime_state.hpp"
#include "weft/core/internal/introspect.hpp"
#include "weft/core/internal/runtime_env.hpp"

namespace weft {

using detail::HubImpl;
using detail::RuntimeState;

const char* backend_name(Backend b) noexcept {
    switch (b) {
        case Backend::automatic:
            return "auto";
        case Backend::io_uring:
            return "io_uring";
        case Backend::epoll:
            return "epoll";
    }
    return "?";
}

namespace {

std::atomic<bool> g_environment_resolved{false};

// The variable's value without surrounding blanks, as the server's settings read it; empty
// when unset or when the program resolved the environment itself.
std::string env_value(const char* name) {
    if (g_environment_resolved.load(std::memory_order_relaxed)) return {};
    const char* v = std::getenv(name);
    std::string_view s = v ? v : "";
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
        s.remove_suffix(1);
    return std::string(s);
}

unsigned hubs_from_env() {
    std::string v = env_value("WEFT_HUBS");
    for (char& c : v)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (v.empty() || v == "auto" || v == "0") return 0;  // automatic, as the settings say
    unsigned n = 0;
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec != std::errc() || end != v.data() + v.size() || n < 1 || n > 1024)
        throw std::invalid_argument("WEFT_HUBS='" + v +
                                    "' (environment): expected a whole number from 1 to 1024, "
                                    "or 0 or auto (the CPUs available)");
    return n;
}

Backend backend_from_env() {
    std::string s = env_value("WEFT_BACKEND");
    if (s.empty()) return Backend::automatic;
    for (char& c : s)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (s == "io_uring") return Backend::io_uring;
    if (s == "epoll") return Backend::epoll;
    if (s == "auto") return Backend::automatic;
    throw std::invalid_argument("WEFT_BACKEND='" + s +
                                "' (environment): expected one of io_uring, epoll, auto");
}

}  // namespace

Runtime::Runtime(RuntimeOptions options) : Runtime(std::move(options), false) {}

Runtime::Runtime(RuntimeOptions options, bool inline_hub0)
    : state_(std::make_unique<RuntimeState>(std::move(options))) {
    RuntimeState& st = *state_;
    st.owner = this;
    st.inline_hub0 = inline_hub0;
    const RuntimeOptions& o = st.options;

    unsigned n = o.hubs;
    std::string hubs_source = o.hubs_source.empty() ? "option" : o.hubs_source;
    if (n == 0) {
        n = hubs_from_env();
        hubs_source = "WEFT_HUBS";
    }
    if (n == 0) {
        n = default_hub_count();
        hubs_source = "CPUs available (affinity and cgroup quota)";
    }
    if (n > 1024) throw std::invalid_argument("RuntimeOptions::hubs: at most 1024");

    Backend b = o.backend;
    bool from_env = false;
    if (b == Backend::automatic) {
        b = backend_from_env();
        from_env = b != Backend::automatic;
    }
    std::string why;
    if (b == Backend::automatic) {
        if (detail::io_uring_usable(why)) {
            b = Backend::io_uring;
            st.backend_reason = "default: " + why;
        } else {
            b = Backend::epoll;
            st.backend_reason = "fell back from io_uring: " + why;
        }
    } else if (b == Backend::io_uring) {
        if (!detail::io_uring_usable(why))
            throw std::runtime_error(std::string("backend io_uring was requested") +
                                     (from_env ? " by WEFT_BACKEND" : "") + ", but " + why);
    }
    if (b == Backend::io_uring || b == Backend::epoll) {
        if (st.backend_reason.empty())
            st.backend_reason = from_env                    ? "chosen by WEFT_BACKEND"
                                : !o.backend_source.empty() ? o.backend_source
                                                            : "chosen by configuration";
    }
    st.backend = b;
    unsigned pool = o.offload_threads ? o.offload_threads : (n > 4 ? n : 4);
    st.pool = std::make_unique<detail::ThreadPool>(pool, o.name, "off");
    st.resolver = std::make_unique<detail::ThreadPool>(
        o.resolver_threads ? o.resolver_threads : (n > 4 ? n : 4), o.name, "dns");
    for (unsigned i = 0; i < n; ++i)
        st.hubs.push_back(std::make_unique<HubImpl>(st, i, b));

    detail::core_log().info("{}: {} hub{} ({}), backend {} ({})", o.name, n, n == 1 ? "" : "s",
                            hubs_source, backend_name(b), st.backend_reason);

    // Start the hub threads and wait until each has its backend (or report why not).
    std::mutex mu;
    std::condition_variable cv;
    unsigned started = 0;
    std::string failure;
    unsigned first = inline_hub0 ? 1 : 0;
    for (unsigned i = first; i < n; ++i) {
        HubImpl* h = st.hubs[i].get();
        st.threads.emplace_back([h, &st, &mu, &cv, &started, &failure] {
            bool ok = true;
            try {
                h->thread_init();
            } catch (const std::exception& e) {
                ok = false;
                std::lock_guard<std::mutex> g(mu);
                failure = std::string("hub ") + std::to_string(h->index()) + ": " + e.what();
            }
            {
                // Notify under the lock: the constructor owns mu and cv on its stack and may
                // return as soon as it can take the lock.
                std::lock_guard<std::mutex> g(mu);
                ++started;
                cv.notify_all();
            }
            if (ok) h->run_loop();
            std::lock_guard<std::mutex> e(st.exit_mu);
            ++st.threads_exited;
            st.exit_cv.notify_all();
        });
    }
    std::unique_lock<std::mutex> g(mu);
    cv.wait(g, [&] { return started == n - first; });
    if (!failure.empty()) {
        g.unlock();
        stop();
        join();
        throw std::runtime_error("cannot start the runtime: " + failure);
    }
}

Runtime::~Runtime() {
    stop();
    join();
    // Work still running (a lookup of a dead DNS server that its fiber gave up on) posts its end
    // to a hub: the pools end, waiting for it, while the hubs are still there.
    state_->pool.reset();
    state_->resolver.reset();
    {
        std::unique_lock<std::mutex> g(state_->helpers_mu);
        state_->helpers_cv.wait(g, [&] { return state_->helpers == 0; });
    }
    state_->hubs.clear();
}

std::unique_ptr<Runtime> Runtime::create_inline(RuntimeOptions options) {
    return std::unique_ptr<Runtime>(new Runtime(std::move(options), true));
}

void Runtime::run_inline() {
    WEFT_CHECK(state_->inline_hub0, "run_inline() on a runtime not made by create_inline()");
    HubImpl* h = state_->hubs[0].get();
    h->thread_init();
    h->run_loop();
}

unsigned Runtime::hub_count() const noexcept {
    return static_cast<unsigned>(state_->hubs.size());
}
Hub& Runtime::hub(unsigned i) const {
    if (i >= state_->hubs.size()) throw std::out_of_range("Runtime::hub: no such hub");
    return *state_->hubs[i];
}
Backend Runtime::backend() const noexcept {
    return state_->backend;
}
const std::string& Runtime::backend_reason() const noexcept {
    return state_->backend_reason;
}
const RuntimeOptions& Runtime::options() const noexcept {
    return state_->options;
}

void Runtime::stop() noexcept {
    for (auto& h : state_->hubs)
        h->request_stop();
}

void Runtime::join() {
    for (auto& t : state_->threads)
        if (t.joinable()) t.join();
}

bool Runtime::join_for(std::chrono::nanoseconds limit) {
    detail::RuntimeState& st = *state_;
    // wait_for adds the limit to now: a century is forever enough and cannot overflow.
    limit = std::min<std::chrono::nanoseconds>(limit, std::chrono::hours(24 * 365 * 100));
    {
        std::unique_lock<std::mutex> g(st.exit_mu);
        if (!st.exit_cv.wait_for(g, limit, [&] { return st.threads_exited == st.threads.size(); }))
            return false;
    }
    join();
    return true;
}

namespace internal {
void runtime_environment_resolved() noexcept {
    g_environment_resolved.store(true, std::memory_order_relaxed);
}
}  // namespace internal

namespace introspect {

CurrentFiberView current_fiber_view() noexcept {
    CurrentFiberView v;
    HubImpl* hub = HubImpl::current();
    if (!hub) return v;
    v.hub_index = static_cast<int>(hub->index_value());
    v.in_switch = detail::in_context_switch();
    if (v.in_switch) return v;
    if (detail::FiberRecord* f = HubImpl::current_fiber()) {
        v.id = f->id;
        v.name = f->name;
        v.stack_lo = f->stack.lo();
        v.stack_hi = f->stack.hi();
        v.labels = f->shown_labels();
    } else {
        v.stack_lo = hub->thread_stack_lo();
        v.stack_hi = hub->thread_stack_hi();
    }
    return v;
}

}  // namespace introspect
}  // namespace weft

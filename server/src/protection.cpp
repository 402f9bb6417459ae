// Load shedding and the per-plugin stall budget. One thread looks at every hub's schedule-delay
// histogram a few times per window (a ring of bucket snapshots gives the distribution over the
// last window) and ends cool-downs; hubs only read two atomics per request in admit().
#include "protection.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

#include "weft/core/hub.hpp"
#include "weft/core/internal/hub_probe.hpp"
#include "weft/core/log.hpp"
#include "weft/core/text.hpp"

namespace weft::server {

namespace {

// Schedule delay, then lag: the two histograms a hub's congestion is judged by.
using Buckets = std::array<std::uint64_t, LatencyHistogram::kBuckets * 2>;

double seconds(std::int64_t ns) {
    return static_cast<double>(ns) / 1e9;
}

std::string retry_after_seconds(std::int64_t ns) {
    return std::to_string(std::max<std::int64_t>(1, (ns + 999'999'999) / 1'000'000'000));
}

http::Response refusal(std::string body, std::int64_t retry_ns) {
    http::Response r = http::Response::text(std::move(body), 503);
    r.add_header("Retry-After", retry_after_seconds(retry_ns));
    return r;
}

}  // namespace

struct Protection::HubState {
    std::atomic<bool> shedding{false};
    std::atomic<std::uint64_t> shed{0};
    std::atomic<double> quantile_s{0};  // over the last window; +inf beyond the last bucket
    std::atomic<std::uint64_t> wakeups{0};
    std::uint64_t shed_at_start = 0;  // the thread's: shed count when the episode began
    std::int64_t shed_since_ns = 0;   // the thread's: when the episode began
    std::deque<std::pair<std::int64_t, Buckets>> ring;  // the thread's
};

struct Protection::PluginState {
    std::string name;
    std::int64_t budget_ns = 0;
    std::atomic<bool> quarantined{false};
    std::atomic<std::int64_t> until_ns{0};
    std::atomic<std::uint64_t> quarantines{0};
    std::atomic<std::uint64_t> refused{0};
    std::atomic<std::int64_t> blocking_ns{0};
    std::deque<std::pair<std::int64_t, std::int64_t>> window;  // (when, ns); under mu_
};

Protection::Protection(const Runtime& rt, ShedOptions shed, StallOptions stall)
    : rt_(rt), shed_(shed), stall_(stall) {
    for (unsigned i = 0; i < rt.hub_count(); ++i)
        hubs_.push_back(std::make_unique<HubState>());
}

Protection::~Protection() {
    stop();
}

void Protection::stop() {
    {
        std::lock_guard<std::mutex> g(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
}

unsigned Protection::add_plugin(std::string name, std::optional<std::chrono::nanoseconds> budget) {
    auto p = std::make_unique<PluginState>();
    p->name = std::move(name);
    p->budget_ns = (budget ? *budget : stall_.budget).count();
    plugins_.push_back(std::move(p));
    return static_cast<unsigned>(plugins_.size() - 1);
}

int Protection::plugin_index(std::string_view name) const {
    for (std::size_t i = 0; i < plugins_.size(); ++i)
        if (plugins_[i]->name == name) return static_cast<int>(i);
    return -1;
}

void Protection::start() {
    thread_ = std::thread([this] { run(); });
}

std::optional<http::Response> Protection::admit_slow(unsigned plugin) {
    if (shed_.enabled) {
        const Hub* hub = Hub::current();
        const unsigned i = hub ? hub->index() : 0;
        if (hub && i < hubs_.size() && hubs_[i]->shedding.load(std::memory_order_relaxed)) {
            hubs_[i]->shed.fetch_add(1, std::memory_order_relaxed);
            return refusal("503 overloaded: this server's hub " + std::to_string(i) +
                               " runs ready work later than its [shed] budget; "
                               "retry later\n",
                           shed_.retry_after.count());
        }
    }
    if (plugin < plugins_.size()) {
        PluginState& p = *plugins_[plugin];
        if (p.quarantined.load(std::memory_order_relaxed)) {
            const std::int64_t left = p.until_ns.load(std::memory_order_relaxed) - weft::now_ns();
            if (left > 0) {
                p.refused.fetch_add(1, std::memory_order_relaxed);
                return refusal("503 plugin '" + p.name +
                                   "' is quarantined: its handlers blocked their hubs for longer "
                                   "than its stall budget; retry later\n",
                               left);
            }
        }
    }
    return std::nullopt;
}

void Protection::add_blocking(unsigned plugin, std::chrono::nanoseconds d) {
    if (plugin >= plugins_.size() || d.count() <= 0) return;
    PluginState& p = *plugins_[plugin];
    p.blocking_ns.fetch_add(d.count(), std::memory_order_relaxed);
    if (p.budget_ns <= 0) return;
    const std::int64_t now = weft::now_ns();
    std::int64_t in_window = 0;
    {
        std::lock_guard<std::mutex> g(mu_);
        if (p.quarantined.load(std::memory_order_relaxed)) return;  // in-flight leftovers
        p.window.emplace_back(now, d.count());
        while (!p.window.empty() && p.window.front().first < now - stall_.window.count())
            p.window.pop_front();
        for (const auto& [when, ns] : p.window)
            in_window += ns;
        if (in_window <= p.budget_ns) return;
        p.window.clear();
        p.until_ns.store(now + stall_.cooldown.count(), std::memory_order_relaxed);
        p.quarantined.store(true, std::memory_order_relaxed);
        refusing_.fetch_add(1, std::memory_order_relaxed);
        p.quarantines.fetch_add(1, std::memory_order_relaxed);
    }
    weft::logger()->warn(
        "plugin '{}' blocked its hubs for {:.3f} s within {:.1f} s, over its stall budget of "
        "{:.3f} s: its routes answer 503 for {:.1f} s; the other plugins keep serving",
        p.name, seconds(in_window), seconds(stall_.window.count()), seconds(p.budget_ns),
        seconds(stall_.cooldown.count()));
}

void Protection::run() {
    pthread_setname_np(pthread_self(), "weft-protect");
    const auto period = std::clamp<std::chrono::nanoseconds>(
        shed_.window / 10, std::chrono::milliseconds(10), std::chrono::seconds(1));
    std::unique_lock<std::mutex> g(mu_);
    while (!cv_.wait_for(g, period, [this] { return stop_; })) {
        g.unlock();
        if (shed_.enabled) look_at_hubs();
        look_at_plugins();
        g.lock();
    }
}

namespace {

// One histogram over the window: how many observations, how many above the budget, and the
// quantile (the upper bound of the bucket that reaches it; +inf beyond the last bound).
struct WindowStats {
    std::uint64_t total = 0, late = 0;
    double quantile_s = 0;
};

WindowStats window_stats(const std::uint64_t* now, const std::uint64_t* base, std::size_t over,
                         double quantile) {
    WindowStats w;
    std::uint64_t d[LatencyHistogram::kBuckets];
    for (std::size_t k = 0; k < LatencyHistogram::kBuckets; ++k) {
        d[k] = now[k] - base[k];
        w.total += d[k];
        if (k > over) w.late += d[k];
    }
    if (w.total == 0) return w;
    std::uint64_t cum = 0;
    w.quantile_s = INFINITY;
    for (std::size_t k = 0; k < kLatencyBucketBoundsNs.size(); ++k) {
        cum += d[k];
        if (static_cast<double>(cum) >= quantile * static_cast<double>(w.total)) {
            w.quantile_s = seconds(kLatencyBucketBoundsNs[k]);
            break;
        }
    }
    return w;
}

}  // namespace

void Protection::look_at_hubs() {
    // Delays above the budget are those in the buckets above the first bound that is at least
    // the budget.
    std::size_t over = 0;
    while (over < kLatencyBucketBoundsNs.size() &&
           kLatencyBucketBoundsNs[over] < shed_.budget.count())
        ++over;
    constexpr std::size_t kN = LatencyHistogram::kBuckets;
    const std::int64_t now = weft::now_ns();
    for (unsigned i = 0; i < hubs_.size(); ++i) {
        HubState& h = *hubs_[i];
        // How late ready work runs: fibers woken by others (schedule delay) and a timer that
        // should have fired (the lag probe, which is how a blocked hub shows when every new
        // request waits in the kernel rather than in the run queue).
        const HubProbe& p = weft::internal::probe(rt_.hub(i));
        Buckets b;
        for (std::size_t k = 0; k < kN; ++k) {
            b[k] = p.schedule_delay.buckets[k].load(std::memory_order_relaxed);
            b[kN + k] = p.lag.buckets[k].load(std::memory_order_relaxed);
        }
        h.ring.emplace_back(now, b);
        // Keep the newest snapshot taken at least a window ago as the base.
        while (h.ring.size() > 2 && h.ring[1].first <= now - shed_.window.count())
            h.ring.pop_front();
        const Buckets& base = h.ring.front().second;
        const WindowStats sched = window_stats(&b[0], &base[0], over, shed_.quantile);
        const WindowStats lag = window_stats(&b[kN], &base[kN], over, shed_.quantile);
        const double q = std::max(sched.quantile_s, lag.quantile_s);
        h.quantile_s.store(q, std::memory_order_relaxed);
        h.wakeups.store(sched.total, std::memory_order_relaxed);
        const auto over_budget = [&](const WindowStats& w) {
            return w.total >= shed_.min_wakeups &&
                   static_cast<double>(w.late) >
                       (1.0 - shed_.quantile) * static_cast<double>(w.total);
        };
        const bool congested = over_budget(sched) || over_budget(lag);
        const bool was = h.shedding.load(std::memory_order_relaxed);
        if (congested && !was) {
            h.shed_at_start = h.shed.load(std::memory_order_relaxed);
            h.shed_since_ns = now;
            h.shedding.store(true, std::memory_order_relaxed);
            refusing_.fetch_add(1, std::memory_order_relaxed);
            weft::logger()->warn(
                "hub {}: schedule delay or lag p{:g} over the last {:.1f} s is {} (budget {:.3f} "
                "s): "
                "new requests on this hub get 503 until it recovers",
                i, shed_.quantile * 100, seconds(shed_.window.count()),
                std::isinf(q) ? std::string("above 10 s") : fmt::format("{:.3f} s", q),
                seconds(shed_.budget.count()));
        } else if (!congested && was && now - h.shed_since_ns >= shed_.window.count()) {
            // Recovered only when a whole window since shedding began was within budget: the
            // fast 503s alone would otherwise dilute the late wakeups below the quantile at
            // once, and the hub would flap between shedding and blocking.
            h.shedding.store(false, std::memory_order_relaxed);
            refusing_.fetch_sub(1, std::memory_order_relaxed);
            weft::logger()->info(
                "hub {}: schedule delay and lag back within budget; {} request(s) shed", i,
                h.shed.load(std::memory_order_relaxed) - h.shed_at_start);
        }
    }
}

void Protection::look_at_plugins() {
    const std::int64_t now = weft::now_ns();
    for (auto& pp : plugins_) {
        PluginState& p = *pp;
        if (!p.quarantined.load(std::memory_order_relaxed) ||
            now < p.until_ns.load(std::memory_order_relaxed))
            continue;
        {
            std::lock_guard<std::mutex> g(mu_);
            p.quarantined.store(false, std::memory_order_relaxed);
            refusing_.fetch_sub(1, std::memory_order_relaxed);
            p.window.clear();
        }
        weft::logger()->info("plugin '{}': cool-down over, its routes serve again ({} refused)",
                             p.name, p.refused.load(std::memory_order_relaxed));
    }
}

std::string Protection::state_json() const {
    const std::int64_t now = weft::now_ns();
    std::string out = fmt::format(
        "{{\"shed\":{{\"enabled\":{},\"budget_s\":{},\"quantile\":{},\"window_s\":{},\"hubs\":[",
        shed_.enabled, seconds(shed_.budget.count()), shed_.quantile,
        seconds(shed_.window.count()));
    for (std::size_t i = 0; i < hubs_.size(); ++i) {
        const HubState& h = *hubs_[i];
        const double q = h.quantile_s.load(std::memory_order_relaxed);
        out += fmt::format(
            "{}{{\"hub\":{},\"shedding\":{},\"delay_quantile_s\":{},"
            "\"wakeups\":{},\"shed\":{}}}",
            i ? "," : "", i, h.shedding.load(std::memory_order_relaxed),
            std::isinf(q) ? std::string("null") : fmt::format("{}", q),
            h.wakeups.load(std::memory_order_relaxed), h.shed.load(std::memory_order_relaxed));
    }
    out += fmt::format("]}},\"stall\":{{\"window_s\":{},\"cooldown_s\":{},\"plugins\":[",
                       seconds(stall_.window.count()), seconds(stall_.cooldown.count()));
    for (std::size_t i = 0; i < plugins_.size(); ++i) {
        const PluginState& p = *plugins_[i];
        const bool q = p.quarantined.load(std::memory_order_relaxed);
        const std::int64_t left = q ? p.until_ns.load(std::memory_order_relaxed) - now : 0;
        out += fmt::format(
            "{}{{\"plugin\":{},\"budget_s\":{},\"blocked_total_s\":{},\"quarantined\":{},"
            "\"remaining_s\":{},\"quarantines\":{},\"refused\":{}}}",
            i ? "," : "", json_quote(p.name), seconds(p.budget_ns),
            seconds(p.blocking_ns.load(std::memory_order_relaxed)), q && left > 0,
            seconds(std::max<std::int64_t>(left, 0)), p.quarantines.load(std::memory_order_relaxed),
            p.refused.load(std::memory_order_relaxed));
    }
    out += "]}}";
    return out;
}

monitor::CollectorHandle Protection::add_metrics(monitor::Registry& registry) const {
    using monitor::MetricType;
    struct Family {
        const char* name;
        const char* help;
        const char* unit;
        MetricType type;
    };
    static constexpr Family kHub[] = {
        {"weft_shed_requests_total",
         "Requests answered 503 by load shedding: their hub's schedule delay or lag was above the "
         "[shed] budget.",
         "", MetricType::counter},
        {"weft_hub_shedding", "1 while the hub sheds new requests ([shed]).", "",
         MetricType::gauge},
    };
    static constexpr Family kPlugin[] = {
        {"weft_plugin_quarantined",
         "1 while the plugin's routes answer 503: its handlers blocked their hubs for longer "
         "than its stall budget.",
         "", MetricType::gauge},
        {"weft_plugin_quarantines_total",
         "Times the plugin was quarantined for exceeding its stall budget.", "",
         MetricType::counter},
        {"weft_plugin_refused_requests_total",
         "Requests to the plugin's routes answered 503 while it was quarantined.", "",
         MetricType::counter},
        {"weft_plugin_blocking_seconds_total",
         "Time the plugin's handlers held their hubs in blockages the watchdog reported (not "
         "those the code allowed, nor the time in which the hub was starved of a CPU).",
         "seconds", MetricType::counter},
    };
    return registry.add_collector([this](std::vector<monitor::MetricFamily>& out) {
        const auto family = [&out](const Family& f) -> monitor::MetricFamily& {
            return out.emplace_back(monitor::MetricFamily{f.name, f.help, f.unit, f.type, {}, {}});
        };
        for (std::size_t k = 0; k < std::size(kHub); ++k) {
            monitor::MetricFamily& m = family(kHub[k]);
            for (std::size_t i = 0; i < hubs_.size(); ++i) {
                const HubState& h = *hubs_[i];
                const double v =
                    k == 0 ? static_cast<double>(h.shed.load()) : (h.shedding.load() ? 1.0 : 0.0);
                m.samples.push_back({{{"hub", std::to_string(i)}}, v});
            }
        }
        const std::int64_t now = weft::now_ns();
        for (std::size_t k = 0; k < std::size(kPlugin); ++k) {
            monitor::MetricFamily& m = family(kPlugin[k]);
            for (const auto& p : plugins_) {
                double v = 0;
                switch (k) {
                    case 0:
                        v = p->quarantined.load() && p->until_ns.load() > now ? 1.0 : 0.0;
                        break;
                    case 1:
                        v = static_cast<double>(p->quarantines.load());
                        break;
                    case 2:
                        v = static_cast<double>(p->refused.load());
                        break;
                    default:
                        v = seconds(p->blocking_ns.load());
                }
                m.samples.push_back({{{"plugin", p->name}}, v});
            }
        }
    });
}

}  // namespace weft::server

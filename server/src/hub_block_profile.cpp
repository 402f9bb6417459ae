// The hub-blocking profile's bookkeeping and its rendering as pprof samples.
#include "hub_block_profile.hpp"

namespace weft::server {

const char* blocking_kind(monitor::BlockingCause c) noexcept {
    switch (c) {
        case monitor::BlockingCause::running_on_cpu:
            return "cpu";
        case monitor::BlockingCause::in_system_call:
            return "syscall";
        case monitor::BlockingCause::waiting_for_cpu:
            return "waiting_for_cpu";
        case monitor::BlockingCause::unknown:
            break;
    }
    return "unknown";
}

bool charges_plugin(const monitor::BlockingReport& r) noexcept {
    return !r.allowed && r.cause != monitor::BlockingCause::waiting_for_cpu;
}

bool charges_plugin(const monitor::BlockingEnd& e, bool report_charged) noexcept {
    if (e.allowed) return false;
    if (e.cause_after_report == monitor::BlockingCause::unknown) return report_charged;
    return e.cause_after_report != monitor::BlockingCause::waiting_for_cpu;
}

std::string report_label(const monitor::BlockingReport& r, std::string_view key) {
    for (const auto& [k, v] : r.labels)
        if (k == key) return v;
    return {};
}

void HubBlockProfile::on_report(const monitor::BlockingReport& r, std::string plugin) {
    Open o;
    o.entry.stack = r.stack;
    o.entry.route = report_label(r, "route");
    o.entry.plugin = std::move(plugin);
    // Blocking the code allowed (monitor::AllowBlocking) apart from the rest: the same stack and
    // route may do both.
    o.entry.kind = std::string(blocking_kind(r.cause)) + (r.allowed ? " (allowed)" : "");
    o.key = std::to_string(r.stack_hash) + '\n' + o.entry.route + '\n' + o.entry.plugin + '\n' +
            o.entry.kind;
    o.reported_ns = static_cast<std::int64_t>(r.blocked_s * 1e9);
    o.charged = charges_plugin(r);
    std::lock_guard<std::mutex> g(mu_);
    // A report whose closing record never comes (the reporter's queue was full) must not pile up.
    if (open_.size() > 1024) open_.erase(open_.begin());
    open_[r.id] = std::move(o);
}

std::optional<HubBlockProfile::Ended> HubBlockProfile::on_end(const monitor::BlockingEnd& e) {
    std::lock_guard<std::mutex> g(mu_);
    auto it = open_.find(e.report_id);
    if (e.report_id == 0 || it == open_.end()) return std::nullopt;
    Open& o = it->second;
    const auto ns = static_cast<std::int64_t>(e.duration_s * 1e9);
    auto [t, fresh] = totals_.try_emplace(o.key);
    if (fresh) {
        t->second = o.entry;
        t->second.blockages = 0;
        t->second.ns = 0;
    }
    t->second.blockages += 1;
    t->second.ns += ns;
    Ended out{o.entry.plugin, std::chrono::nanoseconds(o.reported_ns), std::chrono::nanoseconds(ns),
              charges_plugin(e, o.charged)};
    open_.erase(it);
    return out;
}

HubBlockProfile::Totals HubBlockProfile::totals() const {
    std::lock_guard<std::mutex> g(mu_);
    return totals_;
}

monitor::PprofProfile HubBlockProfile::to_pprof(const Totals& now, const Totals* base,
                                                std::int64_t start_unix_ns,
                                                std::int64_t duration_ns) {
    monitor::PprofProfile p({{"blockages", "count"}, {"blocked", "nanoseconds"}}, "blocked");
    p.set_time(start_unix_ns, duration_ns);
    p.add_comment(
        "weft hub-blocking profile: time fibers held their hub past the watchdog's "
        "max_blocking_time, by stack");
    for (const auto& [key, e] : now) {
        std::int64_t n = e.blockages, ns = e.ns;
        if (base) {
            if (auto b = base->find(key); b != base->end()) {
                n -= b->second.blockages;
                ns -= b->second.ns;
            }
        }
        if (n <= 0) continue;
        std::vector<std::pair<std::string, std::string>> labels{{"kind", e.kind}};
        if (!e.route.empty()) labels.emplace_back("route", e.route);
        if (!e.plugin.empty()) labels.emplace_back("plugin", e.plugin);
        p.add_sample(e.stack, {n, ns}, labels);
    }
    return p;
}

}  // namespace weft::server

// Snapshots of every hub's fibers as trees and of the process's threads, for reports and the
// run-info dump.
#include "weft/monitor/run_info.hpp"

#include <algorithm>
#include <chrono>
#include <unordered_map>
#include <unordered_set>

#include "thread_inspect.hpp"
#include "weft/core/internal/hub_probe.hpp"

namespace weft::monitor {

namespace {

std::string utc_now() {
    auto now = std::chrono::system_clock::now();
    std::time_t t = std::chrono::system_clock::to_time_t(now);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

// Depth-first order: roots (no parent, or the parent is gone) then children, each by id.
std::vector<FiberNode> as_tree(std::vector<FiberInfo> fibers) {
    std::sort(fibers.begin(), fibers.end(),
              [](const FiberInfo& a, const FiberInfo& b) { return a.id < b.id; });
    std::unordered_map<FiberId, std::size_t> index;
    for (std::size_t i = 0; i < fibers.size(); ++i)
        index.emplace(fibers[i].id, i);
    std::vector<std::vector<std::size_t>> children(fibers.size());
    std::vector<std::size_t> roots;
    for (std::size_t i = 0; i < fibers.size(); ++i) {
        auto p = index.find(fibers[i].parent);
        if (fibers[i].parent != 0 && p != index.end() && p->second != i)
            children[p->second].push_back(i);
        else
            roots.push_back(i);
    }
    std::vector<FiberNode> out;
    out.reserve(fibers.size());
    std::vector<bool> seen(fibers.size(), false);
    std::vector<std::pair<std::size_t, int>> stack;
    for (auto it = roots.rbegin(); it != roots.rend(); ++it)
        stack.push_back({*it, 0});
    while (!stack.empty()) {
        auto [i, depth] = stack.back();
        stack.pop_back();
        if (seen[i]) continue;  // a parent cycle cannot happen, but never loop on one
        seen[i] = true;
        out.push_back({fibers[i], depth});
        for (auto c = children[i].rbegin(); c != children[i].rend(); ++c)
            stack.push_back({*c, depth + 1});
    }
    return out;
}

// Keeps `max` nodes: `keep` and its ancestors, then the first others in tree order.
void trim(HubFibers& h, std::size_t max, FiberId keep) {
    if (max == 0 || h.fibers.size() <= max) return;
    std::unordered_set<FiberId> must;
    std::unordered_map<FiberId, FiberId> parent;
    for (const auto& n : h.fibers)
        parent.emplace(n.info.id, n.info.parent);
    for (FiberId id = keep; id != 0 && must.insert(id).second;) {
        auto p = parent.find(id);
        id = p == parent.end() ? 0 : p->second;
    }
    std::vector<FiberNode> kept;
    std::size_t budget = max > must.size() ? max - must.size() : 0;
    for (auto& n : h.fibers) {
        if (must.count(n.info.id)) {
            kept.push_back(std::move(n));
        } else if (budget > 0) {
            --budget;
            kept.push_back(std::move(n));
        } else {
            ++h.omitted;
        }
    }
    h.fibers = std::move(kept);
}

}  // namespace

std::vector<HubFibers> snapshot_hubs(const Runtime& rt, std::size_t max_per_hub, FiberId keep) {
    std::vector<HubFibers> out;
    for (unsigned i = 0; i < rt.hub_count(); ++i) {
        const Hub& hub = rt.hub(i);
        const HubProbe& p = weft::internal::probe(hub);
        HubFibers h;
        h.hub = i;
        h.tid = p.tid.load(std::memory_order_relaxed);
        h.backend = hub.backend_name();
        h.activity = hub_activity_name(p.activity.load(std::memory_order_relaxed));
        h.running_fiber = p.running_fiber.load(std::memory_order_relaxed);
        h.fibers = as_tree(hub.fibers());
        trim(h, max_per_hub, keep);
        out.push_back(std::move(h));
    }
    return out;
}

std::vector<ThreadInfo> snapshot_threads(const Runtime* rt) {
    std::unordered_map<int, int> hub_of;
    if (rt)
        for (unsigned i = 0; i < rt->hub_count(); ++i)
            hub_of.emplace(weft::internal::probe(rt->hub(i)).tid.load(std::memory_order_relaxed),
                           static_cast<int>(i));
    std::vector<ThreadInfo> out;
    for (auto& row : detail::list_threads()) {
        ThreadInfo t;
        t.tid = row.tid;
        t.name = std::move(row.name);
        t.state = row.state;
        auto h = hub_of.find(row.tid);
        t.hub = h == hub_of.end() ? -1 : h->second;
        out.push_back(std::move(t));
    }
    return out;
}

std::string format_run_info(const Runtime& rt, std::size_t max_per_hub) {
    std::string out = utc_now() + " : run info of every hub\n";
    out += format_threads(snapshot_threads(&rt));
    out += format_fiber_trees(snapshot_hubs(rt, max_per_hub));
    return out;
}

}  // namespace weft::monitor

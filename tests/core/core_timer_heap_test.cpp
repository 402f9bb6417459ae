// The hub's timer heap against a reference: random adds and removes fire in (deadline,
// insertion) order, removed timers never fire, and a node's recorded place stays right.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <tuple>
#include <vector>

#include "timer_heap.hpp"

namespace {

using weft::detail::TimerHeap;
using weft::detail::TimerNode;

struct Probe {
    TimerNode node;  // first: the callback gets &node
    int id = 0;
    static std::vector<int>* fired;
    static void fire(TimerNode* n) noexcept { fired->push_back(reinterpret_cast<Probe*>(n)->id); }
};
std::vector<int>* Probe::fired = nullptr;

TEST(TimerHeap, FiresInDeadlineThenInsertionOrderAndNeverARemovedTimer) {
    std::mt19937_64 rng(12345);
    constexpr int kNodes = 2000;
    std::vector<Probe> probes(kNodes);
    std::vector<int> fired;
    Probe::fired = &fired;
    TimerHeap heap;
    // Reference: (deadline, insertion number, id) of every armed timer.
    std::vector<std::tuple<std::int64_t, std::uint64_t, int>> armed;
    std::uint64_t order = 0;
    std::int64_t now = 0;
    for (int round = 0; round < 40; ++round) {
        for (int k = 0; k < 300; ++k) {
            Probe& p = probes[rng() % kNodes];
            if (p.node.armed()) {
                heap.remove(&p.node);
                EXPECT_FALSE(p.node.armed());
                std::erase_if(armed, [&](const auto& t) { return std::get<2>(t) == p.id; });
            } else {
                p.id = static_cast<int>(&p - probes.data());
                // Few distinct deadlines, so that ties (fired in insertion order) are common.
                p.node.when_ns = now + static_cast<std::int64_t>(rng() % 50);
                p.node.fire = &Probe::fire;
                heap.add(&p.node);
                armed.emplace_back(p.node.when_ns, order++, p.id);
            }
        }
        ASSERT_EQ(heap.size(), armed.size());
        std::sort(armed.begin(), armed.end());
        if (!armed.empty()) {
            EXPECT_EQ(heap.next_deadline(), std::get<0>(armed.front()));
        }
        now += 20;
        fired.clear();
        heap.fire_due(now);
        std::vector<int> want;
        while (!armed.empty() && std::get<0>(armed.front()) <= now) {
            want.push_back(std::get<2>(armed.front()));
            armed.erase(armed.begin());
        }
        EXPECT_EQ(fired, want) << "round " << round;
        for (int id : fired)
            EXPECT_FALSE(probes[id].node.armed());
    }
    for (Probe& p : probes)
        heap.remove(&p.node);
    EXPECT_TRUE(heap.empty());
}

}  // namespace

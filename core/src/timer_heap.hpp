// TimerHeap: the hub's timers, an intrusive 4-ary min-heap keyed by (deadline, insertion order).
// Nodes live in their owners (usually a parked fiber's stack); removal is O(log n).
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace weft::detail {

struct TimerNode {
    static constexpr std::size_t kNotArmed = std::numeric_limits<std::size_t>::max();
    std::int64_t when_ns = 0;
    std::uint64_t seq = 0;
    void (*fire)(TimerNode*) noexcept = nullptr;
    std::size_t index = kNotArmed;
    bool armed() const noexcept { return index != kNotArmed; }
};

class TimerHeap {
  public:
    void add(TimerNode* n);
    void remove(TimerNode* n) noexcept;
    bool empty() const noexcept { return heap_.empty(); }
    std::size_t size() const noexcept { return heap_.size(); }
    /// Deadline of the earliest timer, or INT64_MAX.
    std::int64_t next_deadline() const noexcept {
        return heap_.empty() ? std::numeric_limits<std::int64_t>::max() : heap_[0]->when_ns;
    }
    /// Removes and fires every timer due at `now_ns`, earliest first; returns how many fired.
    std::size_t fire_due(std::int64_t now_ns);

  private:
    static bool less(const TimerNode* a, const TimerNode* b) noexcept {
        return a->when_ns < b->when_ns || (a->when_ns == b->when_ns && a->seq < b->seq);
    }
    void sift_up(std::size_t i) noexcept;
    void sift_down(std::size_t i) noexcept;
    void place(std::size_t i, TimerNode* n) noexcept {
        heap_[i] = n;
        n->index = i;
    }
    std::vector<TimerNode*> heap_;
    std::uint64_t next_seq_ = 0;
};

}  // namespace weft::detail

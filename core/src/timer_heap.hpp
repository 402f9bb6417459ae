// TimerHeap: the hub's timers, a 4-ary min-heap keyed by (deadline, insertion order). Nodes live
// in their owners (usually a parked fiber's stack, or an I/O op).
//
// Timers with the same deadline share one heap slot: a busy hub sets the same timeout for every
// connection's idle wait and send, from the coarse clock, so hundreds of them fall on one clock
// tick. Such a timer joins the newest group of its deadline (a few are remembered) at the group's
// end, and leaves it in O(1); only the first and the last of a group move the heap. Firing order
// stays (deadline, insertion): a later group of the same deadline starts only once no earlier one
// is remembered, so every timer in it came after those of the earlier group.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace weft::detail {

struct TimerNode {
    static constexpr std::size_t kNotArmed = std::numeric_limits<std::size_t>::max();
    /// A timer that follows the first of its group (only the first is in the heap).
    static constexpr std::size_t kInGroup = kNotArmed - 1;
    std::int64_t when_ns = 0;
    void (*fire)(TimerNode*) noexcept = nullptr;
    std::size_t index = kNotArmed;  ///< its heap slot, kInGroup, or kNotArmed
    // The group: a ring of the timers of one deadline, in insertion order.
    TimerNode* next = nullptr;
    TimerNode* prev = nullptr;
    bool armed() const noexcept { return index != kNotArmed; }
};

class TimerHeap {
  public:
    void add(TimerNode* n);
    void remove(TimerNode* n) noexcept;
    bool empty() const noexcept { return heap_.empty(); }
    /// Timers armed.
    std::size_t size() const noexcept { return count_; }
    /// Deadline of the earliest timer, or INT64_MAX.
    std::int64_t next_deadline() const noexcept {
        return heap_.empty() ? std::numeric_limits<std::int64_t>::max() : heap_[0].when_ns;
    }
    /// Removes and fires every timer due at `now_ns`, earliest first; returns how many fired.
    std::size_t fire_due(std::int64_t now_ns);

  private:
    /// A group's heap slot: its key next to the first node's pointer, so that sifting compares
    /// within the array and touches a node only to record its new place.
    struct Entry {
        std::int64_t when_ns;
        std::uint64_t seq;
        TimerNode* node;
    };
    static constexpr std::size_t kRecent = 4;  // groups remembered for joining
    static bool less(const Entry& a, const Entry& b) noexcept {
        return a.when_ns < b.when_ns || (a.when_ns == b.when_ns && a.seq < b.seq);
    }
    void sift_up(std::size_t i) noexcept;
    void sift_down(std::size_t i) noexcept;
    void place(std::size_t i, const Entry& e) noexcept {
        heap_[i] = e;
        e.node->index = i;
    }
    /// Takes the group's first node `n` (in slot `i`) out: the next one of its group takes the
    /// slot, or the slot goes.
    void remove_first(TimerNode* n, std::size_t i) noexcept;
    void remove_slot(std::size_t i) noexcept;
    /// The remembered group whose first node was `from` now starts at `to` (nullptr: gone).
    void forget(TimerNode* from, TimerNode* to) noexcept {
        for (TimerNode*& r : recent_)
            if (r == from) r = to;
    }
    std::vector<Entry> heap_;
    TimerNode* recent_[kRecent] = {};
    std::size_t next_recent_ = 0;
    std::size_t count_ = 0;
    std::uint64_t next_seq_ = 0;
};

}  // namespace weft::detail

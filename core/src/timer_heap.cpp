// 4-ary heap of hub timers.
#include "timer_heap.hpp"

namespace weft::detail {

void TimerHeap::add(TimerNode* n) {
    n->seq = next_seq_++;
    heap_.push_back(n);
    n->index = heap_.size() - 1;
    sift_up(n->index);
}

void TimerHeap::remove(TimerNode* n) noexcept {
    if (!n->armed()) return;
    std::size_t i = n->index;
    n->index = TimerNode::kNotArmed;
    TimerNode* last = heap_.back();
    heap_.pop_back();
    if (last == n) return;
    place(i, last);
    if (i > 0 && less(last, heap_[(i - 1) / 4]))
        sift_up(i);
    else
        sift_down(i);
}

std::size_t TimerHeap::fire_due(std::int64_t now_ns) {
    std::size_t fired = 0;
    while (!heap_.empty() && heap_[0]->when_ns <= now_ns) {
        TimerNode* n = heap_[0];
        remove(n);
        ++fired;
        n->fire(n);
    }
    return fired;
}

void TimerHeap::sift_up(std::size_t i) noexcept {
    TimerNode* n = heap_[i];
    while (i > 0) {
        std::size_t parent = (i - 1) / 4;
        if (!less(n, heap_[parent])) break;
        place(i, heap_[parent]);
        i = parent;
    }
    place(i, n);
}

void TimerHeap::sift_down(std::size_t i) noexcept {
    TimerNode* n = heap_[i];
    const std::size_t size = heap_.size();
    for (;;) {
        std::size_t first = 4 * i + 1;
        if (first >= size) break;
        std::size_t best = first;
        std::size_t end = first + 4 < size ? first + 4 : size;
        for (std::size_t c = first + 1; c < end; ++c)
            if (less(heap_[c], heap_[best])) best = c;
        if (!less(heap_[best], n)) break;
        place(i, heap_[best]);
        i = best;
    }
    place(i, n);
}

}  // namespace weft::detail

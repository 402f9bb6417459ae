// 4-ary heap of hub timers, keys inline, timers of one deadline grouped (see timer_heap.hpp).
#include "timer_heap.hpp"

namespace weft::detail {

void TimerHeap::add(TimerNode* n) {
    ++count_;
    for (TimerNode* first : recent_) {
        if (first && first->when_ns == n->when_ns) {
            // Join the group at its end (the ring's first node's prev).
            TimerNode* last = first->prev;
            n->prev = last;
            n->next = first;
            last->next = n;
            first->prev = n;
            n->index = TimerNode::kInGroup;
            return;
        }
    }
    n->next = n->prev = n;
    try {
        heap_.push_back(Entry{n->when_ns, next_seq_++, n});
    } catch (...) {
        --count_;
        throw;
    }
    n->index = heap_.size() - 1;
    sift_up(n->index);
    recent_[next_recent_] = n;
    next_recent_ = (next_recent_ + 1) % kRecent;
}

void TimerHeap::remove(TimerNode* n) noexcept {
    if (!n->armed()) return;
    --count_;
    if (n->index == TimerNode::kInGroup) {
        n->prev->next = n->next;
        n->next->prev = n->prev;
        n->index = TimerNode::kNotArmed;
        return;
    }
    remove_first(n, n->index);
}

void TimerHeap::remove_first(TimerNode* n, std::size_t i) noexcept {
    n->index = TimerNode::kNotArmed;
    if (n->next != n) {
        // The next of its group takes its place: same deadline, same order among groups.
        TimerNode* next = n->next;
        n->prev->next = next;
        next->prev = n->prev;
        heap_[i].node = next;
        next->index = i;
        forget(n, next);
        return;
    }
    forget(n, nullptr);
    remove_slot(i);
}

void TimerHeap::remove_slot(std::size_t i) noexcept {
    const Entry last = heap_.back();
    heap_.pop_back();
    if (i == heap_.size()) return;
    place(i, last);
    if (i > 0 && less(last, heap_[(i - 1) / 4]))
        sift_up(i);
    else
        sift_down(i);
}

std::size_t TimerHeap::fire_due(std::int64_t now_ns) {
    std::size_t fired = 0;
    while (!heap_.empty() && heap_[0].when_ns <= now_ns) {
        TimerNode* n = heap_[0].node;
        --count_;
        remove_first(n, 0);
        ++fired;
        n->fire(n);
    }
    return fired;
}

void TimerHeap::sift_up(std::size_t i) noexcept {
    const Entry e = heap_[i];
    while (i > 0) {
        const std::size_t parent = (i - 1) / 4;
        if (!less(e, heap_[parent])) break;
        place(i, heap_[parent]);
        i = parent;
    }
    place(i, e);
}

void TimerHeap::sift_down(std::size_t i) noexcept {
    const Entry e = heap_[i];
    const std::size_t size = heap_.size();
    for (;;) {
        const std::size_t first = 4 * i + 1;
        if (first >= size) break;
        std::size_t best = first;
        const std::size_t end = first + 4 < size ? first + 4 : size;
        for (std::size_t c = first + 1; c < end; ++c)
            if (less(heap_[c], heap_[best])) best = c;
        if (!less(heap_[best], e)) break;
        place(i, heap_[best]);
        i = best;
    }
    place(i, e);
}

}  // namespace weft::detail

// StackPool: per-hub cache of fiber stacks. Each stack is its own anonymous mapping with a guard
// page at the low end: MADV_GUARD_INSTALL where the kernel has it (no extra VMA), mprotect
// otherwise. Reusing stacks keeps spawn cheap: their pages are already faulted in.
#pragma once

#include <cstddef>
#include <vector>

namespace weft::detail {

struct Stack {
    char* base = nullptr;    ///< start of the mapping (the guard page)
    std::size_t mapped = 0;  ///< guard + usable size
    char* lo() const noexcept { return base + guard_size(); }
    char* hi() const noexcept { return base + mapped; }
    std::size_t usable() const noexcept { return mapped - guard_size(); }
    static std::size_t guard_size() noexcept;
};

class StackPool {
  public:
    StackPool(std::size_t usable_size, std::size_t max_cached);
    ~StackPool();
    StackPool(const StackPool&) = delete;
    StackPool& operator=(const StackPool&) = delete;

    /// A stack of usable_size() bytes; throws std::bad_alloc when the kernel refuses memory.
    Stack allocate();
    void release(Stack s) noexcept;
    std::size_t usable_size() const noexcept { return usable_; }
    std::size_t cached() const noexcept { return free_.size(); }
    /// "madvise(MADV_GUARD_INSTALL)" or "mprotect".
    static const char* guard_method() noexcept;

  private:
    std::size_t usable_;
    std::size_t max_cached_;
    std::vector<Stack> free_;
};

}  // namespace weft::detail

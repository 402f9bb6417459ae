// Fiber stack allocation: mmap'd stacks with a guard page each, cached per hub.
#include "stack_pool.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <new>

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102  // Linux >= 6.13; older kernels answer EINVAL
#endif

namespace weft::detail {

namespace {
std::size_t page_size() noexcept {
    static const std::size_t ps = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    return ps;
}
// -1 unknown, 1 MADV_GUARD_INSTALL works, 0 use mprotect. Decided once per process.
std::atomic<int> g_guard_madvise{-1};

bool install_guard(char* base) noexcept {
    int mode = g_guard_madvise.load(std::memory_order_relaxed);
    if (mode != 0) {
        if (::madvise(base, page_size(), MADV_GUARD_INSTALL) == 0) {
            g_guard_madvise.store(1, std::memory_order_relaxed);
            return true;
        }
        if (mode == 1) return false;
        g_guard_madvise.store(0, std::memory_order_relaxed);
    }
    return ::mprotect(base, page_size(), PROT_NONE) == 0;
}
}  // namespace

std::size_t Stack::guard_size() noexcept {
    return page_size();
}

const char* StackPool::guard_method() noexcept {
    return g_guard_madvise.load(std::memory_order_relaxed) == 0 ? "mprotect"
                                                                : "madvise(MADV_GUARD_INSTALL)";
}

StackPool::StackPool(std::size_t usable_size, std::size_t max_cached)
    : usable_((usable_size + page_size() - 1) / page_size() * page_size()),
      max_cached_(max_cached) {
    free_.reserve(max_cached_ < 4096 ? max_cached_ : 4096);
}

StackPool::~StackPool() {
    for (auto& s : free_)
        ::munmap(s.base, s.mapped);
}

Stack StackPool::allocate() {
    if (!free_.empty()) {
        Stack s = free_.back();
        free_.pop_back();
        return s;
    }
    std::size_t mapped = usable_ + page_size();
    void* p = ::mmap(nullptr, mapped, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    Stack s{static_cast<char*>(p), mapped};
    if (!install_guard(s.base)) {
        ::munmap(p, mapped);
        throw std::bad_alloc();
    }
    return s;
}

void StackPool::release(Stack s) noexcept {
    if (free_.size() < max_cached_) {
        free_.push_back(s);
        return;
    }
    ::munmap(s.base, s.mapped);
}

}  // namespace weft::detail

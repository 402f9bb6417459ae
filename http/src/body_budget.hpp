// BodyBudget: the bytes of request bodies that all connections of one server may hold in memory
// at once (max_buffered_body_bytes). The parsers take from it as a body's storage grows, the
// sessions give back when the body is freed; every hub shares it (one atomic).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace weft::http::detail {

class BodyBudget {
  public:
    /// `limit` 0: no limit. `used` is where the bytes in use are published (a metric), `peak`
    /// where the most of them is raised.
    BodyBudget(std::size_t limit, std::atomic<std::size_t>& used,
               std::atomic<std::size_t>& peak) noexcept
        : limit_(limit ? limit : SIZE_MAX), used_(used), peak_(peak) {}
    BodyBudget(const BodyBudget&) = delete;
    BodyBudget& operator=(const BodyBudget&) = delete;

    /// Takes `n` bytes, or nothing (false) when that would go beyond the limit.
    bool take(std::size_t n) noexcept {
        std::size_t cur = used_.load(std::memory_order_relaxed);
        do {
            if (n > limit_ - cur) return false;
        } while (!used_.compare_exchange_weak(cur, cur + n, std::memory_order_relaxed));
        std::size_t peak = peak_.load(std::memory_order_relaxed);
        while (cur + n > peak &&
               !peak_.compare_exchange_weak(peak, cur + n, std::memory_order_relaxed)) {
        }
        return true;
    }
    void give_back(std::size_t n) noexcept {
        if (n) used_.fetch_sub(n, std::memory_order_relaxed);
    }
    std::size_t used() const noexcept { return used_.load(std::memory_order_relaxed); }
    /// Whether `n` more bytes would fit now (nothing taken).
    bool has_room(std::size_t n) const noexcept { return n <= limit_ - std::min(used(), limit_); }
    /// The most it can ever lend (SIZE_MAX: no limit).
    std::size_t limit() const noexcept { return limit_; }

  private:
    const std::size_t limit_;
    std::atomic<std::size_t>& used_;
    std::atomic<std::size_t>& peak_;
};

}  // namespace weft::http::detail

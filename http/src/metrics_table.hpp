// HubRequestMetrics: one hub's request metrics. The hub is the only writer (plain relaxed
// stores, no read-modify-write); readers on any thread see series through an append-only table
// published with release/acquire.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "weft/core/internal/hub_probe.hpp"
#include "weft/http/method.hpp"

namespace weft::http::detail {

class HubRequestMetrics {
  public:
    static constexpr std::size_t kBlock = 64;
    static constexpr std::size_t kMaxBlocks = 64;  // 4096 series per hub at most

    struct Series {
        Method method = Method::other;
        int status = 0;
        std::string route;
        LatencyHistogram duration;
    };

    HubRequestMetrics() = default;
    ~HubRequestMetrics();
    HubRequestMetrics(const HubRequestMetrics&) = delete;
    HubRequestMetrics& operator=(const HubRequestMetrics&) = delete;

    /// Records one request. Hub thread only.
    void observe(Method m, int status, unsigned route_id, std::string_view route,
                 std::int64_t ns) noexcept;
    /// Moves the active-requests gauge of `m` by `d`. Hub thread only.
    void active_add(Method m, int d) noexcept {
        auto& a = active_[static_cast<unsigned>(m)];
        a.store(a.load(std::memory_order_relaxed) + d, std::memory_order_relaxed);
    }

    // Readers, any thread.
    template <class F>
    void for_each(F&& fn) const {
        std::uint32_t n = count_.load(std::memory_order_acquire);
        for (std::uint32_t i = 0; i < n; ++i) {
            const Series* block = blocks_[i / kBlock].load(std::memory_order_acquire);
            fn(block[i % kBlock]);
        }
    }
    std::int64_t active(Method m) const noexcept {
        return active_[static_cast<unsigned>(m)].load(std::memory_order_relaxed);
    }
    std::uint64_t dropped() const noexcept { return dropped_.load(std::memory_order_relaxed); }

    /// A request whose deadline passed before its handler answered (504), and one whose client
    /// hung up while its handler waited (the handler was cancelled). Hub thread only.
    void count_timed_out() noexcept { bump(timed_out_); }
    /// WebSockets open on this hub, and the messages they carried. Hub thread only.
    void websocket_add(int d) noexcept {
        websockets_.store(websockets_.load(std::memory_order_relaxed) + d,
                          std::memory_order_relaxed);
    }
    void websocket_messages(std::uint64_t in, std::uint64_t out) noexcept {
        ws_in_.store(ws_in_.load(std::memory_order_relaxed) + in, std::memory_order_relaxed);
        ws_out_.store(ws_out_.load(std::memory_order_relaxed) + out, std::memory_order_relaxed);
    }
    std::int64_t websockets() const noexcept { return websockets_.load(std::memory_order_relaxed); }
    std::uint64_t websocket_in() const noexcept { return ws_in_.load(std::memory_order_relaxed); }
    std::uint64_t websocket_out() const noexcept { return ws_out_.load(std::memory_order_relaxed); }
    void count_abandoned() noexcept { bump(abandoned_); }
    std::uint64_t timed_out() const noexcept { return timed_out_.load(std::memory_order_relaxed); }
    std::uint64_t abandoned() const noexcept { return abandoned_.load(std::memory_order_relaxed); }

  private:
    Series* find_or_add(std::uint64_t key, Method m, int status, std::string_view route);

    std::array<std::atomic<Series*>, kMaxBlocks> blocks_{};
    std::atomic<std::uint32_t> count_{0};
    std::array<std::atomic<std::int64_t>, kMethodCount> active_{};
    std::atomic<std::uint64_t> dropped_{0};
    std::atomic<std::uint64_t> timed_out_{0};
    std::atomic<std::int64_t> websockets_{0};
    std::atomic<std::uint64_t> ws_in_{0};
    std::atomic<std::uint64_t> ws_out_{0};
    std::atomic<std::uint64_t> abandoned_{0};
    static void bump(std::atomic<std::uint64_t>& a) noexcept {
        a.store(a.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    }

    // Writer-only index: open addressing on the packed key (0 = empty slot).
    std::vector<std::uint64_t> keys_;
    std::vector<Series*> values_;
    std::uint64_t last_key_ = 0;
    Series* last_ = nullptr;
};

}  // namespace weft::http::detail

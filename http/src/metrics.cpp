// Request metrics: the per-hub series tables and their thread-safe read side.
#include "weft/http/metrics.hpp"

#include <new>

#include "metrics_table.hpp"

namespace weft::http {

namespace detail {

HubRequestMetrics::~HubRequestMetrics() {
    for (auto& b : blocks_)
        delete[] b.load(std::memory_order_relaxed);
}

namespace {
std::uint64_t mix(std::uint64_t k) noexcept {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return k;
}
}  // namespace

HubRequestMetrics::Series* HubRequestMetrics::find_or_add(std::uint64_t key, Method m, int status,
                                                          std::string_view route) {
    if (!keys_.empty()) {
        std::size_t mask = keys_.size() - 1;
        for (std::size_t i = mix(key) & mask;; i = (i + 1) & mask) {
            if (keys_[i] == key) return values_[i];
            if (keys_[i] == 0) break;
        }
    }
    std::uint32_t n = count_.load(std::memory_order_relaxed);
    if (n >= kBlock * kMaxBlocks) return nullptr;
    Series* block = blocks_[n / kBlock].load(std::memory_order_relaxed);
    if (!block) {
        block = new Series[kBlock];
        blocks_[n / kBlock].store(block, std::memory_order_release);
    }
    Series* s = &block[n % kBlock];
    s->method = m;
    s->status = status;
    s->route.assign(route);
    count_.store(n + 1, std::memory_order_release);  // publishes the series to readers

    if ((n + 1) * 2 > keys_.size()) {  // keep the index at most half full
        std::vector<std::uint64_t> old_keys = std::move(keys_);
        std::vector<Series*> old_values = std::move(values_);
        std::size_t cap = old_keys.empty() ? 64 : old_keys.size() * 2;
        keys_.assign(cap, 0);
        values_.assign(cap, nullptr);
        for (std::size_t i = 0; i < old_keys.size(); ++i) {
            if (old_keys[i] == 0) continue;
            std::size_t j = mix(old_keys[i]) & (cap - 1);
            while (keys_[j] != 0)
                j = (j + 1) & (cap - 1);
            keys_[j] = old_keys[i];
            values_[j] = old_values[i];
        }
    }
    std::size_t mask = keys_.size() - 1;
    std::size_t j = mix(key) & mask;
    while (keys_[j] != 0)
        j = (j + 1) & mask;
    keys_[j] = key;
    values_[j] = s;
    return s;
}

void HubRequestMetrics::observe(Method m, int status, unsigned route_id, std::string_view route,
                                std::int64_t ns) noexcept {
    std::uint64_t key = (std::uint64_t(route_id) << 24) |
                        (std::uint64_t(static_cast<unsigned>(m) + 1) << 16) |
                        std::uint64_t(status & 0xffff);
    Series* s = last_key_ == key ? last_ : nullptr;
    if (!s) {
        try {
            s = find_or_add(key, m, status, route);
        } catch (const std::bad_alloc&) {
            s = nullptr;
        }
        if (!s) {
            dropped_.store(dropped_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
            return;
        }
        last_key_ = key;
        last_ = s;
    }
    s->duration.observe(ns);
}

}  // namespace detail

RequestMetrics::RequestMetrics(unsigned hubs) {
    for (unsigned i = 0; i < hubs; ++i)
        hubs_.push_back(std::make_unique<detail::HubRequestMetrics>());
}

RequestMetrics::~RequestMetrics() = default;

void RequestMetrics::for_each_series(const std::function<void(const RequestSeries&)>& fn) const {
    for (unsigned h = 0; h < hubs_.size(); ++h) {
        hubs_[h]->for_each([&](const detail::HubRequestMetrics::Series& s) {
            fn(RequestSeries{h, method_label(s.method), s.status, s.route, &s.duration});
        });
    }
}

void RequestMetrics::for_each_active(
    const std::function<void(unsigned, std::string_view, std::int64_t)>& fn) const {
    for (unsigned h = 0; h < hubs_.size(); ++h)
        for (int m = 0; m < kMethodCount; ++m)
            fn(h, method_label(static_cast<Method>(m)), hubs_[h]->active(static_cast<Method>(m)));
}

std::uint64_t RequestMetrics::dropped() const noexcept {
    std::uint64_t n = 0;
    for (auto& h : hubs_)
        n += h->dropped();
    return n;
}

void RequestMetrics::for_each_outcome(
    const std::function<void(unsigned, std::uint64_t, std::uint64_t)>& fn) const {
    for (unsigned i = 0; i < hubs_.size(); ++i)
        fn(i, hubs_[i]->timed_out(), hubs_[i]->abandoned());
}

RequestMetrics::WebSocketTotals RequestMetrics::websockets() const noexcept {
    WebSocketTotals t;
    for (const auto& h : hubs_) {
        t.open += h->websockets();
        t.messages_in += h->websocket_in();
        t.messages_out += h->websocket_out();
    }
    return t;
}

}  // namespace weft::http

// The ring of recent events behind the debug page's streams.
#include "live_feed.hpp"

#include <algorithm>

namespace weft::server {

void LiveFeed::publish(std::string name, std::string data) {
    std::lock_guard<std::mutex> g(mu_);
    events_.push_back({++seq_, std::move(name), std::move(data)});
    while (events_.size() > capacity_)
        events_.pop_front();
}

std::vector<LiveFeed::Event> LiveFeed::after(std::uint64_t seq, std::size_t max) const {
    std::lock_guard<std::mutex> g(mu_);
    auto it =
        std::find_if(events_.begin(), events_.end(), [seq](const Event& e) { return e.seq > seq; });
    const auto n = static_cast<std::size_t>(events_.end() - it);
    if (n > max) it += static_cast<std::ptrdiff_t>(n - max);
    return {it, events_.end()};
}

std::uint64_t LiveFeed::last() const {
    std::lock_guard<std::mutex> g(mu_);
    return seq_;
}

}  // namespace weft::server

// LiveFeed: the recent events the debug page's streams (/debug/events) push to browsers —
// blocking reports and their closing records as they arrive — numbered so that each stream
// sends every event once. Written by the watchdog's reporter thread, read by admin fibers.
#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

namespace weft::server {

class LiveFeed {
  public:
    struct Event {
        std::uint64_t seq = 0;  ///< 1, 2, ...
        std::string name;       ///< the SSE event name: "report", "end"
        std::string data;       ///< one line of JSON
    };
    explicit LiveFeed(std::size_t capacity = 256) : capacity_(capacity) {}

    /// Adds an event; the oldest goes when the feed is full. Thread-safe.
    void publish(std::string name, std::string data);
    /// The events after `seq` still kept, oldest first, at most `max` (the newest ones).
    std::vector<Event> after(std::uint64_t seq, std::size_t max = 256) const;
    /// The number of the newest event (0 before any).
    std::uint64_t last() const;

  private:
    const std::size_t capacity_;
    mutable std::mutex mu_;
    std::deque<Event> events_;
    std::uint64_t seq_ = 0;
};

}  // namespace weft::server

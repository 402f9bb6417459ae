// Shared helpers of the monitor tests: a subscriber that records reports and closing records and
// lets a test wait for them, and a way to run a fiber on a given hub of a Runtime.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "weft/core/weft.hpp"
#include "weft/monitor/watchdog.hpp"

namespace weft::monitor::test {

class Recorder {
  public:
    explicit Recorder(Watchdog& wd)
        : blocked_(wd.on_blocked([this](const BlockingReport& r) {
              std::lock_guard<std::mutex> g(mu_);
              reports_.push_back(r);
              report_ns_.push_back(weft::now_ns());
              cv_.notify_all();
          })),
          unblocked_(wd.on_unblocked([this](const BlockingEnd& e) {
              std::lock_guard<std::mutex> g(mu_);
              ends_.push_back(e);
              cv_.notify_all();
          })) {}

    /// Waits until at least `n` closing records arrived (false on timeout).
    bool wait_ends(std::size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
        std::unique_lock<std::mutex> g(mu_);
        return cv_.wait_for(g, timeout, [&] { return ends_.size() >= n; });
    }
    bool wait_reports(std::size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
        std::unique_lock<std::mutex> g(mu_);
        return cv_.wait_for(g, timeout, [&] { return reports_.size() >= n; });
    }
    std::vector<BlockingReport> reports() {
        std::lock_guard<std::mutex> g(mu_);
        return reports_;
    }
    std::vector<BlockingEnd> ends() {
        std::lock_guard<std::mutex> g(mu_);
        return ends_;
    }
    /// The reports of the fiber `name`, in order. Every other report must be of the hub's own
    /// loop (fiber 0, never allowed): on a loaded machine (TSan, ctest -j2) starting a fiber may
    /// hold the loop past the threshold, a real blockage a test does not count on. A report of
    /// any other fiber fails the test.
    std::vector<BlockingReport> reports_of(const std::string& name) {
        std::vector<BlockingReport> out;
        for (auto& r : reports()) {
            if (r.fiber_name == name) {
                out.push_back(std::move(r));
                continue;
            }
            EXPECT_EQ(r.fiber_id, 0u) << "a report of fiber \"" << r.fiber_name << "\"";
            EXPECT_FALSE(r.allowed) << "an allowed report of the hub's loop";
        }
        return out;
    }
    /// The sum of the closing records' durations of reports that are not the fiber `name`'s:
    /// the hub's loop's (see reports_of), which a hub's blocking seconds include.
    double seconds_not_of(const std::string& name) {
        std::lock_guard<std::mutex> g(mu_);
        double s = 0;
        for (const auto& e : ends_)
            if (e.fiber_name != name) s += e.duration_s;
        return s;
    }
    /// Waits until `n` reports of the fiber `name` came and every report has its closing
    /// record (false on timeout).
    bool wait_closed_reports_of(const std::string& name, std::size_t n = 1,
                                std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
        std::unique_lock<std::mutex> g(mu_);
        return cv_.wait_for(g, timeout, [&] {
            std::size_t of = 0;
            for (const auto& r : reports_)
                of += r.fiber_name == name ? 1 : 0;
            return of >= n && ends_.size() == reports_.size();
        });
    }
    /// When each report reached the recorder (weft::now_ns), in the order of reports(): later
    /// than the report was made, however late the watchdog or the reporter ran.
    std::vector<std::int64_t> report_times_ns() {
        std::lock_guard<std::mutex> g(mu_);
        return report_ns_;
    }

  private:
    std::mutex mu_;
    std::condition_variable cv_;
    std::vector<BlockingReport> reports_;
    std::vector<std::int64_t> report_ns_;
    std::vector<BlockingEnd> ends_;
    Subscription blocked_;
    Subscription unblocked_;
};

/// Spawns `fn` as a fiber named `name` on hub `i` of `rt`; returns at once.
template <class F>
void spawn_on_hub(Runtime& rt, unsigned i, std::string name, F fn) {
    rt.hub(i).post([name = std::move(name), fn = std::move(fn)]() mutable {
        spawn(name, std::move(fn)).detach();
    });
}

inline RuntimeOptions runtime_options(unsigned hubs) {
    RuntimeOptions o;
    o.hubs = hubs;
    o.name = "mt";
    return o;
}

inline bool stack_has(const BlockingReport& r, const std::string& fn) {
    for (const auto& f : r.stack)
        if (f.function.find(fn) != std::string::npos) return true;
    return false;
}

inline std::string stack_text(const BlockingReport& r) {
    std::string s = r.stack_note + "\n";
    for (const auto& f : r.stack)
        s += "  " + (f.function.empty() ? std::string("??") : f.function) + " (" + f.module + ")\n";
    return s;
}

}  // namespace weft::monitor::test

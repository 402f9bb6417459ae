// The subscriber sink: Watchdog::on_blocked / on_unblocked callbacks (gevent's EventLoopBlocked),
// which is also how plugins hear of blockages.
#pragma once

#include <spdlog/logger.h>

#include <functional>
#include <memory>

#include "report_sink.hpp"
#include "subscriber_list.hpp"

namespace weft::monitor::detail {

/// Hands each report to the on_blocked subscribers and each closing record to the on_unblocked
/// ones. A subscriber that throws is logged on `log`; the others still run.
///
/// Threads: subscribe from any thread; the callbacks run on the reporter thread.
class SubscriberSink final : public ReportSink {
  public:
    explicit SubscriberSink(std::shared_ptr<spdlog::logger> log);
    const char* name() const noexcept override { return "subscribers"; }
    void on_report(const BlockingReport& r) override;
    void on_end(const BlockingEnd& e) override;

    /// Each returns the function that unsubscribes (see SubscriberList::add).
    std::function<void()> add_blocked(std::function<void(const BlockingReport&)> fn);
    std::function<void()> add_unblocked(std::function<void(const BlockingEnd&)> fn);

  private:
    std::shared_ptr<spdlog::logger> log_;
    std::shared_ptr<SubscriberList<BlockingReport>> blocked_ =
        std::make_shared<SubscriberList<BlockingReport>>();
    std::shared_ptr<SubscriberList<BlockingEnd>> unblocked_ =
        std::make_shared<SubscriberList<BlockingEnd>>();
};

}  // namespace weft::monitor::detail

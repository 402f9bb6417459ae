// The human-readable sink: each report as gevent-style text on the "weft.monitor" logger (or the
// logger the settings name), and a one-line closing record.
#pragma once

#include <spdlog/logger.h>

#include <memory>

#include "report_sink.hpp"

namespace weft::monitor::detail {

/// Writes reports to a spdlog logger: warnings, except blockages the code allowed
/// (monitor::AllowBlocking), which are information. With `print` false (print_blocking_reports)
/// it writes nothing.
class LogSink final : public ReportSink {
  public:
    LogSink(std::shared_ptr<spdlog::logger> log, bool print);
    const char* name() const noexcept override { return "log"; }
    void on_report(const BlockingReport& r) override;
    void on_end(const BlockingEnd& e) override;

  private:
    std::shared_ptr<spdlog::logger> log_;
    bool print_;
};

}  // namespace weft::monitor::detail

// The log sink: reports as text (report_text.cpp renders them) on a spdlog logger.
#include "log_sink.hpp"

#include <utility>

namespace weft::monitor::detail {

namespace {
// Blocking the code asked for is worth knowing, not a warning.
spdlog::level::level_enum level(bool allowed) {
    return allowed ? spdlog::level::info : spdlog::level::warn;
}
}  // namespace

LogSink::LogSink(std::shared_ptr<spdlog::logger> log, bool print)
    : log_(std::move(log)), print_(print) {}

void LogSink::on_report(const BlockingReport& r) {
    if (print_) log_->log(level(r.allowed), "{}", format_text(r, true));
}

void LogSink::on_end(const BlockingEnd& e) {
    if (print_) log_->log(level(e.allowed), "{}", format_text(e));
}

}  // namespace weft::monitor::detail

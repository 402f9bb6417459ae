// The JSON-lines sink: every report and closing record appended to the reports_file, one JSON
// object a line, flushed at once so that a crash loses nothing already reported.
#pragma once

#include <string>

#include "report_sink.hpp"

namespace weft::monitor::detail {

/// Appends to `path`. A repeated stack is written without its frames (the line names the first
/// report that had them), until the file is rotated. Every line starts with "run": when this
/// process opened the file and its pid, since report ids start at 1 in every run.
class JsonFileSink final : public ReportSink {
  public:
    /// Opens `path` for appending; throws std::system_error naming it when it cannot.
    explicit JsonFileSink(std::string path);
    ~JsonFileSink() override;
    JsonFileSink(const JsonFileSink&) = delete;
    JsonFileSink& operator=(const JsonFileSink&) = delete;

    const char* name() const noexcept override { return "JSON file"; }
    /// Both throw std::system_error when the line cannot be written (a full disk, /dev/full).
    void on_report(const BlockingReport& r) override;
    void on_end(const BlockingEnd& e) override;

  private:
    void write(const std::string& line);
    /// logrotate renames (or removes) the file: once the path no longer leads to the open
    /// file, it is opened again, so that new lines go to the new file and the old one's disk
    /// can be freed.
    void reopen_if_moved() noexcept;

    std::string path_;
    int fd_ = -1;
    bool cut_ = false;        ///< the file ends inside a line (a write failed part way)
    bool reopened_ = false;   ///< the first file was rotated away: stacks are written whole
    std::string run_prefix_;  ///< `{"run":"<when opened>/<pid>",`: ids restart with each run
};

}  // namespace weft::monitor::detail

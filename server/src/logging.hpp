// Logging setup for the server: every logger (weft, weft.monitor, plugin.*) writes to stderr as
// text or as JSON lines (for containers), at the configured level; the optional access log goes
// to its own sink (stdout, stderr or a file).
#pragma once

#include <spdlog/spdlog.h>

#include <chrono>
#include <string>
#include <string_view>

#include "settings.hpp"
#include "weft/config/source.hpp"
#include "weft/core/text.hpp"
#include "weft/http/server_options.hpp"

namespace weft::server {

/// Configures spdlog's default logger and every registered logger.
void setup_logging(const LogOptions& log);
/// Logs `msg` on `logger` at `level`; when the log is JSON lines (log.format = "json"),
/// `fields` (members of a JSON object, without its braces) are added to the line beside "msg",
/// for log collectors to filter on. As text, `fields` is left out.
void log_with_fields(spdlog::logger& logger, spdlog::level::level_enum level, std::string_view msg,
                     std::string_view fields);

/// The access-log callback for the HTTP server, or an empty function when the access log is off.
/// Throws std::runtime_error (naming the file and `source`, where it was configured) when the
/// access log file cannot be opened.
http::AccessLogFn make_access_log(const LogOptions& log, const config::Source& source);
/// An access log file that was renamed or removed since it was opened (logrotate) is opened
/// again under its name. Any thread; cheap (one stat()) when nothing moved.
void reopen_access_log_if_moved();
/// Writes what is queued for the access log and ends its writer (at the end of the shutdown;
/// nothing may log to it afterwards).
void close_access_log();
/// Before an exit that skips the shutdown (std::_Exit): waits up to `within` for the access
/// log's queued lines to be written.
void flush_access_log(std::chrono::milliseconds within) noexcept;
/// Access log lines that could not be written (each one said in the server's log, at most
/// once every 10 s).
std::uint64_t access_log_lines_lost() noexcept;

using weft::json_quote;  // weft/core/text.hpp

}  // namespace weft::server

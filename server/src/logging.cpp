// spdlog sinks and formats: text or JSON lines; the access log.
#include "logging.hpp"

#include <fcntl.h>
#include <poll.h>
#include <spdlog/async_logger.h>
#include <spdlog/details/console_globals.h>
#include <spdlog/details/fmt_helper.h>
#include <spdlog/details/thread_pool.h>
#include <spdlog/formatter.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <ctime>
#include <functional>
#include <mutex>
#include <system_error>
#include <thread>
#include <utility>

#include "weft/core/log.hpp"
#include "weft/core/text.hpp"

namespace weft::server {

namespace {

// Members log_with_fields() adds to the line being formatted (on the logging thread: the
// server's loggers format as they log).
thread_local std::string_view t_fields;

// Writes [p, p + left) to `fd` whole, one line at a time, with the system call itself, not
// libc's write(), which syscall patching may turn into parking a fiber (see
// AccessFileSink::sink_it_). A descriptor left nonblocking (a pipe a container runtime made
// nonblocking) is waited on, as a blocking write would (with libc's poll: this runs on the
// access log's writer thread, never on a fiber). Throws, naming `what`, when the line
// cannot be written (a full disk, a closed pipe): the caller counts it as lost.
void write_line(int fd, const char* p, std::size_t left, const std::string& what) {
    while (left > 0) {
        const ssize_t n = ::syscall(SYS_write, fd, p, left);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            pollfd pf{fd, POLLOUT, 0};
            (void)::poll(&pf, 1, 1000);
            continue;
        }
        if (n <= 0) throw spdlog::spdlog_ex("access log: writing " + what, n < 0 ? errno : EIO);
        p += n;
        left -= static_cast<std::size_t>(n);
    }
}

// Standard error or output, which a reader may stop reading (a log collector that hangs, a
// `| head` that exited without closing): a write to it would block for ever, and with it
// whoever writes (a hub, the main thread handling SIGTERM, the shutdown guard about to exit)
// and whoever waits for its lock. A line waits at most kStreamStall for room; past that the
// stream counts as stalled, and lines are dropped at once (and counted) until it takes one
// again: then a line says how many were lost. The system calls themselves, not libc's poll
// and write, which syscall patching may turn into parking a fiber while the lock is held.
class StreamWriter {
  public:
    explicit StreamWriter(int fd) : fd_(fd) {}
    /// Writes `line` whole, or drops it; `note` formats the "lines lost" notice ("" to leave
    /// it to the stream's next line of another kind). Throws spdlog_ex, saying `what`
    /// ("access log: writing to standard output"), when the stream fails (a closed pipe) or
    /// is stalled.
    void write(const char* p, std::size_t n, const std::string& what,
               const std::function<std::string(std::uint64_t)>& note) {
        // One lock for both streams: with `2>&1` they are one pipe, where an access line and
        // a log line must not interleave, however long.
        std::lock_guard<std::mutex> g(lock());
        if ((dropped_ > 0 || torn_) && room(0)) {
            // A line cut short by the stall is ended, so that the next one starts a line.
            std::string said = torn_ ? "\n" : "";
            if (dropped_ > 0) {
                const std::string lost = note(dropped_);
                if (!lost.empty()) dropped_ = 0;
                said += lost;
            }
            torn_ = false;
            (void)put(said.data(), said.size());
        }
        const int err = put(p, n);
        if (err == 0) return;
        if (err == ETIMEDOUT) ++dropped_;
        throw spdlog::spdlog_ex(
            what + (err == ETIMEDOUT ? ": nobody has read it for a while (stalled)" : ""),
            err == ETIMEDOUT ? 0 : err);
    }

  private:
    static constexpr int kStreamStallMs = 1000;
    static std::mutex& lock() {
        static auto* m = new std::mutex();  // never destroyed (see stream_writer())
        return *m;
    }
    bool room(int ms) {
        pollfd pf{fd_, POLLOUT, 0};
        timespec ts{ms / 1000, (ms % 1000) * 1'000'000L};
        for (;;) {
            const long r = ::syscall(SYS_ppoll, &pf, 1, &ts, nullptr, 0);
            if (r < 0 && errno == EINTR) continue;
            return r > 0;
        }
    }
    // 0 when written, ETIMEDOUT when the stream stayed full, else the write's errno. Neither
    // write may block past the wait for room: a socket (journald's stream) is sent to without
    // waiting; a pipe, whose readiness promises a free page, takes at most PIPE_BUF bytes a
    // write (a longer blocking write waits in the kernel for the rest).
    int put(const char* p, std::size_t left) {
        bool wrote = false;
        while (left > 0) {
            if (!room(dropped_ > 0 ? 0 : kStreamStallMs)) {
                torn_ = wrote;
                return ETIMEDOUT;
            }
            ssize_t n = -1;
            if (!not_socket_) {
                n = ::send(fd_, p, left, MSG_DONTWAIT | MSG_NOSIGNAL);
                if (n < 0 && errno == ENOTSOCK) not_socket_ = true;
            }
            if (not_socket_)
                n = ::syscall(SYS_write, fd_, p, std::min<std::size_t>(left, PIPE_BUF));
            if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
            if (n <= 0) {
                torn_ = wrote;
                return n < 0 ? errno : EIO;
            }
            wrote = true;
            p += n;
            left -= static_cast<std::size_t>(n);
        }
        return 0;
    }

    int fd_;
    bool not_socket_ = false;    // send() said ENOTSOCK: write() from then on
    bool torn_ = false;          // the last line went out in part
    std::uint64_t dropped_ = 0;  // lines dropped since the stream stalled
};

StreamWriter& stream_writer(int fd) {
    // Never destroyed: loggers on other threads may write while the process exits.
    static auto* out = new StreamWriter(STDOUT_FILENO);
    static auto* err = new StreamWriter(STDERR_FILENO);
    return fd == STDOUT_FILENO ? *out : *err;
}

// The access log on standard output or standard error: spdlog's own sinks there (fwrite)
// ignore a failed write, so lines lost to a full disk or a closed pipe went uncounted.
class AccessStreamSink final : public spdlog::sinks::base_sink<std::mutex> {
  public:
    AccessStreamSink(int fd, std::string name) : fd_(fd), what_("access log: writing " + name) {}

  protected:
    void sink_it_(const spdlog::details::log_msg& msg) override {
        spdlog::memory_buf_t line;
        formatter_->format(msg, line);
        // The streams' writer takes one line at a time: an access line and a log line never
        // interleave, however long. (Lost lines are counted in weft_access_log_lines_lost_total and
        // said in the server's log, not in the access log itself: a line of another form would
        // break its parsers.)
        stream_writer(fd_).write(line.data(), line.size(), what_,
                                 [](std::uint64_t) { return std::string(); });
    }
    void flush_() override {}  // nothing is buffered

  private:
    int fd_;
    std::string what_;
};

// The server's log on standard error (spdlog's stderr sink would block for ever on a stalled
// one). A line it cannot write is dropped: there is nowhere left to say so but the line that
// follows once the stream moves again.
class ServerLogSink final : public spdlog::sinks::base_sink<std::mutex> {
  protected:
    void sink_it_(const spdlog::details::log_msg& msg) override {
        spdlog::memory_buf_t line;
        formatter_->format(msg, line);
        try {
            stream_writer(STDERR_FILENO)
                .write(line.data(), line.size(), "log: writing to standard error",
                       [this](std::uint64_t n) {
                           const std::string text = "log: " + std::to_string(n) +
                                                    " line(s) lost while standard error was not "
                                                    "being read";
                           spdlog::details::log_msg note("weft", spdlog::level::warn, text);
                           spdlog::memory_buf_t out;
                           // The notice is no blocking report, whatever line it goes before.
                           const std::string_view fields = std::exchange(t_fields, {});
                           formatter_->format(note, out);
                           t_fields = fields;
                           return std::string(out.data(), out.size());
                       });
        } catch (const spdlog::spdlog_ex&) {
            // Dropped (and counted for the notice above).
        }
    }
    void flush_() override {}  // nothing is buffered
};

// The access log's file. A file that was renamed or removed (logrotate without copytruncate)
// is reopened under its name by reopen_if_moved(), which the main loop calls once a second and
// at SIGHUP: lines go on to the rotated file until then, and none is lost.
class AccessFileSink final : public spdlog::sinks::base_sink<std::mutex> {
  public:
    explicit AccessFileSink(std::string path) : path_(std::move(path)) {
        fd_ = open_file();
        if (fd_ < 0) throw std::system_error(errno, std::generic_category());
        remember();
    }
    ~AccessFileSink() override { ::close(fd_); }

    // Main thread only (dev_ and ino_ change nowhere else). The writer thread may hold the lock
    // for as long as a write blocks (a stalled disk): then this waits for the next call, and the
    // main loop goes on handling signals.
    void reopen_if_moved() {
        struct stat st {};
        if (::stat(path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_) return;
        std::unique_lock<std::mutex> lock(mutex_, std::try_to_lock);
        if (!lock.owns_lock()) return;
        const int fd = open_file();
        if (fd < 0) {
            if (!warned_)
                weft::logger()->error(
                    "access log: cannot reopen '{}' ({}); lines go on to the "
                    "file open before",
                    path_, std::strerror(errno));
            warned_ = true;
            return;
        }
        ::close(fd_);
        fd_ = fd;
        warned_ = false;
        remember();
    }

  protected:
    void sink_it_(const spdlog::details::log_msg& msg) override {
        spdlog::memory_buf_t line;
        formatter_->format(msg, line);
        // One write() per line (O_APPEND: whole lines, whoever else appends). The system call
        // itself, not libc's write(), which syscall patching may turn into parking the fiber
        // (a pipe that is full): this runs under the sink's lock, which the next line's fiber
        // on this hub would then wait for on the hub's thread, for ever.
        write_line(fd_, line.data(), line.size(), path_);
    }
    void flush_() override {}  // nothing is buffered

  private:
    // Its directory must exist (as nginx's): a mistyped path is refused at startup, rather
    // than making a stray tree of directories.
    int open_file() const {
        return ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
    }
    void remember() {
        struct stat st {};
        if (::fstat(fd_, &st) == 0) {
            dev_ = st.st_dev;
            ino_ = st.st_ino;
        }
    }

    std::string path_;
    int fd_ = -1;
    dev_t dev_ = 0;
    ino_t ino_ = 0;
    bool warned_ = false;
};

// The access log's writer: one thread takes the lines the hubs queue and writes them, so that a
// hub never waits for the disk (or for another hub's line) and a slow disk delays no request.
// The queue holds this many lines (made up front, a few hundred bytes each); a hub waits only
// when it is full (a file's disk has stalled for that long: lines to a file are never dropped;
// on a stream nobody reads they are, see StreamWriter).
constexpr std::size_t kAccessQueue = 8 * 1024;
// Held where no static destructor reaches it: only close_access_log() ends the writer. A child
// forked by a plugin has a copy of the pointer but no writer thread, and its exit must not
// wait to join one.
std::shared_ptr<spdlog::details::thread_pool>& access_writer() {
    static auto* writer = new std::shared_ptr<spdlog::details::thread_pool>();
    return *writer;
}

// Lines handed to the access log's queue, and lines its writer has written (or failed to): an
// exit that skips the shutdown waits until they are equal. Counters, not the queue's length:
// the writer takes a line off the queue before it writes it.
std::atomic<std::uint64_t> g_access_queued{0};
std::atomic<std::uint64_t> g_access_done{0};
// Lines the writer could not write (a full disk, a closed pipe).
std::atomic<std::uint64_t> g_access_lost{0};

// The access log's sink as the writer sees it: the real one, counted.
class CountedSink final : public spdlog::sinks::sink {
  public:
    explicit CountedSink(spdlog::sink_ptr inner) : inner_(std::move(inner)) {}
    void log(const spdlog::details::log_msg& msg) override {
        struct Done {
            ~Done() { g_access_done.fetch_add(1, std::memory_order_release); }
        } done;
        try {
            inner_->log(msg);
        } catch (const std::exception& e) {
            // Said in the server's log, in its format (spdlog's own handler wrote a raw line
            // to stderr, even under --log-format json), at most once every 10 s, with a count.
            const std::uint64_t lost = g_access_lost.fetch_add(1, std::memory_order_relaxed) + 1;
            const auto now = std::chrono::steady_clock::now();
            if (now - said_at_ >= std::chrono::seconds(10) || lost == 1) {
                said_at_ = now;
                weft::logger()->error(
                    "access log: a line could not be written ({} lost so far, "
                    "weft_access_log_lines_lost_total): {}",
                    lost, e.what());
            }
        }
    }
    void flush() override { inner_->flush(); }
    void set_pattern(const std::string& pattern) override { inner_->set_pattern(pattern); }
    void set_formatter(std::unique_ptr<spdlog::formatter> f) override {
        inner_->set_formatter(std::move(f));
    }
    const spdlog::sink_ptr& inner() const noexcept { return inner_; }

  private:
    spdlog::sink_ptr inner_;
    std::chrono::steady_clock::time_point said_at_{};  // the writer's thread only
};

std::string iso_time(std::chrono::system_clock::time_point tp) {
    auto secs = std::chrono::time_point_cast<std::chrono::seconds>(tp);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(tp - secs).count();
    std::time_t t = std::chrono::system_clock::to_time_t(secs);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03lldZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<long long>(ms));
    return buf;
}

/// nginx's $time_local, "06/Dec/2026:05:38:01 +0000", made once a second per thread.
std::string_view local_time_nginx(std::chrono::system_clock::time_point tp) {
    thread_local std::time_t last = -1;
    thread_local char buf[40];
    const std::time_t t = std::chrono::system_clock::to_time_t(tp);
    if (t != last) {
        std::tm tm{};
        localtime_r(&t, &tm);
        if (std::strftime(buf, sizeof buf, "%d/%b/%Y:%H:%M:%S %z", &tm) == 0) buf[0] = '\0';
        last = t;
    }
    return buf;
}

/// nginx's $remote_addr: the peer's address without its port ("::1" for "[::1]:5678").
std::string_view remote_addr(std::string_view peer) {
    if (!peer.empty() && peer.front() == '[') {
        const auto close = peer.find(']');
        return close == std::string_view::npos ? peer : peer.substr(1, close - 1);
    }
    const auto colon = peer.rfind(':');
    return colon == std::string_view::npos ? peer : peer.substr(0, colon);
}

/// One JSON object per line: {"time":..., "level":..., "logger":..., "msg":..., "thread":...},
/// and the fields of log_with_fields().
class JsonFormatter final : public spdlog::formatter {
  public:
    void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
        std::string line = "{\"time\":\"" + iso_time(msg.time) + "\",\"level\":\"";
        auto lv = spdlog::level::to_string_view(msg.level);
        line.append(lv.data(), lv.size());
        line += "\",\"logger\":";
        line += json_quote(std::string_view(msg.logger_name.data(), msg.logger_name.size()));
        line += ",\"thread\":" + std::to_string(msg.thread_id);
        line += ",\"msg\":";
        line += json_quote(std::string_view(msg.payload.data(), msg.payload.size()));
        if (!t_fields.empty()) {
            line += ',';
            line.append(t_fields.data(), t_fields.size());
        }
        line += "}\n";
        dest.append(line.data(), line.data() + line.size());
    }
    std::unique_ptr<spdlog::formatter> clone() const override {
        return std::make_unique<JsonFormatter>();
    }
};

spdlog::level::level_enum to_spdlog(LogLevel l) {
    switch (l) {
        case LogLevel::trace:
            return spdlog::level::trace;
        case LogLevel::debug:
            return spdlog::level::debug;
        case LogLevel::info:
            return spdlog::level::info;
        case LogLevel::warn:
            return spdlog::level::warn;
        case LogLevel::error:
            return spdlog::level::err;
        case LogLevel::critical:
            return spdlog::level::critical;
        case LogLevel::off:
            return spdlog::level::off;
    }
    return spdlog::level::info;
}

std::unique_ptr<spdlog::formatter> make_formatter(bool json) {
    if (json) return std::make_unique<JsonFormatter>();
    // Local time with its offset from UTC, unambiguous across zones (the JSON log's time is
    // UTC). spdlog reads the offset again every 10 s: lines of the first 10 s after a DST
    // change may carry the old one.
    return std::make_unique<spdlog::pattern_formatter>("[%Y-%m-%d %H:%M:%S.%e %z] [%n] [%l] %v");
}

}  // namespace

void log_with_fields(spdlog::logger& logger, spdlog::level::level_enum level, std::string_view msg,
                     std::string_view fields) {
    struct Reset {
        ~Reset() { t_fields = {}; }
    } reset;
    t_fields = fields;
    logger.log(level, "{}", msg);
}

void setup_logging(const LogOptions& log) {
    const bool json = log.format == LogFormat::json;
    auto sink = std::make_shared<ServerLogSink>();
    sink->set_formatter(make_formatter(json));
    auto def = std::make_shared<spdlog::logger>("weft", sink);
    def->set_level(to_spdlog(log.level));
    // Loggers made before this (by name) get the same sink, format and level.
    spdlog::apply_all([&](const std::shared_ptr<spdlog::logger>& l) {
        if (l->name() == "access") return;
        l->sinks().clear();
        l->sinks().push_back(sink);
        l->set_level(to_spdlog(log.level));
    });
    spdlog::drop("weft");
    spdlog::set_default_logger(def);
    spdlog::flush_on(spdlog::level::warn);
}

http::AccessLogFn make_access_log(const LogOptions& log, const config::Source& source) {
    const auto& target = log.access_log;
    if (target.kind == AccessLogTarget::Kind::off) return {};
    spdlog::sink_ptr sink;
    if (target.kind == AccessLogTarget::Kind::to_stdout) {
        sink = std::make_shared<AccessStreamSink>(STDOUT_FILENO, "to standard output");
    } else if (target.kind == AccessLogTarget::Kind::to_stderr) {
        sink = std::make_shared<AccessStreamSink>(STDERR_FILENO, "to standard error");
    } else {
        try {
            sink = std::make_shared<AccessFileSink>(target.path);
        } catch (const std::exception& e) {
            throw std::runtime_error("[log] access_log: cannot open '" + target.path + "' (" +
                                     source.to_string() + "): " + e.what());
        }
    }
    sink->set_formatter(std::make_unique<spdlog::pattern_formatter>("%v"));
    close_access_log();  // one made before (the configuration check makes one)
    access_writer() = std::make_shared<spdlog::details::thread_pool>(kAccessQueue, 1);
    auto logger = std::make_shared<spdlog::async_logger>(
        "access", std::make_shared<CountedSink>(sink), access_writer(),
        spdlog::async_overflow_policy::block);
    logger->set_level(spdlog::level::info);
    logger->flush_on(spdlog::level::info);
    spdlog::drop("access");
    spdlog::register_logger(logger);
    const bool json = log.format == LogFormat::json;
    return [logger, json](const http::AccessLogEntry& e) {
        g_access_queued.fetch_add(1, std::memory_order_relaxed);
        double secs = std::chrono::duration<double>(e.duration).count();
        if (json) {
            std::string line =
                "{\"time\":\"" + iso_time(std::chrono::system_clock::now()) +
                "\",\"peer\":" + json_quote(e.peer_text) + ",\"method\":" + json_quote(e.method) +
                ",\"target\":" + json_quote(e.target) +
                // A request refused before its line was read has none (see request_line).
                (e.method.empty()
                     ? std::string()
                     : ",\"protocol\":\"HTTP/1." + std::to_string(e.version_minor) + "\"") +
                ",\"route\":" + json_quote(e.route) + ",\"status\":" + std::to_string(e.status) +
                ",\"bytes\":" + std::to_string(e.bytes) +
                ",\"duration_seconds\":" + std::to_string(secs) +
                ",\"hub\":" + std::to_string(e.hub) +
                ",\"complete\":" + (e.complete ? "true" : "false") +
                ",\"referer\":" + json_quote(e.referer) +
                ",\"user_agent\":" + json_quote(e.user_agent);
            if (!e.request_line.empty()) line += ",\"request_line\":" + json_quote(e.request_line);
            line += "}";
            logger->info(line);
        } else {
            // nginx's combined format ($remote_addr - $remote_user [$time_local] "$request"
            // $status $body_bytes_sent "$http_referer" "$http_user_agent"), then the duration
            // ($request_time), route and hub; what a client sent is escaped, "-" for none. A
            // request refused by the server shows its line as it came (nginx's $request).
            std::string request_buf, referer_buf, agent_buf, route_buf;
            std::string_view request;
            if (!e.request_line.empty() || e.method.empty()) {
                request = e.request_line.empty() ? std::string_view("-")
                                                 : weft::escaped_ascii(e.request_line, request_buf);
            } else {
                std::string target_buf;
                request_buf = std::string(e.method) + " " +
                              std::string(weft::escaped_ascii(e.target, target_buf)) + " HTTP/1." +
                              std::to_string(e.version_minor);
                request = request_buf;
            }
            const auto or_dash = [](std::string_view v, std::string& buf) {
                return v.empty() ? std::string_view("-") : weft::escaped_ascii(v, buf);
            };
            logger->info("{} - - [{}] \"{}\" {} {} \"{}\" \"{}\" {:.6f} route=\"{}\" hub={}{}",
                         remote_addr(e.peer_text),
                         local_time_nginx(std::chrono::system_clock::now()), request, e.status,
                         e.bytes, or_dash(e.referer, referer_buf), or_dash(e.user_agent, agent_buf),
                         secs, weft::escaped_ascii(e.route, route_buf), e.hub,
                         e.complete ? "" : " incomplete");
        }
    };
}

void close_access_log() {
    spdlog::drop("access");
    // Its destructor writes the lines still queued, then ends the writer's thread.
    access_writer().reset();
}

std::uint64_t access_log_lines_lost() noexcept {
    return g_access_lost.load(std::memory_order_relaxed);
}

void flush_access_log(std::chrono::milliseconds within) noexcept {
    // Only counters are read here (this runs on the shutdown guard's thread, beside the main
    // thread that may be closing the log).
    const auto until = std::chrono::steady_clock::now() + within;
    while (g_access_done.load(std::memory_order_acquire) <
               g_access_queued.load(std::memory_order_relaxed) &&
           std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

void reopen_access_log_if_moved() {
    auto logger = spdlog::get("access");
    if (!logger) return;
    for (const auto& sink : logger->sinks())
        if (auto* c = dynamic_cast<CountedSink*>(sink.get()))
            if (auto* f = dynamic_cast<AccessFileSink*>(c->inner().get())) f->reopen_if_moved();
}

}  // namespace weft::server

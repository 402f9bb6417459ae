// The weft server's configuration keys: for each, its section and name, the member of Settings it
// sets, its kind with the allowed range, its flag and extra variables, and a one-line doc. Adding
// a setting is a member in its owner's options struct, a line here, and its use.
#include "settings.hpp"

#include "admin.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <limits>
#include <optional>

#include <fmt/format.h>

#include "weft/core/text.hpp"

namespace weft::server {
namespace {

using config::Duration;
using config::kKiB;
using config::kMiB;
using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr Duration kDay = hours(24);
constexpr auto kNoLimit = std::numeric_limits<std::uint64_t>::max();
constexpr auto kMaxInt = std::numeric_limits<std::int64_t>::max();

constexpr std::string_view kBackends[] = {"auto", "io_uring", "epoll"};
// Indexed by the enum's value: the runtime's order, and its names (weft::backend_name).
static_assert(static_cast<int>(Backend::automatic) == 0 &&
              static_cast<int>(Backend::io_uring) == 1 && static_cast<int>(Backend::epoll) == 2);
constexpr std::string_view kLevels[] = {"trace", "debug",    "info", "warn",
                                        "error", "critical", "off"};
static_assert(static_cast<int>(LogLevel::off) == 6);
constexpr std::string_view kFormats[] = {"text", "json"};

// kLevels, plus "warning": the name the logs print for warn (spdlog's), which an operator may
// copy from them.
config::Kind<LogLevel> log_level() {
    config::Kind<LogLevel> k = config::choice<LogLevel>(kLevels);
    k.parse = [inner = k.parse](const config::Input& in) -> config::Parsed<LogLevel> {
        if (in.is_textual() && in.text == "warning") return LogLevel::warn;
        return inner(in);
    };
    return k;
}

config::Kind<std::string> header_phrase() {
    return config::text([](std::string_view s) { return valid_header_phrase(s); },
                        "expected at most " + std::to_string(kMaxHeaderPhraseBytes) +
                            " visible ASCII characters and inner spaces, such as \"weft\" or "
                            "\"acme/2.1 (edge)\" (\"\" sends no header)");
}

// A forward proxy, "http://[user:password@]host[:port]", its socks5:// or socks5h:// form, or
// "" for none. Its user information
// is shown as "***" wherever the value is (--print-config, the startup log, errors).
config::Kind<std::string> proxy_url() {
    auto parse = [](const config::Input& in) -> config::Parsed<std::string> {
        if (!in.is_textual())
            return config::Problem{
                "expected a proxy URL such as \"http://proxy.example:3128\" or "
                "\"socks5h://proxy.example:1080\", or \"\" for none"};
        if (auto why = http::proxy_setting_problem(in.text))
            return config::Problem{*why +
                                   " (expected \"http://[user:password@]host[:port]\", the "
                                   "same with socks5:// or socks5h://, or \"\" for none)"};
        return std::string(config::trim(in.text));
    };
    return {parse,
            [](const std::string& v) { return config::toml_quote(http::redact_proxy_setting(v)); },
            [](const std::string& v) { return config::json_quote(http::redact_proxy_setting(v)); }};
}

// A proxy setting as an error shows it: the password hidden.
std::string shown_proxy(const config::Input& in) {
    if (!in.is_textual()) return in.display();
    return config::toml_quote(http::redact_proxy_setting(in.text));
}

// Hosts reached without a proxy: "internal.example, .corp, 10.0.0.0/8, [fd00::1]:8080, *".
// Entries that name no host are skipped with a warning (main.cpp), as Go and curl skip them.
config::Kind<std::string> no_proxy_list() {
    return config::text(
        [](std::string_view s) {
            return std::none_of(s.begin(), s.end(), [](char c) {
                return static_cast<unsigned char>(c) < 0x20 && c != '\t';
            });
        },
        "expected host names, IP addresses and CIDR blocks separated by commas, or \"*\"");
}

config::Kind<AccessLogTarget> access_log_target() {
    auto parse = [](const config::Input& in) -> config::Parsed<AccessLogTarget> {
        using K = AccessLogTarget::Kind;
        if (!in.is_textual())
            return config::Problem{"expected \"off\", \"stdout\", \"stderr\" or a file path"};
        const std::string t = config::to_lower(config::trim(in.text));
        if (t.empty() || t == "off") return AccessLogTarget{K::off, {}};
        if (t == "stdout") return AccessLogTarget{K::to_stdout, {}};
        if (t == "stderr") return AccessLogTarget{K::to_stderr, {}};
        if (in.text.find('\0') != std::string::npos)
            return config::Problem{"a file path must not contain a NUL character"};
        return AccessLogTarget{K::to_file, in.text};
    };
    return {parse, [](const AccessLogTarget& a) { return config::toml_quote(a.to_string()); },
            [](const AccessLogTarget& a) { return config::json_quote(a.to_string()); }};
}

// Origins whose pages may open WebSockets: "https://app.example.com, http://localhost:3000",
// "*" or "null", separated by commas or spaces (a TOML string, as in a variable or a flag).
config::Kind<std::vector<std::string>> origin_list() {
    static constexpr const char* kAllowed =
        "expected origins separated by commas, each scheme://host[:port] with no path (such as "
        "\"https://app.example.com, http://localhost:3000\"; \"https://*.example.com\" for its "
        "subdomains), \"*\" for any, \"null\" for sandboxed and file pages, or \"\" for the "
        "server's own pages only";
    auto parse = [](const config::Input& in) -> config::Parsed<std::vector<std::string>> {
        if (!in.is_textual()) return config::Problem{kAllowed};
        std::vector<std::string> out;
        std::string_view rest = in.text;
        while (!rest.empty()) {
            const std::size_t end = rest.find_first_of(", \t");
            const std::string_view item = rest.substr(0, end);
            rest.remove_prefix(end == std::string_view::npos ? rest.size() : end + 1);
            if (item.empty()) continue;
            const std::string o = config::to_lower(item);
            const std::size_t sep = o.find("://");
            bool ok = o == "*" || o == "null";
            if (!ok && sep != std::string::npos && sep > 0 && sep + 3 < o.size()) {
                ok = std::isalpha(static_cast<unsigned char>(o[0])) != 0;
                for (std::size_t i = 0; i < sep && ok; ++i)
                    ok = std::isalnum(static_cast<unsigned char>(o[i])) != 0 ||
                         std::strchr("+-.", o[i]) != nullptr;
                // A '*' only as a whole first label, with two labels or more after it:
                // "https://*.example.com" ("https://*.com" would take every .com site).
                const std::size_t star = o.find('*', sep + 3);
                if (ok && star != std::string::npos) {
                    const std::string_view after = std::string_view(o).substr(sep + 3);
                    const std::string_view domain = after.size() > 2
                                                        ? after.substr(2, after.find(':') - 2)
                                                        : std::string_view();
                    ok = after.starts_with("*.") && star == sep + 3 &&
                         o.find('*', star + 1) == std::string::npos && !domain.empty() &&
                         domain.front() != '.' && domain.back() != '.' &&
                         domain.find('.') != std::string_view::npos;
                }
                for (std::size_t i = sep + 3; i < o.size() && ok; ++i)
                    ok = o[i] > 0x20 && o[i] < 0x7f && std::strchr("/?#@\\", o[i]) == nullptr;
                // A port, if any: 1..65535 ("[v6]:port" has its colon after the bracket).
                const std::size_t close = o.rfind(']');
                const std::size_t colon = o.rfind(':');
                if (ok && colon > sep && (close == std::string::npos || colon > close)) {
                    const std::string_view port = std::string_view(o).substr(colon + 1);
                    unsigned n = 0;
                    const auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), n);
                    ok = !port.empty() && port[0] != '0' && ec == std::errc() &&
                         p == port.data() + port.size() && n <= 65535;
                }
            }
            if (!ok)
                return config::Problem{fmt::format("\"{}\" is not an origin: {}", item, kAllowed)};
            out.push_back(o);
        }
        return out;
    };
    auto joined = [](const std::vector<std::string>& v) {
        std::string s;
        for (const std::string& o : v)
            s += (s.empty() ? "" : ", ") + o;
        return s;
    };
    return {parse, [joined](const auto& v) { return config::toml_quote(joined(v)); },
            [joined](const auto& v) { return config::json_quote(joined(v)); }};
}

// A fraction in [0.5, 1): which quantile of schedule delay load shedding compares.
config::Kind<double> quantile() {
    auto parse = [](const config::Input& in) -> config::Parsed<double> {
        std::optional<double> q;
        if (in.is_textual()) {  // a variable or a flag
            const std::string_view t = config::trim(in.text);
            double v = 0;
            auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
            if (!t.empty() && ec == std::errc() && end == t.data() + t.size()) q = v;
        } else if (auto v = config::parse_number(in)) {
            q = *v;
        }
        if (!q || !(*q >= 0.5 && *q < 1.0))
            return config::Problem{"expected a quantile from 0.5 to below 1, such as 0.99"};
        return *q;
    };
    auto print = [](const double& q) { return fmt::format("{}", q); };
    return {parse, print, print};
}

bool valid_header_name(std::string_view v) {
    if (v.size() > 64) return false;
    for (char c : v)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') return false;
    return true;
}

// A header that can carry a client's timeout: not one that frames or routes every request (each
// would then get 400 for not reading as a duration).
bool valid_timeout_header(std::string_view v) {
    static constexpr std::string_view kTaken[] = {"host",
                                                  "content-length",
                                                  "transfer-encoding",
                                                  "connection",
                                                  "upgrade",
                                                  "expect",
                                                  "te",
                                                  "trailer",
                                                  "keep-alive",
                                                  "proxy-connection",
                                                  "content-type",
                                                  "cookie",
                                                  "authorization"};
    if (!valid_header_name(v)) return false;
    for (std::string_view t : kTaken)
        if (v.size() == t.size() && std::equal(v.begin(), v.end(), t.begin(), [](char a, char b) {
                return std::tolower(static_cast<unsigned char>(a)) == b;
            }))
            return false;
    return true;
}

bool wildcard(const SocketAddress& a) {
    const std::string s = a.to_string();
    return s.starts_with("0.0.0.0:") || s.starts_with("[::]:");
}

config::Schema<Settings> build() {
    using namespace config;
    Schema<Settings> s;
    // clang-format off
    s.bind("server", "listen", [](auto& o) -> auto& { return o.listener.listen; },
        listen_address(), "HTTP listen address; port 0 picks a free port")
        .with_flag("--listen", "ADDR:PORT");
    s.bind("server", "max_connections", [](auto& o) -> auto& { return o.http.max_connections; },
        integer(1, 10'000'000), "connections open at once; idle ones make room for more");
    s.bind("server", "max_header_bytes", [](auto& o) -> auto& { return o.http.max_header_bytes; },
        size(1 * kKiB, 1 * kMiB), "request line plus headers (431 beyond)");
    s.bind("server", "max_uri_bytes", [](auto& o) -> auto& { return o.http.max_uri_bytes; },
        size(256, 1 * kMiB), "request target, at most max_header_bytes (414 beyond)");
    s.bind("server", "max_headers", [](auto& o) -> auto& { return o.http.max_headers; },
        integer(1, 10'000), "header fields per request (431 beyond)");
    s.bind("server", "max_body_bytes", [](auto& o) -> auto& { return o.http.max_body_bytes; },
        size(0, kNoLimit), "request body (413 beyond); 0: unlimited");
    s.bind("server", "max_buffered_body_bytes",
        [](auto& o) -> auto& { return o.http.max_buffered_body_bytes; }, size(0, kNoLimit),
        "request bodies and WebSocket messages in memory over all connections (503 or 1013 "
        "beyond); 0: unlimited");
    s.bind("server", "header_timeout", [](auto& o) -> auto& { return o.http.header_timeout; },
        duration(Duration::zero(), kDay, true), "time to receive the request head (408)");
    s.bind("server", "body_timeout", [](auto& o) -> auto& { return o.http.body_timeout; },
        duration(Duration::zero(), kDay, true), "time allowed between two reads of a body");
    s.bind("server", "min_body_rate", [](auto& o) -> auto& { return o.http.min_body_rate; },
        size(0, kNoLimit),
        "bytes per second a request body must average after its first 5 s (408 below); 0: "
        "no minimum");
    s.bind("server", "idle_timeout", [](auto& o) -> auto& { return o.http.idle_timeout; },
        duration(Duration::zero(), kDay, true), "how long an idle keep-alive connection stays");
    s.bind("server", "send_timeout", [](auto& o) -> auto& { return o.http.send_timeout; },
        duration(Duration::zero(), kDay, true), "time a response write may make no progress");
    s.bind("server", "request_timeout", [](auto& o) -> auto& { return o.http.request_timeout; },
        duration(Duration::zero(), kDay),
        "each request's deadline: its handler's blocking calls end then, and an unanswered "
        "request gets 504; 0: none");
    s.bind("server", "timeout_header", [](auto& o) -> auto& { return o.http.timeout_header; },
        config::text([](std::string_view v) { return valid_timeout_header(v); },
                     "expected a header name (letters, digits, '-') of its own, such as "
                     "\"X-Request-Timeout\" or \"grpc-timeout\", not one every request carries "
                     "for another purpose (Host, Content-Length, Connection...); \"\": none"),
        "a request header that may shorten the request's deadline (\"250m\", \"2S\", \"1500\")");
    s.bind("server", "linger_timeout", [](auto& o) -> auto& { return o.http.linger_timeout; },
        duration(Duration::zero(), hours(1)),
        "after an error answer, how long at most unread input (a refused upload) is read and "
        "dropped before closing, so that its client sees the answer rather than a reset");
    s.bind("server", "max_requests_per_connection",
        [](auto& o) -> auto& { return o.http.max_requests_per_connection; },
        integer(0, kMaxInt), "requests on one connection before it closes; 0: unlimited");
    s.bind("server", "listen_backlog", [](auto& o) -> auto& { return o.http.listen_backlog; },
        integer(1, 65'535), "listen(2) backlog of each hub's listener");
    s.bind("server", "drain_timeout", [](auto& o) -> auto& { return o.listener.drain_timeout; },
        duration(Duration::zero(), kDay), "on SIGTERM, time for requests in flight to finish");
    s.bind("server", "server_name", [](auto& o) -> auto& { return o.http.server_name; },
        header_phrase(), "the Server header; \"\": none");
    s.bind("server", "tls_cert", [](auto& o) -> auto& { return o.http.tls_cert; }, path(),
        "HTTPS: PEM certificate chain, leaf first (with tls_key); SIGHUP reloads it");
    s.bind("server", "tls_key", [](auto& o) -> auto& { return o.http.tls_key; }, path(),
        "HTTPS: PEM private key of tls_cert");

    s.bind("websocket", "max_message_bytes",
        [](auto& o) -> auto& { return o.http.websocket_max_message_bytes; },
        size(125, 1024 * kMiB), "the largest WebSocket message a client may send (1009 beyond)");
    s.bind("websocket", "ping_interval",
        [](auto& o) -> auto& { return o.http.websocket_ping_interval; },
        duration(Duration::zero(), kDay), "silence before the server pings; an unanswered ping "
        "closes after as long again; 0: no pings");
    s.bind("websocket", "idle_timeout",
        [](auto& o) -> auto& { return o.http.websocket_idle_timeout; },
        duration(Duration::zero(), kDay), "no message from the client for this long closes the "
        "WebSocket (1001); 0: no limit");
    s.bind("websocket", "allowed_origins",
        [](auto& o) -> auto& { return o.http.websocket_allowed_origins; }, origin_list(),
        "browser pages that may open WebSockets besides the server's own (403 otherwise)");

    s.bind("runtime", "hubs", [](auto& o) -> auto& { return o.runtime.hubs; },
        count_or_auto(1024), "event-loop threads; 0: one per CPU this process may use")
        .with_flag("--hubs", "N").with_env_alias("WEFT_HUBS").formerly("server.hubs");
    s.bind("runtime", "backend", [](auto& o) -> auto& { return o.runtime.backend; },
        choice<Backend>(kBackends), "I/O backend: auto (io_uring, else epoll), io_uring, epoll")
        .with_flag("--backend", "auto|io_uring|epoll").with_env_alias("WEFT_BACKEND")
        .formerly("server.backend");
    s.bind("runtime", "stack_size", [](auto& o) -> auto& { return o.runtime.stack_size; },
        size_or_auto(16 * kKiB, 8 * kMiB),
        "stack of each fiber; auto: 64KiB, 256KiB in sanitizer builds")
        .formerly("server.stack_size");
    s.bind("runtime", "stack_cache", [](auto& o) -> auto& { return o.runtime.stack_cache; },
        integer(0, 1'000'000), "fiber stacks each hub keeps for reuse");
    s.bind("runtime", "offload_threads", [](auto& o) -> auto& { return o.runtime.offload_threads; },
        count_or_auto(1024), "threads of the offload pool (blocking work); 0: automatic")
        .formerly("server.offload_threads");
    s.bind("runtime", "resolver_threads",
        [](auto& o) -> auto& { return o.runtime.resolver_threads; }, count_or_auto(1024),
        "threads for name lookups (DNS), apart from the offload pool; 0: automatic");
    s.bind("runtime", "run_budget", [](auto& o) -> auto& { return o.runtime.run_budget; },
        integer(1, 1'000'000), "fibers run per loop turn before I/O is polled again");
    s.bind("runtime", "recv_buffers", [](auto& o) -> auto& { return o.runtime.recv_buffers; },
        integer(1, 32'768), "pooled receive buffers per hub (io_uring: a power of two is used)");
    s.bind("runtime", "recv_buffer_size",
        [](auto& o) -> auto& { return o.runtime.recv_buffer_size; },
        size(1 * kKiB, 16 * kMiB), "size of each pooled receive buffer");
    s.bind("runtime", "patch_syscalls", [](auto& o) -> auto& { return o.runtime.patch_syscalls; },
        boolean(), "blocking libc calls made by a fiber (sockets, pipes, poll, sleep, DNS) park only "
        "that fiber");
    s.bind("runtime", "ring_entries", [](auto& o) -> auto& { return o.runtime.ring_entries; },
        integer(8, 32'768), "io_uring submission queue entries per hub");

    s.bind("admin", "enabled", [](auto& o) -> auto& { return o.admin.enabled; }, boolean(),
        "serve the admin listener");
    s.bind("admin", "listen", [](auto& o) -> auto& { return o.admin.listen; }, listen_address(),
        "admin listen address; keep it on loopback unless something else protects it")
        .with_flag("--admin", "ADDR:PORT");
    s.bind("admin", "debug_endpoints", [](auto& o) -> auto& { return o.admin.debug_endpoints; },
        boolean(), "serve /debug/ (the live page), its events, /debug/blocking, /debug/fibers, "
        "/debug/config, /debug/state and /debug/pprof/*");
    s.bind("admin", "max_event_streams",
        [](auto& o) -> auto& { return o.admin.max_event_streams; }, integer(1, 1'000),
        "live-page event streams (/debug/events) open at once");
    s.bind("admin", "max_connections", [](auto& o) -> auto& { return o.admin.http.max_connections; },
        integer(1, 100'000), "admin connections open at once");
    s.bind("admin", "reserved_fds", [](auto& o) -> auto& { return o.admin.http.reserved_fds; },
        integer(0, 64), "descriptors held back so that admin still accepts when the process runs "
        "out (EMFILE)");
    s.bind("admin", "header_timeout", [](auto& o) -> auto& { return o.admin.http.header_timeout; },
        duration(Duration::zero(), kDay, true), "time to receive an admin request head (408)");
    s.bind("admin", "tls_cert", [](auto& o) -> auto& { return o.admin.http.tls_cert; }, path(),
        "HTTPS for admin: PEM certificate chain (with tls_key); SIGHUP reloads it");
    s.bind("admin", "tls_key", [](auto& o) -> auto& { return o.admin.http.tls_key; }, path(),
        "HTTPS for admin: PEM private key of tls_cert");

    s.bind("monitor", "enabled", [](auto& o) -> auto& { return o.monitor.enabled; }, boolean(),
        "run the watchdog")
        .with_env_alias("WEFT_MONITOR_THREAD_ENABLE");
    s.bind("monitor", "max_blocking_time",
        [](auto& o) -> auto& { return o.monitor.max_blocking_time; },
        // At least 1 ms: the watchdog looks at most once a millisecond.
        duration(milliseconds(1), hours(1)), "report a hub held longer than this")
        .with_flag("--max-blocking-time", "SECONDS").with_env_alias("WEFT_MAX_BLOCKING_TIME");
    s.bind("monitor", "print_blocking_reports",
        [](auto& o) -> auto& { return o.monitor.print_blocking_reports; }, boolean(),
        "log each blocking report")
        .with_env_alias("WEFT_MONITOR_PRINT_BLOCKING_REPORTS");
    s.bind("monitor", "request_metrics_by_hub",
        [](auto& o) -> auto& { return o.http_metrics.by_hub; }, boolean(),
        "label the request metrics with the hub that served (a series per hub)");
    s.bind("monitor", "memory_max", [](auto& o) -> auto& { return o.monitor.memory_max; },
        size(0, kNoLimit), "resident memory limit of the memory monitor; 0: off");
    s.bind("monitor", "memory_period", [](auto& o) -> auto& { return o.monitor.memory_period; },
        duration(seconds(2), kDay), "how often the memory monitor looks")
        .with_env_alias("WEFT_MONITOR_MEMORY_PERIOD");
    s.bind("monitor", "track_fiber_tree",
        [](auto& o) -> auto& { return o.monitor.track_fiber_tree; }, boolean(),
        "show each hub's fibers as a tree in reports")
        .with_env_alias("WEFT_TRACK_FIBER_TREE");
    s.bind("monitor", "stacks_in_system_calls",
        [](auto& o) -> auto& { return o.monitor.stacks_in_system_calls; }, boolean(),
        "capture the stack of a hub blocked in a system call (its signal ends some calls early)");
    s.bind("monitor", "reports_file", [](auto& o) -> auto& { return o.monitor.reports_file; },
        path(), "append blocking reports as JSON lines to this file; \"\": none");
    s.bind("monitor", "report_rate_limit",
        [](auto& o) -> auto& { return o.monitor.reports_per_minute; }, integer(0, 1'000'000),
        "blocking reports per minute at most (a hub not reported in the last minute is reported anyway); 0: unlimited");
    s.bind("monitor", "recent_reports", [](auto& o) -> auto& { return o.monitor.recent_reports; },
        integer(1, 10'000), "reports kept for /debug/blocking");
    s.bind("monitor", "lag_probe_interval",
        [](auto& o) -> auto& { return o.runtime.lag_probe_interval; },
        duration(milliseconds(1), seconds(60)), "period of the event-loop lag probe");

    s.bind("shed", "enabled", [](auto& o) -> auto& { return o.shed.enabled; }, boolean(),
        "answer new requests 503 on a hub whose schedule delay or lag is above its budget");
    s.bind("shed", "budget", [](auto& o) -> auto& { return o.shed.budget; },
        duration(std::chrono::microseconds(5), seconds(10)),
        "schedule-delay and lag budget of a hub (rounded up to the 1-2-5 histogram bounds)");
    s.bind("shed", "quantile", [](auto& o) -> auto& { return o.shed.quantile; }, quantile(),
        "which quantile of schedule delay and of lag over the window is held to the budget");
    s.bind("shed", "window", [](auto& o) -> auto& { return o.shed.window; },
        duration(milliseconds(100), seconds(60)), "the time over which schedule delay and lag are judged");
    s.bind("shed", "min_wakeups", [](auto& o) -> auto& { return o.shed.min_wakeups; },
        integer(1, 1'000'000), "fewer wakeups in the window never shed");
    s.bind("shed", "retry_after", [](auto& o) -> auto& { return o.shed.retry_after; },
        duration(seconds(1), hours(1)), "Retry-After of a shed request (whole seconds)");

    s.bind("stall", "budget", [](auto& o) -> auto& { return o.stall.budget; },
        duration(Duration::zero(), kDay),
        "default stall budget per plugin: blocking its hubs longer within the window "
        "quarantines it ([[plugin]] stall_budget overrides); 0: off");
    s.bind("stall", "window", [](auto& o) -> auto& { return o.stall.window; },
        duration(seconds(1), kDay), "the time over which a plugin's blocking is summed");
    s.bind("stall", "cooldown", [](auto& o) -> auto& { return o.stall.cooldown; },
        duration(seconds(1), kDay), "how long a quarantined plugin's routes answer 503");

    s.bind("client", "ca_file", [](auto& o) -> auto& { return o.client.ca_file; }, path(),
        "PEM file of CA certificates the HTTP client trusts; \"\": the system's store");
    s.bind("client", "verify_peer", [](auto& o) -> auto& { return o.client.verify_peer; },
        boolean(), "check HTTPS servers' certificates and host names (off only for tests)");
    s.bind("client", "connect_timeout",
        [](auto& o) -> auto& { return o.client.connect_timeout; },
        duration(Duration::zero(), hours(1)),
        "resolving and connecting, TLS included; 0: no bound of its own (a request's deadline "
        "still applies)");
    s.bind("client", "read_timeout", [](auto& o) -> auto& { return o.client.read_timeout; },
        duration(Duration::zero(), kDay),
        "time a request may go out, or a response come in, with no progress (a stalled "
        "server); 0: no bound of its own");
    s.bind("client", "total_timeout", [](auto& o) -> auto& { return o.client.total_timeout; },
        duration(Duration::zero(), kDay), "a whole exchange; 0: none (a request's deadline still "
        "applies)");
    s.bind("client", "idle_timeout", [](auto& o) -> auto& { return o.client.idle_timeout; },
        duration(Duration::zero(), kDay, true), "how long an idle pooled connection is kept");
    s.bind("client", "max_idle_per_host",
        [](auto& o) -> auto& { return o.client.max_idle_per_host; }, integer(0, 100'000),
        "idle keep-alive connections kept per origin on each hub (at most max_idle_total)");
    s.bind("client", "max_idle_total",
        [](auto& o) -> auto& { return o.client.max_idle_total; }, integer(0, 1'000'000),
        "idle keep-alive connections kept on each hub over every origin; at it the longest "
        "idle one closes");
    s.bind("client", "max_connections_per_host",
        [](auto& o) -> auto& { return o.client.max_connections_per_host; }, integer(0, 100'000),
        "connections in use per origin on each hub; more wait; 0: no limit");
    s.bind("client", "max_response_bytes",
        [](auto& o) -> auto& { return o.client.max_response_bytes; }, size(1, kNoLimit),
        "a response body read whole");
    s.bind("client", "max_header_bytes",
        [](auto& o) -> auto& { return o.client.max_header_bytes; }, size(1 * kKiB, 1 * kMiB),
        "a response's status line and headers");
    s.bind("client", "max_redirects", [](auto& o) -> auto& { return o.client.max_redirects; },
        integer(0, 20), "redirects followed; 0: a redirect is the answer");
    s.bind("client", "dns_cache_ttl", [](auto& o) -> auto& { return o.client.dns_cache_ttl; },
        duration(Duration::zero(), kDay), "how long a host name's addresses are reused; 0: "
        "resolve every time");
    s.bind("client", "user_agent", [](auto& o) -> auto& { return o.client.user_agent; },
        header_phrase(), "the User-Agent header; \"\": none");
    s.bind("client", "http_proxy", [](auto& o) -> auto& { return o.client.http_proxy; },
        proxy_url(), "forward proxy for http:// URLs, \"http://[user:password@]host:port\" "
        "(or socks5://, socks5h://); \"\": none")
        .with_env_alias("HTTP_PROXY").with_env_alias("http_proxy").shown_as(shown_proxy);
    s.bind("client", "https_proxy", [](auto& o) -> auto& { return o.client.https_proxy; },
        proxy_url(), "forward proxy for https:// URLs (http://, socks5:// or socks5h://), "
        "through tunnels; \"\": none")
        .with_env_alias("HTTPS_PROXY").with_env_alias("https_proxy").shown_as(shown_proxy);
    s.bind("client", "no_proxy", [](auto& o) -> auto& { return o.client.no_proxy; },
        no_proxy_list(), "hosts reached without a proxy: names (with their subdomains), IPs, "
        "CIDR blocks, \"*\"; localhost always is")
        .with_env_alias("NO_PROXY").with_env_alias("no_proxy");

    s.bind("log", "level", [](auto& o) -> auto& { return o.log.level; }, log_level(),
        "trace, debug, info, warn (the logs print warning), error, critical or off")
        .with_flag("--log-level", "LEVEL");
    s.bind("log", "format", [](auto& o) -> auto& { return o.log.format; },
        choice<LogFormat>(kFormats), "text for people, json for log collectors")
        .with_flag("--log-format", "text|json");
    s.bind("log", "access_log", [](auto& o) -> auto& { return o.log.access_log; },
        access_log_target(),
        "off, stdout, stderr or a file path (appended to; reopened when renamed)");
    // clang-format on

    s.check([](const Settings& o, CheckContext& ctx) {
        if (!ctx.failed("server.max_uri_bytes") && !ctx.failed("server.max_header_bytes") &&
            o.http.max_uri_bytes > o.http.max_header_bytes) {
            ctx.error("server.max_uri_bytes", format_size(o.http.max_uri_bytes),
                      "must not exceed [server] max_header_bytes (" +
                          format_size(o.http.max_header_bytes) + ", " +
                          ctx.source("server.max_header_bytes").to_string() +
                          "): the request line counts against both");
        }
        if (!ctx.failed("client.max_idle_per_host") && !ctx.failed("client.max_idle_total") &&
            o.client.max_idle_total > 0 && o.client.max_idle_per_host > o.client.max_idle_total) {
            ctx.error("client.max_idle_per_host", std::to_string(o.client.max_idle_per_host),
                      "must not exceed [client] max_idle_total (" +
                          std::to_string(o.client.max_idle_total) + ", " +
                          ctx.source("client.max_idle_total").to_string() +
                          "), which bounds the idle connections of every origin together: "
                          "raise both");
        }
        auto readable = [&](const char* key, const std::string& file) {
            if (ctx.failed(key) || file.empty()) return;
            std::ifstream f(file);
            if (!f)
                ctx.error(key, toml_quote(file),
                          "cannot be read: " + std::string(std::strerror(errno)));
        };
        readable("client.ca_file", o.client.ca_file);
        for (const char* sec : {"server", "admin"}) {
            const http::ServerOptions& h =
                std::string_view(sec) == "server" ? o.http : o.admin.http;
            const std::string cert_key = std::string(sec) + ".tls_cert";
            const std::string key_key = std::string(sec) + ".tls_key";
            if (h.tls_cert.empty() != h.tls_key.empty()) {
                const bool cert_missing = h.tls_cert.empty();
                ctx.error(
                    cert_missing ? cert_key.c_str() : key_key.c_str(), "\"\"",
                    std::string("must be set together with [") + sec + "] " +
                        (cert_missing ? "tls_key" : "tls_cert") + " (" +
                        ctx.source(cert_missing ? key_key.c_str() : cert_key.c_str()).to_string() +
                        "), or both left empty");
            }
            readable(cert_key.c_str(), h.tls_cert);
            readable(key_key.c_str(), h.tls_key);
        }
        if (o.shed.enabled && !o.monitor.enabled && !ctx.failed("shed.enabled")) {
            ctx.error("shed.enabled", "true",
                      "needs [monitor] enabled = true (" +
                          ctx.source("monitor.enabled").to_string() +
                          "): the hubs measure schedule delay only while the watchdog runs");
        }
        if (!ctx.failed("shed.retry_after") &&
            o.shed.retry_after % seconds(1) != Duration::zero()) {
            // The header carries whole seconds (RFC 9110 10.2.3): say so, not round quietly.
            const auto down = std::chrono::floor<seconds>(o.shed.retry_after);
            ctx.error("shed.retry_after", toml_quote(format_duration(o.shed.retry_after)),
                      "Retry-After is in whole seconds: use " +
                          (down.count() > 0 ? toml_quote(format_duration(down)) + " or " : "") +
                          toml_quote(format_duration(down + seconds(1))));
        }
        if (o.stall.budget.count() > 0 && !o.monitor.enabled && !ctx.failed("stall.budget")) {
            ctx.error("stall.budget", toml_quote(format_duration(o.stall.budget)),
                      "needs [monitor] enabled = true (" +
                          ctx.source("monitor.enabled").to_string() +
                          "): a plugin's blocking is measured by the watchdog");
        }
        // Live pages and profiles (debug endpoints) hold their admin connections for long:
        // with room for them all and nothing more, /healthz and /metrics would wait behind
        // them (a liveness probe fails, the pod restarts).
        const std::size_t held = o.admin.max_event_streams + AdminState::kMaxTimedProfiles + 1;
        constexpr std::size_t kSpare = 4;  // health checks and scrapes
        if (o.admin.enabled && o.admin.debug_endpoints &&
            o.admin.http.max_connections < held + kSpare && !ctx.failed("admin.max_connections") &&
            !ctx.failed("admin.max_event_streams")) {
            ctx.error("admin.max_connections", std::to_string(o.admin.http.max_connections),
                      "must be at least " + std::to_string(held + kSpare) + ": [admin] " +
                          "max_event_streams (" + std::to_string(o.admin.max_event_streams) + ", " +
                          ctx.source("admin.max_event_streams").to_string() + "), " +
                          std::to_string(AdminState::kMaxTimedProfiles) +
                          " timed profiles and a CPU profile may each hold one, and " +
                          std::to_string(kSpare) + " are left for /healthz and /metrics");
        }
        const SocketAddress& a = o.admin.listen;
        const SocketAddress& l = o.listener.listen;
        if (o.admin.enabled && !ctx.failed("admin.listen") && !ctx.failed("server.listen") &&
            a.port() != 0 && a.port() == l.port() && (a == l || wildcard(a) || wildcard(l))) {
            ctx.error("admin.listen", toml_quote(a.to_string()),
                      "must not use the same port as [server] listen (" + l.to_string() + ", " +
                          ctx.source("server.listen").to_string() + ")");
        }
    });
    return s;
}

}  // namespace

std::string AccessLogTarget::to_string() const {
    switch (kind) {
        case Kind::off:
            return "off";
        case Kind::to_stdout:
            return "stdout";
        case Kind::to_stderr:
            return "stderr";
        case Kind::to_file:
            return path;
    }
    return {};
}

const config::Schema<Settings>& settings_schema() {
    static const config::Schema<Settings> schema = build();
    return schema;
}

}  // namespace weft::server

// The typed configuration of the `weft` server: one struct per TOML section, every field a
// Setting that remembers its source. Defaults here are the built-in defaults; config/default.toml
// documents each key and must agree with them (a test checks).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "weft/config/source.hpp"
#include "weft/config/table.hpp"
#include "weft/core/runtime.hpp"

namespace weft::config {

using Duration = std::chrono::nanoseconds;

inline constexpr std::uint64_t kKiB = 1024;
inline constexpr std::uint64_t kMiB = 1024 * kKiB;
inline constexpr std::uint64_t kGiB = 1024 * kMiB;

/// A numeric listen address: "127.0.0.1:8080", "[::1]:8080", or "*:8080" (every IPv4 address,
/// as weft::SocketAddress::parse reads it). Host names are not resolved here.
struct ListenAddress {
    enum class Family : std::uint8_t { any, ipv4, ipv6 };

    Family family = Family::ipv4;
    std::string host;  ///< "127.0.0.1" or "::1"; empty for Family::any
    std::uint16_t port = 0;

    /// Parses "ADDR:PORT", "[V6]:PORT", "*:PORT" or ":PORT"; port 0..65535 (0: any free port).
    /// On failure returns nullopt and, if `why` is given, says what is wrong.
    static std::optional<ListenAddress> parse(std::string_view text, std::string* why = nullptr);
    /// "127.0.0.1:8080", "[::1]:8080", "*:8080"; parse(to_string()) gives the same address.
    std::string to_string() const;

    bool operator==(const ListenAddress&) const = default;
};

/// The runtime's own enum ("auto", "io_uring", "epoll"; weft::backend_name spells it).
using weft::Backend;
enum class LogLevel : std::uint8_t { trace, debug, info, warn, error, critical, off };
enum class LogFormat : std::uint8_t { text, json };

/// "trace" ... "critical", "off" (spdlog's names, except that "warning" is spelled "warn").
std::string_view to_string(LogLevel level) noexcept;
/// "text", "json".
std::string_view to_string(LogFormat format) noexcept;

/// Where the access log goes: nowhere, stdout, stderr, or a file (appended to).
struct AccessLog {
    enum class Kind : std::uint8_t { off, to_stdout, to_stderr, to_file };

    Kind kind = Kind::off;
    std::string path;  ///< for Kind::to_file

    /// "off", "stdout", "stderr" or the path.
    std::string to_string() const;
    bool operator==(const AccessLog&) const = default;
};

/// [server]: the HTTP listener, the hubs, and every HTTP limit and timeout.
struct ServerConfig {
    Setting<ListenAddress> listen{{ListenAddress::Family::ipv4, "127.0.0.1", 8080}};
    Setting<std::uint32_t> hubs{0};  ///< 0: one per CPU this process may use
    Setting<Backend> backend{Backend::automatic};
    Setting<std::uint64_t> stack_size{64 * kKiB};  ///< bytes per fiber stack
    Setting<std::uint32_t> max_connections{10000};
    Setting<std::uint64_t> max_header_bytes{16 * kKiB};          ///< request line + headers (431)
    Setting<std::uint64_t> max_uri_bytes{8 * kKiB};              ///< (414)
    Setting<std::uint64_t> max_body_bytes{1 * kMiB};             ///< 0: unlimited (413)
    Setting<Duration> header_timeout{std::chrono::seconds(10)};  ///< (408)
    Setting<Duration> body_timeout{std::chrono::seconds(30)};
    Setting<Duration> idle_timeout{std::chrono::seconds(60)};  ///< keep-alive
    Setting<Duration> send_timeout{std::chrono::seconds(30)};
    Setting<std::uint64_t> max_requests_per_connection{0};  ///< 0: unlimited
    Setting<Duration> drain_timeout{std::chrono::seconds(10)};
    Setting<std::uint32_t> offload_threads{0};  ///< 0: automatic
    Setting<std::string> server_name{"weft"};   ///< the Server header; empty: none
};

/// [admin]: the admin listener (/metrics, /healthz, /readyz, /debug/*) on its own thread.
struct AdminConfig {
    Setting<bool> enabled{true};
    Setting<ListenAddress> listen{{ListenAddress::Family::ipv4, "127.0.0.1", 9090}};
    Setting<bool> debug_endpoints{true};
};

/// [monitor]: the watchdog (blocking detection), the memory monitor and the lag probe.
struct MonitorConfig {
    Setting<bool> enabled{true};
    Setting<Duration> max_blocking_time{std::chrono::milliseconds(100)};
    Setting<bool> print_blocking_reports{true};
    Setting<std::uint64_t> memory_max{0};  ///< bytes of RSS; 0: memory monitor off
    Setting<Duration> memory_period{std::chrono::seconds(5)};
    Setting<bool> track_fiber_tree{true};
    Setting<std::string> reports_file{};           ///< JSON-lines reports; empty: none
    Setting<std::uint32_t> report_rate_limit{60};  ///< reports per minute; 0: unlimited
    Setting<Duration> lag_probe_interval{std::chrono::milliseconds(10)};
};

/// [log]
struct LogConfig {
    Setting<LogLevel> level{LogLevel::info};
    Setting<LogFormat> format{LogFormat::text};
    Setting<AccessLog> access_log{};
};

/// One [[plugin]] entry: what to load and the table handed to it unchanged.
struct PluginConfig {
    Setting<std::string> path;  ///< a file path or a bundled plugin's name ("demo")
    Table config;               ///< its `config` sub-table; messages say "plugin 'PATH' config"
};

struct Config {
    ServerConfig server;
    AdminConfig admin;
    MonitorConfig monitor;
    LogConfig log;
    std::vector<PluginConfig> plugins;
};

}  // namespace weft::config

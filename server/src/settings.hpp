// Settings: everything the weft server can be configured with, as the options structs of the
// modules that own each setting (the runtime's, HTTP's, the monitor's, and the server's own
// listener, admin and log options). settings_schema() binds every configuration key to one
// member of these structs; their defaults are the built-in defaults.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "http_metrics.hpp"
#include "protection.hpp"
#include "weft/config/load.hpp"
#include "weft/config/schema.hpp"
#include "weft/core/runtime.hpp"
#include "weft/core/socket_address.hpp"
#include "weft/http/client.hpp"
#include "weft/http/server_options.hpp"
#include "weft/monitor/settings.hpp"

namespace weft::server {

/// The data listener: where it listens and how a SIGTERM drain ends.
struct ListenerOptions {
    SocketAddress listen = *SocketAddress::parse("127.0.0.1:8080");
    /// On SIGTERM, how long requests in flight may take before the process exits; 0: exit as
    /// soon as the listeners are closed.
    std::chrono::nanoseconds drain_timeout = std::chrono::seconds(10);
};

/// The admin listener (/metrics, /healthz, /readyz, /debug/*) on its own thread.
struct AdminOptions {
    bool enabled = true;
    SocketAddress listen = *SocketAddress::parse("127.0.0.1:9090");
    /// Serve /debug/ (the live page) and the other /debug/* endpoints.
    bool debug_endpoints = true;
    /// The live page's event streams (/debug/events) open at once; each holds an admin
    /// connection and wakes the admin hub 5 times a second.
    unsigned max_event_streams = 8;
    /// The admin listener's own HTTP limits: few connections, short timeouts. Probes and
    /// scrapers send a request head in one packet, so a head still incomplete after a quarter
    /// of the header timeout (0.5 s) makes room for them when all connections are taken.
    http::ServerOptions http = defaults();

  private:
    static http::ServerOptions defaults() {
        http::ServerOptions o;
        o.max_connections = 256;
        o.header_timeout = std::chrono::seconds(2);
        // No admin route takes a body: one announced gets 413 at once instead of being waited
        // for (30 s between bytes, the data port's), and its lingering connection is the first
        // to make room for a probe.
        o.max_body_bytes = 1;
        o.body_timeout = std::chrono::seconds(2);
        // So that probes and scrapes are answered when the process runs out of descriptors.
        o.reserved_fds = 4;
        return o;
    }
};

enum class LogLevel : std::uint8_t { trace, debug, info, warn, error, critical, off };
enum class LogFormat : std::uint8_t { text, json };

/// Where the access log goes: nowhere, stdout, stderr, or a file (appended to).
struct AccessLogTarget {
    enum class Kind : std::uint8_t { off, to_stdout, to_stderr, to_file };
    Kind kind = Kind::off;
    std::string path;  ///< for Kind::to_file
    /// "off", "stdout", "stderr" or the path.
    std::string to_string() const;
};

struct LogOptions {
    LogLevel level = LogLevel::info;
    LogFormat format = LogFormat::text;
    AccessLogTarget access_log;
};

struct Settings {
    RuntimeOptions runtime = runtime_defaults();
    ListenerOptions listener;
    http::ServerOptions http;
    AdminOptions admin;
    monitor::MonitorSettings monitor;
    HttpMetricsOptions http_metrics;
    LogOptions log;
    /// weft::http::default_client(): what plugins' outbound calls use.
    http::ClientOptions client;
    ShedOptions shed;
    StallOptions stall;

  private:
    static RuntimeOptions runtime_defaults() {
        RuntimeOptions o;
        o.name = "weft";
        // gevent's patch_all(): libraries a plugin calls (libpq, libcurl, hiredis...) cooperate.
        o.patch_syscalls = true;
        return o;
    }
};

/// Every key of the weft server, bound to the members of Settings.
const config::Schema<Settings>& settings_schema();

/// The server's embedded default configuration (server/default.toml), NUL-terminated.
const char* embedded_default_toml() noexcept;

}  // namespace weft::server

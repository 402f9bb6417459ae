// Bad server configurations: each case must produce exactly the expected number of errors, and
// the error must name the key, the source, the value and what is allowed (checked by fragments).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "server_settings_test_util.hpp"

namespace weft::server::test {
namespace {

using config::LoadOptions;

struct BadCase {
    const char* name;
    LoadOptions options;
    std::vector<std::string> fragments;  // all in the (single) error's to_string()
};

LoadOptions with_env(config::Environment env) {
    return env_options(std::move(env));
}

LoadOptions with_flag(const char* key, const char* value, const char* flag) {
    return flag_options(key, value, flag);
}

std::vector<BadCase> bad_cases() {
    return {
        {"client_ca_file_missing",
         file_options("[client]\nca_file = \"/nonexistent/ca.pem\"\n"),
         {"[client] ca_file: cannot be read: No such file or directory",
          "got \"/nonexistent/ca.pem\"", "(weft.toml:2)"}},
        {"client_user_agent_injection",
         with_env({{"WEFT_CLIENT_USER_AGENT", "a\r\nX-Evil: 1"}}),
         {"[client] user_agent:", "visible ASCII", "(environment WEFT_CLIENT_USER_AGENT)"}},
        {"client_https_proxy_scheme",
         with_env({{"HTTPS_PROXY", "https://proxy.example:3128"}}),
         {"[client] https_proxy:", "an https:// proxy (TLS to the proxy) is not supported",
          "(environment HTTPS_PROXY)"}},
        {"client_socks_proxy",
         file_options("[client]\nhttp_proxy = \"socks4://127.0.0.1:1080\"\n"),
         {"[client] http_proxy:", "a 'socks4://' proxy is not supported", "(weft.toml:2)"}},
        {"client_proxy_port",
         with_flag("client.http_proxy", "proxy.example:99999", "--set"),
         {"[client] http_proxy:", "invalid port '99999'", "http://[user:password@]host[:port]"}},
        {"client_proxy_pac",
         with_env({{"WEFT_CLIENT_HTTP_PROXY", "http://wpad.example/proxy.pac"}}),
         {"[client] http_proxy:", "no path or query", "(environment WEFT_CLIENT_HTTP_PROXY)"}},
        {"client_proxy_password_hidden",
         with_env({{"WEFT_CLIENT_HTTPS_PROXY", "https://svc:s3cret@proxy.example:443"}}),
         {"[client] https_proxy:", "got \"https://***@proxy.example:443\""}},
        {"client_ambient_proxy_not_overridden",
         with_env({{"HTTPS_PROXY", "socks4a://127.0.0.1:1080"}}),
         {"[client] https_proxy:", "a 'socks4a://' proxy is not supported",
          "(environment HTTPS_PROXY)"}},
        {"timeout_header_taken",
         with_flag("server.timeout_header", "Host", "--set"),
         {"[server] timeout_header:", "not one every request carries", "got \"Host\""}},
        {"client_redirects_range",
         file_options("[client]\nmax_redirects = 50\n"),
         {"[client] max_redirects: must be between 0 and 20, got 50"}},
        {"type_int_as_string",
         file_options("[runtime]\nhubs = \"four\"\n"),
         {"[runtime] hubs: ", "expected an integer", "got \"four\"", "(weft.toml:2)"}},
        {"type_bool_as_string",
         file_options("[admin]\n\nenabled = \"yes\"\n"),
         {"[admin] enabled: ", "expected a boolean (true or false", "got \"yes\"",
          "(weft.toml:3)"}},
        {"type_table_for_count",
         file_options("[server]\nmax_connections = { a = 1 }\n"),
         {"[server] max_connections", "expected an integer", "got a table"}},
        {"type_path_as_number",
         file_options("[monitor]\nreports_file = 3\n"),
         {"[monitor] reports_file", "expected a file path", "got 3"}},
        {"range_stack_size",
         file_options("[runtime]\nstack_size = 4096\n"),
         {"[runtime] stack_size: must be between 16KiB and 8MiB (or \"auto\"), got 4096 "
          "(weft.toml:2)"}},
        {"range_stack_size_string",
         file_options("[runtime]\nstack_size = \"16MiB\"\n"),
         {"must be between 16KiB and 8MiB", "got \"16MiB\""}},
        {"range_max_connections",
         file_options("[server]\nmax_connections = 0\n"),
         {"[server] max_connections: must be between 1 and 10000000, got 0"}},
        {"range_hubs",
         file_options("[runtime]\nhubs = 2000\n"),
         {"[runtime] hubs", "expected an integer 0..1024 (0 or \"auto\": automatic)", "got 2000"}},
        {"negative_size",
         file_options("[server]\nmax_body_bytes = -1\n"),
         {"[server] max_body_bytes: must not be negative, got -1"}},
        {"enum_backend",
         file_options("[runtime]\nbackend = \"kqueue\"\n"),
         {"[runtime] backend: expected one of: auto, io_uring, epoll, got \"kqueue\" "
          "(weft.toml:2)"}},
        {"enum_backend_alias",
         with_env({{"WEFT_BACKEND", "kqueue"}}),
         {"[runtime] backend: expected one of: auto, io_uring, epoll", "got \"kqueue\"",
          "(environment WEFT_BACKEND)"}},
        {"enum_level",
         with_env({{"WEFT_LOG_LEVEL", "loud"}}),
         {"[log] level: expected one of: trace, debug, info, warn, error, critical, off",
          "got \"loud\"", "(environment WEFT_LOG_LEVEL)"}},
        {"enum_format",
         file_options("[log]\nformat = \"xml\"\n"),
         {"[log] format: expected one of: text, json", "got \"xml\""}},
        {"address_hostname",
         file_options("[server]\nlisten = \"localhost:8080\"\n"),
         {"[server] listen: not a numeric IPv4 address", "expected ADDR:PORT",
          "got \"localhost:8080\"", "(weft.toml:2)"}},
        {"address_no_port",
         with_env({{"WEFT_SERVER_LISTEN", "127.0.0.1"}}),
         {"[server] listen: missing ':PORT'", "got \"127.0.0.1\"",
          "(environment WEFT_SERVER_LISTEN)"}},
        {"address_port_range",
         with_flag("server.listen", "127.0.0.1:70000", "--listen"),
         {"[server] listen", "the port must be a number 0..65535", "got \"127.0.0.1:70000\"",
          "(flag --listen)"}},
        {"address_v6_brackets",
         file_options("[admin]\nlisten = \"::1:80\"\n"),
         {"[admin] listen: an IPv6 address needs brackets"}},
        {"address_v6_unclosed",
         file_options("[admin]\nlisten = \"[::1:80\"\n"),
         {"[admin] listen: missing ']'"}},
        {"address_v6_bad",
         file_options("[admin]\nlisten = \"[zz::1]:80\"\n"),
         {"[admin] listen: not an IPv6 address"}},
        {"address_v6_zone",
         file_options("[admin]\nlisten = \"[fe80::1%lo]:80\"\n"),
         {"[admin] listen: a zone index (\"%lo\") is not supported"}},
        {"address_not_a_string",
         file_options("[server]\nlisten = 8080\n"),
         {"[server] listen: expected ADDR:PORT", "got 8080"}},
        {"duration_bad_unit",
         file_options("[server]\nheader_timeout = \"10x\"\n"),
         {"[server] header_timeout: expected a duration: seconds as a number (0.1) or a string "
          "with a unit ns, us, ms, s, m or h",
          "got \"10x\"", "(weft.toml:2)"}},
        {"duration_empty",
         with_env({{"WEFT_SERVER_IDLE_TIMEOUT", ""}}),
         {"[server] idle_timeout: expected a duration", "got \"\""}},
        {"duration_negative",
         file_options("[server]\nsend_timeout = \"-1s\"\n"),
         {"[server] send_timeout: must be greater than 0 and at most 24h", "got \"-1s\""}},
        {"duration_zero_timeout",
         file_options("[server]\nheader_timeout = 0\n"),
         {"[server] header_timeout: must be greater than 0 and at most 24h, got 0"}},
        {"duration_too_long",
         file_options("[server]\ndrain_timeout = \"25h\"\n"),
         {"[server] drain_timeout: must be between 0s and 24h", "got \"25h\""}},
        {"duration_bool",
         file_options("[server]\nbody_timeout = true\n"),
         {"[server] body_timeout: expected a duration", "got true"}},
        {"server_name_header_injection",
         file_options("[server]\nserver_name = \"weft\\r\\nSet-Cookie: a=b\"\n"),
         {"[server] server_name: expected at most 128 visible ASCII characters and inner spaces",
          "(\"\" sends no header)", "got \"weft\\r\\nSet-Cookie: a=b\"", "(weft.toml:2)"}},
        {"server_name_not_ascii",
         with_env({{"WEFT_SERVER_SERVER_NAME", "wéft"}}),
         {"[server] server_name: expected at most 128 visible ASCII",
          "environment WEFT_SERVER_SERVER_NAME"}},
        {"server_name_not_a_string",
         file_options("[server]\nserver_name = 7\n"),
         {"[server] server_name: expected at most 128", "got 7"}},
        {"lag_probe_too_small",
         file_options("[monitor]\nlag_probe_interval = \"100us\"\n"),
         {"[monitor] lag_probe_interval: must be between 1ms and 60s"}},
        {"size_bad_suffix",
         file_options("[server]\nmax_body_bytes = \"12XB\"\n"),
         {"[server] max_body_bytes: expected a size: bytes as an integer, or a string with a "
          "unit",
          "got \"12XB\"", "(weft.toml:2)"}},
        {"size_float",
         file_options("[server]\nmax_body_bytes = 1.5\n"),
         {"[server] max_body_bytes: expected a size", "got 1.5"}},
        {"size_env_word",
         with_env({{"WEFT_MONITOR_MEMORY_MAX", "lots"}}),
         {"[monitor] memory_max: expected a size", "got \"lots\"",
          "(environment WEFT_MONITOR_MEMORY_MAX)"}},
        {"memory_period_below_2s",
         file_options("[monitor]\nmemory_period = 1\n"),
         {"[monitor] memory_period: must be between 2s and 24h, got 1 (weft.toml:2)"}},
        {"memory_period_env",
         with_env({{"WEFT_MONITOR_MEMORY_PERIOD", "1500ms"}}),
         {"[monitor] memory_period: must be between 2s and 24h", "got \"1500ms\"",
          "(environment WEFT_MONITOR_MEMORY_PERIOD)"}},
        {"max_blocking_time_zero",
         file_options("[monitor]\nmax_blocking_time = 0\n"),
         {"[monitor] max_blocking_time: must be between 1ms and 1h, got 0 (weft.toml:2)"}},
        {"max_blocking_time_below_1ms",
         with_flag("monitor.max_blocking_time", "100us", "--max-blocking-time"),
         {"[monitor] max_blocking_time: must be between 1ms and 1h", "got \"100us\"",
          "(flag --max-blocking-time)"}},
        {"max_blocking_time_negative",
         with_env({{"WEFT_MAX_BLOCKING_TIME", "-0.1"}}),
         {"[monitor] max_blocking_time: must be between 1ms and 1h", "got \"-0.1\"",
          "(environment WEFT_MAX_BLOCKING_TIME)"}},
        {"max_blocking_time_word",
         with_flag("monitor.max_blocking_time", "soon", "--max-blocking-time"),
         {"[monitor] max_blocking_time: expected a duration", "got \"soon\"",
          "(flag --max-blocking-time)"}},
        {"bool_env_word",
         with_env({{"WEFT_MONITOR_THREAD_ENABLE", "maybe"}}),
         {"[monitor] enabled: expected a boolean: 1, true, on, yes, 0, false, off or no",
          "got \"maybe\"", "(environment WEFT_MONITOR_THREAD_ENABLE)"}},
        {"bool_track_fiber_tree_alias",
         with_env({{"WEFT_TRACK_FIBER_TREE", "2"}}),
         {"[monitor] track_fiber_tree: expected a boolean", "got \"2\"",
          "(environment WEFT_TRACK_FIBER_TREE)"}},
        {"count_flag_word",
         with_flag("runtime.hubs", "x", "--hubs"),
         {"[runtime] hubs", "got \"x\"", "(flag --hubs)"}},
        {"count_alias_word",
         with_env({{"WEFT_HUBS", "many"}}),
         {"[runtime] hubs: expected an integer 0..1024", "got \"many\"",
          "(environment WEFT_HUBS)"}},

        // The three [server] limits new with the key table, from each kind of source.
        {"max_headers_zero",
         file_options("[server]\nmax_headers = 0\n"),
         {"[server] max_headers: must be between 1 and 10000, got 0 (weft.toml:2)"}},
        {"max_headers_env",
         with_env({{"WEFT_SERVER_MAX_HEADERS", "10001"}}),
         {"[server] max_headers: must be between 1 and 10000, got \"10001\" "
          "(environment WEFT_SERVER_MAX_HEADERS)"}},
        {"max_headers_flag",
         set_options("server.max_headers=lots"),
         {"[server] max_headers: expected an integer, got \"lots\" "
          "(flag --set server.max_headers)"}},
        {"max_headers_quoted",
         file_options("[server]\nmax_headers = \"50\"\n"),
         {"[server] max_headers: expected an integer (without quotes), got \"50\""}},
        {"linger_timeout_too_long",
         file_options("[server]\nlinger_timeout = \"2h\"\n"),
         {"[server] linger_timeout: must be between 0s and 1h, got \"2h\" (weft.toml:2)"}},
        {"linger_timeout_env",
         with_env({{"WEFT_SERVER_LINGER_TIMEOUT", "-1s"}}),
         {"[server] linger_timeout: must be between 0s and 1h, got \"-1s\" "
          "(environment WEFT_SERVER_LINGER_TIMEOUT)"}},
        {"linger_timeout_flag",
         set_options("server.linger_timeout=forever"),
         {"[server] linger_timeout: expected a duration", "got \"forever\"",
          "(flag --set server.linger_timeout)"}},
        {"listen_backlog_zero",
         file_options("[server]\nlisten_backlog = 0\n"),
         {"[server] listen_backlog: must be between 1 and 65535, got 0 (weft.toml:2)"}},
        {"listen_backlog_env",
         with_env({{"WEFT_SERVER_LISTEN_BACKLOG", "65536"}}),
         {"[server] listen_backlog: must be between 1 and 65535, got \"65536\" "
          "(environment WEFT_SERVER_LISTEN_BACKLOG)"}},
        {"listen_backlog_flag",
         set_options("server.listen_backlog=-5"),
         {"[server] listen_backlog: must be between 1 and 65535, got \"-5\" "
          "(flag --set server.listen_backlog)"}},

        // The other keys new with the key table.
        {"stack_cache_negative",
         file_options("[runtime]\nstack_cache = -1\n"),
         {"[runtime] stack_cache: must be between 0 and 1000000, got -1"}},
        {"run_budget_zero",
         file_options("[runtime]\nrun_budget = 0\n"),
         {"[runtime] run_budget: must be between 1 and 1000000, got 0"}},
        {"recv_buffers_too_many",
         with_env({{"WEFT_RUNTIME_RECV_BUFFERS", "40000"}}),
         {"[runtime] recv_buffers: must be between 1 and 32768", "got \"40000\""}},
        {"recv_buffer_size_small",
         file_options("[runtime]\nrecv_buffer_size = 512\n"),
         {"[runtime] recv_buffer_size: must be between 1KiB and 16MiB, got 512"}},
        {"ring_entries_small",
         file_options("[runtime]\nring_entries = 4\n"),
         {"[runtime] ring_entries: must be between 8 and 32768, got 4"}},
        {"admin_max_connections_zero",
         file_options("[admin]\nmax_connections = 0\n"),
         {"[admin] max_connections: must be between 1 and 100000, got 0"}},
        {"admin_max_connections_below_the_long_held_ones",
         file_options("[admin]\nmax_connections = 20\nmax_event_streams = 16\n"),
         {"[admin] max_connections: must be at least 25: [admin] max_event_streams (16, "
          "weft.toml:3), 4 timed profiles and a CPU profile may each hold one, and 4 are left "
          "for /healthz and /metrics, got 20 (weft.toml:2)"}},
        // (Without the debug endpoints no connection is held for long: 8 is fine then, see
        // SettingsLoad.AdminConnectionsWithoutDebugEndpoints.)
        {"admin_header_timeout_zero",
         file_options("[admin]\nheader_timeout = 0\n"),
         {"[admin] header_timeout: must be greater than 0 and at most 24h, got 0"}},
        {"recent_reports_zero",
         file_options("[monitor]\nrecent_reports = 0\n"),
         {"[monitor] recent_reports: must be between 1 and 10000, got 0"}},

        // A former spelling with a bad value: the error names the key as it is now.
        {"moved_key_bad_value_file",
         file_options("[server]\nhubs = 2000\n"),
         {"[runtime] hubs: expected an integer 0..1024", "got 2000", "(weft.toml:2)"}},
        {"moved_key_bad_value_env",
         with_env({{"WEFT_SERVER_BACKEND", "kqueue"}}),
         {"[runtime] backend: expected one of", "(environment WEFT_SERVER_BACKEND)"}},
        {"moved_key_bad_value_flag",
         set_options("server.stack_size=1"),
         {"[runtime] stack_size: must be between 16KiB and 8MiB",
          "(flag --set server.stack_size)"}},

        {"unknown_key_file",
         file_options("[server]\nlisten = \"127.0.0.1:1\"\nlisen = 3\n"),
         {"[server] lisen: unknown key; did you mean 'listen'? (weft.toml:3)"}},
        {"unknown_key_long",
         file_options("[server]\nmax_body_size = 5\n"),
         {"[server] max_body_size: unknown key; did you mean 'max_body_bytes'?"}},
        {"unknown_key_runtime",
         file_options("[runtime]\nhub = 5\n"),
         {"[runtime] hub: unknown key; did you mean 'hubs'? (weft.toml:2)"}},
        {"unknown_key_far",
         file_options("[log]\ncolour = true\n"),
         {"[log] colour: unknown key; known: level, format, access_log (weft.toml:2)"}},
        {"unknown_section",
         file_options("[servre]\nlisten = \"x\"\n"),
         {"[servre]: unknown section; did you mean [server]? (weft.toml:1)"}},
        {"unknown_section_runtime",
         file_options("[runtme]\nhubs = 1\n"),
         {"[runtme]: unknown section; did you mean [runtime]? (weft.toml:1)"}},
        {"key_outside_section",
         file_options("listen = \"127.0.0.1:1\"\n[server]\n"),
         {"listen: a key outside any section; did you mean [server] listen?", "(weft.toml:1)"}},
        {"moved_key_outside_section",
         file_options("hubs = 2\n[server]\n"),
         {"hubs: a key outside any section; did you mean [runtime] hubs?",
          "(put it after the [runtime] line)"}},
        {"typo_outside_section",
         file_options("max_blocking_tme = 1\n"),
         {"max_blocking_tme: unknown key outside any section; did you mean [monitor] "
          "max_blocking_time?"}},
        {"plugins_for_plugin",
         file_options("[[plugins]]\npath = \"demo\"\n"),
         {"[[plugins]]: unknown array of tables; the only one is [[plugin]] (weft.toml:1)"}},
        {"section_not_table",
         file_options("server = 3\n"),
         {"[server]: expected a table", "got 3"}},
        {"unknown_env",
         with_env({{"WEFT_SERVER_LISEN", "127.0.0.1:1"}}),
         {"[server] lisen: unknown environment variable; did you mean WEFT_SERVER_LISTEN? "
          "(environment WEFT_SERVER_LISEN)"}},
        {"unknown_env_monitor",
         with_env({{"WEFT_MONITOR_MAX_BLOCKING", "1"}}),
         {"did you mean WEFT_MONITOR_MAX_BLOCKING_TIME?",
          "(environment WEFT_MONITOR_MAX_BLOCKING)"}},
        {"unknown_env_runtime",
         with_env({{"WEFT_RUNTIME_HUB", "1"}}),
         {"[runtime] hub: unknown environment variable; did you mean WEFT_RUNTIME_HUBS?"}},
        {"unknown_env_alias_typo",
         with_env({{"WEFT_MONITOR_THREAD_ENABLED", "1"}}),
         {"did you mean WEFT_MONITOR_THREAD_ENABLE?"}},
        // A port, not a Kubernetes service link (whose NAME_PORT is "tcp://IP:PORT").
        {"unknown_env_far",
         with_env({{"WEFT_SERVER_PORT", "80"}}),
         {"[server] port: unknown environment variable; known: WEFT_SERVER_LISTEN, "
          "WEFT_SERVER_MAX_CONNECTIONS,",
          "WEFT_SERVER_LISTEN_BACKLOG,", "WEFT_SERVER_TLS_KEY (environment WEFT_SERVER_PORT)"}},
        {"unknown_flag_far",
         with_flag("server.port", "1", "--port"),
         {"server.port: unknown key; known: server.listen, server.max_connections,",
          "server.max_headers,"}},
        {"unknown_flag_section",
         with_flag("sever.listen", "1", "--x"),
         {"sever.listen: unknown key; did you mean 'server.listen'?"}},
        // Without its section, or under a section that does not exist, a key's name (or one
        // close to it) names the keys that have it; nothing like it, the sections.
        {"unknown_flag_bare_name",
         set_options("access_log=stdout"),
         {"access_log: unknown key; did you mean 'log.access_log'? (flag --set access_log)"}},
        {"unknown_flag_shared_name",
         set_options("enabled=false"),
         {"enabled: unknown key; did you mean one of 'admin.enabled', 'monitor.enabled', "
          "'shed.enabled'?"}},
        {"unknown_flag_close_name",
         set_options("nowhere.max_headrs=5"),
         {"nowhere.max_headrs: unknown key; did you mean 'server.max_headers'?"}},
        {"unknown_flag_nothing_close",
         set_options("zzz=1"),
         {"zzz: unknown key; a key is SECTION.NAME, the sections being server, websocket, "
          "runtime,",
          "(--print-config lists every key with its value) (flag --set zzz)"}},
        {"retry_after_fraction",
         set_options("shed.retry_after=1500ms"),
         {"[shed] retry_after: Retry-After is in whole seconds: use \"1s\" or \"2s\", got "
          "\"1500ms\" (flag --set shed.retry_after)"}},
        {"unknown_flag_key",
         with_flag("server.lisen", "1", "--lisen"),
         {"server.lisen: unknown key; did you mean 'server.listen'? (flag --lisen)"}},
        {"unknown_flag_runtime",
         set_options("runtime.stak_size=1MiB"),
         {"runtime.stak_size: unknown key; did you mean 'runtime.stack_size'? "
          "(flag --set runtime.stak_size)"}},
        {"alias_conflict",
         with_env({{"WEFT_HUBS", "2"}, {"WEFT_RUNTIME_HUBS", "3"}}),
         {"[runtime] hubs: conflicts with WEFT_HUBS=\"2\"; set only one of them",
          "(environment WEFT_RUNTIME_HUBS)"}},
        {"former_variable_conflict",
         with_env({{"WEFT_SERVER_HUBS", "2"}, {"WEFT_RUNTIME_HUBS", "3"}}),
         {"[runtime] hubs: conflicts with WEFT_RUNTIME_HUBS=\"3\"; set only one of them",
          "(environment WEFT_SERVER_HUBS)"}},
        {"syntax_error",
         file_options("[server]\nlisten = = 1\n"),
         {"TOML syntax error: ", "(weft.toml:2:10)"}},
        {"syntax_duplicate_key",
         file_options("[runtime]\nhubs = 1\nhubs = 2\n"),
         {"TOML syntax error: ", "hubs", "(weft.toml:3:"}},
        {"plugin_missing_path",
         file_options("[[plugin]]\nconfig = { a = 1 }\n"),
         {"[[plugin]] path: missing: each [[plugin]] needs path", "(weft.toml:1)"}},
        {"plugin_empty_path",
         file_options("[[plugin]]\npath = \"\"\n"),
         {"[[plugin]] path: must not be empty", "(weft.toml:2)"}},
        {"plugin_path_number",
         file_options("[[plugin]]\npath = 3\n"),
         {"[[plugin]] path: expected a string", "got 3"}},
        {"plugin_empty_path_flag",
         with_flag("plugin", "", "--plugin"),
         {"[[plugin]] path: must not be empty", "(flag --plugin)"}},
        {"plugin_unknown_key",
         file_options("[[plugin]]\npath = \"x\"\nconfg = {}\n"),
         {"[[plugin]] confg: unknown key; did you mean 'config'? (weft.toml:3)"}},
        {"plugin_config_not_table",
         file_options("[[plugin]]\npath = \"x\"\nconfig = 5\n"),
         {"[[plugin]] config: expected a table", "got 5"}},
        {"plugin_single_brackets",
         file_options("[plugin]\npath = \"x\"\n"),
         {"[plugin]: expected an array of tables: write [[plugin]]"}},
        {"plugin_config_date",
         file_options("[[plugin]]\npath = \"x\"\n[plugin.config]\nwhen = 1979-05-27\n"),
         {"plugin[0].config.when: TOML dates and times are not supported", "(weft.toml:4)"}},
        {"uri_over_header",
         file_options("[server]\nmax_header_bytes = \"4KiB\"\n"),
         {"[server] max_uri_bytes: must not exceed [server] max_header_bytes (4KiB, "
          "weft.toml:2)",
          "got 8KiB (built-in default)"}},
        {"idle_per_host_over_total",
         file_options("[client]\nmax_idle_total = 16\n"),
         {"[client] max_idle_per_host: must not exceed [client] max_idle_total (16, "
          "weft.toml:2)",
          "got 32 (built-in default)"}},
        {"admin_same_port",
         with_flag("admin.listen", "127.0.0.1:8080", "--admin"),
         {"[admin] listen: must not use the same port as [server] listen (127.0.0.1:8080, "
          "built-in default)",
          "(flag --admin)"}},
        {"admin_same_port_wildcard",
         with_flag("server.listen", "*:9090", "--listen"),
         {"[admin] listen: must not use the same port as [server] listen (0.0.0.0:9090, flag "
          "--listen)",
          "got \"127.0.0.1:9090\" (built-in default)"}},
        {"admin_same_port_v6_wildcard",
         with_env({{"WEFT_ADMIN_LISTEN", "[::]:8080"}}),
         {"[admin] listen: must not use the same port as [server] listen (127.0.0.1:8080",
          "(environment WEFT_ADMIN_LISTEN)"}},
        {"origin_with_path",
         file_options(
             "[websocket]\nallowed_origins = \"https://a.example, https://b.example/app\"\n"),
         {"[websocket] allowed_origins: \"https://b.example/app\" is not an origin",
          "each scheme://host[:port] with no path", "(weft.toml:2)"}},
        {"origin_wildcard_inside",
         file_options(
             "[websocket]\nallowed_origins = \"https://*.a.example, https://app.*.com\"\n"),
         {"[websocket] allowed_origins: \"https://app.*.com\" is not an origin",
          "\"https://*.example.com\" for its subdomains"}},
        {"origin_wildcard_too_wide",
         file_options("[websocket]\nallowed_origins = \"https://*.com\"\n"),
         {"[websocket] allowed_origins: \"https://*.com\" is not an origin"}},
        {"origin_port_out_of_range",
         file_options("[websocket]\nallowed_origins = \"https://a.example:99999\"\n"),
         {"[websocket] allowed_origins: \"https://a.example:99999\" is not an origin"}},
        {"origin_port_zero",
         file_options("[websocket]\nallowed_origins = \"https://a.example:0\"\n"),
         {"[websocket] allowed_origins: \"https://a.example:0\" is not an origin"}},
        {"origin_port_empty",
         file_options("[websocket]\nallowed_origins = \"https://a.example:\"\n"),
         {"[websocket] allowed_origins: \"https://a.example:\" is not an origin"}},
        {"origin_port_leading_zero",
         file_options("[websocket]\nallowed_origins = \"https://[::1]:0443\"\n"),
         {"[websocket] allowed_origins: \"https://[::1]:0443\" is not an origin"}},
        {"origin_array",
         file_options("[websocket]\nallowed_origins = [\"https://a.example\"]\n"),
         {"[websocket] allowed_origins: expected origins separated by commas"}},
        {"env_invalid_utf8",
         with_env({{"WEFT_MONITOR_REPORTS_FILE", "r\xff.jsonl"}}),
         {"[monitor] reports_file: the value is not valid UTF-8"}},
        {"flag_invalid_utf8",
         with_flag("log.access_log", "a\xff", "--set log.access_log"),
         {"[log] access_log: the value is not valid UTF-8 (flag --set log.access_log)"}},
    };
}

TEST(SettingsErrors, EachBadInputGivesOneClearError) {
    for (const auto& k : bad_cases()) {
        SCOPED_TRACE(k.name);
        const auto r = load(k.options);
        ASSERT_FALSE(r.ok());
        const auto& errors = r.error().list;
        ASSERT_EQ(errors.size(), 1u) << r.error().to_string();
        const std::string text = errors[0].to_string();
        for (const auto& f : k.fragments) {
            EXPECT_NE(text.find(f), std::string::npos) << "missing \"" << f << "\" in:\n" << text;
        }
    }
}

// The same port is fine when the admin listener is off, or when either port is 0 (a free one).
TEST(SettingsErrors, SamePortIsFineWhenItCannotClash) {
    LoadOptions o = flag_options("admin.listen", "127.0.0.1:8080", "--admin");
    o.env = {{"WEFT_ADMIN_ENABLED", "false"}};
    EXPECT_TRUE(load(o).ok());
    LoadOptions zero = flag_options("admin.listen", "127.0.0.1:0", "--admin");
    zero.flags.push_back({"server.listen", "127.0.0.1:0", "--listen"});
    EXPECT_TRUE(load(zero).ok());
    EXPECT_TRUE(load(flag_options("admin.listen", "127.0.0.2:8080", "--admin")).ok());
}

TEST(SettingsErrors, ErrorFieldsAreFilledIn) {
    const auto errors = load_errors(file_options("[server]\nmax_body_bytes = \"12XB\"\n"));
    ASSERT_EQ(errors.size(), 1u);
    const config::ConfigError& e = errors[0];
    EXPECT_EQ(e.key, "[server] max_body_bytes");
    EXPECT_EQ(e.source.kind, config::Source::Kind::file);
    EXPECT_EQ(e.source.where, "weft.toml:2");
    EXPECT_EQ(e.value, "\"12XB\"");
    EXPECT_NE(e.message.find("\"512KiB\""), std::string::npos);
}

TEST(SettingsErrors, AllErrorsAreCollectedInFileOrderThenEnvironmentThenFlags) {
    LoadOptions o = file_options(
        "[runtime]\n"
        "stack_size = 1\n"   // 2
        "backend = \"x\"\n"  // 3
        "[monitor]\n"
        "memory_period = 0\n"  // 5
        "enabled = \"x\"\n"    // 6
        "[[plugin]]\n"         // 7 (no path)
        "[log]\n"
        "level = 3\n");  // 9
    o.env = {{"WEFT_HUBS", "many"}, {"WEFT_SERVER_NOPE", "1"}};
    o.flags = {{"log.format", "yaml", "--log-format"}};
    const auto r = load(o);
    ASSERT_FALSE(r.ok());
    std::vector<std::string> where;
    for (const auto& e : r.error().list)
        where.push_back(e.source.to_string());
    const std::vector<std::string> expected = {
        "weft.toml:2",       "weft.toml:3", "weft.toml:5",           "weft.toml:6",
        "weft.toml:7",       "weft.toml:9", "environment WEFT_HUBS", "environment WEFT_SERVER_NOPE",
        "flag --log-format",
    };
    EXPECT_EQ(where, expected) << r.error().to_string();
    // to_string() has one line per error.
    const std::string text = r.error().to_string();
    EXPECT_EQ(static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')),
              expected.size());
}

TEST(SettingsErrors, MissingFileIsAnError) {
    LoadOptions o;
    o.file = "/nonexistent-dir/weft.toml";
    const auto errors = load_errors(o);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0].to_string(),
              "cannot read the configuration file: No such file or directory "
              "(/nonexistent-dir/weft.toml)");
}

// A directory opens as a stream that reads nothing; it must not pass for an empty file.
TEST(SettingsErrors, ADirectoryIsNotAConfigurationFile) {
    const std::string dir = std::filesystem::temp_directory_path().string();
    LoadOptions o;
    o.file = dir;
    const auto errors = load_errors(o);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_EQ(errors[0].to_string(),
              "cannot read the configuration file: Is a directory (" + dir + ")");
}

TEST(SettingsErrors, SyntaxErrorStillReportsEnvironmentErrors) {
    LoadOptions o = file_options("[server\n");
    o.env = {{"WEFT_LOG_LEVEL", "loud"}};
    const auto errors = load_errors(o);
    ASSERT_EQ(errors.size(), 2u);
    EXPECT_NE(errors[0].to_string().find("TOML syntax error"), std::string::npos);
    EXPECT_NE(errors[0].to_string().find("(weft.toml:1:"), std::string::npos);
    EXPECT_EQ(errors[1].source.to_string(), "environment WEFT_LOG_LEVEL");
}

// A key whose own value is bad is not judged again by the cross-key checks.
TEST(SettingsErrors, CrossKeyChecksSkipKeysThatAlreadyFailed) {
    LoadOptions o = file_options("[server]\nmax_header_bytes = \"4KiB\"\n");
    o.env = {{"WEFT_SERVER_MAX_URI_BYTES", "x"}};
    auto errors = load_errors(o);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_NE(errors[0].to_string().find("expected a size"), std::string::npos);

    errors = load_errors(flag_options("admin.listen", "localhost:8080", "--admin"));
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_NE(errors[0].to_string().find("not a numeric IPv4 address"), std::string::npos);
}

}  // namespace
}  // namespace weft::server::test

// weft: the server binary and the composition root — the one place where configuration, the
// runtime, HTTP, the monitor and the plugins meet. Parses flags, loads and validates the
// configuration (nothing starts half-configured), loads plugins, serves, and drains on SIGTERM.
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "admin.hpp"
#include "http_metrics.hpp"
#include "hub_block_profile.hpp"
#include "live_feed.hpp"
#include "logging.hpp"
#include "plugin_host.hpp"
#include "protection.hpp"
#include "settings.hpp"
#include "shutdown_guard.hpp"
#include "signal_pipe.hpp"
#include "weft/config/load.hpp"
#include "weft/config/render.hpp"
#include "weft/core/fiber.hpp"
#include "weft/core/hub.hpp"
#include "weft/core/internal/offload_stats.hpp"
#include "weft/core/internal/runtime_env.hpp"
#include "weft/core/log.hpp"
#include "weft/core/runtime.hpp"
#include "weft/core/text.hpp"
#include "weft/http/client.hpp"
#include "weft/http/server.hpp"
#include "weft/monitor/run_info.hpp"
#include "weft/monitor/standard_metrics.hpp"
#include "weft/monitor/watchdog.hpp"
#include "weft/plugin.hpp"
#include "weft/version.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using weft::server::PluginError;

// How long the shutdown hooks and stopping the hubs may take after the drain.
constexpr std::chrono::seconds kShutdownLimit{5};
// A configuration of one's own that forgot its plugins starts, and is ready, with no route.
constexpr const char* kNoPlugins =
    "no plugin is loaded: every request gets 404 (add a [[plugin]] table, or --plugin NAME)";
// Within that limit: how long the hubs get to end once their fibers are cancelled before the
// fibers still there are logged.
constexpr std::chrono::seconds kHubStopReport{2};

// Exit status when the drain timed out and the connections still open were closed (exit 0 is
// a drain in which every request finished).
constexpr int kExitDrainCutShort = 3;

// Descriptors beyond the connections: listeners, rings, eventfds, the log files, a plugin's
// database and upstream connections.
constexpr rlim_t kSpareFiles = 256;
rlim_t g_soft_nofile = 0;  // the soft open-file limit the process was started with

// Every connection holds a descriptor. Raises the soft open-file limit as far as the
// connections the configuration allows need, within the hard limit (Go raises it to the hard
// limit since 1.19; a soft limit of 1024 is common and would refuse connections long before
// max_connections); says when they still do not fit.
void fit_open_file_limit(const weft::server::Settings& cfg,
                         const std::shared_ptr<spdlog::logger>& log) {
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
    const rlim_t admin = cfg.admin.enabled ? cfg.admin.http.max_connections : 0;
    const rlim_t need = cfg.http.max_connections + admin + kSpareFiles;
    // As far as the connections need, within the hard limit: no further (a library's select()
    // on another thread breaks on descriptors past 1023, which only a server that needs them
    // should have).
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need && rl.rlim_cur < rl.rlim_max) {
        const rlim_t was = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || need < rl.rlim_max ? need : rl.rlim_max;
        if (::setrlimit(RLIMIT_NOFILE, &rl) == 0) {
            // A child forked (not posix_spawn'ed: system() and popen() keep the raised limit)
            // gets the original back.
            g_soft_nofile = was;
            ::pthread_atfork(nullptr, nullptr, [] {
                rlimit child{};
                if (::getrlimit(RLIMIT_NOFILE, &child) != 0) return;
                child.rlim_cur = g_soft_nofile;
                (void)::setrlimit(RLIMIT_NOFILE, &child);
            });
            log->debug("open-file limit raised from {} to {}", was, rl.rlim_cur);
        } else {
            rl.rlim_cur = was;
        }
    }
    if (rl.rlim_cur == RLIM_INFINITY || need <= rl.rlim_cur) return;
    log->warn(
        "the open-file limit ({}, hard limit {}) is below what [server] max_connections ({}){} "
        "need with {} to spare ({}): connections beyond it wait in the kernel's accept queue until "
        "others close (accept() fails with EMFILE). Raise the "
        "limit (ulimit -n, systemd's LimitNOFILE=, podman's --ulimit nofile=) or lower "
        "max_connections",
        rl.rlim_cur, rl.rlim_max, cfg.http.max_connections,
        admin ? fmt::format(" and [admin] max_connections ({})", admin) : std::string(),
        kSpareFiles, need);
}

// Request bodies are large, short-lived blocks. Once glibc has freed one that large it raises
// its mmap threshold and serves the next ones from its heaps, which keep what is freed in their
// middle: 300 stalled 1 MiB uploads left ~220 MB resident after they closed. (A fixed mmap
// threshold returns each block at once but halved the throughput of 1 MiB bodies: a page fault
// per page of every new block.) So after a peak of body memory has passed, the free pages go
// back to the kernel in one malloc_trim, looked at once a second, off the hubs.
class BodyMemoryTrimmer {
  public:
    explicit BodyMemoryTrimmer(const weft::http::ConnectionCounters& c) : c_(c) {}
    void look() {
        constexpr std::size_t kPeakWorthTrimming = 16u << 20;
        const std::size_t now = c_.body_bytes.load(std::memory_order_relaxed);
        peak_ = std::max(peak_, c_.body_bytes_peak.exchange(now, std::memory_order_relaxed));
        if (peak_ >= kPeakWorthTrimming && now <= peak_ / 4) {
            const auto t0 = Clock::now();
            malloc_trim(0);
            weft::logger()->debug(
                "request bodies went down from {} to {} MiB: freed memory handed back ({:.1f} ms)",
                peak_ >> 20, now >> 20,
                std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
            peak_ = now;
            // The connections those bodies came on close over the next moments (a loaded
            // machine takes seconds), freeing their buffers after this trim: trim again then.
            again_ = 3;
        } else if (again_ > 0) {
            --again_;
            malloc_trim(0);
        }
    }

  private:
    const weft::http::ConnectionCounters& c_;
    std::size_t peak_ = 0;
    int again_ = 0;  // looks left that trim again after a peak
};

struct Cli {
    std::optional<std::string> config_file;
    bool print_config = false;
    bool check_config = false;
    std::vector<weft::config::FlagOverride> flags;
};

// Returns an exit code when the program should stop (help, version, bad usage).
std::optional<int> parse_cli(int argc, char** argv, Cli& cli) {
    CLI::App app{"weft " WEFT_VERSION
                 " - a green-threaded HTTP server: io_uring hubs, one fiber per connection, a "
                 "watchdog for blocking code.\nWith no arguments it serves the embedded default "
                 "configuration (the demo plugin on 127.0.0.1:8080, admin on 127.0.0.1:9090).",
                 "weft"};
    app.set_version_flag("--version", "weft " WEFT_VERSION " (" WEFT_BUILD_SIGNATURE ")");
    std::string config_file;
    app.add_option("-c,--config", config_file,
                   "TOML configuration file (default: the embedded default configuration)")
        ->type_name("FILE");
    app.add_flag("--print-config", cli.print_config,
                 "print the effective configuration, each value with where it came from, and exit");
    app.add_flag("-t,--check-config", cli.check_config,
                 "validate the configuration and the plugin files, then exit (like nginx -t)");
    // A flag of its own for some keys (the schema says which), --plugin, and --set for any.
    const auto& schema = weft::server::settings_schema();
    std::map<std::string, std::vector<std::string>> given;
    std::map<const CLI::Option*, const weft::config::Key*> key_of;
    for (const auto& k : schema.keys()) {
        if (k.flag.empty()) continue;
        CLI::Option* o = app.add_option(k.flag, given[k.dotted()], k.doc + " (" + k.display() + ")")
                             ->type_name(k.value_name)
                             ->expected(1)
                             ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
        key_of[o] = &k;
    }
    const CLI::Option* plugin_opt =
        app.add_option("--plugin", given["plugin"],
                       "load this plugin (repeatable; replaces the configured plugin list)")
            ->type_name("PATH");
    std::vector<std::string> sets;
    const CLI::Option* set_opt =
        app.add_option("--set", sets, "set any configuration key: --set server.idle_timeout=30s")
            ->type_name("SECTION.KEY=VALUE");
    std::string aliases;
    std::string ambient;  // outside WEFT_*: the machine's defaults (HTTP_PROXY)
    for (const auto& k : schema.keys())
        for (const auto& a : k.env_aliases) {
            std::string& list = a.starts_with("WEFT_") ? aliases : ambient;
            list += (list.empty() ? "" : ", ") + a;
        }
    app.footer(
        "Environment: WEFT_<SECTION>_<KEY> sets any key (WEFT_SERVER_LISTEN=0.0.0.0:8080), plus " +
        aliases + "; " + ambient +
        " set the [client] proxy keys below the file.\nPrecedence: flag > WEFT_* environment > "
        "file > HTTP_PROXY and kin > default. `weft --print-config` lists every "
        "key with its value and source.\nSignals: SIGTERM/SIGINT drain (a second one exits at "
        "once), SIGUSR1 logs every hub's fibers (once every 5 s at most), SIGHUP reloads the TLS "
        "certificates and keys (other settings need a restart).\nExit status: 0 "
        "stopped after a drain in which every request finished; 1 could not start, or the "
        "shutdown was stuck; 2 bad usage or configuration (a plugin refused included); 3 the "
        "drain timed out and the "
        "connections still open were closed; 128+N a second SIGTERM/SIGINT (signal N).");
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::fprintf(stderr, "weft: %s\nRun 'weft --help' for the flags.\n", e.what());
        return 2;
    }
    if (app.count("--config") > 0) {
        // `weft -c "$CONF"` with CONF unset must not quietly serve the embedded default.
        if (config_file.empty()) {
            std::fprintf(stderr,
                         "weft: --config: the file name is empty (leave the flag out for the "
                         "embedded default configuration)\n");
            return 2;
        }
        cli.config_file = config_file;
    }
    // In command-line order, so that a later flag for the same key wins, a key's own flag or
    // --set alike. A key's flag keeps its last value only: it takes that flag's last place.
    std::map<const CLI::Option*, std::size_t> left;
    for (const CLI::Option* o : app.parse_order())
        ++left[o];
    std::size_t next_set = 0, next_plugin = 0;
    for (const CLI::Option* o : app.parse_order()) {
        const bool last = --left[o] == 0;
        if (o == set_opt && next_set < sets.size()) {
            const std::string& s = sets[next_set++];
            auto a = weft::config::parse_assignment(s, "--set");
            if (!a) {
                std::fprintf(stderr, "weft: --set '%s': expected SECTION.KEY=VALUE\n", s.c_str());
                return 2;
            }
            cli.flags.push_back(std::move(*a));
        } else if (o == plugin_opt && next_plugin < given["plugin"].size()) {
            cli.flags.push_back({"plugin", given["plugin"][next_plugin++], "--plugin"});
        } else if (auto k = key_of.find(o); k != key_of.end() && last) {
            for (auto& v : given[k->second->dotted()])
                cli.flags.push_back({k->second->dotted(), v, k->second->flag});
        }
    }
    return std::nullopt;
}

}  // namespace

int main(int argc, char** argv) {
    const auto started = Clock::now();

    // The stop, reload and dump signals go through a pipe that the main loop reads; until it
    // does, SIGINT and SIGTERM end the process (see signal_pipe.hpp).
    try {
        weft::server::signals::install();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "weft: %s\n", e.what());
        return 1;
    }

    Cli cli;
    if (auto code = parse_cli(argc, argv, cli)) return *code;

    const auto& schema = weft::server::settings_schema();
    weft::server::Settings cfg;
    weft::config::LoadOptions lo;
    lo.file = cli.config_file;
    lo.default_text = weft::server::embedded_default_toml();
    lo.env = weft::config::environment_from_environ();
    lo.flags = cli.flags;
    auto result = weft::config::load(schema, cfg, lo);
    if (!result) {
        std::fprintf(stderr, "weft: invalid configuration:\n%s",
                     result.error().to_string().c_str());
        return 2;
    }
    weft::config::Loaded loaded = std::move(result).value();
    // As Go and curl, a NO_PROXY entry that names no host is skipped, not refused (machines
    // carry lists written for other tools, such as "192.168.*"): said once here.
    for (const auto& entry : weft::http::no_proxy_ignored(cfg.client.no_proxy))
        loaded.warnings.push_back("[client] no_proxy (" +
                                  loaded.sources.of("client.no_proxy").to_string() + "): '" +
                                  entry +
                                  "' is not a host name, IP address or CIDR block and is "
                                  "ignored");
    // A name users guess (the file is no key: --config names it), which would pass unseen.
    if (const char* v = std::getenv("WEFT_CONFIG"); v && *v)
        loaded.warnings.push_back(
            "environment variable WEFT_CONFIG is ignored: the configuration file is named by "
            "--config (-c)" +
            std::string(cli.config_file ? ", which gives " + *cli.config_file : ""));
    if (!cfg.monitor.enabled) {
        // As [stall] budget: without the watchdog no plugin's blocking is measured.
        for (const auto& p : loaded.plugins) {
            if (!p.stall_budget || p.stall_budget->count() <= 0) continue;
            std::fprintf(stderr,
                         "weft: invalid configuration:\n[[plugin]] stall_budget: needs [monitor] "
                         "enabled = true (%s): a plugin's blocking is measured by the watchdog, "
                         "got \"%s\" for plugin '%s' (%s)\n",
                         loaded.sources.of("monitor.enabled").to_string().c_str(),
                         weft::config::format_duration(*p.stall_budget).c_str(), p.path.c_str(),
                         p.stall_budget_source.to_string().c_str());
            return 2;
        }
    }
    const std::string config_name =
        cli.config_file ? "configuration " + *cli.config_file : "embedded default configuration";

    if (cli.print_config) {
        for (const auto& w : loaded.warnings)
            std::fprintf(stderr, "weft: warning: %s\n", w.c_str());
        std::fputs(weft::config::render_effective(schema, cfg, loaded).c_str(), stdout);
        return 0;
    }
    // Logging first: plugins may log from their init, also under --check-config.
    weft::server::setup_logging(cfg.log);
    auto log = weft::logger();
    // Why the server does not start must reach stderr whatever the level ("critical", "off"),
    // as nginx's emerg messages do: until it serves, errors are shown at least.
    const spdlog::level::level_enum log_level = log->level();
    auto set_levels = [](spdlog::level::level_enum l) {
        spdlog::apply_all([l](const std::shared_ptr<spdlog::logger>& lg) {
            if (lg->name() != "access") lg->set_level(l);
        });
        spdlog::default_logger()->set_level(l);
    };
    if (log_level > spdlog::level::err) set_levels(spdlog::level::err);
    for (const auto& w : loaded.warnings)
        log->warn("configuration: {}", w);
    const auto& access_log_source = loaded.sources.of("log.access_log");

    // The blocking reports file, when the watchdog is on to write it: opened (created) as the
    // watchdog will, so that a path it cannot use is an error naming the key and its source.
    // A file the configuration names that cannot be used is bad configuration (exit status
    // 2), as a bad certificate file is.
    auto reports_file_problem = [&]() -> std::optional<std::string> {
        const std::string& reports = cfg.monitor.reports_file;
        if (!cfg.monitor.enabled || reports.empty()) return std::nullopt;
        const int fd = ::open(reports.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
        if (fd < 0)
            return "[monitor] reports_file: cannot open '" + reports + "' (" +
                   loaded.sources.of("monitor.reports_file").to_string() +
                   "): " + std::strerror(errno);
        ::close(fd);
        return std::nullopt;
    };

    // The certificate and key files of each listener with TLS: what is wrong with them, naming
    // the keys and their sources, or nothing (a bad file is bad configuration: exit status 2).
    auto tls_problem = [&]() -> std::optional<std::string> {
        for (const char* sec : {"server", "admin"}) {
            const auto& h = std::string_view(sec) == "server" ? cfg.http : cfg.admin.http;
            if (h.tls_cert.empty() || (std::string_view(sec) == "admin" && !cfg.admin.enabled))
                continue;
            std::string warning;
            if (auto r = weft::http::Server::check_tls(h.tls_cert, h.tls_key, &warning); !r)
                return std::string("cannot serve ") + (sec[0] == 'a' ? "admin " : "") +
                       "HTTPS with [" + sec + "] tls_cert (" +
                       loaded.sources.of(std::string(sec) + ".tls_cert").to_string() +
                       ") and tls_key (" +
                       loaded.sources.of(std::string(sec) + ".tls_key").to_string() +
                       "): " + r.error();
            if (!warning.empty() && cli.check_config) log->warn("[{}] tls_cert: {}", sec, warning);
        }
        // Readable, but not certificates (a key, /etc/passwd): every HTTPS call would fail.
        if (!cfg.client.ca_file.empty() && cfg.client.verify_peer) {
            if (auto why = weft::http::ca_file_problem(cfg.client.ca_file))
                return "[client] ca_file (" + loaded.sources.of("client.ca_file").to_string() +
                       "): " + *why;
        }
        return std::nullopt;
    };

    fit_open_file_limit(cfg, log);  // a warning under --check-config too

    // Settings that expose more than their user may think: warned about under --check-config
    // too.
    const bool demo_hazards = std::any_of(loaded.plugins.begin(), loaded.plugins.end(),
                                          [](const weft::config::PluginConfig& p) {
                                              auto on = p.config.get_bool("hazardous_routes", true);
                                              return p.path == "demo" && on && *on;
                                          });
    if (!cli.config_file && demo_hazards && !cfg.listener.listen.is_loopback())
        log->warn(
            "serving the embedded default configuration on {} ({}), where other hosts can "
            "reach it: its demo plugin has routes that let any client hold a hub or make this "
            "server fetch any URL. Give a configuration file of your own (-c; "
            "deploy/container/weft.toml is one for containers)",
            cfg.listener.listen.to_string(), loaded.sources.of("server.listen").to_string());
    if (cfg.admin.enabled && cfg.admin.debug_endpoints && !cfg.admin.listen.is_loopback())
        log->warn(
            "[admin] listen {} ({}) is reachable from other hosts and debug_endpoints is on: "
            "/debug/* show the fibers, the requests in flight and the configuration, and take "
            "CPU profiles. Set admin.debug_endpoints = false, or listen on loopback",
            cfg.admin.listen.to_string(), loaded.sources.of("admin.listen").to_string());
    for (const char* sec : {"server", "admin"}) {
        // An unfilled secret (WEFT_SERVER_TLS_CERT="") must not turn HTTPS off unnoticed.
        const auto& h = std::string_view(sec) == "server" ? cfg.http : cfg.admin.http;
        const auto src = loaded.sources.of(std::string(sec) + ".tls_cert");
        if (h.tls_cert.empty() && (sec[0] == 's' || cfg.admin.enabled) &&
            (src.kind == weft::config::Source::Kind::environment ||
             src.kind == weft::config::Source::Kind::flag))
            log->warn("[{}] tls_cert is \"\" ({}): {} serves plain HTTP, without TLS", sec,
                      src.to_string(), sec[0] == 's' ? "the server" : "the admin listener");
    }

    if (cli.check_config) {
        // Plugins are initialized too (against a scratch router): only their init can check
        // their own config tables, and route collisions show only then. Like nginx -t, the
        // access log is opened too; the listen addresses are not bound.
        const unsigned hubs = cfg.runtime.hubs ? cfg.runtime.hubs : weft::default_hub_count();
        try {
            weft::server::PluginHost::check_all(loaded.plugins, hubs);
            // Opens (creates) the access log file, as the real start would; and the blocking
            // reports file, when the watchdog is on to write it.
            try {
                (void)weft::server::make_access_log(cfg.log, access_log_source);
            } catch (const std::exception& e) {
                std::fprintf(stderr, "weft: %s\nweft: configuration test failed\n", e.what());
                return 2;
            }
            // The certificates and keys, loaded as the listeners would load them.
            for (auto why : {reports_file_problem(), tls_problem()}) {
                if (!why) continue;
                std::fprintf(stderr, "weft: %s\nweft: configuration test failed\n", why->c_str());
                return 2;
            }
        } catch (const PluginError& e) {
            std::fprintf(stderr, "weft: %s\nweft: configuration test failed\n", e.what());
            return 2;
        } catch (const std::exception& e) {
            std::fprintf(stderr, "weft: %s\nweft: configuration test failed\n", e.what());
            return 1;
        }
        std::printf("weft: %s is ok (%zu plugin%s)\n", config_name.c_str(), loaded.plugins.size(),
                    loaded.plugins.size() == 1 ? "" : "s");
        if (loaded.plugins.empty()) std::fprintf(stderr, "weft: warning: %s\n", kNoPlugins);
        return 0;
    }

    if (auto why = tls_problem()) {
        log->error("{}", *why);
        return 2;
    }

    weft::http::AccessLogFn access_log;
    try {
        access_log = weft::server::make_access_log(cfg.log, access_log_source);
    } catch (const std::exception& e) {
        log->error("{}", e.what());
        return 2;
    }

    // Worker hubs. Their statistics feed the watchdog, so they are on whenever it is.
    // The settings resolved WEFT_HUBS and WEFT_BACKEND, with a flag above them: the runtimes
    // must not read them again (`--backend auto` beats WEFT_BACKEND=epoll).
    weft::internal::runtime_environment_resolved();
    weft::RuntimeOptions ro = cfg.runtime;
    // 0 leaves the count to the runtime (the CPUs this process may use), which says so.
    if (ro.hubs) ro.hubs_source = loaded.sources.of("runtime.hubs").to_string();
    ro.collect_stats = cfg.monitor.enabled;
    std::unique_ptr<weft::Runtime> workers;
    try {
        workers = std::make_unique<weft::Runtime>(ro);
    } catch (const std::exception& e) {
        log->error("cannot start the worker hubs: {}", e.what());
        return 1;
    }

    // The shared outbound client, before any plugin can use it.
    weft::http::set_default_client_options(cfg.client);

    // Plugins register routes, metrics, background fibers and shutdown hooks.
    weft::monitor::Registry registry;
    weft::http::Router router;
    // Load shedding and the plugins' stall budgets: every plugin route asks it first.
    weft::server::Protection protection(*workers, cfg.shed, cfg.stall);
    weft::server::PluginHost plugins(router, registry, workers->hub_count(), &protection);
    try {
        plugins.load_all(loaded.plugins);
    } catch (const PluginError& e) {
        log->error("{}", e.what());
        log->error("not starting: fix the plugin above, or remove it where it is listed");
        return 2;
    } catch (const std::exception& e) {
        log->error("{}", e.what());
        log->error("not starting: the plugins could not be loaded");
        return 1;
    }

    if (auto why = reports_file_problem()) {
        log->error("{}", *why);
        return 2;
    }
    std::unique_ptr<weft::monitor::Watchdog> watchdog;
    // JSON logs: each report is logged below, with its fields beside the text, rather than by
    // the watchdog's own log output (text only).
    const bool structured_reports =
        cfg.log.format == weft::server::LogFormat::json && cfg.monitor.print_blocking_reports;
    try {
        weft::monitor::MonitorSettings watchdog_settings = cfg.monitor;
        if (structured_reports) watchdog_settings.print_blocking_reports = false;
        watchdog = std::make_unique<weft::monitor::Watchdog>(*workers, watchdog_settings);
    } catch (const std::exception& e) {
        log->error("cannot start the watchdog: {}", e.what());
        return 1;
    }
    std::vector<weft::monitor::Subscription> report_logs;
    if (structured_reports) {
        // As the watchdog's text output, and "blocking": the report as /debug/blocking and
        // the reports file have it (without the fiber trees, which the text carries). Before
        // the plugins' subscribers, as the text output comes before them; kept until the
        // watchdog is gone, as the text output is.
        auto monitor_log = weft::logger(cfg.monitor.logger_name);
        auto level = [](bool allowed) {
            return allowed ? spdlog::level::info : spdlog::level::warn;
        };
        report_logs.push_back(
            watchdog->on_blocked([monitor_log, level](const weft::monitor::BlockingReport& r) {
                weft::monitor::BlockingReport brief = r;
                brief.hubs.clear();
                brief.threads.clear();
                weft::server::log_with_fields(*monitor_log, level(r.allowed),
                                              weft::monitor::format_text(r, true),
                                              "\"blocking\":" + weft::monitor::to_json(brief));
            }));
        report_logs.push_back(
            watchdog->on_unblocked([monitor_log, level](const weft::monitor::BlockingEnd& e) {
                weft::server::log_with_fields(*monitor_log, level(e.allowed),
                                              weft::monitor::format_text(e),
                                              "\"blocking\":" + weft::monitor::to_json(e));
            }));
    }
    plugins.subscribe(*watchdog);
    // A request's report names the plugin whose route it served, in every output (a plugin's
    // own fibers carry their plugin label already).
    watchdog->set_annotator([&plugins](weft::monitor::BlockingReport& r) {
        if (!weft::server::report_label(r, "plugin").empty()) return;
        const std::string route = weft::server::report_label(r, "route");
        if (route.empty()) return;
        std::string owner = plugins.owner(weft::server::report_label(r, "method"), route);
        if (!owner.empty()) r.labels.emplace_back("plugin", std::move(owner));
    });
    // Each blockage, attributed to the plugin whose route it served: the hub-blocking profile,
    // the live page's feed and the stall budgets (which a starved hub does not charge).
    weft::server::HubBlockProfile hubblock;
    weft::server::LiveFeed feed;
    std::vector<weft::monitor::Subscription> attribution;
    attribution.push_back(watchdog->on_blocked([&](const weft::monitor::BlockingReport& r) {
        std::string plugin = plugins.owner(weft::server::report_label(r, "method"),
                                           weft::server::report_label(r, "route"));
        if (plugin.empty()) plugin = weft::server::report_label(r, "plugin");  // its own fiber
        hubblock.on_report(r, plugin);
        weft::monitor::BlockingReport brief = r;  // the page has the fiber tree already
        brief.hubs.clear();
        brief.threads.clear();
        feed.publish("report", "{\"plugin\":" + weft::json_quote(plugin) + ",\"kind\":\"" +
                                   weft::server::blocking_kind(r.cause) +
                                   "\",\"report\":" + weft::monitor::to_json(brief) + "}");
        const int i = protection.plugin_index(plugin);
        if (i >= 0 && weft::server::charges_plugin(r))
            protection.add_blocking(
                static_cast<unsigned>(i),
                std::chrono::nanoseconds(static_cast<std::int64_t>(r.blocked_s * 1e9)));
    }));
    attribution.push_back(watchdog->on_unblocked([&](const weft::monitor::BlockingEnd& e) {
        auto ended = hubblock.on_end(e);
        feed.publish("end", weft::monitor::to_json(e));
        if (!ended || !ended->charged) return;  // allowed, or starved after the report
        const int i = protection.plugin_index(ended->plugin);
        if (i >= 0)
            protection.add_blocking(static_cast<unsigned>(i), ended->total - ended->reported);
    }));
    if (cfg.monitor.enabled)
        log->info("watchdog on: reporting hubs blocked for more than {:.3f} s",
                  std::chrono::duration<double>(cfg.monitor.max_blocking_time).count());
    else
        log->warn(
            "watchdog off ([monitor] enabled = false): a blocked hub is not reported, not in "
            "/metrics (no weft_hub_blocking_* series), and not seen by /readyz and /healthz");

    weft::http::ServerOptions http_opts = cfg.http;
    http_opts.access_log = access_log;
    std::unique_ptr<weft::http::Server> server;
    try {
        server = std::make_unique<weft::http::Server>(*workers, router, http_opts);
    } catch (const std::exception& e) {
        if (cfg.http.tls_cert.empty())
            log->error("cannot start the HTTP server: {}", e.what());
        else
            log->error("cannot serve HTTPS with [server] tls_cert ({}) and tls_key ({}): {}",
                       loaded.sources.of("server.tls_cert").to_string(),
                       loaded.sources.of("server.tls_key").to_string(), e.what());
        return 1;
    }
    if (server->tls()) {
        log->info("HTTPS with {}", server->tls_summary());
        if (auto w = server->tls_warning(); !w.empty()) log->warn("[server] tls_cert: {}", w);
    }

    std::vector<weft::monitor::CollectorHandle> collectors;
    collectors.push_back(weft::monitor::add_hub_metrics(registry, *workers));
    collectors.push_back(weft::monitor::add_process_metrics(registry));
    collectors.push_back(weft::monitor::add_build_info(registry));
    collectors.push_back(watchdog->add_metrics(registry));
    collectors.push_back(weft::server::add_http_metrics(registry, *server, cfg.http_metrics));
    collectors.push_back(weft::server::add_http_client_metrics(registry, workers->hub_count()));
    collectors.push_back(protection.add_metrics(registry));
    if (access_log)
        collectors.push_back(
            registry.add_collector([](std::vector<weft::monitor::MetricFamily>& out) {
                weft::monitor::MetricFamily lost;
                lost.name = "weft_access_log_lines_lost_total";
                lost.help =
                    "Access log lines that could not be written (a full disk or a closed pipe, "
                    "say), to its file, stdout or stderr.";
                lost.type = weft::monitor::MetricType::counter;
                lost.samples.push_back(
                    {{}, static_cast<double>(weft::server::access_log_lines_lost())});
                out.push_back(std::move(lost));
            }));

    auto bound = server->listen(cfg.listener.listen);
    if (!bound) {
        log->error("cannot listen on {} ({}): {}", cfg.listener.listen.to_string(),
                   loaded.sources.of("server.listen").to_string(), bound.error().message());
        return 1;
    }

    // The admin listener runs on its own runtime (its own thread), so it answers while every
    // worker hub is blocked.
    weft::server::AdminState admin;
    admin.registry = &registry;
    admin.watchdog = watchdog.get();
    admin.workers = workers.get();
    admin.server = server.get();
    admin.config_json = weft::config::to_json(schema, cfg, loaded);
    admin.debug_endpoints = cfg.admin.debug_endpoints;
    admin.hubblock = cfg.monitor.enabled ? &hubblock : nullptr;
    admin.feed = &feed;
    admin.protection = &protection;
    admin.max_event_streams = cfg.admin.max_event_streams;
    admin.started_unix_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count();
    {
        std::string pj;
        for (const auto& p : plugins.loaded()) {
            std::string routes;
            for (const auto& r : p.route_list)
                routes += (routes.empty() ? "" : ",") + weft::json_quote(r);
            pj += (pj.empty() ? "" : ",") + std::string("{\"plugin\":") + weft::json_quote(p.name) +
                  ",\"version\":" + weft::json_quote(p.version) +
                  ",\"file\":" + weft::json_quote(p.file) + ",\"routes\":[" + routes + "]}";
        }
        admin.plugins_json = "[" + pj + "]";
    }
    std::unique_ptr<weft::Runtime> admin_rt;
    weft::http::Router admin_router;
    std::unique_ptr<weft::http::Server> admin_server;
    weft::SocketAddress admin_bound;
    if (cfg.admin.enabled) {
        weft::server::register_admin_routes(admin_router, admin);
        weft::RuntimeOptions ao;
        ao.name = "admin";
        ao.hubs = 1;
        ao.hubs_source = "the admin listener's own";
        ao.backend = workers->backend();
        ao.backend_source = "the worker hubs' backend";
        ao.collect_stats = false;
        ao.offload_threads = 1;
        try {
            admin_rt = std::make_unique<weft::Runtime>(ao);
        } catch (const std::exception& e) {
            log->error("cannot start the admin hub: {}", e.what());
            return 1;
        }
        try {
            admin_server =
                std::make_unique<weft::http::Server>(*admin_rt, admin_router, cfg.admin.http);
        } catch (const std::exception& e) {
            if (cfg.admin.http.tls_cert.empty())
                log->error("cannot start the admin HTTP server: {}", e.what());
            else
                log->error(
                    "cannot serve admin HTTPS with [admin] tls_cert ({}) and tls_key ({}): {}",
                    loaded.sources.of("admin.tls_cert").to_string(),
                    loaded.sources.of("admin.tls_key").to_string(), e.what());
            return 1;
        }
        if (admin_server->tls()) {
            log->info("admin HTTPS with {}", admin_server->tls_summary());
            if (auto w = admin_server->tls_warning(); !w.empty())
                log->warn("[admin] tls_cert: {}", w);
        }
        auto ab = admin_server->listen(cfg.admin.listen);
        if (!ab) {
            log->error("cannot listen for admin on {} ({}): {}", cfg.admin.listen.to_string(),
                       loaded.sources.of("admin.listen").to_string(), ab.error().message());
            return 1;
        }
        admin_bound = *ab;
        if (cfg.admin.debug_endpoints) {
            admin_rt->hub(0).post([&admin] {
                weft::spawn("debug-sampler", [&admin] {
                    weft::server::run_debug_sampler(admin);
                }).detach();
            });
        }
    }

    {
        std::vector<weft::server::TlsListener> tls{{"server", server.get()}};
        if (admin_server) tls.push_back({"admin", admin_server.get()});
        collectors.push_back(weft::server::add_tls_metrics(registry, std::move(tls)));
    }
    plugins.start_background(*workers);
    protection.start();
    // SIGTERM and SIGINT drain from here on, before anything says the server is ready: an
    // orchestrator that stops it as soon as /readyz answers (or the ready line is logged) gets
    // a drain, not a process killed by the signal's default action. The main loop below reads
    // a signal that comes before it does from the pipe.
    weft::server::signals::serving();
    admin.ready.store(true);
    std::string plugin_list;
    for (const auto& p : plugins.loaded())
        plugin_list += (plugin_list.empty() ? "" : ", ") + p.name + " " + p.version + " (" +
                       std::to_string(p.routes) + " routes)";
    log->info("weft {} ready in {} ms: serving {}://{} on {} hub{} ({}), admin {}; plugins: {}",
              WEFT_VERSION,
              std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count(),
              server->tls() ? "https" : "http", bound->to_string(), workers->hub_count(),
              workers->hub_count() == 1 ? "" : "s", weft::backend_name(workers->backend()),
              admin_server
                  ? (admin_server->tls() ? "https://" : "http://") + admin_bound.to_string()
                  : std::string("off"),
              plugin_list.empty() ? "none" : plugin_list);
    if (plugin_list.empty()) log->warn("{}", kNoPlugins);
    if (log_level > spdlog::level::err) {
        // Back to the configured level; a plugin's logger set to another during init keeps it.
        spdlog::apply_all([log_level](const std::shared_ptr<spdlog::logger>& lg) {
            if (lg->name() != "access" && lg->level() == spdlog::level::err)
                lg->set_level(log_level);
        });
        spdlog::default_logger()->set_level(log_level);
    }

    // Signals: SIGUSR1 dumps, SIGTERM/SIGINT drain, a second one exits at once.
    const auto drain_timeout = cfg.listener.drain_timeout;
    int exit_code = 0;
    bool draining = false;
    BodyMemoryTrimmer trimmer(server->metrics().connections());
    Clock::time_point drain_deadline{};
    for (;;) {
        const int sig = weft::server::signals::next(draining ? std::chrono::milliseconds(20)
                                                             : std::chrono::milliseconds(1000));
        trimmer.look();
        weft::server::reopen_access_log_if_moved();
        if (sig == SIGUSR1) {
            watchdog->request_run_info_dump();
        } else if (sig == SIGHUP) {
            // SIGHUP reloads the TLS certificates (renewed in place by an ACME client or a
            // secret mount); other settings need a restart.
            bool any = false;
            for (auto* srv : {server.get(), admin_server.get()}) {
                if (!srv || !srv->tls()) continue;
                any = true;
                const char* which = srv == server.get() ? "server" : "admin";
                if (auto r = srv->reload_tls(); r) {
                    log->info("SIGHUP: [{}] reloaded the TLS certificate and key: {}", which,
                              srv->tls_summary());
                    if (auto w = srv->tls_warning(); !w.empty())
                        log->warn("SIGHUP: [{}] tls_cert: {}", which, w);
                } else
                    log->error(
                        "SIGHUP: [{}] cannot reload the TLS certificate and key, keeping "
                        "the ones in use: {}",
                        which, r.error());
            }
            if (!any)
                log->warn("SIGHUP: no TLS certificate to reload; other settings need a restart");
        } else if (sig == SIGTERM || sig == SIGINT) {
            if (draining) {
                log->warn("{} again: exiting now, without waiting for {} connection(s)",
                          sig == SIGTERM ? "SIGTERM" : "SIGINT", server->connections());
                spdlog::default_logger()->flush();
                weft::server::flush_access_log(std::chrono::milliseconds(500));
                std::_Exit(128 + sig);
            }
            draining = true;
            admin.draining.store(true);
            drain_deadline = Clock::now() + drain_timeout;
            log->info("{}: draining: no new connections, {} open; waiting up to {:.1f} s",
                      sig == SIGTERM ? "SIGTERM" : "SIGINT", server->connections(),
                      std::chrono::duration<double>(drain_timeout).count());
            server->drain();
        }
        if (draining) {
            if (server->wait(weft::Deadline(Clock::now()))) {
                log->info("drained: every request finished");
                break;
            }
            if (Clock::now() >= drain_deadline) {
                if (server->connections() == 0) {
                    // Nothing in flight (with drain_timeout = 0, the listeners may still be
                    // closing as the deadline is looked at): a clean drain.
                    log->info("drained: every request finished");
                    break;
                }
                log->warn(
                    "drain timeout: closing {} connection(s) still open, cutting their "
                    "requests (exit status {} unless the shutdown is stuck)",
                    server->connections(), kExitDrainCutShort);
                exit_code = kExitDrainCutShort;
                server->stop();
                if (!server->wait(std::chrono::seconds(2))) {
                    // Cancelled fibers that do not end hold their hub: say which they are.
                    log->error(
                        "{} connection(s) still open after cancelling their fibers: a handler "
                        "blocks its hub or ignores cancellation\n{}",
                        server->connections(), weft::monitor::format_run_info(*workers));
                }
                break;
            }
        }
    }

    {
        // Everything after the drain is bounded; a stuck hub must not keep the process alive.
        weft::server::ShutdownGuard guard(kShutdownLimit);
        const auto guard_start = Clock::now();
        admin.stopping.store(true);  // a CPU profile in progress stops reading the hubs
        // Background fibers end first: a hook may free what they use.
        if (!plugins.stop_background(*workers, std::chrono::seconds(2)))
            log->warn("the worker hubs' fibers now:\n{}", weft::monitor::format_run_info(*workers));
        plugins.run_shutdown_hooks();
        attribution.clear();
        collectors.clear();
        if (admin_server) {
            weft::server::shutdown_step("stopping the admin listener");
            // Live-page streams end by themselves within a poll (they look at admin.stopping),
            // with their last chunk; what is left after that is cut.
            admin_server->drain();
            if (!admin_server->wait(std::chrono::milliseconds(500))) {
                admin_server->stop();
                admin_server->wait(std::chrono::seconds(2));
            }
            admin_server.reset();
            admin_rt.reset();
        }
        weft::server::shutdown_step("closing the server's listeners and connections");
        server.reset();
        protection.stop();  // its thread reads the worker hubs
        watchdog.reset();
        weft::server::shutdown_step(
            "stopping the worker hubs (their fibers, plugins' background fibers included, end)");
        workers->stop();
        // Within what is left of the guard's limit, so that the fibers are named before it
        // ends the process.
        const auto report_after = std::clamp<Clock::duration>(
            kShutdownLimit - (Clock::now() - guard_start) - std::chrono::milliseconds(500),
            Clock::duration::zero(), kHubStopReport);
        if (!workers->join_for(report_after)) {
            // Cancelled, a fiber still holds its hub: name it before the guard ends the process
            // (again if the drain named some: hooks may have started others since).
            log->error(
                "worker hubs still running {:.1f} s after their fibers were cancelled: a fiber "
                "blocks its hub or does not end when cancelled\n{}",
                std::chrono::duration<double>(report_after).count(),
                weft::monitor::format_run_info(*workers));
        }
        {
            // Work a fiber stopped waiting for (offload_owned, a name lookup past its
            // deadline) runs on in the pools, and the runtime's end waits for it.
            const auto off = weft::internal::offload_stats(*workers);
            const auto res = weft::internal::resolver_stats(*workers);
            if (off.busy_threads + res.busy_threads > 0)
                weft::server::shutdown_step(fmt::format(
                    "waiting for {} offloaded task(s) and {} name lookup(s) still running on "
                    "their threads (work no fiber waits for any more, left by offload_owned() "
                    "or a deadline, runs to its end)",
                    off.busy_threads, res.busy_threads));
        }
        workers.reset();
        weft::server::shutdown_step("writing the last lines of the access log");
        weft::server::close_access_log();  // every line written, within the guard's limit
    }
    log->info("weft stopped (exit status {})", exit_code);
    spdlog::default_logger()->flush();
    return exit_code;
}

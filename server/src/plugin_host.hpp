// PluginHost: loads the configured plugins in order, runs each one's init with a Context, keeps
// who registered which route (two plugins claiming one route is a refusal naming both), and later
// subscribes their blocking-report callbacks to the watchdog, starts their background fibers and
// runs their shutdown hooks.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "plugin_loader.hpp"
#include "protection.hpp"
#include "weft/config/load.hpp"
#include "weft/core/runtime.hpp"
#include "weft/http/router.hpp"
#include "weft/monitor/blocking_report.hpp"
#include "weft/monitor/metrics.hpp"
#include "weft/monitor/watchdog.hpp"

namespace weft::server {

struct LoadedPlugin {
    std::string name;
    std::string version;
    std::string file;
    std::size_t routes = 0;
    std::vector<std::string> route_list;  ///< "GET /block", in registration order
    const void* handle = nullptr;         ///< dlopen's: one per file, however its path is spelled
};

class PluginHost {
  public:
    /// With `protection`, every plugin is registered there and each of its routes asks
    /// Protection::admit() before its handler runs (load shedding, stall budget).
    PluginHost(http::Router& router, monitor::Registry& registry, unsigned hubs,
               Protection* protection = nullptr);
    ~PluginHost();

    /// Opens, checks and initializes every plugin, in order. Throws PluginError (message names
    /// the file, the reason and where the plugin was listed) at the first refusal.
    void load_all(const std::vector<config::PluginConfig>& plugins);
    /// For --check-config: opens, checks and initializes every plugin against a scratch router
    /// and registry, so that a plugin's own checks of its config table and route collisions
    /// are found too. Starts no fiber and runs no shutdown hook. Throws like load_all().
    static void check_all(const std::vector<config::PluginConfig>& plugins, unsigned hubs);

    /// Subscribes the plugins' on_blocked callbacks to `watchdog` (the watchdog exists only
    /// after the plugins load). Call it once. The subscriptions end in run_shutdown_hooks() or
    /// when the host goes, whichever is first; the watchdog may go before the host.
    void subscribe(monitor::Watchdog& watchdog);
    /// Starts the background fibers the plugins asked for.
    void start_background(Runtime& rt);
    /// Cancels the background fibers and waits up to `limit` for them to end, so that a
    /// shutdown hook may free what they use; names those still running then and returns false.
    /// Before run_shutdown_hooks(), while the hubs run.
    bool stop_background(Runtime& rt, std::chrono::nanoseconds limit) noexcept;
    /// Ends the on_blocked subscriptions, then runs the shutdown hooks, last registered first;
    /// logs what throws.
    void run_shutdown_hooks() noexcept;

    const std::vector<LoadedPlugin>& loaded() const noexcept { return loaded_; }
    /// The plugin that registered `route` (a template as registered, what a blocking report's
    /// "route" label holds) for `method` (HEAD falls back to GET); "" if none.
    std::string owner(std::string_view method, std::string_view route) const;

  private:
    class ContextImpl;
    void load_one(const config::PluginConfig& pc);
    struct Background {
        std::string name;
        UniqueFunction<void()> fn;
        unsigned hub;
        std::string plugin;
    };
    struct Owner {
        std::string plugin;
        std::string file;
    };
    struct BlockedCallback {
        std::string plugin;
        std::function<void(const monitor::BlockingReport&)> fn;
    };

    http::Router& router_;
    monitor::Registry& registry_;
    unsigned hubs_;
    Protection* protection_;
    std::map<std::string, Owner> owners_;  // "METHOD shape" -> who registered it
    std::vector<LoadedPlugin> loaded_;
    // Each plugin's config table, its messages naming the plugin by its name (not the path it
    // was listed by); kept for the server's life (a plugin may keep what config() gave it).
    std::deque<config::Table> tables_;
    std::vector<Background> background_;
    struct Running;  // the started background fibers, shared with them
    std::shared_ptr<Running> running_;
    std::vector<std::pair<std::string, std::function<void()>>> shutdown_hooks_;
    std::vector<BlockedCallback> blocked_callbacks_;
    std::vector<monitor::Subscription> subscriptions_;
};

}  // namespace weft::server

// The Context a plugin's init sees, and the bookkeeping around loading plugins.
#include "plugin_host.hpp"

#include <condition_variable>
#include <mutex>
#include <stdexcept>

#include "shutdown_guard.hpp"
#include "weft/core/fiber.hpp"
#include "weft/core/hub.hpp"
#include "weft/core/internal/fault_context.hpp"
#include "weft/core/log.hpp"
#include "weft/plugin.hpp"

namespace weft::server {

namespace {
constexpr std::uint16_t kTryAgainLater = 1013;  // RFC 6455 section 7.4.1
}  // namespace

class PluginHost::ContextImpl final : public plugin::Context {
  public:
    ContextImpl(PluginHost& host, const plugin::Descriptor& d, std::string file,
                const config::Table& table, std::optional<unsigned> guard)
        : host_(host), d_(d), file_(std::move(file)), table_(table), guard_(guard) {}

    std::string_view name() const noexcept override { return d_.name; }
    std::string_view path() const noexcept override { return file_; }

    void route(std::string_view method, std::string_view tmpl, http::Handler h,
               http::RouteOptions options) override {
        claim(method, tmpl);
        if (guard_) {
            h = [p = host_.protection_, i = *guard_, h = std::move(h)](http::Request& req) {
                if (auto refused = p->admit(i)) return std::move(*refused);
                return h(req);
            };
        }
        as_owner([&] { host_.router_.add(method, tmpl, std::move(h), options); });
        route_list_.push_back(std::string(method) + " " + std::string(tmpl));
    }
    void stream_route(std::string_view method, std::string_view tmpl, http::StreamHandler h,
                      http::RouteOptions options) override {
        claim(method, tmpl);
        if (guard_) {
            h = [p = host_.protection_, i = *guard_, h = std::move(h)](http::Request& req,
                                                                       http::ResponseStream& out) {
                if (auto refused = p->admit(i)) {
                    out.set_status(refused->status()).set_content_type(refused->content_type());
                    for (const auto& [name, value] : refused->headers())
                        out.add_header(name, value);
                    (void)out.write(refused->body());
                    return;
                }
                h(req, out);
            };
        }
        as_owner([&] { host_.router_.add_stream(method, tmpl, std::move(h), options); });
        route_list_.push_back(std::string(method) + " " + std::string(tmpl));
    }
    void websocket_route(std::string_view tmpl, http::WebSocketHandler h,
                         http::WebSocketOptions options) override {
        claim("GET", tmpl);
        if (guard_) {
            // The server has answered the handshake by now: a refusal is a close with 1013
            // (Try Again Later), the WebSocket's 503.
            h = [p = host_.protection_, i = *guard_, h = std::move(h)](http::Request& req,
                                                                       http::WebSocket& ws) {
                if (p->admit(i)) {
                    ws.close(kTryAgainLater, "try again later");
                    return;
                }
                h(req, ws);
            };
        }
        as_owner([&] { host_.router_.websocket(tmpl, std::move(h), std::move(options)); });
        route_list_.push_back("GET " + std::string(tmpl) + " (WebSocket)");
    }
    const config::Table& config() const noexcept override { return table_; }
    std::shared_ptr<spdlog::logger> logger() override {
        return weft::logger("plugin." + std::string(d_.name));
    }
    monitor::Registry& metrics() override { return host_.registry_; }
    void spawn(std::string fiber_name, UniqueFunction<void()> fn, unsigned hub) override {
        host_.background_.push_back({std::move(fiber_name), std::move(fn), hub, d_.name});
    }
    void on_shutdown(std::function<void()> hook) override {
        host_.shutdown_hooks_.emplace_back(d_.name, std::move(hook));
    }
    unsigned hub_count() const noexcept override { return host_.hubs_; }
    void on_blocked(std::function<void(const monitor::BlockingReport&)> fn) override {
        host_.blocked_callbacks_.push_back({d_.name, std::move(fn)});
    }

    std::vector<std::string> take_routes() noexcept { return std::move(route_list_); }

    /// The first route collision, if any: the plugin is refused even if its init caught the
    /// exception and carried on.
    const std::string& collision() const noexcept { return collision_; }

  private:
    // Registers what `add` adds as this plugin's: its handlers' error lines name it.
    template <class F>
    void as_owner(F&& add) {
        host_.router_.set_owner(d_.name);
        try {
            add();
        } catch (...) {
            host_.router_.set_owner({});
            throw;
        }
        host_.router_.set_owner({});
    }

    void claim(std::string_view method, std::string_view tmpl) {
        // Two templates of one shape are the same route to the router.
        std::string key = std::string(method) + " " + http::Router::shape(tmpl);
        auto it = host_.owners_.find(key);
        if (it != host_.owners_.end()) {
            std::string msg = "plugin '" + std::string(d_.name) + "' (" + file_ + ") claims " +
                              std::string(method) + " " + std::string(tmpl) +
                              ", already registered by plugin '" + it->second.plugin + "' (" +
                              it->second.file + ")";
            if (collision_.empty()) collision_ = msg;
            throw std::invalid_argument(msg);  // what the Context contract promises
        }
        host_.owners_[key] = {d_.name, file_};
    }

    PluginHost& host_;
    const plugin::Descriptor& d_;
    std::string file_;
    const config::Table& table_;
    std::optional<unsigned> guard_;  // the plugin's index in Protection
    std::vector<std::string> route_list_;
    std::string collision_;
};

PluginHost::PluginHost(http::Router& router, monitor::Registry& registry, unsigned hubs,
                       Protection* protection)
    : router_(router), registry_(registry), hubs_(hubs ? hubs : 1), protection_(protection) {}

std::string PluginHost::owner(std::string_view method, std::string_view route) const {
    if (route.empty()) return {};
    std::string shape;
    try {
        shape = http::Router::shape(route);
    } catch (const std::invalid_argument&) {
        return {};
    }
    for (std::string_view m : {method, std::string_view("GET")}) {
        auto it = owners_.find(std::string(m) + " " + shape);
        if (it != owners_.end()) return it->second.plugin;
    }
    return {};
}

PluginHost::~PluginHost() = default;

void PluginHost::check_all(const std::vector<config::PluginConfig>& plugins, unsigned hubs) {
    http::Router scratch_router;
    monitor::Registry scratch_registry;
    PluginHost host(scratch_router, scratch_registry, hubs);
    host.load_all(plugins);
    // Nothing starts: the background fibers are dropped and the shutdown hooks never run.
}

void PluginHost::load_all(const std::vector<config::PluginConfig>& plugins) {
    for (const auto& pc : plugins) {
        try {
            load_one(pc);
        } catch (const PluginError& e) {
            // Where the plugin was listed: the file's line, the environment or the flag.
            throw PluginError(std::string(e.what()) + " (listed by " + pc.source.to_string() + ")");
        }
    }
}

void PluginHost::load_one(const config::PluginConfig& pc) {
    // A fatal fault in its static constructors, entry point or init names it.
    const std::string loading = "loading plugin " + pc.path;
    std::string initializing;  // (declared before the scope that may point at it)
    internal::ScopedThreadActivity doing(loading.c_str());
    OpenedPlugin op = open_plugin(pc.path);
    const plugin::Descriptor& d = *op.descriptor;
    // Metrics, stall budgets and blocking reports go by a plugin's name.
    for (const LoadedPlugin& other : loaded_) {
        if (other.name != d.name) continue;
        if (other.file == op.file)
            throw PluginError("plugin '" + other.name + "' (" + op.file + ") is listed twice");
        if (other.handle == op.handle)
            throw PluginError("plugin '" + other.name + "' (" + op.file +
                              ") is listed twice: it is the file already loaded as " + other.file);
        throw PluginError("plugin '" + other.name + "' (" + op.file +
                          ") has the name of the plugin already loaded from " + other.file +
                          ": metrics, stall budgets and blocking reports go by a plugin's "
                          "name, so two plugins may not share one");
    }
    std::optional<unsigned> guard;
    if (protection_) guard = protection_->add_plugin(d.name, pc.stall_budget);
    tables_.push_back(pc.config.with_context("plugin '" + std::string(d.name) + "' config"));
    ContextImpl ctx(*this, d, op.file, tables_.back(), guard);
    initializing = "initializing plugin '" + std::string(d.name) + "' (" + op.file + ")";
    internal::set_thread_activity(initializing.c_str());
    try {
        d.init(ctx);
    } catch (const std::exception& e) {
        if (!ctx.collision().empty()) throw PluginError(ctx.collision());
        throw PluginError("plugin '" + std::string(d.name) + "' (" + op.file +
                          "): init failed: " + e.what());
    } catch (...) {
        if (!ctx.collision().empty()) throw PluginError(ctx.collision());
        throw PluginError("plugin '" + std::string(d.name) + "' (" + op.file +
                          "): init failed with a non-standard exception");
    }
    internal::set_thread_activity(nullptr);
    if (!ctx.collision().empty()) throw PluginError(ctx.collision());
    std::vector<std::string> routes = ctx.take_routes();
    const std::size_t n = routes.size();
    loaded_.push_back(
        {d.name, d.version ? d.version : "", op.file, n, std::move(routes), op.handle});
}

void PluginHost::subscribe(monitor::Watchdog& watchdog) {
    for (auto& cb : blocked_callbacks_) {
        // Logged here rather than by the watchdog, so that the message names the plugin.
        subscriptions_.push_back(watchdog.on_blocked(
            [plugin = cb.plugin, fn = std::move(cb.fn)](const monitor::BlockingReport& r) {
                try {
                    fn(r);
                } catch (const std::exception& e) {
                    weft::logger()->error("plugin '{}': on_blocked callback failed: {}", plugin,
                                          e.what());
                } catch (...) {
                    weft::logger()->error("plugin '{}': on_blocked callback failed", plugin);
                }
            }));
    }
    blocked_callbacks_.clear();
}

struct PluginHost::Running {
    std::mutex m;
    std::condition_variable ended;
    std::map<unsigned, std::string> live;  // "plugin 'p': fiber 'f'" by serial, until it ends
    std::vector<std::vector<Fiber<void>>> handles;  // by hub, each touched on its hub only
};

void PluginHost::start_background(Runtime& rt) {
    running_ = std::make_shared<Running>();
    running_->handles.resize(rt.hub_count());
    unsigned serial = 0;
    for (auto& b : background_) {
        unsigned h = b.hub % rt.hub_count();
        // The fiber (and those it spawns) shows its plugin in the watchdog's reports, which
        // are attributed to it as a route's are. The labels live with the fiber's callable.
        // What it throws is logged as its plugin's, and its end is counted for
        // stop_background().
        struct Labelled {
            std::string plugin;
            std::string name;
            unsigned serial;
            std::shared_ptr<Running> running;
            FiberLabels labels;
            UniqueFunction<void()> fn;
            void operator()() {
                labels.keys[0] = "plugin";
                labels.values[0] = plugin;
                labels.count = 1;
                this_fiber::set_labels(&labels);
                try {
                    fn();
                } catch (...) {
                    // Ended by the shutdown's cancellation: nothing to say.
                    if (!this_fiber::cancelled()) {
                        std::string what = "an exception";
                        try {
                            throw;
                        } catch (const std::exception& e) {
                            what = e.what();
                        } catch (...) {
                        }
                        try {
                            weft::logger("plugin." + plugin)
                                ->error("plugin '{}': background fiber '{}' failed: {}", plugin,
                                        name, what);
                        } catch (...) {
                            // No memory to log: its end is still counted below.
                        }
                    }
                }
                this_fiber::set_labels(nullptr);
                std::lock_guard<std::mutex> g(running->m);
                running->live.erase(serial);
                running->ended.notify_all();
            }
        };
        {
            std::lock_guard<std::mutex> g(running_->m);
            running_->live[serial] = "plugin '" + b.plugin + "': fiber '" + b.name + "'";
        }
        auto run = std::make_unique<Labelled>(
            Labelled{b.plugin, b.name, serial++, running_, {}, std::move(b.fn)});
        rt.hub(h).post([name = std::move(b.name), run = std::move(run), running = running_,
                        h]() mutable {
            const unsigned serial = run->serial;
            try {
                running->handles[h].push_back(
                    weft::spawn(name, [run = std::move(run)] { (*run)(); }));
            } catch (const std::exception& e) {
                // Never started (no memory, a stack that cannot be mapped): not waited for.
                weft::logger()->error("background fiber '{}' could not start: {}", name, e.what());
                std::lock_guard<std::mutex> g(running->m);
                running->live.erase(serial);
                running->ended.notify_all();
            }
        });
    }
    background_.clear();
}

bool PluginHost::stop_background(Runtime& rt, std::chrono::nanoseconds limit) noexcept {
    if (!running_) return true;
    bool ended = true;
    const std::shared_ptr<Running> running = running_;
    try {
        for (unsigned h = 0; h < running->handles.size() && h < rt.hub_count(); ++h)
            rt.hub(h).post([running, h] {
                for (Fiber<void>& f : running->handles[h]) {
                    f.cancel();
                    f.detach();
                }
                running->handles[h].clear();
            });
        std::unique_lock<std::mutex> lock(running->m);
        if (running->live.empty()) return true;
        shutdown_step("waiting for the plugins' background fibers to end");
        if (!running->ended.wait_for(lock, limit, [&] { return running->live.empty(); })) {
            ended = false;
            std::string names;
            for (const auto& [serial, name] : running->live)
                names += (names.empty() ? "" : ", ") + name;
            weft::logger()->warn(
                "{} background fiber(s) still running {:.1f} s after their cancellation ({}): "
                "the shutdown hooks run now all the same; a background loop must end when "
                "weft::this_fiber::cancelled() says so, and must not block its hub",
                running->live.size(), std::chrono::duration<double>(limit).count(), names);
        }
    } catch (...) {
        // Out of memory to post or to log: the hooks run all the same.
    }
    try {
        shutdown_step("");
    } catch (...) {
    }
    return ended;
}

void PluginHost::run_shutdown_hooks() noexcept {
    try {
        shutdown_step("waiting for a plugin's blocking-report callback to return");
    } catch (...) {
    }
    subscriptions_.clear();  // waits for a callback in progress
    for (auto it = shutdown_hooks_.rbegin(); it != shutdown_hooks_.rend(); ++it) {
        try {
            shutdown_step("running the shutdown hook of plugin '" + it->first + "'");
            it->second();
        } catch (const std::exception& e) {
            weft::logger()->error("plugin '{}': shutdown hook failed: {}", it->first, e.what());
        } catch (...) {
            weft::logger()->error("plugin '{}': shutdown hook failed", it->first);
        }
    }
    shutdown_hooks_.clear();
    try {
        shutdown_step("");
    } catch (...) {
    }
}

}  // namespace weft::server

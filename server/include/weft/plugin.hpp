// The Weft plugin interface: what a handler plugin (a shared object) exports and what it may do
// while the server loads it. A plugin defines one init function and names it with WEFT_PLUGIN:
//
//     static void init(weft::plugin::Context& ctx) {
//         ctx.route("GET", "/hello/{name}", [](weft::http::Request& req) {
//             return weft::http::Response::text("hi " + std::string(*req.param("name")));
//         });
//     }
//     WEFT_PLUGIN("hello", "1.0", init)
//
// Build it with the SDK's weft_add_plugin() (find_package(weft)). The server refuses a plugin
// whose ABI version or build signature (compiler, standard library, Weft, spdlog and fmt
// versions, sanitizers) differs from its own, and never unloads one.
#pragma once

// One clear sentence instead of pages of template errors (the rest of the file is skipped).
#include <version>  // which standard library, for the second check
#if __cplusplus < 202002L
#error "Weft's headers need C++20: compile this plugin with -std=c++20 (weft_add_plugin() does)"
#elif defined(__clang__) && __clang_major__ < 15 && defined(__GLIBCXX__)
// Its libstdc++ has no std::source_location for Clang 14.
#error "Clang 14 and older cannot compile Weft's headers; build plugins with Weft's compiler"
#else

#include <fmt/core.h>
#include <spdlog/logger.h>
#include <spdlog/version.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <version>

#include "weft/config/table.hpp"
#include "weft/core/unique_function.hpp"
#include "weft/http/router.hpp"
#include "weft/monitor/blocking_report.hpp"
#include "weft/monitor/metrics.hpp"
#include "weft/version.hpp"

/// Version of the plugin ABI: the Descriptor layout and the Context interface.
/// 2: Context::on_blocked. 3: RouteOptions on Context::route and stream_route.
/// 4: Context::websocket_route. 5: WebSocketOptions::allowed_origins.
/// 6: http::ClientOptions::max_idle_total.
/// 7: the layouts of FiberGroup (its OnError) and of WaitQueue, in Mutex, Semaphore, Event,
///    Channel and WaitGroup (its owning hub).
#define WEFT_PLUGIN_ABI_VERSION 7u

#define WEFT_PLUGIN_STR_(x) #x
#define WEFT_PLUGIN_STR(x) WEFT_PLUGIN_STR_(x)

#if defined(__SANITIZE_ADDRESS__)
#define WEFT_PLUGIN_SANITIZERS_ "address"
#elif defined(__SANITIZE_THREAD__)
#define WEFT_PLUGIN_SANITIZERS_ "thread"
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WEFT_PLUGIN_SANITIZERS_ "address"
#elif __has_feature(thread_sanitizer)
#define WEFT_PLUGIN_SANITIZERS_ "thread"
#endif
#endif
#ifndef WEFT_PLUGIN_SANITIZERS_
#define WEFT_PLUGIN_SANITIZERS_ "none"
#endif

#if defined(_GLIBCXX_RELEASE)
#define WEFT_PLUGIN_STDLIB_ \
    "libstdc++-" WEFT_PLUGIN_STR(_GLIBCXX_RELEASE) "-" WEFT_PLUGIN_STR(__GLIBCXX__)
#elif defined(_LIBCPP_VERSION)
#define WEFT_PLUGIN_STDLIB_ "libc++-" WEFT_PLUGIN_STR(_LIBCPP_VERSION)
#else
#define WEFT_PLUGIN_STDLIB_ "unknown-stdlib"
#endif

/// spdlog's and fmt's versions: a spdlog logger crosses the plugin boundary (Context::logger).
#define WEFT_PLUGIN_LOGGING_                                         \
    "spdlog-" WEFT_PLUGIN_STR(SPDLOG_VER_MAJOR) "." WEFT_PLUGIN_STR( \
        SPDLOG_VER_MINOR) "." WEFT_PLUGIN_STR(SPDLOG_VER_PATCH) ";fmt=" WEFT_PLUGIN_STR(FMT_VERSION)

/// What a plugin and the server must agree on to share C++ objects: compiler, standard library,
/// Weft version, the spdlog and fmt versions, sanitizers. Compared as strings at load time.
#define WEFT_BUILD_SIGNATURE                                                     \
    "weft=" WEFT_VERSION ";compiler=" __VERSION__ ";stdlib=" WEFT_PLUGIN_STDLIB_ \
    ";logging=" WEFT_PLUGIN_LOGGING_ ";sanitizers=" WEFT_PLUGIN_SANITIZERS_

namespace weft::plugin {

/// What a plugin may do while it initializes. Valid during init only (keep nothing but what
/// the methods return). Called on the server's main thread, before the listeners open.
/// `weft --check-config` runs init too, against a scratch router and registry, to find bad
/// config tables and route collisions: nothing registered then serves, no background fiber
/// starts and no shutdown hook runs.
class Context {
  public:
    /// The plugin's name (from WEFT_PLUGIN) and the file it was loaded from.
    virtual std::string_view name() const noexcept = 0;
    virtual std::string_view path() const noexcept = 0;

    /// Registers a handler for `method` ("GET", "POST", ...) on `path_template` ("/users/{id}",
    /// "/files/{rest...}"). Throws std::invalid_argument for a malformed template, or when
    /// another plugin (or this one) already claims the method and template: the server then
    /// refuses to start and says which plugins collided (even if init catches the exception).
    /// `options.timeout` gives the route its own request deadline instead of the server's
    /// request_timeout (a long poll, a large upload).
    virtual void route(std::string_view method, std::string_view path_template,
                       http::Handler handler, http::RouteOptions options = {}) = 0;
    /// The same for a streaming handler (chunked response written in pieces).
    virtual void stream_route(std::string_view method, std::string_view path_template,
                              http::StreamHandler handler, http::RouteOptions options = {}) = 0;

    /// This plugin's `config` table from its [[plugin]] entry (empty when there is none). Its
    /// getters return config::Expected: an error (whose value() throws) names the plugin, the
    /// key and where it was set. Valid for the server's life.
    virtual const config::Table& config() const noexcept = 0;
    /// The logger "plugin.<name>", with the server's sinks and format.
    virtual std::shared_ptr<spdlog::logger> logger() = 0;
    /// The registry behind /metrics: counters, gauges and histograms created here appear there.
    /// Name them with a prefix of the plugin's own: one named as a metric the server reports
    /// itself (process_*, weft_*, http_server_*, http_client_*) is left out, with a warning.
    virtual monitor::Registry& metrics() = 0;

    /// Starts `fn` as a background fiber named `fiber_name` on hub `hub % hub_count()` once the
    /// server runs. It is cancelled (its blocking calls return Errc::cancelled) when the server
    /// stops after its drain, and the shutdown hooks run once it has ended (2 s at most: then
    /// a warning names it and the hooks run all the same). A loop that retries on errors must
    /// end when weft::this_fiber::cancelled() says so: the whole shutdown waits 5 s at most,
    /// then exits with status 1. An exception it lets out is logged as this plugin's.
    virtual void spawn(std::string fiber_name, UniqueFunction<void()> fn, unsigned hub = 0) = 0;
    /// Runs `hook` on the main thread after the drain and after this server's background
    /// fibers (spawn()) have ended (the fibers they spawned themselves are cancelled later,
    /// as the hubs stop), before the hubs stop; hooks run in reverse order of registration. An
    /// exception in a hook is logged. The whole shutdown (hooks included) must end within 5 s of
    /// the drain, or the process exits with status 1 without waiting further. After a drain that
    /// timed out, a handler that ignored its cancellation (blocked in a system call) may still hold
    /// its hub while hooks run: a hook must not free what handlers use.
    virtual void on_shutdown(std::function<void()> hook) = 0;
    /// Worker hubs the server runs (handlers may use per-hub state indexed by Hub::index()).
    virtual unsigned hub_count() const noexcept = 0;

    /// Calls `fn` with every blocking report the watchdog makes once the server runs (gevent's
    /// EventLoopBlocked), reports marked `allowed` included; the report is complete (symbolized
    /// stack, request labels, fiber trees). Kept until shutdown, so there is nothing to
    /// unsubscribe: the subscription ends just before the shutdown hooks run, and from then on
    /// `fn` is not running and is never called again. Never called while the watchdog is
    /// disabled, nor under --check-config.
    /// Threads: `fn` runs on the watchdog's reporter thread, never on a hub, so it must not call
    /// fiber-blocking APIs; it may block briefly, but a slow `fn` delays later reports (never
    /// the detection of blockages). An exception it throws is logged and the server carries on.
    virtual void on_blocked(std::function<void(const monitor::BlockingReport&)> fn) = 0;

    /// A WebSocket route on GET `path_template` (see weft/http/websocket.hpp): the server
    /// answers the handshake, then `handler` owns the connection on its fiber. Collisions are
    /// refused as for route().
    virtual void websocket_route(std::string_view path_template, http::WebSocketHandler handler,
                                 http::WebSocketOptions options = {}) = 0;

  protected:
    ~Context() = default;
};

using InitFn = void (*)(Context& ctx);

/// What the entry point returns. `abi_version` stays the first field in every ABI version.
struct Descriptor {
    std::uint32_t abi_version;
    std::uint32_t descriptor_size;
    const char* name;
    const char* version;
    const char* build_signature;
    InitFn init;
};

/// Name of the one symbol a plugin exports.
inline constexpr const char* kEntryPoint = "weft_plugin_descriptor";

}  // namespace weft::plugin

/// Defines the plugin's entry point. NAME and VERSION are string literals (NAME: up to 64
/// letters, digits, '_', '-' or '.'; it names the plugin's logger and metrics); INIT is a function
/// `void INIT(weft::plugin::Context&)`; it may throw to refuse loading (the message is shown).
#define WEFT_PLUGIN(NAME, VERSION, INIT)                                                       \
    extern "C" __attribute__((visibility("default"), used)) const ::weft::plugin::Descriptor*  \
    weft_plugin_descriptor() noexcept {                                                        \
        static const ::weft::plugin::Descriptor descriptor{WEFT_PLUGIN_ABI_VERSION,            \
                                                           sizeof(::weft::plugin::Descriptor), \
                                                           NAME,                               \
                                                           VERSION,                            \
                                                           WEFT_BUILD_SIGNATURE,               \
                                                           &INIT};                             \
        return &descriptor;                                                                    \
    }

#endif  // C++20 and a compiler that can build Weft

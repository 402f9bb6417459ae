// The plugin template: a small but complete Weft handler plugin. It registers two routes, reads
// its [plugin.config] table, counts greetings in a metric that /metrics shows, runs a background
// fiber, logs through the server's logger and says goodbye from a shutdown hook.
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

#include "weft/core/fiber.hpp"
#include "weft/plugin.hpp"

namespace {

using weft::http::Request;
using weft::http::Response;

/// What the handlers, the background fiber and the shutdown hook share. Handlers run on every
/// hub at once: after init only the counters change, and they are thread-safe.
struct Hello {
    std::string greeting;
    weft::monitor::Counter* greetings = nullptr;
    weft::monitor::Counter* ticks = nullptr;
    std::shared_ptr<spdlog::logger> log;
};

/// Throws (which refuses the plugin, and the server says why) when the table has a bad value.
template <class T>
T must(weft::config::Expected<T> v) {
    if (!v) throw std::invalid_argument(v.error().to_string());
    return std::move(v).value();
}

void init(weft::plugin::Context& ctx) {
    const weft::config::Table& cfg = ctx.config();
    // Unknown keys are errors with a "did you mean", like the server's own keys.
    auto unknown = cfg.check_keys({"greeting", "tick_interval"});
    if (!unknown.empty()) throw std::invalid_argument(unknown.front().to_string());

    auto hello = std::make_shared<Hello>();
    hello->greeting = must(cfg.get_string("greeting", "Hello"));
    const auto tick = must(cfg.get_duration("tick_interval", std::chrono::seconds(1)));
    if (tick <= std::chrono::nanoseconds::zero())
        throw std::invalid_argument(
            cfg.error("tick_interval", "must be greater than 0").to_string());
    hello->log = ctx.logger();

    // Metrics: families live as long as the server; keep the series, not the context.
    hello->greetings = &ctx.metrics()
                            .counter("hello_greetings_total", "Greetings sent by the hello plugin.")
                            .get();
    hello->ticks =
        &ctx.metrics()
             .counter("hello_ticks_total", "Wake-ups of the hello plugin's background fiber.")
             .get();

    ctx.route("GET", "/hello", [hello](Request&) {
        hello->greetings->inc();
        return Response::text(hello->greeting + ", World!\n");
    });
    ctx.route("GET", "/hello/{name}", [hello](Request& req) {
        hello->greetings->inc();
        return Response::text(hello->greeting + ", " + std::string(*req.param("name")) + "!\n");
    });

    // A background fiber on hub 0: it parks in sleep_for, so it costs its hub nothing. When the
    // server stops, sleep_for returns Errc::cancelled and the loop ends.
    ctx.spawn("hello-ticker", [hello, tick] {
        while (weft::sleep_for(tick))
            hello->ticks->inc();
        hello->log->debug("ticker stopped");
    });

    ctx.on_shutdown([hello] {
        hello->log->info("hello plugin shutting down after {} greetings",
                         static_cast<long long>(hello->greetings->value()));
    });

    hello->log->info("hello plugin ready: greeting '{}', ticking every {} ms", hello->greeting,
                     std::chrono::duration_cast<std::chrono::milliseconds>(tick).count());
}

}  // namespace

WEFT_PLUGIN("hello", "1.0", init)

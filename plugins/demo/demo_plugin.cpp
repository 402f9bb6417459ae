// The bundled demo plugin: the demo routes (/, /echo, /sleep, /block, /spin, /offload, /fetch,
// /fanout, /ws/echo), which show what cooperative and blocking code each do to a hub.
// [plugin.config] hazardous_routes = false leaves out those that let any caller block a hub
// or make the server fetch a URL of its choosing (see demo_routes.hpp): the container's
// configuration, which listens on every interface, sets it.
#include <stdexcept>

#include "demo_routes.hpp"
#include "weft/plugin.hpp"

namespace {

void init(weft::plugin::Context& ctx) {
    const weft::config::Table& cfg = ctx.config();
    if (auto unknown = cfg.check_keys({"hazardous_routes"}); !unknown.empty())
        throw std::invalid_argument(unknown.front().to_string());
    auto hazardous = cfg.get_bool("hazardous_routes", true);
    if (!hazardous) throw std::invalid_argument(hazardous.error().to_string());
    // register_demo_routes() fills a router; re-register its routes through the context so the
    // server knows they are the demo plugin's.
    weft::http::Router demo;
    weft::demo::register_demo_routes(demo, *hazardous);
    if (*hazardous)
        ctx.logger()->info(
            "demo: /block, /spin, /std_sleep and /offload let any client hold a hub or the "
            "offload threads, and /fetch and /fanout make this server fetch any URL; set "
            "[plugin.config] hazardous_routes = false where others can reach it");
    for (const weft::http::Endpoint* e : demo.endpoints()) {
        if (e->websocket)
            ctx.websocket_route(e->route, e->websocket, e->websocket_options);
        else if (e->stream)
            ctx.stream_route(e->method, e->route, e->stream);
        else
            ctx.route(e->method, e->route, e->handler);
    }
    ctx.logger()->debug("demo routes registered");
}

}  // namespace

WEFT_PLUGIN("demo", "1.0", init)

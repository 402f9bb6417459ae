// The bundled demo plugin: the demo routes (/, /echo, /sleep, /block, /spin, /offload, /fetch,
// /fanout, /ws/echo), which show what cooperative and blocking code each do to a hub.
#include "demo_routes.hpp"
#include "weft/plugin.hpp"

namespace {

void init(weft::plugin::Context& ctx) {
    // register_demo_routes() fills a router; re-register its routes through the context so the
    // server knows they are the demo plugin's.
    weft::http::Router demo;
    weft::demo::register_demo_routes(demo);
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

// Test plugin, built twice (clash_a and clash_b): each claims GET /items/{PARAM} with its own
// parameter name. The templates differ in spelling but are one route, so loading both must be
// refused with a message naming both plugins and files. With [plugin.config]
// swallow_collision = true the plugin catches the collision and carries on: still refused.
#include <exception>

#include "weft/plugin.hpp"

#ifndef CLASH_NAME
#error "define CLASH_NAME and CLASH_PARAM"
#endif

namespace {

void init(weft::plugin::Context& ctx) {
    const bool swallow = ctx.config().get_bool("swallow_collision", false).value();
    try {
        ctx.route("GET", "/items/{" CLASH_PARAM "}",
                  [](weft::http::Request&) { return weft::http::Response::text(CLASH_NAME "\n"); });
    } catch (const std::exception&) {
        if (!swallow) throw;
    }
    ctx.route("GET", "/" CLASH_NAME,
              [](weft::http::Request&) { return weft::http::Response::text(CLASH_NAME "\n"); });
}

}  // namespace

WEFT_PLUGIN(CLASH_NAME, "1.0", init)

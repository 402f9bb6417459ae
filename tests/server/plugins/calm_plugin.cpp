// Test plugin: a plugin that never blocks (GET /calm answers at once, GET /calm/nap sleeps
// cooperatively), served beside the demo plugin whose /block keeps blocking: the stall budget
// must quarantine the demo plugin and leave this one in full service.
#include <charconv>
#include <chrono>
#include <string>

#include "weft/core/fiber.hpp"
#include "weft/plugin.hpp"

namespace {

void init(weft::plugin::Context& ctx) {
    ctx.route("GET", "/calm",
              [](weft::http::Request&) { return weft::http::Response::text("calm\n"); });
    ctx.route("GET", "/calm/nap", [](weft::http::Request& req) {
        long ms = 10;
        if (auto v = req.query("ms")) std::from_chars(v->data(), v->data() + v->size(), ms);
        (void)weft::sleep_for(std::chrono::milliseconds(ms));
        return weft::http::Response::text("napped " + std::to_string(ms) + " ms\n");
    });
}

}  // namespace

WEFT_PLUGIN("calm", "1.0", init)

// Test plugin: its init registers a route and then throws, so the server must refuse to start
// and say which file failed and why. [plugin.config] throw = "int" throws a non-std exception.
#include <stdexcept>

#include "weft/plugin.hpp"

namespace {

void init(weft::plugin::Context& ctx) {
    ctx.route("GET", "/never",
              [](weft::http::Request&) { return weft::http::Response::text("unreachable\n"); });
    if (ctx.config().get_string("throw", "runtime_error").value() == "int") throw 42;
    throw std::runtime_error("cannot reach the orders database at 127.0.0.1:1");
}

}  // namespace

WEFT_PLUGIN("throwing", "1.0", init)

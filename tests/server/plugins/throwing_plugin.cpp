// Test plugin: its init registers a route and then throws, so the server must refuse to start
// and say which file failed and why. [plugin.config] throw = "int" throws a non-std exception;
// throw = "bytes" a message with bytes that are not UTF-8; throw = "segv" dies of SIGSEGV.
#include <signal.h>

#include <stdexcept>
#include <string>

#include "weft/plugin.hpp"

namespace {

void init(weft::plugin::Context& ctx) {
    ctx.route("GET", "/never",
              [](weft::http::Request&) { return weft::http::Response::text("unreachable\n"); });
    const std::string mode = ctx.config().get_string("throw", "runtime_error").value();
    if (mode == "int") throw 42;
    if (mode == "segv") ::raise(SIGSEGV);  // a crash in init: the report names the plugin
    // Untrusted text with bytes that are not UTF-8 and control characters: logs must stay
    // well-formed (a JSON line stays valid UTF-8 JSON).
    if (mode == "bytes") throw std::runtime_error("bad name 'caf\xe9' \x01 \xf0\x9f\x98\x80 ok");
    throw std::runtime_error("cannot reach the orders database at 127.0.0.1:1");
}

}  // namespace

WEFT_PLUGIN("throwing", "1.0", init)

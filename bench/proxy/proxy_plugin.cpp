// A reverse proxy in a few lines: every GET goes to the configured upstream through a pooled
// weft::http::Client and its answer (status, Content-Type, body) comes back. For
// bench/proxy/run.py; [plugin.config] upstream = "http://127.0.0.1:PORT" (or https://),
// ca_file = a PEM file for a private CA.
#include <memory>
#include <stdexcept>
#include <string>

#include "weft/http/client.hpp"
#include "weft/plugin.hpp"

namespace {

void init(weft::plugin::Context& ctx) {
    const auto& cfg = ctx.config();
    auto upstream = cfg.get_string("upstream");
    if (!upstream) throw std::invalid_argument(upstream.error().to_string());
    weft::http::ClientOptions o;
    o.max_idle_per_host = 1024;
    o.max_idle_total = 1024;
    o.ca_file = cfg.get_string("ca_file", "").value();
    auto client = std::make_shared<weft::http::Client>(o);
    const std::string base = *upstream;
    ctx.route("GET", "/{rest...}", [client, base](weft::http::Request& req) {
        std::string url = base + std::string(req.path());
        if (!req.raw_query().empty()) url += "?" + std::string(req.raw_query());
        auto r = client->get(url);
        if (!r) return weft::http::Response::text("upstream: " + r.error().message() + "\n", 502);
        auto type = r->header("content-type");
        return weft::http::Response(r->status, std::move(r->body),
                                    std::string(type.value_or("application/octet-stream")));
    });
}

}  // namespace

WEFT_PLUGIN("proxy", "1.0", init)

// The cooperative example plugin's routes. Each waits on a real server for `ms` milliseconds
// (PostgreSQL's pg_sleep, an upstream HTTP server, Redis's BLPOP timeout, a thread sleep) so that
// 20 requests at once show whether they wait together or one after another:
//
//   GET /pg?ms=N                 libpq, blocking API          (cooperative through patching)
//   GET /pg_explicit?ms=N        libpq, nonblocking API + weft::wait_fd
//   GET /pg_pool?ms=N            libpq, blocking API, on a per-hub pool of pg_pool_size
//                                connections (the database benchmark's route)
//   GET /pg_shared?ms=N          libpq, blocking API, on one connection per hub behind a
//                                std::mutex held across the query (the requests take turns;
//                                the hub serves others meanwhile, through patching)
//   GET /pg_cv_pool?ms=N         libpq, blocking API, on a process-wide pool of 2 connections
//                                behind a std::mutex and a std::condition_variable (a fiber
//                                that finds it empty waits on the condition variable; through
//                                patching, only that fiber waits, on whichever hub)
//   GET /curl?url=URL            libcurl easy API             (cooperative through patching)
//   GET /curl_explicit?url=URL   libcurl multi socket API + weft::poll_fds
//   GET /redis?ms=N              hiredis, blocking API        (cooperative through patching)
//   GET /redis_explicit?ms=N     hiredis async API + weft::wait_fd
//   GET /thread_sleep?ms=N       std::this_thread::sleep_for  (cooperative through patching)
//
// Config ([plugin.config]): postgres (a libpq connection string), pg_pool_size (connections per
// hub, default 20), redis_host, redis_port.
#include <curl/curl.h>

#include <charconv>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "cooperative.hpp"
#include "weft/core/hub.hpp"
#include "weft/plugin.hpp"

namespace {

using weft::http::Request;
using weft::http::Response;
using namespace std::chrono_literals;

constexpr auto kDeadline = 10s;  // for every call of these routes

struct Settings {
    std::string postgres;
    std::vector<std::unique_ptr<coop::PgPool>> pools;     // one per hub, by Hub::index()
    std::vector<std::unique_ptr<coop::PgShared>> shared;  // one per hub, by Hub::index()
    std::unique_ptr<coop::PgCondPool> cv_pool;            // every hub's
    std::string redis_host;
    int redis_port = 6379;
};

template <class T>
T must(weft::config::Expected<T> v) {
    if (!v) throw std::invalid_argument(v.error().to_string());
    return std::move(v).value();
}

/// `ms` from the query: 0..9000, below the calls' deadline (kDeadline), which a longer wait
/// would always run into.
std::chrono::milliseconds ms_param(const Request& req) {
    auto v = req.query("ms");
    long n = -1;
    if (v) std::from_chars(v->data(), v->data() + v->size(), n);
    if (n < 0 || n > 9'000) throw std::invalid_argument("ms must be 0..9000");
    return std::chrono::milliseconds(n);
}

std::string url_param(const Request& req) {
    auto v = req.query("url");
    if (!v || !(v->starts_with("http://") || v->starts_with("https://")))
        throw std::invalid_argument("url must be an http:// or https:// URL");
    return std::string(*v);
}

// Bad parameters are the client's fault (400); a failing backend is a 502.
template <class F>
weft::http::Handler route(F fn) {
    return [fn](Request& req) -> Response {
        try {
            return Response::text(fn(req) + "\n");
        } catch (const std::invalid_argument& e) {
            return Response::text(std::string(e.what()) + "\n", 400);
        } catch (const std::exception& e) {
            return Response::text(std::string(e.what()) + "\n", 502);
        }
    };
}

void init(weft::plugin::Context& ctx) {
    const weft::config::Table& cfg = ctx.config();
    auto unknown = cfg.check_keys({"postgres", "pg_pool_size", "redis_host", "redis_port"});
    if (!unknown.empty()) throw std::invalid_argument(unknown.front().to_string());
    auto s = std::make_shared<Settings>();
    s->postgres = must(cfg.get_string("postgres", "host=127.0.0.1 dbname=postgres"));
    s->redis_host = must(cfg.get_string("redis_host", "127.0.0.1"));
    s->redis_port = static_cast<int>(must(cfg.get_int("redis_port", 6379)));
    const auto pool_size = must(cfg.get_int("pg_pool_size", 20));
    if (pool_size < 1 || pool_size > 10'000)
        throw std::invalid_argument(cfg.error("pg_pool_size", "must be 1..10000").to_string());
    for (unsigned i = 0; i < ctx.hub_count(); ++i) {
        s->pools.push_back(
            std::make_unique<coop::PgPool>(s->postgres, static_cast<std::size_t>(pool_size)));
        s->shared.push_back(std::make_unique<coop::PgShared>(s->postgres));
    }
    s->cv_pool = std::make_unique<coop::PgCondPool>(s->postgres, 2);
    if (curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK)
        throw std::runtime_error("curl_global_init failed");

    ctx.route("GET", "/pg", route([s](Request& req) {
                  coop::pg_sleep_blocking(s->postgres, ms_param(req));
                  return std::string("pg_sleep done");
              }));
    ctx.route("GET", "/pg_explicit", route([s](Request& req) {
                  coop::pg_sleep_explicit(s->postgres, ms_param(req), kDeadline);
                  return std::string("pg_sleep done");
              }));
    ctx.route("GET", "/pg_pool", route([s](Request& req) {
                  s->pools[weft::Hub::current()->index()]->pg_sleep(ms_param(req), kDeadline);
                  return std::string("pg_sleep done");
              }));
    ctx.route("GET", "/pg_shared", route([s](Request& req) {
                  s->shared[weft::Hub::current()->index()]->pg_sleep(ms_param(req));
                  return std::string("pg_sleep done");
              }));
    ctx.route("GET", "/pg_cv_pool", route([s](Request& req) {
                  s->cv_pool->pg_sleep(ms_param(req));
                  return std::string("pg_sleep done");
              }));
    ctx.route("GET", "/curl", route([](Request& req) {
                  return coop::curl_get_blocking(url_param(req), kDeadline);
              }));
    ctx.route("GET", "/curl_explicit", route([](Request& req) {
                  return coop::curl_get_explicit(url_param(req), kDeadline);
              }));
    ctx.route("GET", "/redis", route([s](Request& req) {
                  return "BLPOP " +
                         coop::redis_blpop_blocking(s->redis_host, s->redis_port, ms_param(req));
              }));
    ctx.route("GET", "/redis_explicit", route([s](Request& req) {
                  return "BLPOP " + coop::redis_blpop_explicit(s->redis_host, s->redis_port,
                                                               ms_param(req), kDeadline);
              }));
    ctx.route("GET", "/thread_sleep", route([](Request& req) {
                  const auto d = ms_param(req);
                  std::this_thread::sleep_for(d);
                  return "slept " + std::to_string(d.count()) + " ms";
              }));
    ctx.logger()->info("cooperative plugin ready: postgres '{}', redis {}:{}", s->postgres,
                       s->redis_host, s->redis_port);
}

}  // namespace

WEFT_PLUGIN("cooperative", "1.0", init)

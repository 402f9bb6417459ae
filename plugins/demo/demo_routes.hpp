// The demo routes (the bundled demo plugin of the server, and the example program): a hello
// world, an echo, and five ways to spend N milliseconds that show what blocking a hub does.
#pragma once

#include "weft/http/router.hpp"

namespace weft::demo {

using http::Router;

/// Largest `ms` the demo routes accept.
inline constexpr long kDemoMaxMs = 30'000;

/// Registers:
///   GET  /              -> "Hello, World!" (text/plain)
///   POST /echo          -> the request body, with the request's Content-Type
///   GET  /sleep?ms=N    -> weft::sleep_for(N ms): parks the fiber, the hub serves others
///   GET  /block?ms=N    -> the nanosleep system call, made directly: blocks the whole hub
///                          (syscall patching cannot see a raw system call)
///   GET  /std_sleep?ms=N -> std::this_thread::sleep_for(N ms): with syscall patching on (the
///                          server's default) only the fiber sleeps; off, the hub blocks
///   GET  /spin?ms=N     -> a CPU busy loop for N ms: blocks the hub too
///   GET  /offload?ms=N  -> the blocking sleep inside weft::offload: the hub stays free
///   GET  /fetch?url=URL -> GETs URL with weft::http::default_client():
///                          "status=<code> bytes=<n>", or 502/504 with the client's error
///   GET  /fanout?url=URL&n=N -> N such GETs at once in fibers joined within the request's
///                          deadline: "n=<N> ok=<2xx answers> bytes=<total>"
///   GET  /ws/echo       -> a WebSocket that sends every message back
/// `ms` must be a whole number from 0 to kDemoMaxMs; otherwise 400 with a message.
/// With `hazardous` false, the routes that let any caller hold a hub (/block, /spin,
/// /std_sleep), the offload threads (/offload), or make this server fetch any URL of the
/// caller's choosing, internal ones included (/fetch, /fanout), are left out: for a server
/// that others can reach.
/// Throws std::invalid_argument if one of these routes is already registered.
void register_demo_routes(Router& router, bool hazardous = true);

}  // namespace weft::demo

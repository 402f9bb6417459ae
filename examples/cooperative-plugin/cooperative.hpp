// The cooperative example plugin: each library's call, made two ways. The "blocking" functions
// use the library's ordinary blocking API unchanged; with syscall patching on (the server's
// default) the fiber parks in the patched libc calls underneath. The "explicit" ones drive the
// library's nonblocking API with weft::wait_fd / weft::poll_fds: they park the fiber whatever
// the configuration, which is the way to go when patching is off or a library bypasses libc.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "weft/core/deadline.hpp"

namespace coop {

/// Runs `SELECT pg_sleep(d)` on a fresh connection; throws std::runtime_error with libpq's
/// message when it fails.
void pg_sleep_blocking(const std::string& conninfo, std::chrono::milliseconds d);
void pg_sleep_explicit(const std::string& conninfo, std::chrono::milliseconds d,
                       weft::Deadline deadline);

/// A pool of PostgreSQL connections for one hub (a hub's fibers share it; another hub has its
/// own): at most `size` connections, made when first needed and kept; a fiber that finds them
/// all busy parks until one comes back.
class PgPool {
  public:
    PgPool(std::string conninfo, std::size_t size);
    ~PgPool();
    PgPool(const PgPool&) = delete;
    PgPool& operator=(const PgPool&) = delete;
    /// Runs `SELECT pg_sleep(d)` on a pooled connection with libpq's blocking API.
    void pg_sleep(std::chrono::milliseconds d, weft::Deadline deadline);

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

/// One PostgreSQL connection shared by every fiber of a hub behind a std::mutex, as
/// thread-per-request code keeps one: the lock is held across the query's wait. With syscall
/// patching the next fiber to lock it parks (pthread_mutex_lock is patched), so the requests
/// take turns on the connection while the hub serves others; without, the hub would deadlock.
class PgShared {
  public:
    explicit PgShared(std::string conninfo);
    ~PgShared();
    PgShared(const PgShared&) = delete;
    PgShared& operator=(const PgShared&) = delete;
    /// Runs `SELECT pg_sleep(d)` on the shared connection (made when first needed, made again
    /// after a failed call) with libpq's blocking API.
    void pg_sleep(std::chrono::milliseconds d);

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

/// A process-wide pool of `size` PostgreSQL connections behind a std::mutex and a
/// std::condition_variable, as thread-per-request code writes one: every hub's fibers share it,
/// and one that finds it empty waits on the condition variable until a connection comes back.
/// The mutex is held only to take or return a connection, never across a query. With syscall
/// patching the wait parks the fiber (pthread_cond_wait is patched), and a return on any hub
/// wakes it; without, the first wait on an empty pool would hang its hub.
class PgCondPool {
  public:
    PgCondPool(std::string conninfo, std::size_t size);
    ~PgCondPool();
    PgCondPool(const PgCondPool&) = delete;
    PgCondPool& operator=(const PgCondPool&) = delete;
    /// Runs `SELECT pg_sleep(d)` on a pooled connection with libpq's blocking API.
    void pg_sleep(std::chrono::milliseconds d);

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

/// GETs `url`; returns "status=<code> bytes=<n>" or throws std::runtime_error.
std::string curl_get_blocking(const std::string& url, std::chrono::milliseconds timeout);
std::string curl_get_explicit(const std::string& url, weft::Deadline deadline);

/// BLPOP on a key nobody pushes to, for `d`: returns "nil" (the timeout passed) or the value.
std::string redis_blpop_blocking(const std::string& host, int port, std::chrono::milliseconds d);
std::string redis_blpop_explicit(const std::string& host, int port, std::chrono::milliseconds d,
                                 weft::Deadline deadline);

}  // namespace coop

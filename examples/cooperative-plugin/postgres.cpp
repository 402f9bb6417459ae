// libpq: PQconnectdb + PQexecParams (blocking), and PQconnectStart/PQconnectPoll +
// PQsendQueryParams/PQconsumeInput with weft::wait_fd on PQsocket (explicit: psycogreen's
// wait callback, natively).
#include <libpq-fe.h>
#include <poll.h>

#include <condition_variable>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "cooperative.hpp"
#include "weft/core/fd_wait.hpp"
#include "weft/core/fiber.hpp"
#include "weft/core/semaphore.hpp"

namespace coop {

namespace {

struct ConnDeleter {
    void operator()(PGconn* c) const noexcept { PQfinish(c); }
};
using Conn = std::unique_ptr<PGconn, ConnDeleter>;
struct ResultDeleter {
    void operator()(PGresult* r) const noexcept { PQclear(r); }
};
using PgResult = std::unique_ptr<PGresult, ResultDeleter>;

[[noreturn]] void fail(const char* what, PGconn* c) {
    throw std::runtime_error(std::string(what) + ": " + (c ? PQerrorMessage(c) : "out of memory"));
}

std::string seconds(std::chrono::milliseconds d) {
    return std::to_string(static_cast<double>(d.count()) / 1000.0);
}

// Parks until the connection's socket has `events`; throws on a timeout or cancel.
void wait(PGconn* c, short events, weft::Deadline deadline) {
    auto r = weft::wait_fd(PQsocket(c), events, deadline);
    if (!r) throw std::runtime_error("waiting for PostgreSQL: " + r.error().message());
}

/// A new connection, with libpq's blocking API; throws when it fails.
Conn open_conn(const std::string& conninfo) {
    Conn c(PQconnectdb(conninfo.c_str()));
    if (!c || PQstatus(c.get()) != CONNECTION_OK) fail("connecting to PostgreSQL", c.get());
    return c;
}

/// `SELECT pg_sleep(d)` on `c`, with libpq's blocking API; whether it succeeded.
bool sleep_on(PGconn* c, std::chrono::milliseconds d) {
    const std::string s = seconds(d);
    const char* params[] = {s.c_str()};
    PgResult r(PQexecParams(c, "SELECT pg_sleep($1)", 1, nullptr, params, nullptr, nullptr, 0));
    return PQresultStatus(r.get()) == PGRES_TUPLES_OK;
}

}  // namespace

void pg_sleep_blocking(const std::string& conninfo, std::chrono::milliseconds d) {
    Conn c = open_conn(conninfo);
    if (!sleep_on(c.get(), d)) fail("pg_sleep", c.get());
}

void pg_sleep_explicit(const std::string& conninfo, std::chrono::milliseconds d,
                       weft::Deadline deadline) {
    Conn c(PQconnectStart(conninfo.c_str()));
    if (!c || PQstatus(c.get()) == CONNECTION_BAD) fail("connecting to PostgreSQL", c.get());
    // The connection handshake: PQconnectPoll says which way to wait next.
    for (PostgresPollingStatusType st = PGRES_POLLING_WRITING; st != PGRES_POLLING_OK;) {
        if (st == PGRES_POLLING_FAILED) fail("connecting to PostgreSQL", c.get());
        wait(c.get(), st == PGRES_POLLING_READING ? POLLIN : POLLOUT, deadline);
        st = PQconnectPoll(c.get());
    }
    if (PQsetnonblocking(c.get(), 1) != 0) fail("PQsetnonblocking", c.get());
    const std::string s = seconds(d);
    const char* params[] = {s.c_str()};
    if (!PQsendQueryParams(c.get(), "SELECT pg_sleep($1)", 1, nullptr, params, nullptr, nullptr, 0))
        fail("sending pg_sleep", c.get());
    // Flush what did not fit in the socket buffer; read whatever arrives meanwhile.
    for (int f; (f = PQflush(c.get())) != 0;) {
        if (f < 0) fail("sending pg_sleep", c.get());
        wait(c.get(), POLLIN | POLLOUT, deadline);
        if (!PQconsumeInput(c.get())) fail("reading from PostgreSQL", c.get());
    }
    // Every result, then the null that ends them; PQgetResult blocks only while PQisBusy.
    bool ok = true;
    for (;;) {
        while (PQisBusy(c.get())) {
            wait(c.get(), POLLIN, deadline);
            if (!PQconsumeInput(c.get())) fail("reading from PostgreSQL", c.get());
        }
        PgResult r(PQgetResult(c.get()));
        if (!r) break;
        ok = ok && PQresultStatus(r.get()) == PGRES_TUPLES_OK;
    }
    if (!ok) fail("pg_sleep", c.get());
}

struct PgPool::Impl {
    std::string conninfo;
    weft::Semaphore permits;
    std::vector<PGconn*> idle;
    Impl(std::string c, std::size_t n) : conninfo(std::move(c)), permits(n) {}
};

PgPool::PgPool(std::string conninfo, std::size_t size)
    : impl_(std::make_unique<Impl>(std::move(conninfo), size)) {}

PgPool::~PgPool() {
    for (PGconn* c : impl_->idle)
        PQfinish(c);
}

void PgPool::pg_sleep(std::chrono::milliseconds d, weft::Deadline deadline) {
    if (auto r = impl_->permits.acquire(deadline); !r)
        throw std::runtime_error("waiting for a pooled PostgreSQL connection: " +
                                 r.error().message());
    struct Permit {
        weft::Semaphore& s;
        ~Permit() { s.release(); }
    } permit{impl_->permits};
    Conn c;
    if (!impl_->idle.empty()) {
        c.reset(impl_->idle.back());
        impl_->idle.pop_back();
    } else {
        // A new connection: prepare the statement once, as a pooled application would.
        c.reset(PQconnectdb(impl_->conninfo.c_str()));
        if (!c || PQstatus(c.get()) != CONNECTION_OK) fail("connecting to PostgreSQL", c.get());
        PgResult p(PQprepare(c.get(), "sleep", "SELECT pg_sleep($1)", 1, nullptr));
        if (PQresultStatus(p.get()) != PGRES_COMMAND_OK) fail("preparing pg_sleep", c.get());
    }
    const std::string s = seconds(d);
    const char* params[] = {s.c_str()};
    PgResult r(PQexecPrepared(c.get(), "sleep", 1, params, nullptr, nullptr, 0));
    if (PQresultStatus(r.get()) != PGRES_TUPLES_OK) fail("pg_sleep", c.get());
    // Healthy: back to the pool. A failure above threw, and `c` closes: after a wait that the
    // deadline or a cancel cut short, PQstatus still says CONNECTION_OK (the socket is shut
    // down under it), so a pool must drop a connection whose call failed, not ask PQstatus.
    impl_->idle.push_back(c.release());
}

struct PgShared::Impl {
    std::string conninfo;
    std::mutex mu;  // held across the query
    Conn conn;
};

PgShared::PgShared(std::string conninfo) : impl_(std::make_unique<Impl>()) {
    impl_->conninfo = std::move(conninfo);
}

PgShared::~PgShared() = default;

void PgShared::pg_sleep(std::chrono::milliseconds d) {
    std::lock_guard<std::mutex> lock(impl_->mu);
    // A request cancelled (its client gone) or out of time while it waited for the lock would
    // have its first wait refused, and the shared connection dropped for the next ones.
    if (weft::this_fiber::cancelled() || weft::this_fiber::deadline().passed())
        throw std::runtime_error("no time left for PostgreSQL after waiting for the connection");
    Conn& c = impl_->conn;
    if (!c) {
        c.reset(PQconnectdb(impl_->conninfo.c_str()));
        if (!c || PQstatus(c.get()) != CONNECTION_OK) {
            Conn failed = std::move(c);
            fail("connecting to PostgreSQL", failed.get());
        }
    }
    if (!sleep_on(c.get(), d)) {
        // As the pool: a failed call's connection is not trusted again.
        Conn failed = std::move(c);
        fail("pg_sleep", failed.get());
    }
}

struct PgCondPool::Impl {
    std::string conninfo;
    std::mutex mu;  // held to take or return a connection only
    std::condition_variable returned;
    std::size_t free_slots;     // connections not in use, made or not yet
    std::vector<PGconn*> idle;  // the made ones among them
};

PgCondPool::PgCondPool(std::string conninfo, std::size_t size) : impl_(std::make_unique<Impl>()) {
    impl_->conninfo = std::move(conninfo);
    impl_->free_slots = size;
    impl_->idle.reserve(size);  // a returned connection's push_back cannot throw
}

PgCondPool::~PgCondPool() {
    for (PGconn* c : impl_->idle)
        PQfinish(c);
}

void PgCondPool::pg_sleep(std::chrono::milliseconds d) {
    Impl& p = *impl_;
    Conn c;
    {
        std::unique_lock<std::mutex> lock(p.mu);
        p.returned.wait(lock, [&] { return p.free_slots > 0; });
        --p.free_slots;
        if (!p.idle.empty()) {
            c.reset(p.idle.back());
            p.idle.pop_back();
        }
    }
    // The slot goes back however this ends; the connection only if its call succeeded.
    struct Slot {
        Impl& p;
        Conn& c;
        bool healthy = false;
        ~Slot() {
            {
                std::lock_guard<std::mutex> lock(p.mu);
                ++p.free_slots;
                if (healthy) p.idle.push_back(c.release());
            }
            p.returned.notify_one();
        }
    } slot{p, c};
    if (!c) c = open_conn(p.conninfo);
    if (!sleep_on(c.get(), d)) fail("pg_sleep", c.get());
    slot.healthy = true;
}

}  // namespace coop

// hiredis: redisConnect + redisCommand (blocking), and an async context whose event hooks a
// fiber serves with weft::wait_fd (explicit: an adapter in the shape of hiredis's adapters/*.h,
// with the fiber as its event loop).
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <poll.h>
#include <sys/time.h>

#include <memory>
#include <stdexcept>
#include <string>

#include "cooperative.hpp"
#include "weft/core/fd_wait.hpp"

namespace coop {

namespace {

constexpr const char* kKey = "weft:cooperative:nobody-pushes-here";

std::string seconds(std::chrono::milliseconds d) {
    return std::to_string(static_cast<double>(d.count()) / 1000.0);
}

std::string describe(const redisReply* r) {
    if (!r) return "no reply";
    switch (r->type) {
        case REDIS_REPLY_NIL:
            return "nil";
        case REDIS_REPLY_ERROR:
            throw std::runtime_error(std::string("redis: ") + r->str);
        case REDIS_REPLY_ARRAY:
            return r->elements == 2 && r->element[1]->type == REDIS_REPLY_STRING
                       ? std::string(r->element[1]->str, r->element[1]->len)
                       : "array";
        default:
            return "reply";
    }
}

// The hooks hiredis calls to say what it wants to wait for; the fiber below does the waiting.
struct FiberAdapter {
    bool reading = false;
    bool writing = false;
    bool gone = false;  // hiredis freed the context (cleanup)
};

struct Call {
    bool done = false;
    std::string answer;
    std::string error;
};

void on_reply(redisAsyncContext* ac, void* reply, void* privdata) {
    auto* call = static_cast<Call*>(privdata);
    call->done = true;
    if (!reply) {
        // hiredis calls back with no reply when it tears the context down (the server closed
        // the connection, or an error, such as a refused connect): a failure, not an answer.
        call->error = ac && ac->err ? "redis: " + std::string(ac->errstr)
                                    : "redis: the connection closed before the reply";
        return;
    }
    try {
        call->answer = describe(static_cast<redisReply*>(reply));
    } catch (const std::exception& e) {
        call->error = e.what();
    }
}

}  // namespace

std::string redis_blpop_blocking(const std::string& host, int port, std::chrono::milliseconds d) {
    std::unique_ptr<redisContext, decltype(&redisFree)> c(redisConnect(host.c_str(), port),
                                                          &redisFree);
    if (!c || c->err)
        throw std::runtime_error("connecting to Redis: " +
                                 std::string(c ? c->errstr : "out of memory"));
    const std::string s = seconds(d);
    std::unique_ptr<redisReply, decltype(&freeReplyObject)> r(
        static_cast<redisReply*>(redisCommand(c.get(), "BLPOP %s %s", kKey, s.c_str())),
        &freeReplyObject);
    if (!r) throw std::runtime_error("redis: " + std::string(c->errstr));
    return describe(r.get());
}

std::string redis_blpop_explicit(const std::string& host, int port, std::chrono::milliseconds d,
                                 weft::Deadline deadline) {
    redisAsyncContext* ac = redisAsyncConnect(host.c_str(), port);
    if (!ac) throw std::runtime_error("connecting to Redis: out of memory");
    if (ac->err) {
        std::string why = ac->errstr;
        redisAsyncFree(ac);
        throw std::runtime_error("connecting to Redis: " + why);
    }
    FiberAdapter a;
    ac->ev.data = &a;
    ac->ev.addRead = [](void* p) { static_cast<FiberAdapter*>(p)->reading = true; };
    ac->ev.delRead = [](void* p) { static_cast<FiberAdapter*>(p)->reading = false; };
    ac->ev.addWrite = [](void* p) { static_cast<FiberAdapter*>(p)->writing = true; };
    ac->ev.delWrite = [](void* p) { static_cast<FiberAdapter*>(p)->writing = false; };
    ac->ev.cleanup = [](void* p) { static_cast<FiberAdapter*>(p)->gone = true; };

    Call call;
    const std::string s = seconds(d);
    if (redisAsyncCommand(ac, &on_reply, &call, "BLPOP %s %s", kKey, s.c_str()) != REDIS_OK) {
        redisAsyncFree(ac);
        throw std::runtime_error("redis: cannot queue the command");
    }
    // The event loop, for this one call: wait for what hiredis asked for, then let it work.
    std::string wait_error;
    while (!call.done && !a.gone) {
        const short events =
            static_cast<short>((a.reading ? POLLIN : 0) | (a.writing ? POLLOUT : 0));
        if (events == 0) break;
        auto r = weft::wait_fd(ac->c.fd, events, deadline);
        if (!r) {
            wait_error = "redis: waiting: " + r.error().message();
            break;
        }
        if (*r & (POLLIN | POLLHUP | POLLERR)) redisAsyncHandleRead(ac);
        if (!a.gone && !call.done && (*r & POLLOUT)) redisAsyncHandleWrite(ac);
    }
    if (!a.gone) {
        // The reply has run: nothing is pending, so this frees the context now. On an error
        // the pending callback is called with a null reply first.
        if (call.done)
            redisAsyncDisconnect(ac);
        else
            redisAsyncFree(ac);
    }
    if (!wait_error.empty()) throw std::runtime_error(wait_error);
    if (!call.error.empty()) throw std::runtime_error(call.error);
    if (!call.done) throw std::runtime_error("redis: the connection closed before the reply");
    return call.answer;
}

}  // namespace coop

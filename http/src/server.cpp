// Server: binds a listener on every hub, then drains, stops and waits. The request path lives in
// connection.cpp and session.cpp; this file is the cross-thread part.
#include "weft/http/server.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>

#include "body_budget.hpp"
#include "connection.hpp"
#include "port_check.hpp"
#include "tls.hpp"
#include "weft/core/hub.hpp"
#include "weft/core/internal/hub_probe.hpp"
#include "weft/core/log.hpp"
#include "weft/core/text.hpp"

namespace weft::http {

using detail::HubState;

namespace {
// The Server header's value goes out verbatim on every response: visible ASCII and inner
// spaces only (RFC 9110 product tokens and comments), so it cannot split or forge a header.
ServerOptions checked(ServerOptions o) {
    if (!valid_header_phrase(o.server_name))
        throw std::invalid_argument("ServerOptions::server_name must be at most " +
                                    std::to_string(kMaxHeaderPhraseBytes) +
                                    " visible ASCII characters and inner spaces");
    if (o.reserved_fds > 64)
        throw std::invalid_argument("ServerOptions::reserved_fds must be at most 64");
    return o;
}
}  // namespace

Server::Server(Runtime& runtime, const Router& router, ServerOptions options)
    : runtime_(runtime),
      router_(router),
      options_(checked(std::move(options))),
      metrics_(runtime.hub_count()),
      bodies_(std::make_unique<detail::BodyBudget>(options_.max_buffered_body_bytes,
                                                   metrics_.connections().body_bytes,
                                                   metrics_.connections().body_bytes_peak)) {
    if (options_.tls_cert.empty() != options_.tls_key.empty())
        throw std::invalid_argument(
            "ServerOptions: tls_cert and tls_key must be given together (or neither)");
    if (tls()) {
        auto r = reload_tls();
        if (!r) throw std::invalid_argument(r.error());
    }
    for (unsigned i = 0; i < runtime.hub_count(); ++i)
        hubs_.push_back(std::make_unique<HubState>(*this, router_, i));
    reserved_short_ = options_.reserved_fds > 0;
    refill_reserved_fds();
}

bool Server::out_of_descriptors() const noexcept {
    for (const auto& h : hubs_)
        if (h->out_of_fds.load(std::memory_order_relaxed)) return true;
    return false;
}

std::size_t Server::release_reserved_fds() noexcept {
    std::lock_guard g(reserved_mu_);
    const std::size_t n = reserved_fds_.size();
    for (int fd : reserved_fds_)
        ::close(fd);
    reserved_fds_.clear();
    if (n > 0) reserved_short_.store(true, std::memory_order_relaxed);
    return n;
}

void Server::refill_reserved_fds() noexcept {
    if (!reserved_short_.load(std::memory_order_relaxed)) return;
    std::lock_guard g(reserved_mu_);
    try {
        reserved_fds_.reserve(options_.reserved_fds);
    } catch (...) {
        return;
    }
    while (reserved_fds_.size() < options_.reserved_fds) {
        int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd < 0) return;  // still out of descriptors: the next close tries again
        reserved_fds_.push_back(fd);
    }
    reserved_short_.store(false, std::memory_order_relaxed);
}

Result<void, std::string> Server::reload_tls() {
    if (!tls()) return std::string("TLS is not configured (tls_cert and tls_key are empty)");
    std::string summary, warning;
    auto ctx = detail::TlsContext::server(options_.tls_cert, options_.tls_key, &summary, &warning);
    if (!ctx) return ctx.error();
    std::lock_guard lock(tls_mu_);
    // A renewal gone wrong (an old file copied back, a clock far off) must not replace a
    // certificate clients accept with one they refuse.
    if (!warning.empty() && tls_ctx_ && tls_ctx_->certificate_valid_now()) return warning;
    tls_expires_unix_ = (*ctx)->certificate_expires_unix();
    tls_ctx_ = std::move(*ctx);
    tls_summary_ = summary;
    tls_warning_ = warning;
    return {};
}

Result<void, std::string> Server::check_tls(const std::string& cert_file,
                                            const std::string& key_file, std::string* warning) {
    std::string summary;
    auto ctx = detail::TlsContext::server(cert_file, key_file, &summary, warning);
    if (!ctx) return ctx.error();
    return {};
}

std::string Server::tls_summary() const {
    std::lock_guard lock(tls_mu_);
    return tls_summary_;
}

std::string Server::tls_warning() const {
    std::lock_guard lock(tls_mu_);
    return tls_warning_;
}

std::int64_t Server::tls_expires_unix() const {
    std::lock_guard lock(tls_mu_);
    return tls_expires_unix_;
}

std::shared_ptr<detail::TlsContext> Server::tls_context() const {
    std::lock_guard lock(tls_mu_);
    return tls_ctx_;
}

Server::~Server() {
    stop();
    wait();
    for (int fd : reserved_fds_)
        ::close(fd);
}

namespace {

/// Runs `fn` on `hub` and blocks the calling (non-hub) thread until it has run.
template <class T, class F>
std::optional<T> run_on(Hub& hub, F fn) {
    struct Shared {
        std::mutex mu;
        std::condition_variable cv;
        std::optional<T> value;
        bool done = false;
    };
    auto sh = std::make_shared<Shared>();
    hub.post([sh, fn = std::move(fn)]() mutable {
        std::optional<T> v;
        try {
            v.emplace(fn());
        } catch (const std::exception& e) {
            weft::logger("http")->error("listen: {}", e.what());
        }
        std::lock_guard<std::mutex> g(sh->mu);
        sh->value = std::move(v);
        sh->done = true;
        sh->cv.notify_all();
    });
    std::unique_lock<std::mutex> g(sh->mu);
    while (!sh->done) {
        // A hub that stopped will never run the work: give up rather than hang.
        if (weft::internal::probe(hub).activity.load(std::memory_order_relaxed) ==
            HubActivity::stopped)
            return std::nullopt;
        sh->cv.wait_for(g, std::chrono::milliseconds(20));
    }
    return std::move(sh->value);
}

}  // namespace

Result<SocketAddress> Server::listen(const SocketAddress& addr) {
    if (Hub* h = Hub::current(); h && &h->runtime() == &runtime_) {
        weft::logger("http")->error("Server::listen() called on a hub thread of its runtime");
        return Errc::invalid_argument;
    }
    if (listening_) return Errc::invalid_argument;
    // Every hub's listener sets SO_REUSEPORT, which would also let them join the listeners of
    // another process of the same user: only our own listeners may share the port. A probe
    // keeps us out of theirs; a look at the kernel's list of listeners, once ours are bound,
    // catches what the probe missed (a server that started at the same instant).
    auto refuse = [&](const std::vector<std::uint64_t>& theirs) {
        const std::string who = detail::holders_of(theirs);
        weft::logger("http")->error("{} is already in use{}; not sharing it", addr.to_string(),
                                    who.empty() ? "" : " by " + who);
        return Error(Errc::address_in_use, EADDRINUSE);
    };
    if (addr.port() != 0) {
        if (auto free = detail::probe_address(addr); !free) {
            if (free.error().code != Errc::address_in_use) return free.error();
            return refuse(detail::other_listeners(addr, {}));
        }
    }
    SocketAddress actual = addr;
    unsigned opened = 0;
    Error failure(Errc::ok);
    for (unsigned i = 0; i < hubs_.size(); ++i) {
        HubState* hs = hubs_[i].get();
        auto r = run_on<Result<SocketAddress>>(runtime_.hub(i),
                                               [hs, actual] { return hs->open_listener(actual); });
        if (!r) {
            failure = Error(Errc::unavailable);
            break;
        }
        if (!*r) {
            failure = r->error();
            break;
        }
        ++opened;
        // Port 0: hub 0 picks the port, the other hubs join it (SO_REUSEPORT).
        if (i == 0) actual = r->value();
    }
    if (failure.code == Errc::ok && addr.port() != 0) {
        std::vector<std::uint64_t> ours;
        for (const auto& hs : hubs_)
            ours.push_back(detail::socket_inode(hs->listener_fd()));
        if (auto theirs = detail::other_listeners(actual, ours); !theirs.empty())
            failure = refuse(theirs);
    }
    if (failure.code != Errc::ok) {
        for (unsigned i = 0; i < opened; ++i) {
            HubState* hs = hubs_[i].get();
            (void)run_on<bool>(runtime_.hub(i), [hs] {
                hs->close_listener();
                return true;
            });
        }
        return failure;
    }
    bound_ = actual;  // before the accept loops, which may name it
    for (unsigned i = 0; i < hubs_.size(); ++i) {
        HubState* hs = hubs_[i].get();
        (void)run_on<bool>(runtime_.hub(i), [hs] {
            hs->start_accepting();
            return true;
        });
    }
    listening_ = true;
    weft::logger("http")->info("listening on {} ({} hub{})", actual.to_string(), hubs_.size(),
                               hubs_.size() == 1 ? "" : "s");
    return actual;
}

SocketAddress Server::local_address() const {
    return bound_;
}

void Server::post_to_hubs(bool hard) {
    for (unsigned i = 0; i < hubs_.size(); ++i) {
        HubState* hs = hubs_[i].get();
        pending_posts_.fetch_add(1, std::memory_order_relaxed);
        runtime_.hub(i).post([this, hs, hard] {
            hs->begin_drain(hard);
            release(pending_posts_);
        });
    }
}

void Server::drain() {
    if (draining_.exchange(true)) return;
    post_to_hubs(false);
}

void Server::stop() {
    draining_.store(true);
    if (stopping_.exchange(true)) return;
    post_to_hubs(true);
}

void Server::release(std::atomic<std::size_t>& counter) noexcept {
    // Once a drain began, wait() may return (and the server go away) as soon as the counts
    // reach zero: decrement under its mutex, and touch nothing afterwards. Before a drain no
    // waiter exists: wait() needs the drain's posts, which run after this.
    if (!draining_.load(std::memory_order_acquire)) {
        counter.fetch_sub(1, std::memory_order_release);
        return;
    }
    std::lock_guard<std::mutex> g(wait_mu_);
    counter.fetch_sub(1, std::memory_order_release);
    wait_cv_.notify_all();
}

bool Server::all_hubs_stopped() const noexcept {
    for (unsigned i = 0; i < runtime_.hub_count(); ++i)
        if (weft::internal::probe(runtime_.hub(i)).activity.load(std::memory_order_relaxed) !=
            HubActivity::stopped)
            return false;
    return true;
}

bool Server::wait(Deadline deadline) {
    if (Hub* h = Hub::current(); h && &h->runtime() == &runtime_) {
        weft::logger("http")->error("Server::wait() called on a hub thread of its runtime");
        return false;
    }
    std::unique_lock<std::mutex> g(wait_mu_);
    for (;;) {
        if (live_connections_.load() == 0 && live_listeners_.load() == 0 &&
            pending_posts_.load() == 0)
            return true;
        // Hubs that stopped (the runtime is shutting down) cancelled everything they had.
        if (all_hubs_stopped()) return true;
        if (deadline.passed()) return false;
        auto step = std::chrono::milliseconds(20);
        auto left = deadline.remaining();
        wait_cv_.wait_for(g, left < step ? left : step);
    }
}

}  // namespace weft::http

// Server: HTTP/1.1 on every hub of a runtime. One SO_REUSEPORT listener per hub (the kernel
// spreads connections), one fiber per connection while it has work; an idle keep-alive
// connection holds no fiber and no buffer. Graceful drain, hard stop, request metrics and an
// optional access log.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <vector>

#include "weft/core/deadline.hpp"
#include "weft/core/result.hpp"
#include "weft/core/runtime.hpp"
#include "weft/core/socket_address.hpp"
#include "weft/http/metrics.hpp"
#include "weft/http/router.hpp"
#include "weft/http/server_options.hpp"

namespace weft::http {

namespace detail {
class HubState;
class Connection;
class BodyBudget;
class TlsContext;
}  // namespace detail

/// Threads: listen(), drain(), stop(), wait() and the destructor are for a thread that is not
/// one of the runtime's hubs (they wait for the hubs); the rest is callable from any thread.
/// The router must outlive the server and not change once listen() was called. Destroy the
/// server before its runtime.
class Server {
  public:
    Server(Runtime& runtime, const Router& router, ServerOptions options = {});
    /// stop(), then waits until every connection and listener is gone.
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    /// Binds one listener per hub on `addr` (port 0: a free port, the same on every hub) and
    /// starts accepting. Returns the bound address. Errors (address in use, permission) come
    /// back as values, and then no hub listens. The hubs' listeners share the port
    /// (SO_REUSEPORT) with each other only: an address that anything else holds, another
    /// process's SO_REUSEPORT listener included, is Errc::address_in_use. Blocks the calling thread
    /// until every hub has bound; Errc::invalid_argument when called on a hub thread of this
    /// runtime, or twice.
    Result<SocketAddress> listen(const SocketAddress& addr);
    /// The bound address (after listen()).
    SocketAddress local_address() const;

    /// Graceful drain, returns at once: listeners close; requests in flight finish and their
    /// responses carry "Connection: close"; idle keep-alive connections close now, busy ones
    /// after their current batch of requests. Idempotent.
    void drain();
    /// Hard stop, returns at once: like drain(), and every connection fiber is cancelled (its
    /// blocking calls return Errc::cancelled; its connection closes without a response).
    void stop();
    /// Blocks the calling thread until every connection and listener is gone (true), or until
    /// `deadline` (false). Call after drain() or stop(); a typical shutdown is
    /// `drain(); if (!wait(10s)) { stop(); wait(); }`.
    bool wait(Deadline deadline = {});

    /// Open connections, over all hubs.
    std::size_t connections() const noexcept {
        return live_connections_.load(std::memory_order_relaxed);
    }
    bool draining() const noexcept { return draining_.load(std::memory_order_relaxed); }
    /// A hub's accepts fail for want of file descriptors (EMFILE), and none has been free
    /// since: newcomers wait in the kernel's backlog. Thread-safe.
    bool out_of_descriptors() const noexcept;

    /// Request metrics (read from any thread).
    const RequestMetrics& metrics() const noexcept { return metrics_; }
    const ServerOptions& options() const noexcept { return options_; }
    Runtime& runtime() const noexcept { return runtime_; }

    /// Whether the listeners speak TLS (options().tls_cert and tls_key are set).
    bool tls() const noexcept { return !options_.tls_cert.empty(); }
    /// The certificate in use: "subject, valid until DATE" (empty without TLS).
    std::string tls_summary() const;
    /// What is wrong with the certificate in use although it loaded (it expired, or is not
    /// valid yet), "" when nothing is.
    std::string tls_warning() const;
    /// When the certificate in use expires, in seconds since the Unix epoch (0 without TLS).
    std::int64_t tls_expires_unix() const;
    /// Reads tls_cert and tls_key again: new connections use them, open ones keep theirs.
    /// On an error the ones in use stay, and the message names the file and the reason; so
    /// they do when the new certificate has expired or is not valid yet and the one in use is
    /// valid.
    /// Thread-safe.
    Result<void, std::string> reload_tls();
    /// Loads `cert_file` and `key_file` as a server with them would (for a configuration
    /// test): on an error, the same message the server would fail with; `warning` (when
    /// given) gets what tls_warning() would say.
    static Result<void, std::string> check_tls(const std::string& cert_file,
                                               const std::string& key_file,
                                               std::string* warning = nullptr);

  private:
    friend class detail::HubState;
    friend class detail::Connection;
    void post_to_hubs(bool hard);
    void release(std::atomic<std::size_t>& counter) noexcept;
    bool all_hubs_stopped() const noexcept;

    Runtime& runtime_;
    const Router& router_;
    ServerOptions options_;
    RequestMetrics metrics_;
    std::unique_ptr<detail::BodyBudget> bodies_;
    std::vector<std::unique_ptr<detail::HubState>> hubs_;
    SocketAddress bound_;
    bool listening_ = false;

    std::atomic<std::size_t> live_connections_{0};
    std::atomic<std::size_t> live_listeners_{0};
    std::atomic<std::size_t> pending_posts_{0};
    std::atomic<bool> draining_{false};
    std::atomic<bool> stopping_{false};
    std::atomic<bool> emfile_logged_{false};
    /// options_.reserved_fds: descriptors held open (see ServerOptions::reserved_fds).
    std::size_t release_reserved_fds() noexcept;  ///< how many it closed
    void refill_reserved_fds() noexcept;
    std::mutex reserved_mu_;
    std::vector<int> reserved_fds_;
    std::atomic<bool> reserved_short_{false};
    std::atomic<std::int64_t> reserved_logged_ns_{0};  // steady clock; 0: never
    std::mutex wait_mu_;
    std::condition_variable wait_cv_;

    /// The TLS context of new connections (replaced by reload_tls()).
    std::shared_ptr<detail::TlsContext> tls_context() const;
    mutable std::mutex tls_mu_;
    std::shared_ptr<detail::TlsContext> tls_ctx_;
    std::string tls_summary_;
    std::string tls_warning_;
    std::int64_t tls_expires_unix_ = 0;
};

}  // namespace weft::http

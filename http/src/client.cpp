// The HTTP client: per-hub pools of keep-alive connections by origin, a small per-hub DNS cache,
// one exchange (request out, response head in, body in pieces) at a time per connection,
// retries of idempotent requests that met a connection the server had closed, redirects, and
// the process-wide client metrics.
#include "weft/http/client.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <charconv>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <unordered_map>

#include "client_conn.hpp"
#include "client_proxy.hpp"
#include "tls.hpp"
#include "uri.hpp"
#include "weft/core/hub.hpp"
#include "weft/core/runtime.hpp"
#include "weft/core/semaphore.hpp"
#include "weft/core/text.hpp"
#include "weft/http/headers.hpp"
#include "weft/http/method.hpp"

namespace weft::http {

const char* client_errc_name(ClientErrc c) noexcept {
    switch (c) {
        case ClientErrc::bad_url:
            return "bad_url";
        case ClientErrc::dns:
            return "dns";
        case ClientErrc::connect:
            return "connect";
        case ClientErrc::timed_out:
            return "timed_out";
        case ClientErrc::cancelled:
            return "cancelled";
        case ClientErrc::tls:
            return "tls";
        case ClientErrc::protocol:
            return "protocol";
        case ClientErrc::too_large:
            return "too_large";
        case ClientErrc::closed:
            return "closed";
        case ClientErrc::too_many_redirects:
            return "too_many_redirects";
        case ClientErrc::bad_request:
            return "bad_request";
    }
    return "unknown";
}

std::string ClientError::message() const {
    return std::string(client_errc_name(code)) + (detail.empty() ? "" : ": " + detail);
}

std::optional<std::string_view> ClientResponse::header(std::string_view name) const noexcept {
    for (const auto& [n, v] : headers)
        if (iequals(n, name)) return std::string_view(v);
    return std::nullopt;
}

namespace detail {

namespace {

constexpr std::size_t kMaxHubs = 1024;
constexpr std::size_t kMaxChunkLine = 4096;  // a chunk-size line with its extensions
// After a request that could not all be sent: how long an answer the server already began is
// waited for.
constexpr auto kEarlyAnswerWait = std::chrono::milliseconds(200);
constexpr std::size_t kMaxSeries = 4096;  // client metric series per hub
// Servers (address and port) a hub's series name; those after them are counted as one,
// "_OTHER" (port 0): a handler that fetches URLs its callers choose would otherwise add
// series without end (each a histogram of 23 lines) and make every scrape huge.
std::atomic<std::size_t> g_max_servers{64};
constexpr std::string_view kOtherServer = "_OTHER";

// --- metrics ---------------------------------------------------------------------------------

struct SeriesKey {
    std::string method;
    int status;
    std::string error;
    std::string address;
    std::uint16_t port;
    std::string scheme;
    bool operator<(const SeriesKey& o) const {
        return std::tie(method, status, error, address, port, scheme) <
               std::tie(o.method, o.status, o.error, o.address, o.port, o.scheme);
    }
};

// Per hub: written by the hub's fibers, read by the scraper (the lock is uncontended but for
// a scrape).
struct HubClientMetrics {
    std::mutex mu;
    std::map<SeriesKey, std::unique_ptr<LatencyHistogram>> series;
    std::set<std::pair<std::string, std::uint16_t>> servers;  // named so far (g_max_servers)
    std::atomic<std::int64_t> open{0};
    std::atomic<std::int64_t> idle{0};
};

std::array<HubClientMetrics, kMaxHubs>& hub_metrics() {
    static std::array<HubClientMetrics, kMaxHubs> m;
    return m;
}

unsigned hub_index() noexcept {
    Hub* h = Hub::current();
    return h ? std::min<unsigned>(h->index(), kMaxHubs - 1) : 0;
}

void record(const std::string& method, int status, const char* error, const Url& url,
            std::int64_t ns) {
    HubClientMetrics& m = hub_metrics()[hub_index()];
    SeriesKey k{std::string(method_label(parse_method(method))),
                status,
                error ? error : "",
                url.host,
                url.port,
                url.https ? "https" : "http"};
    std::lock_guard<std::mutex> g(m.mu);
    if (!m.servers.count({k.address, k.port})) {
        if (m.servers.size() < g_max_servers.load(std::memory_order_relaxed)) {
            m.servers.emplace(k.address, k.port);
        } else {
            k.address = kOtherServer;
            k.port = 0;
        }
    }
    auto it = m.series.find(k);
    if (it == m.series.end()) {
        if (m.series.size() >= kMaxSeries) return;
        it = m.series.emplace(std::move(k), std::make_unique<LatencyHistogram>()).first;
    }
    it->second->observe(ns);
}

// An error as a caller sees it: naming the server it met it with (a handler that calls several
// logs which one failed), unless it does already.
ClientError with_origin(ClientError e, const Url& url) {
    if (e.detail.find(url.origin) == std::string::npos) e.detail += " (" + url.origin + ")";
    return e;
}

bool idempotent(std::string_view m) noexcept {
    return m == "GET" || m == "HEAD" || m == "PUT" || m == "DELETE" || m == "OPTIONS" ||
           m == "TRACE";
}

bool token_char(char c) noexcept {
    return std::isalnum(static_cast<unsigned char>(c)) ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// Where a response head ends in `in`: the offset of the line end after its last line, and in
// `after` the offset past the empty line that follows; npos while it has not all come. Lines
// end with CRLF or, as RFC 9112 §2.2 lets a recipient accept (and curl, Go and Python do), a
// bare LF.
std::size_t find_head_end(std::string_view in, std::size_t& after) noexcept {
    for (std::size_t i = in.find('\n'); i != std::string_view::npos; i = in.find('\n', i + 1)) {
        std::size_t j = i + 1;
        if (j < in.size() && in[j] == '\r') ++j;
        if (j < in.size() && in[j] == '\n') {
            after = j + 1;
            return i > 0 && in[i - 1] == '\r' ? i - 1 : i;
        }
    }
    return std::string_view::npos;
}

bool safe_value(std::string_view v) noexcept {
    for (char c : v)
        if (c == '\r' || c == '\n' || c == '\0') return false;
    return true;
}

bool has_token(std::string_view list, std::string_view token) {
    while (!list.empty()) {
        const auto comma = list.find(',');
        if (iequals(trim_ows(list.substr(0, comma)), token)) return true;
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
    }
    return false;
}

}  // namespace

std::size_t set_client_metric_servers(std::size_t max) noexcept {
    return g_max_servers.exchange(max, std::memory_order_relaxed);
}

// --- the pools -------------------------------------------------------------------------------

struct OriginPool {
    std::vector<std::unique_ptr<ClientConn>> idle;
    std::size_t open = 0;    // idle and lent out
    std::size_t taking = 0;  // fibers in take() (which holds a reference to this)
    /// Connections lent out, at most max_connections_per_host (when set). Idle ones hold no
    /// permit, and a borrower takes an idle one before it dials: so open ones stay within the
    /// limit too.
    std::unique_ptr<Semaphore> permits;
};

struct DnsEntry {
    std::vector<SocketAddress> addresses;
    std::int64_t expires_ns = 0;
};

// One hub's connections and DNS answers: touched by that hub's fibers only.
struct HubPool {
    std::unordered_map<std::string, OriginPool> origins;
    std::unordered_map<std::string, DnsEntry> dns;
    std::int64_t next_sweep_ns = 0;  // when give_back() next looks at every origin's idle ones
    std::size_t idle = 0;            // idle connections, over every origin
    bool sweeper = false;            // a fiber sweeps while there are idle ones
};

class ClientCore : public std::enable_shared_from_this<ClientCore> {
  public:
    explicit ClientCore(ClientOptions o)
        : options(std::move(o)),
          proxies(options.http_proxy, options.https_proxy, options.no_proxy) {}
    ~ClientCore() {
        // Connections still pooled close with the client; the gauges forget them.
        for (std::size_t h = 0; h < hubs_.size(); ++h) {
            if (!hubs_[h]) continue;
            for (auto& [origin, op] : hubs_[h]->origins) {
                hub_metrics()[h].open.fetch_sub(static_cast<std::int64_t>(op.open));
                hub_metrics()[h].idle.fetch_sub(static_cast<std::int64_t>(op.idle.size()));
            }
        }
        // Each hub's connections close on that hub: its I/O backend keeps state per
        // descriptor (epoll's registration), and a close elsewhere would leave it stale for
        // the next socket that gets the number. Known to be running only when this is one of
        // its sibling hubs; otherwise (a plain thread, the runtime stopped) they close here.
        Hub* here = Hub::current();
        if (!here || &here->runtime() != runtime_) return;
        for (std::size_t h = 0; h < hubs_.size(); ++h) {
            if (!hubs_[h] || h == here->index()) continue;
            try {
                runtime_->hub(static_cast<unsigned>(h))
                    .post([pool = std::move(hubs_[h])]() mutable { pool.reset(); });
            } catch (...) {
            }
        }
    }

    HubPool& pool() {
        Hub* h = Hub::current();
        std::call_once(hubs_once_, [&] {
            hubs_.resize(h->runtime().hub_count());
            runtime_ = &h->runtime();
        });
        const unsigned i = h->index();
        if (i >= hubs_.size()) throw std::logic_error("a hub the client does not know");
        if (!hubs_[i]) hubs_[i] = std::make_unique<HubPool>();
        return *hubs_[i];
    }

    ClientResult<std::shared_ptr<TlsContext>> tls() {
        std::lock_guard<std::mutex> g(tls_mu_);
        if (!tls_) {
            auto c = TlsContext::client(options.ca_file, options.verify_peer);
            if (!c) return ClientError{ClientErrc::tls, std::move(c).error()};
            tls_ = std::move(*c);
        }
        return tls_;
    }

    ClientResult<std::vector<SocketAddress>> resolve(HubPool& hp, const Url& url, Deadline dl) {
        const std::int64_t now = now_ns();
        // Cached by name: the addresses, each with this URL's port (an http:// and an
        // https:// URL of one host share the lookup, not the port).
        auto it = hp.dns.find(url.host);
        if (it != hp.dns.end() && it->second.expires_ns > now) {
            std::vector<SocketAddress> addrs = it->second.addresses;
            for (SocketAddress& a : addrs)
                a.set_port(url.port);
            return addrs;
        }
        if (auto a = SocketAddress::parse(url.host.find(':') != std::string::npos
                                              ? "[" + url.host + "]:" + std::to_string(url.port)
                                              : url.host + ":" + std::to_string(url.port)))
            return std::vector<SocketAddress>{*a};
        // resolve() runs getaddrinfo on a resolver thread; the wait keeps to the deadline.
        ScopedDeadline bound(dl);
        auto r = weft::resolve(url.host, url.port);
        if (!r) {
            if (r.error().code == Errc::timed_out)
                return ClientError{ClientErrc::timed_out, "resolving " + url.host};
            if (r.error().code == Errc::cancelled)
                return ClientError{ClientErrc::cancelled, "resolving " + url.host};
            if (r.error().code == Errc::not_found)
                return ClientError{ClientErrc::dns, "cannot resolve '" + url.host + "'"};
            if (r.error().code == Errc::unavailable)
                return ClientError{ClientErrc::dns,
                                   "cannot resolve '" + url.host +
                                       "' for now: the DNS server failed, refused or did not "
                                       "answer (a temporary failure)"};
            return ClientError{ClientErrc::dns,
                               "cannot resolve '" + url.host + "': " + r.error().message()};
        }
        // A name seen before is refreshed whatever the count; a new one waits for room (the
        // once-a-second sweep drops answers past their time). Looked up again: a sweep or
        // another fiber's answer may have changed the cache while this one waited.
        if (options.dns_cache_ttl.count() > 0 &&
            (hp.dns.size() < 1024 || hp.dns.find(url.host) != hp.dns.end()))
            hp.dns[url.host] = DnsEntry{*r, now_ns() + options.dns_cache_ttl.count()};
        return std::move(*r);
    }

    // A connection to `to` (one of its addresses after another), by `connect_dl`; errors name
    // `what` ("https://host:443", or "proxy http://p:3128").
    ClientResult<TcpStream> connect_any(HubPool& hp, const Url& to, Deadline connect_dl,
                                        const std::string& what) {
        auto addrs = resolve(hp, to, connect_dl);
        if (!addrs) return std::move(addrs).error();
        ClientError last{ClientErrc::connect, "no address for " + to.host};
        for (std::size_t i = 0; i < addrs->size(); ++i) {
            const SocketAddress& a = (*addrs)[i];
            // Each address gets its share of what is left (Go's dialSerial): one that swallows
            // packets (a dead IPv6 route) must not take the whole budget from the next.
            const std::size_t left = addrs->size() - i;
            Deadline dl = connect_dl;
            if (left > 1 && !connect_dl.is_never())
                dl = earliest(connect_dl, Deadline(connect_dl.remaining() / left));
            auto s = TcpStream::connect(a, dl);
            if (s) return std::move(*s);
            const Errc c = s.error().code;
            if (c == Errc::timed_out && (left == 1 || connect_dl.passed()))
                return ClientError{ClientErrc::timed_out, "connecting to " + what};
            if (c == Errc::timed_out) {
                last = {ClientErrc::timed_out,
                        "connecting to " + what + ": " + a.to_string() + " timed out"};
                continue;
            }
            if (c == Errc::cancelled)
                return ClientError{ClientErrc::cancelled, "connecting to " + what};
            last = {ClientErrc::connect, "connecting to " + what + ": " + s.error().message()};
        }
        return last;
    }

    // A new connection for `url`: to its server, or through `proxy` (an HTTP proxy's CONNECT
    // tunnel for https, a SOCKS5 tunnel for both), with TLS to the server for https.
    ClientResult<std::unique_ptr<ClientConn>> dial(HubPool& hp, const Url& url, const Proxy* proxy,
                                                   Deadline dl) {
        const Deadline connect_dl = options.connect_timeout.count() > 0
                                        ? earliest(dl, Deadline(options.connect_timeout))
                                        : dl;
        // socks5:// (as curl reads it): this side resolves the name, the proxy gets an address.
        std::optional<SocketAddress> resolved;
        if (proxy && proxy->kind == Proxy::Kind::socks5) {
            auto addrs = resolve(hp, url, connect_dl);
            if (!addrs) return std::move(addrs).error();
            if (addrs->empty())
                return ClientError{ClientErrc::dns, "cannot resolve '" + url.host + "'"};
            resolved = addrs->front();
        }
        auto s = proxy ? connect_any(hp, proxy->url, connect_dl, "proxy " + proxy->display)
                       : connect_any(hp, url, connect_dl, url.origin);
        if (!s) return std::move(s).error();
        (void)s->set_nodelay(true);
        auto conn = std::make_unique<ClientConn>(std::move(*s));
        if (proxy && proxy->socks()) {
            if (auto r = open_socks_tunnel(*conn, *proxy, url, resolved ? &*resolved : nullptr,
                                           connect_dl);
                !r)
                return std::move(r).error();
        }
        if (url.https) {
            if (proxy && !proxy->socks()) {
                if (auto r = open_tunnel(*conn, *proxy, url, connect_dl, options.max_header_bytes,
                                         options.user_agent);
                    !r)
                    return std::move(r).error();
            }
            auto ctx = tls();
            if (!ctx) return std::move(ctx).error();
            if (auto r = conn->start_tls(*ctx, url.host, url.origin, connect_dl); !r) {
                ClientError e = std::move(r).error();
                e.detail += " (" + url.origin + ")";
                return e;
            }
        }
        return conn;
    }

    // A connection for `url`: a healthy idle one (unless `fresh`), or a new one (waiting for a
    // permit when the origin is at max_connections_per_host).
    ClientResult<std::unique_ptr<ClientConn>> take(HubPool& hp, const Url& url, const Proxy* proxy,
                                                   Deadline dl, bool fresh = false) {
        maybe_sweep(hp, now_ns());  // also where no call succeeds (no give_back, no sweeper)
        OriginPool& op = hp.origins[url.origin];
        ++op.taking;
        struct Taking {
            OriginPool& op;
            ~Taking() { --op.taking; }
        } taking{op};
        HubClientMetrics& m = hub_metrics()[hub_index()];
        if (options.max_connections_per_host > 0) {
            if (!op.permits)
                op.permits = std::make_unique<Semaphore>(options.max_connections_per_host);
            if (auto r = op.permits->acquire(dl); !r)
                return ClientError{r.error().code == Errc::cancelled ? ClientErrc::cancelled
                                                                     : ClientErrc::timed_out,
                                   "waiting for a connection to " + url.origin};
        }
        const std::int64_t now = now_ns();
        // A fresh dial (the retry after a dead reused connection) must stay within the limit
        // too: idle connections, as suspect as the dead one, make room.
        while (fresh && options.max_connections_per_host > 0 &&
               op.open >= options.max_connections_per_host && !op.idle.empty()) {
            op.idle.pop_back();
            --hp.idle;
            m.idle.fetch_sub(1, std::memory_order_relaxed);
            forget(op);
        }
        while (!fresh && !op.idle.empty()) {
            std::unique_ptr<ClientConn> c = std::move(op.idle.back());
            op.idle.pop_back();
            --hp.idle;
            m.idle.fetch_sub(1, std::memory_order_relaxed);
            if (now - c->idle_since_ns < options.idle_timeout.count() && !c->looks_closed()) {
                c->reused = true;
                c->bytes_in = 0;
                return c;
            }
            c.reset();  // too old, or the server closed it meanwhile
            forget(op);
        }
        ClientResult<std::unique_ptr<ClientConn>> c = ClientError{ClientErrc::connect, ""};
        try {
            c = dial(hp, url, proxy, dl);
        } catch (...) {
            if (op.permits) op.permits->release();
            throw;
        }
        if (!c) {
            if (op.permits) op.permits->release();
            return c;
        }
        ++op.open;
        m.open.fetch_add(1, std::memory_order_relaxed);
        return c;
    }

    // The exchange is over: keep the connection for the next request, or close it. On the
    // hub that owns `hp`.
    void give_back(HubPool& hp, const std::string& origin, std::unique_ptr<ClientConn> c,
                   bool reusable) noexcept {
        const std::int64_t now = now_ns();
        maybe_sweep(hp, now);
        auto it = hp.origins.find(origin);
        if (it == hp.origins.end()) return;  // cannot be: a lent connection keeps its origin
        OriginPool& op = it->second;
        bool kept = false;
        if (reusable && op.idle.size() < options.max_idle_per_host && options.max_idle_total > 0) {
            if (hp.idle >= options.max_idle_total) close_longest_idle(hp);
            try {
                c->idle_since_ns = now;
                c->release_buffers();
                op.idle.push_back(std::move(c));
                ++hp.idle;
                hub_metrics()[hub_index()].idle.fetch_add(1, std::memory_order_relaxed);
                kept = true;
                start_sweeper(hp);
            } catch (...) {
            }
        }
        if (!kept) {
            c.reset();
            forget(op);
        }
        if (op.permits) op.permits->release();  // a waiting borrower takes the idle one
    }

    // The sweep below, at most once a second.
    void maybe_sweep(HubPool& hp, std::int64_t now) noexcept {
        if (now < hp.next_sweep_ns) return;
        sweep(hp, now);
        hp.next_sweep_ns = now + 1'000'000'000;
    }

    // While `hp` has idle connections, a fiber of its hub sweeps them once a second: a hub
    // that stops calling would otherwise keep them (in CLOSE_WAIT once their servers close
    // them) until its next request. It ends with the last idle connection, or the client.
    // It is the client's, not the request's whose give_back() started it: spawned from the
    // hub's loop (a posted callback), it inherits no deadline (a handler's would end its sleep
    // at the request's deadline, and with it the sweeping for good), no fiber-locals and no
    // watchdog labels.
    void start_sweeper(HubPool& hp) noexcept {
        if (hp.sweeper) return;
        Hub* hub = Hub::current();
        if (!hub) return;
        try {
            hub->post([core = weak_from_this(), pool = &hp] {
                auto live = core.lock();
                if (!live) return;  // the pool went with the client
                try {
                    weft::spawn("http-client-sweep", [core, pool] {
                        for (;;) {
                            const bool slept =
                                static_cast<bool>(this_fiber::sleep_for(std::chrono::seconds(1)));
                            auto live = core.lock();
                            if (!live) return;
                            if (!slept) {  // cancelled: the runtime is stopping
                                pool->sweeper = false;
                                return;
                            }
                            live->sweep(*pool, now_ns());
                            if (pool->idle == 0) {
                                pool->sweeper = false;
                                return;
                            }
                        }
                    }).detach();
                } catch (...) {
                    pool->sweeper = false;  // the next give_back() tries again
                }
            });
            hp.sweeper = true;
        } catch (...) {
            // Not posted: the sweep in give_back() still runs with the next request.
        }
    }

    // A connection lent by `hp` was closed on another thread (see ClientExchange).
    void forget_lent(HubPool& hp, const std::string& origin) noexcept {
        auto it = hp.origins.find(origin);
        if (it == hp.origins.end()) return;
        forget(it->second);
        if (it->second.permits) it->second.permits->release();
    }

    // Closes the idle connections of every origin that are too old or that the server closed:
    // take() looks only at its own origin's, and a program that calls many hosts (webhooks)
    // would keep the others open (in CLOSE_WAIT) until it called them again.
    // Origins with nothing open and nobody taking a connection go too (a program that calls
    // hosts its users name would otherwise keep one entry per host for good), and so do DNS
    // answers past their time.
    void sweep(HubPool& hp, std::int64_t now) noexcept {
        HubClientMetrics& m = hub_metrics()[hub_index()];
        for (auto it = hp.origins.begin(); it != hp.origins.end();) {
            OriginPool& op = it->second;
            std::erase_if(op.idle, [&](std::unique_ptr<ClientConn>& c) {
                if (now - c->idle_since_ns < options.idle_timeout.count() && !c->looks_closed())
                    return false;
                c.reset();
                --hp.idle;
                m.idle.fetch_sub(1, std::memory_order_relaxed);
                forget(op);
                return true;
            });
            if (op.open == 0 && op.taking == 0)
                it = hp.origins.erase(it);
            else
                ++it;
        }
        std::erase_if(hp.dns, [now](const auto& e) { return e.second.expires_ns <= now; });
    }

    // Makes room under max_idle_total: the connection idle the longest, of any origin, closes
    // (each origin's idle list is oldest first).
    void close_longest_idle(HubPool& hp) noexcept {
        OriginPool* oldest = nullptr;
        for (auto& [origin, op] : hp.origins)
            if (!op.idle.empty() &&
                (!oldest || op.idle.front()->idle_since_ns < oldest->idle.front()->idle_since_ns))
                oldest = &op;
        if (!oldest) return;
        oldest->idle.erase(oldest->idle.begin());
        --hp.idle;
        hub_metrics()[hub_index()].idle.fetch_sub(1, std::memory_order_relaxed);
        forget(*oldest);
    }

    // One connection of `op` closed.
    void forget(OriginPool& op) {
        --op.open;
        hub_metrics()[hub_index()].open.fetch_sub(1, std::memory_order_relaxed);
    }

    const ClientOptions options;
    const ProxyPolicy proxies;  // made from options

  private:
    std::once_flag hubs_once_;
    Runtime* runtime_ = nullptr;  // the one whose hubs the pools belong to
    std::vector<std::unique_ptr<HubPool>> hubs_;
    std::mutex tls_mu_;
    std::shared_ptr<TlsContext> tls_;
};

// --- one exchange ----------------------------------------------------------------------------

class ClientExchange {
  public:
    // On a hub's fiber.
    ClientExchange(std::shared_ptr<ClientCore> core, Url url, std::string method, Deadline total)
        : core_(std::move(core)),
          owner_(Hub::current()),
          pool_(&core_->pool()),
          url_(std::move(url)),
          method_(std::move(method)),
          total_(total) {}

    // Whether a read would touch the connection from a thread that is not the hub whose pool
    // lent it (a body that ended or failed is read anywhere: nothing is touched).
    bool off_hub_read() const noexcept {
        return !failed_ && !done_ && conn_ && Hub::current() != owner_;
    }

    ~ClientExchange() {
        end_metric(nullptr);  // a stream dropped before its body's end
        release_conn(false);
    }

    // A stream's exchange is timed in the metrics until its body ends, fails or the stream is
    // dropped (request() times its exchanges itself).
    void time_until_end(std::int64_t t0) noexcept { metric_t0_ = t0; }
    void end_metric(const char* error) noexcept {
        if (metric_t0_ < 0) return;
        const std::int64_t t0 = metric_t0_;
        metric_t0_ = -1;
        try {
            record(method_, status, error, url_, now_ns() - t0);
        } catch (...) {
            // Out of memory for a series: the exchange goes uncounted.
        }
    }

    // Connects (or reuses), sends the request and reads the response head. A reused
    // connection that fails before any response byte came is retried once on a new one, if
    // the method allows it.
    ClientResult<void> start(const ClientRequest& req) {
        // A request that cannot be sent is refused before a connection is dialled or taken
        // (and closed) for it.
        if (auto r = check(req); !r) return r;
        auto proxy = core_->proxies.for_url(url_);
        if (!proxy) return std::move(proxy).error();
        proxy_ = *proxy;
        HubPool& hp = *pool_;
        for (int attempt = 0;; ++attempt) {
            // The retry dials: another idle connection may be as dead as the first one (a
            // firewall that dropped idle flows without a FIN leaves no sign on them).
            auto c = core_->take(hp, url_, proxy_, total_, attempt > 0);
            if (!c) return std::move(c).error();
            conn_ = std::move(*c);
            unsent_ = false;  // this attempt's connection
            const bool reused = conn_->reused;
            auto r = send(req);
            if (r) {
                r = read_head();
            } else if (r.error().code == ClientErrc::closed ||
                       r.error().code == ClientErrc::timed_out) {
                // The server may have answered before it took the whole request (a 413 or a
                // 401 for an upload) and closed, or stopped reading: that answer is the
                // response, when it is here by now. The connection is not used again.
                unsent_ = true;
                if (read_head(earliest(total_, Deadline(kEarlyAnswerWait)))) return {};
            }
            if (r) return {};
            const bool nothing_came = conn_->bytes_in == 0;
            release_conn(false);
            const ClientErrc code = r.error().code;
            if (attempt == 0 && reused && nothing_came && replayable(req) &&
                (code == ClientErrc::closed || code == ClientErrc::connect))
                continue;
            return r;
        }
    }

    // Whether the request may be sent again on a new connection: an idempotent method, or one
    // whose caller says it is safe with an Idempotency-Key (Go's isReplayable).
    bool replayable(const ClientRequest& req) const noexcept {
        if (idempotent(method_)) return true;
        for (const auto& [n, v] : req.headers)
            if (iequals(n, "idempotency-key") || iequals(n, "x-idempotency-key")) return true;
        return false;
    }

    // The body's length as its head announced it (Content-Length), if it did.
    std::optional<std::uint64_t> announced_length() const noexcept {
        if (framing_ != Framing::length) return std::nullopt;
        return remaining_;
    }

    // Up to buf.size() bytes of the body; 0 at its end (the connection is then given back).
    // After a failure, that failure again: never a clean end.
    ClientResult<std::size_t> read_body(std::span<char> buf) {
        if (failed_) return *failed_;
        if (done_ || !conn_) return std::size_t{0};
        for (;;) {
            std::string_view in = conn_->buffered();
            switch (framing_) {
                case Framing::none:
                    // No body, but the server may still be closing (Connection: close, an
                    // HTTP/1.0 answer); a 101's connection speaks another protocol now.
                    finish(keep_alive_ && status != 101);
                    return std::size_t{0};
                case Framing::length: {
                    if (remaining_ == 0) {
                        finish(keep_alive_);
                        return std::size_t{0};
                    }
                    if (!in.empty()) {
                        const std::size_t n = std::min({buf.size(), in.size(), remaining_});
                        std::copy_n(in.data(), n, buf.data());
                        conn_->consume(n);
                        remaining_ -= n;
                        return n;
                    }
                    break;
                }
                case Framing::until_close: {
                    if (!in.empty()) {
                        const std::size_t n = std::min(buf.size(), in.size());
                        std::copy_n(in.data(), n, buf.data());
                        conn_->consume(n);
                        return n;
                    }
                    break;
                }
                case Framing::chunked: {
                    if (remaining_ > 0) {
                        if (!in.empty()) {
                            const std::size_t n = std::min({buf.size(), in.size(), remaining_});
                            std::copy_n(in.data(), n, buf.data());
                            conn_->consume(n);
                            remaining_ -= n;
                            if (remaining_ == 0) need_chunk_crlf_ = true;
                            return n;
                        }
                        break;
                    }
                    // Between chunks: the CRLF after the last one, then a size line.
                    auto step = next_chunk();
                    if (!step) return std::move(step).error();
                    if (*step == ChunkStep::more) continue;
                    if (*step == ChunkStep::end) {
                        finish(keep_alive_);
                        return std::size_t{0};
                    }
                    break;  // need more bytes
                }
            }
            auto more = conn_->fill(read_deadline());
            if (!more) return fail(read_timed_out(std::move(more).error(), "reading the body"));
            if (!*more) {
                if (framing_ == Framing::until_close) {
                    // Over TLS only a close_notify ends such a body (RFC 9112, 9.8): a bare
                    // end of the TCP stream could cut it anywhere.
                    if (conn_->end_unverified())
                        return fail({ClientErrc::closed,
                                     "the server closed the TLS connection without close_notify: "
                                     "the body, delimited by the close, may be cut short"});
                    finish(false);
                    return std::size_t{0};
                }
                return fail({ClientErrc::closed, "the server closed the connection mid-body"});
            }
        }
    }

    int status = 0;
    std::string reason;
    int version_minor = 1;
    std::vector<std::pair<std::string, std::string>> headers;
    const Url& url() const noexcept { return url_; }
    const std::string& method() const noexcept { return method_; }

  private:
    enum class Framing { none, length, chunked, until_close };
    enum class ChunkStep { more, end, need_bytes };

    std::int64_t metric_t0_ = -1;
    const Proxy* proxy_ = nullptr;  // the client's, for this URL; nullptr: direct

    Deadline read_deadline() const {
        const auto t = core_->options.read_timeout;
        return t.count() > 0 ? earliest(total_, Deadline(t)) : total_;
    }

    // A read that timed out says which bound it met, while `doing` what.
    ClientError read_timed_out(ClientError e, std::string_view doing) const {
        if (e.code != ClientErrc::timed_out) return e;
        std::string m(doing);
        if (total_.passed())
            m += ": the call's deadline passed (its own, or total_timeout)";
        else if (this_fiber::deadline().passed())
            m += ": the calling fiber's deadline passed (the request it serves)";
        else
            m += ": no data from the server for read_timeout (" +
                 std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                    core_->options.read_timeout)
                                    .count()) +
                 " ms)";
        e.detail = std::move(m);
        return e;
    }

    ClientError fail(ClientError e) {
        release_conn(false);
        done_ = true;
        if (!failed_) failed_ = e;
        return e;
    }

    void finish(bool reusable) {
        done_ = true;
        release_conn(reusable && !unsent_);
    }

    // The connection is done with: back to the pool of the hub that lent it. Elsewhere (a
    // stream moved to another hub's fiber, or dropped on a plain thread) it goes to that hub
    // to be closed there (its backend keeps state per descriptor), which also gets its count
    // of open connections and its permit for the origin back.
    void release_conn(bool reusable) noexcept {
        if (!conn_) return;
        if (Hub::current() == owner_) {
            core_->give_back(*pool_, url_.origin, std::move(conn_), reusable);
            return;
        }
        try {
            owner_->post(
                [core = core_, pool = pool_, origin = url_.origin, c = std::move(conn_)]() mutable {
                    c.reset();
                    core->forget_lent(*pool, origin);
                });
        } catch (...) {
            // Out of memory: the connection closed here, and the origin keeps a permit fewer.
        }
    }

    ClientResult<void> check(const ClientRequest& req) const {
        if (method_.empty() || !std::all_of(method_.begin(), method_.end(), token_char))
            return ClientError{ClientErrc::bad_request, "invalid method '" + method_ + "'"};
        for (const auto& [n, v] : req.headers)
            if (n.empty() || !std::all_of(n.begin(), n.end(), token_char) || !safe_value(v))
                return ClientError{ClientErrc::bad_request,
                                   "header '" + n + "' has an invalid name or CR/LF in its value"};
        return {};
    }

    ClientResult<void> send(const ClientRequest& req) {
        std::string out;
        out.reserve(256 + req.body.size());
        out += method_;
        out += ' ';
        // Through a proxy, an http:// request names its server (absolute form); an https://
        // one is inside a tunnel to it already.
        const bool absolute = proxy_ && !proxy_->socks() && !url_.https;
        if (absolute) {
            out += "http://";
            out += url_.host_header;
        }
        out += url_.target;
        out += " HTTP/1.1\r\nHost: ";
        out += url_.host_header;
        out += "\r\n";
        bool has_agent = false;
        bool has_proxy_auth = false;
        for (const auto& [n, v] : req.headers) {  // checked by check()
            // The client's to write. Content-Length is the body's, whatever a caller (a proxy
            // forwarding an inbound request's fields) set: a wrong one would desynchronise the
            // pooled connection, and the server would read the rest as another request.
            if (iequals(n, "host") || iequals(n, "transfer-encoding") || iequals(n, "connection") ||
                iequals(n, "content-length"))
                continue;
            has_agent = has_agent || iequals(n, "user-agent");
            has_proxy_auth = has_proxy_auth || iequals(n, "proxy-authorization");
            out += n;
            out += ": ";
            out += v;
            out += "\r\n";
        }
        if (absolute && !has_proxy_auth && !proxy_->authorization.empty()) {
            out += "Proxy-Authorization: ";
            out += proxy_->authorization;
            out += "\r\n";
        }
        if (!has_agent && !core_->options.user_agent.empty()) {
            out += "User-Agent: ";
            out += core_->options.user_agent;
            out += "\r\n";
        }
        const bool body_method = method_ == "POST" || method_ == "PUT" || method_ == "PATCH";
        if (!req.body.empty() || body_method) {
            out += "Content-Length: ";
            out += std::to_string(req.body.size());
            out += "\r\n";
        }
        out += "\r\n";
        out += req.body;
        return conn_->write(out, total_, core_->options.read_timeout);
    }

    // The status line and headers (skipping 1xx interim responses), then the body's framing.
    // `within`: a bound for the whole head instead of read_timeout between reads.
    ClientResult<void> read_head(std::optional<Deadline> within = std::nullopt) {
        // Interim responses (100 Continue, 103 Early Hints) before the answer: a few, as Go's
        // transport allows; a server that sends them without end would hold the call forever.
        constexpr int kMaxInterim = 5;
        for (int interim = 0;; ++interim) {
            if (interim > kMaxInterim)
                return ClientError{
                    ClientErrc::protocol,
                    "more than " + std::to_string(kMaxInterim) + " interim (1xx) responses"};
            std::size_t end;
            std::size_t after = 0;
            for (;;) {
                std::string_view in = conn_->buffered();
                end = find_head_end(in, after);
                if (end != std::string_view::npos && after <= core_->options.max_header_bytes)
                    break;
                // Over the limit: the head found ends past it, or none ends within it.
                if (end != std::string_view::npos || in.size() > core_->options.max_header_bytes)
                    return ClientError{ClientErrc::too_large,
                                       "response head over " +
                                           std::to_string(core_->options.max_header_bytes) +
                                           " bytes"};
                auto more = conn_->fill(within ? *within : read_deadline());
                if (!more)
                    return within ? std::move(more).error()
                                  : read_timed_out(std::move(more).error(),
                                                   "waiting for the response head");
                if (!*more)
                    return ClientError{ClientErrc::closed,
                                       conn_->bytes_in == 0
                                           ? "the server closed the connection without answering"
                                           : "the server closed the connection mid-head"};
            }
            std::string_view head = conn_->buffered().substr(0, end);
            if (auto r = parse_head(head); !r) return r;
            conn_->consume(after);
            if (status >= 100 && status < 200 && status != 101) continue;  // 100 Continue...
            auto r = decide_framing();
            // No body to read (a 204, a HEAD's answer, Content-Length: 0): the connection goes
            // back to the pool now, not when the caller of stream() reads its end (or drops the
            // stream, which would close it). A 101's connection is the caller's to read.
            if (r && status != 101 &&
                (framing_ == Framing::none || (framing_ == Framing::length && remaining_ == 0)))
                finish(keep_alive_);
            return r;
        }
    }

    ClientResult<void> parse_head(std::string_view head) {
        headers.clear();
        // Lines end with CRLF, or a bare LF (see find_head_end).
        auto without_cr = [](std::string_view l) {
            return !l.empty() && l.back() == '\r' ? l.substr(0, l.size() - 1) : l;
        };
        const auto line_end = head.find('\n');
        std::string_view line = without_cr(head.substr(0, line_end));
        if (line.size() < 12 || !line.starts_with("HTTP/1.") ||
            (line[7] != '0' && line[7] != '1') || line[8] != ' ')
            return ClientError{ClientErrc::protocol, "not an HTTP/1.x status line"};
        version_minor = line[7] - '0';
        int code = 0;
        auto [p, ec] = std::from_chars(line.data() + 9, line.data() + 12, code);
        if (ec != std::errc() || p != line.data() + 12 || code < 100 || code > 599 ||
            (line.size() > 12 && line[12] != ' '))
            return ClientError{ClientErrc::protocol, "invalid status code"};
        status = code;
        reason = line.size() > 13 ? std::string(line.substr(13)) : std::string();
        // reason-phrase: HTAB, SP, visible and obs-text characters (RFC 9112 §4).
        if (std::any_of(reason.begin(), reason.end(), [](char ch) {
                const auto u = static_cast<unsigned char>(ch);
                return (u < 0x20 && ch != '\t') || u == 0x7f;
            }))
            return ClientError{ClientErrc::protocol, "a control character in the status line"};
        std::string_view rest =
            line_end == std::string_view::npos ? std::string_view() : head.substr(line_end + 1);
        while (!rest.empty()) {
            const auto e = rest.find('\n');
            std::string_view field = without_cr(rest.substr(0, e));
            rest = e == std::string_view::npos ? std::string_view() : rest.substr(e + 1);
            if (!field.empty() && (field[0] == ' ' || field[0] == '\t')) {
                // obs-fold: RFC 9112 §5.2 has a user agent read it as a space in the value of
                // the field it continues.
                if (headers.empty())
                    return ClientError{ClientErrc::protocol,
                                       "a folded line with no header field to continue"};
                std::string_view more = trim_ows(field);
                if (!safe_value(more))
                    return ClientError{ClientErrc::protocol, "a NUL, CR or LF in a header value"};
                std::string& value = headers.back().second;
                if (!more.empty()) value.append(value.empty() ? "" : " ").append(more);
                continue;
            }
            const auto colon = field.find(':');
            if (colon == std::string_view::npos || colon == 0)
                return ClientError{ClientErrc::protocol, "a header line without a name"};
            std::string_view name = field.substr(0, colon);
            if (!std::all_of(name.begin(), name.end(), token_char))
                return ClientError{ClientErrc::protocol, "invalid header name"};
            std::string_view value = trim_ows(field.substr(colon + 1));
            if (!safe_value(value))
                return ClientError{ClientErrc::protocol, "a NUL, CR or LF in a header value"};
            headers.emplace_back(std::string(name), std::string(value));
        }
        return {};
    }

    const std::string* find(std::string_view name) const {
        for (const auto& [n, v] : headers)
            if (iequals(n, name)) return &v;
        return nullptr;
    }

    ClientResult<void> decide_framing() {
        // RFC 9112 6.3, in its order.
        // Every Connection field counts (a "keep-alive" one and a "close" one: close).
        bool close = false, keep = false;
        for (const auto& [n, v] : headers) {
            if (!iequals(n, "connection")) continue;
            close = close || has_token(v, "close");
            keep = keep || has_token(v, "keep-alive");
        }
        keep_alive_ = !close && (version_minor == 1 || keep);
        if (method_ == "HEAD" || status == 204 || status == 304 ||
            (status >= 100 && status < 200)) {
            framing_ = Framing::none;
            return {};
        }
        const std::string* te = nullptr;
        std::string te_all;
        for (const auto& [n, v] : headers) {
            if (iequals(n, "transfer-encoding")) {
                te_all += (te_all.empty() ? "" : ",") + v;
                te = &te_all;
            }
        }
        if (te) {
            // chunked alone: the client decodes no other transfer coding, and a body still
            // in one (gzip, chunked) handed over as if it were the content would be wrong
            // (Go refuses them the same way).
            std::string_view all = trim_ows(*te);
            if (!iequals(all, "chunked")) {
                std::string_view first = all;
                while (!first.empty()) {
                    const auto comma = first.find(',');
                    const std::string_view token = trim_ows(first.substr(0, comma));
                    if (!iequals(token, "chunked")) {
                        first = token;
                        break;
                    }
                    first = comma == std::string_view::npos ? std::string_view()
                                                            : first.substr(comma + 1);
                }
                std::string b1, b2;
                const std::string_view coding = weft::escaped_ascii(first.substr(0, 64), b1);
                const std::string_view field = weft::escaped_ascii(all.substr(0, 64), b2);
                return ClientError{
                    ClientErrc::protocol,
                    (first.empty() ? std::string("chunked applied more than once")
                                   : "unsupported transfer coding '" + std::string(coding) + "'") +
                        " (Transfer-Encoding: " + std::string(field) + "): only chunked is read"};
            }
            framing_ = Framing::chunked;
            // Transfer-Encoding in HTTP/1.0, or beside a Content-Length: faulty framing
            // (RFC 9112 6.1, 6.3), which a middlebox may have read otherwise. This body is
            // read by its chunks; the connection is not trusted with another exchange.
            if (version_minor == 0 || find("content-length")) keep_alive_ = false;
            return {};
        }
        std::optional<std::uint64_t> length;
        for (const auto& [n, v] : headers) {
            if (!iequals(n, "content-length")) continue;
            std::uint64_t x = 0;
            auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
            if (v.empty() || ec != std::errc() || p != v.data() + v.size() ||
                (length && *length != x))
                return ClientError{ClientErrc::protocol, "invalid Content-Length"};
            length = x;
        }
        if (length) {
            framing_ = Framing::length;
            remaining_ = *length;
            return {};
        }
        framing_ = Framing::until_close;
        keep_alive_ = false;
        return {};
    }

    // Chunked framing's lines end with CRLF or, as in the head (see find_head_end), a bare LF.
    ClientResult<ChunkStep> next_chunk() {
        std::string_view in = conn_->buffered();
        if (need_chunk_crlf_) {
            if (in.empty() || (in[0] == '\r' && in.size() < 2)) return ChunkStep::need_bytes;
            const std::size_t n = in.starts_with("\r\n") ? 2 : in[0] == '\n' ? 1 : 0;
            if (n == 0) return fail({ClientErrc::protocol, "no CRLF after a chunk"});
            conn_->consume(n);
            need_chunk_crlf_ = false;
            in = conn_->buffered();
        }
        if (in_trailers_) {
            // Trailer fields, ignored, up to the empty line.
            for (;;) {
                const auto e = in.find('\n');
                const std::size_t line = e == std::string_view::npos ? in.size() : e + 1;
                if (trailer_bytes_ + line > core_->options.max_header_bytes)
                    return fail({ClientErrc::too_large, "trailers too large"});
                if (e == std::string_view::npos) return ChunkStep::need_bytes;
                trailer_bytes_ += line;
                conn_->consume(e + 1);
                if (e == 0 || (e == 1 && in[0] == '\r')) return ChunkStep::end;
                in = conn_->buffered();
            }
        }
        const auto e = in.find('\n');
        if (e == std::string_view::npos) {
            if (in.size() > kMaxChunkLine)
                return fail({ClientErrc::protocol, "a chunk-size line over 4096 bytes"});
            return ChunkStep::need_bytes;
        }
        std::string_view line = in.substr(0, e);
        if (line.ends_with('\r')) line.remove_suffix(1);
        std::string_view digits = line.substr(0, line.find(';'));
        digits = trim_ows(digits);
        std::uint64_t size = 0;
        auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), size, 16);
        if (digits.empty() || digits.size() > 16 || ec != std::errc() ||
            p != digits.data() + digits.size())
            return fail({ClientErrc::protocol, "invalid chunk size"});
        conn_->consume(e + 1);
        if (size == 0) {
            in_trailers_ = true;
            return next_chunk();
        }
        remaining_ = size;
        return ChunkStep::more;
    }

    // Shared: a stream may outlive its Client, and its pool must stay for the connection.
    std::shared_ptr<ClientCore> core_;
    Hub* owner_;     // the hub whose pool lent the connection
    HubPool* pool_;  // its pool
    Url url_;
    std::string method_;
    Deadline total_;
    std::unique_ptr<ClientConn> conn_;
    std::optional<ClientError> failed_;
    Framing framing_ = Framing::none;
    std::uint64_t remaining_ = 0;
    bool keep_alive_ = true;
    bool need_chunk_crlf_ = false;
    bool in_trailers_ = false;
    bool unsent_ = false;            // the request did not all go out: the connection is not reused
    std::size_t trailer_bytes_ = 0;  // of the trailer section (bounded by max_header_bytes)
    bool done_ = false;
};

}  // namespace detail

// --- Client ----------------------------------------------------------------------------------

using detail::ClientExchange;

namespace {

ClientResult<std::unique_ptr<ClientExchange>> open(const std::shared_ptr<detail::ClientCore>& core,
                                                   const ClientRequest& req, const detail::Url& url,
                                                   Deadline total) {
    if (!Hub::current() || this_fiber::id() == 0)
        return ClientError{ClientErrc::connect, "no fiber: the client parks a fiber"};
    auto x = std::make_unique<ClientExchange>(core, url, req.method, total);
    if (auto r = x->start(req); !r) return std::move(r).error();
    return x;
}

// `url` for an error message, with any user information (a password) shown as "***".
std::string shown_url(std::string_view url) {
    const auto scheme = url.find("://");
    // A scheme-relative reference (a Location of "//user:pw@host/") has its authority first.
    if (scheme == std::string_view::npos && !url.starts_with("//")) return std::string(url);
    const std::size_t from = scheme == std::string_view::npos ? 2 : scheme + 3;
    const std::size_t end = std::min(url.find_first_of("/?#", from), url.size());
    const auto at = url.substr(from, end - from).rfind('@');
    if (at == std::string_view::npos) return std::string(url);
    std::string out(url.substr(0, from));
    out += "***";
    out += url.substr(from + at);
    return out;
}

// Where an exchange starts: its URL, and its deadline (the request's own, and total_timeout).
struct Start {
    Deadline total;
    detail::Url url;
};
ClientResult<Start> start_of(const ClientOptions& o, const ClientRequest& req) {
    Deadline total = req.deadline;
    if (o.total_timeout.count() > 0) total = earliest(total, Deadline(o.total_timeout));
    auto url = detail::parse_url(req.url);
    if (!url)
        return ClientError{ClientErrc::bad_url, std::move(url).error() + ": " + shown_url(req.url)};
    return Start{total, std::move(*url)};
}

// Whether a response is a redirect the client follows: 301, 302, 303, 307 or 308 with a
// Location, when max_redirects allows any.
bool follows(const ClientOptions& o, int status, std::optional<std::string_view> location) {
    const bool redirect =
        status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
    return redirect && o.max_redirects > 0 && location.has_value();
}

// Makes `req` and `url` the next hop of a redirect (`status` to `location`, the `redirects`th
// one of the chain that began at `first_url`), or says why it is not followed.
std::optional<ClientError> next_hop(const ClientOptions& o, int status, std::string_view location,
                                    int redirects, const std::string& first_url, ClientRequest& req,
                                    detail::Url& url) {
    if (redirects >= o.max_redirects)
        return ClientError{
            ClientErrc::too_many_redirects,
            "more than " + std::to_string(o.max_redirects) + " redirects from " + first_url};
    auto next = detail::resolve_location(url, location);
    if (!next)
        return ClientError{ClientErrc::protocol, "invalid Location '" + shown_url(location) + "'"};
    // 303 (but for a HEAD), and 301/302 after a POST, become a GET without a body (what
    // browsers do): the body's own fields go with it.
    auto drop = [&req](std::initializer_list<std::string_view> names) {
        std::erase_if(req.headers, [&](const auto& h) {
            for (std::string_view n : names)
                if (iequals(h.first, n)) return true;
            return false;
        });
    };
    if ((status == 303 && req.method != "HEAD") ||
        ((status == 301 || status == 302) && req.method == "POST")) {
        req.method = "GET";
        req.body.clear();
        drop({"content-length", "content-type", "content-encoding", "transfer-encoding"});
    }
    // Credentials are for the origin they were given to (as Go's net/http does): not for
    // another host, port or scheme (an https:// to http:// hop would send them in clear).
    if (next->origin != url.origin) drop({"authorization", "proxy-authorization", "cookie"});
    url = std::move(*next);
    return std::nullopt;
}

}  // namespace

ClientOptions with_environment_proxies(ClientOptions o) {
    if (!o.http_proxy.empty() || !o.https_proxy.empty() || !o.no_proxy.empty()) return o;
    detail::EnvironmentProxies env = detail::environment_proxies();
    o.http_proxy = std::move(env.http);
    o.https_proxy = std::move(env.https);
    o.no_proxy = std::move(env.no_proxy);
    return o;
}

std::optional<std::string> ca_file_problem(const std::string& ca_file) {
    auto ctx = detail::TlsContext::client(ca_file, true);
    if (ctx) return std::nullopt;
    return std::move(ctx).error();
}

std::optional<std::string> proxy_setting_problem(std::string_view text) {
    if (text.find_first_not_of(" \t") == std::string_view::npos) return std::nullopt;
    auto p = detail::parse_proxy(text);
    if (p) return std::nullopt;
    return std::move(p).error();
}

std::vector<std::string> no_proxy_ignored(std::string_view text) {
    std::vector<std::string> ignored;
    (void)detail::NoProxy::parse(text, &ignored);
    return ignored;
}

std::string redact_proxy_setting(std::string_view text) {
    // All of the user information: a password, or a token given as the user name. Up to the
    // last '@', whatever comes before it: a password may hold '/', '?' or '#' unencoded.
    const auto scheme = text.find("://");
    const std::size_t from = scheme == std::string_view::npos ? 0 : scheme + 3;
    const auto at = text.rfind('@');
    if (at == std::string_view::npos || at < from) return std::string(text);
    std::string out(text.substr(0, from));
    out += "***";
    out += text.substr(at);
    return out;
}

Client::Client(ClientOptions options)
    : core_(std::make_shared<detail::ClientCore>(std::move(options))) {}

Client::~Client() = default;

const ClientOptions& Client::options() const noexcept {
    return core_->options;
}

ClientResult<ClientResponse> Client::get(std::string_view url, Deadline deadline) {
    ClientRequest r;
    r.url = std::string(url);
    r.deadline = deadline;
    return request(r);
}

ClientResult<ClientResponse> Client::request(const ClientRequest& original) {
    auto start = start_of(core_->options, original);
    if (!start) return std::move(start).error();
    const Deadline total = start->total;
    detail::Url& url = start->url;
    ClientRequest req = original;
    for (int redirects = 0;; ++redirects) {
        // Each hop of a redirect chain is an exchange of its own in the metrics, timed alone.
        const std::int64_t t0 = now_ns();
        auto x = open(core_, req, url, total);
        auto finish_metric = [&](int status, const char* error) {
            detail::record(req.method, status, error, url, now_ns() - t0);
        };
        if (!x) {
            finish_metric(0, client_errc_name(x.error().code));
            return detail::with_origin(std::move(x).error(), url);
        }
        ClientExchange& e = **x;
        // (A redirect that is followed is not the response: its body is not kept.)
        std::optional<std::string_view> location;
        for (const auto& [n, v] : e.headers)
            if (iequals(n, "location")) {
                location = v;
                break;
            }
        if (const auto len = e.announced_length(); len &&
                                                   *len > core_->options.max_response_bytes &&
                                                   !follows(core_->options, e.status, location)) {
            // Refused at its head, as libcurl's CURLOPT_MAXFILESIZE: nothing read for nothing.
            finish_metric(e.status, "too_large");
            return detail::with_origin(
                ClientError{ClientErrc::too_large,
                            "response body of " + std::to_string(*len) +
                                " bytes (Content-Length) over " +
                                std::to_string(core_->options.max_response_bytes) + " bytes"},
                url);
        }
        ClientResponse out;
        out.status = e.status;
        out.reason = e.reason;
        out.version_minor = e.version_minor;
        out.headers = e.headers;
        char buf[8192];
        for (;;) {
            auto n = e.read_body(std::span<char>(buf, sizeof buf));
            // A body that fails is counted with the status its head gave, and the error.
            if (!n) {
                finish_metric(out.status, client_errc_name(n.error().code));
                return detail::with_origin(std::move(n).error(), url);
            }
            if (*n == 0) break;
            if (out.body.size() + *n > core_->options.max_response_bytes) {
                finish_metric(out.status, "too_large");
                return detail::with_origin(
                    ClientError{ClientErrc::too_large,
                                "response body over " +
                                    std::to_string(core_->options.max_response_bytes) + " bytes"},
                    url);
            }
            out.body.append(buf, *n);
        }
        finish_metric(out.status, nullptr);
        if (!follows(core_->options, out.status, out.header("location"))) return out;
        if (auto e = next_hop(core_->options, out.status, *out.header("location"), redirects,
                              original.url, req, url))
            return std::move(*e);
    }
}

ClientResult<ClientStream> Client::stream(const ClientRequest& original) {
    auto start = start_of(core_->options, original);
    if (!start) return std::move(start).error();
    const Deadline total = start->total;
    detail::Url& url = start->url;
    ClientRequest req = original;
    for (int redirects = 0;; ++redirects) {
        const std::int64_t t0 = now_ns();
        auto x = open(core_, req, url, total);
        if (!x) {
            detail::record(req.method, 0, client_errc_name(x.error().code), url, now_ns() - t0);
            return detail::with_origin(std::move(x).error(), url);
        }
        (*x)->time_until_end(t0);
        ClientStream s(std::move(*x));
        const auto location = s.header("location");
        if (!follows(core_->options, s.status(), location)) return s;
        std::string where(*location);
        // A redirect's body is not the caller's: read a short one to its end, so that its
        // connection is reused (as Go's client reads up to 2 KiB); drop a longer one, closing
        // its connection. Either ends this hop's metric.
        char buf[4096];
        std::size_t left = 16 * 1024;
        for (;;) {
            auto n = s.read(std::span<char>(buf, sizeof buf));
            if (!n || *n == 0) break;
            if (*n >= left) break;
            left -= *n;
        }
        const int status = s.status();
        s = ClientStream();
        if (auto e = next_hop(core_->options, status, where, redirects, original.url, req, url))
            return std::move(*e);
    }
}

// --- ClientStream ----------------------------------------------------------------------------

ClientStream::ClientStream() noexcept = default;
ClientStream::ClientStream(std::unique_ptr<detail::ClientExchange> x) noexcept : x_(std::move(x)) {}
ClientStream::ClientStream(ClientStream&&) noexcept = default;
ClientStream& ClientStream::operator=(ClientStream&&) noexcept = default;
ClientStream::~ClientStream() = default;

int ClientStream::status() const noexcept {
    return x_ ? x_->status : 0;
}

const std::vector<std::pair<std::string, std::string>>& ClientStream::headers() const noexcept {
    static const std::vector<std::pair<std::string, std::string>> kNone;
    return x_ ? x_->headers : kNone;
}

std::optional<std::string_view> ClientStream::header(std::string_view name) const noexcept {
    for (const auto& [n, v] : headers())
        if (iequals(n, name)) return std::string_view(v);
    return std::nullopt;
}

ClientResult<std::size_t> ClientStream::read(std::span<char> buf) {
    if (!x_) return std::size_t{0};
    // The connection is its hub's (the I/O backend keeps state per descriptor; the pool it
    // goes back to is touched by that hub only): a read elsewhere would corrupt both.
    if (x_->off_hub_read())
        return ClientError{ClientErrc::bad_request,
                           "a ClientStream is read on the hub whose fiber opened it (it may be "
                           "dropped anywhere)"};
    auto r = x_->read_body(buf);
    if (!r) {
        x_->end_metric(client_errc_name(r.error().code));
        return detail::with_origin(std::move(r).error(), x_->url());
    }
    if (*r == 0) x_->end_metric(nullptr);
    return r;
}

// --- the default client and the metrics ------------------------------------------------------

namespace {
std::mutex g_default_mu;
ClientOptions g_default_options;
bool g_default_set = false;
bool g_default_made = false;
}  // namespace

Client& default_client() {
    static Client* c = [] {
        std::lock_guard<std::mutex> g(g_default_mu);
        g_default_made = true;
        // Without options of its own (a program other than the weft server), the proxies the
        // environment names, as Go's default transport takes them.
        return new Client(g_default_set ? g_default_options
                                        : with_environment_proxies(g_default_options));
    }();
    return *c;
}

void set_default_client_options(ClientOptions options) {
    std::lock_guard<std::mutex> g(g_default_mu);
    if (g_default_made)
        throw std::logic_error("set_default_client_options() after default_client() was used");
    g_default_options = std::move(options);
    g_default_set = true;
}

void for_each_client_series(const std::function<void(const ClientSeries&)>& fn) {
    auto& all = detail::hub_metrics();
    for (unsigned h = 0; h < all.size(); ++h) {
        std::lock_guard<std::mutex> g(all[h].mu);
        for (const auto& [k, hist] : all[h].series) {
            ClientSeries s;
            s.hub = h;
            s.method = k.method;
            s.status = k.status;
            s.error_type = k.error;
            s.server_address = k.address;
            s.server_port = k.port;
            s.scheme = k.scheme;
            s.duration = hist.get();
            fn(s);
        }
    }
}

void for_each_client_connections(
    unsigned hubs,
    const std::function<void(unsigned hub, std::size_t open, std::size_t idle)>& fn) {
    auto& all = detail::hub_metrics();
    for (unsigned h = 0; h < all.size(); ++h) {
        const auto open = all[h].open.load(std::memory_order_relaxed);
        const auto idle = all[h].idle.load(std::memory_order_relaxed);
        if (open == 0 && idle == 0 && h >= hubs) continue;
        fn(h, static_cast<std::size_t>(std::max<std::int64_t>(open, 0)),
           static_cast<std::size_t>(std::max<std::int64_t>(idle, 0)));
    }
}

}  // namespace weft::http

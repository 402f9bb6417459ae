// Http1Session: the HTTP/1.1 protocol of one connection, without sockets, behind one entry point:
// bytes go in (on_bytes), or the news that the wait for them timed out (on_timeout); the session
// answers every complete request in order, writing each batch of responses with one
// Transport::send(), and returns the Step the connection takes next (read until a deadline, wait
// idle, or close). The connection fiber drives it from a socket, the unit tests and the fuzzer
// from buffers. A session is scratch that a connection borrows while it has work (idle
// connections hold none).
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "request_life.hpp"
#include "request_parser.hpp"
#include "serializer.hpp"
#include "weft/core/deadline.hpp"
#include "weft/core/fiber.hpp"
#include "weft/core/result.hpp"
#include "weft/core/tcp.hpp"
#include "weft/http/response_stream.hpp"
#include "weft/http/router.hpp"
#include "weft/http/server_options.hpp"

namespace weft::http::detail {

class HubRequestMetrics;
class BodyBudget;
class WebSocketCore;

/// Where response bytes go. send() writes all of `bufs` (blocking the fiber) or fails.
class Transport {
  public:
    virtual Result<void> send(std::span<const iovec> bufs) = 0;
    /// Sends all of `bytes`, as send() would; it may take their storage instead of copying
    /// them, and leave `bytes` holding other (empty) storage.
    virtual Result<void> send_buffer(ByteBuffer& bytes) {
        const iovec v{const_cast<char*>(bytes.data()), bytes.size()};
        return send(std::span<const iovec>(&v, 1));
    }
    /// Hands all of `bytes` to the kernel now, without waiting (no send of its own in flight,
    /// nothing that would block), taking their storage as send_buffer() may; false, leaving
    /// `bytes` as they were, when it cannot.
    virtual bool send_now(ByteBuffer& bytes) noexcept {
        (void)bytes;
        return false;
    }
    /// Receives what follows the requests on the connection (a WebSocket's frames, after the
    /// upgrade) and appends it to `out`; returns how many bytes, 0 at the end of the stream.
    /// A wait holds no buffer of its own (the socket's pooled receive buffers).
    virtual Result<std::size_t> recv_append(std::string& out, Deadline deadline) {
        (void)out;
        (void)deadline;
        return Errc::closed;
    }
    /// Ends the reading side (shutdown(SHUT_RD)): a receive waiting now, or later, sees the end
    /// of the stream. The sending side stays open.
    virtual void shutdown_read() noexcept {}

  protected:
    ~Transport() = default;
};

/// What every session of one server on one hub shares. Made by make_session_context() only.
struct SessionContext {
    const ServerOptions* options = nullptr;
    const Router* router = nullptr;
    HubRequestMetrics* metrics = nullptr;  ///< may be null (no metrics)
    DateCache* date = nullptr;             ///< also writes the Server header
    const bool* draining = nullptr;        ///< the hub's drain flag
    BodyBudget* bodies = nullptr;          ///< may be null (no budget)
    unsigned hub = 0;
};

/// The one factory of session settings, used by the server, the unit tests and the fuzzer.
/// Everything it points at must outlive the sessions.
inline SessionContext make_session_context(const ServerOptions& options, const Router& router,
                                           HubRequestMetrics* metrics, DateCache& date,
                                           const bool& draining, unsigned hub,
                                           BodyBudget* bodies = nullptr) noexcept {
    SessionContext c;
    c.options = &options;
    c.router = &router;
    c.metrics = metrics;
    c.date = &date;
    c.draining = &draining;
    c.bodies = bodies;
    c.hub = hub;
    return c;
}

/// The "Server: NAME\r\n" line a DateCache writes before the Date (empty with no name).
inline std::string server_header_line(const ServerOptions& options) {
    return options.server_name.empty() ? std::string() : "Server: " + options.server_name + "\r\n";
}

/// What a connection keeps between its busy periods.
struct ConnectionInfo {
    int fd = -1;  ///< the socket, watched for a client that hangs up while a handler waits
    const SocketAddress* peer = nullptr;
    std::string_view peer_text;
    std::uint64_t requests = 0;          ///< requests answered on this connection
    Clock::time_point accepted_at{};     ///< when it was accepted (the epoch: unknown)
    WebSocketCore* websocket = nullptr;  ///< while a WebSocket handler runs on it
    bool tls = false;                    ///< served over TLS (the HTTPS listener)
    /// The server cut it (a stop at the drain's end, room made at max_connections): its fiber
    /// is cancelled and sends nothing more.
    bool cut = false;
};

/// What the connection does after the session had its say.
struct Step {
    enum class Kind : std::uint8_t {
        read,   ///< a request is incomplete: receive more, giving up at `deadline`
        idle,   ///< between requests, keep-alive: wait (fiber-less) for the next one
        close,  ///< done: close the connection (after lingering, if `linger`)
    };
    Kind kind = Kind::idle;
    Deadline deadline;    ///< for read: the header or body timeout
    bool linger = false;  ///< for close: the client may still be sending; read and drop it
                          ///< for a while, so that it sees our answer rather than a reset
    /// For read while a request head is incomplete: when that head began (else the epoch).
    Clock::time_point head_started{};
};

class Http1Session final : public StreamSink, EarlyFlush {
  public:
    /// Requests parsed before their handlers run; more wait in the carry buffer.
    static constexpr std::size_t kMaxBatch = 64;

    explicit Http1Session(const SessionContext& ctx);
    ~Http1Session();
    Http1Session(const Http1Session&) = delete;
    Http1Session& operator=(const Http1Session&) = delete;

    /// Binds the session to a connection that is between requests.
    void start(ConnectionInfo& conn, Transport& transport) noexcept;
    /// Unbinds it (and trims oversized storage) so another connection can use it.
    void finish() noexcept;

    /// Bytes received at `now`. Copies every request in them (so `release`, when given, is
    /// reset right after parsing: the pooled buffer goes back before any handler runs), runs
    /// the handlers of the complete ones in order, sends their responses (one send per batch
    /// of up to kMaxBatch; a streaming handler sends earlier), and sends "100 Continue" before
    /// a body is read when the request asked for it. May block the calling fiber.
    Step on_bytes(std::string_view bytes, Clock::time_point now, RecvBuffer* release = nullptr);
    /// The read of the last Step timed out: answers 408 when a request had begun; then closes.
    Step on_timeout();

    const FiberLabels* labels() const noexcept { return &labels_; }

    Result<void> stream_write(const Response& head, std::string_view data) override;

  private:
    enum class Next { idle, read_header, read_body, close };
    struct Slot {
        std::unique_ptr<Request> req;
        Clock::time_point received{};  // complete
        Clock::time_point started{};   // its first byte
        int error_status = 0;
        const char* error_reason = "";
        // The answer, recorded (metrics, access log) once its bytes are sent.
        bool answered = false;
        int status = 0;
        unsigned route_id = 0;
        std::string_view route;
        std::uint64_t bytes = 0;
        std::size_t body_charge = 0;     // what the body took from the budget
        Clock::time_point sent_early{};  // handed to the kernel before the batch (flush_early)
    };
    struct Piece {
        const char* ptr;  // nullptr: an offset into out_
        std::size_t off;
        std::size_t len;
    };

    void parse(std::string_view bytes, Clock::time_point now);
    void respond();
    void parse_from(const char* data, std::size_t len, Clock::time_point now);
    Next next() const noexcept;
    Step step() const noexcept;
    Deadline read_deadline() const noexcept;
    void before_read();
    Slot& slot(std::size_t i);
    void handle(Slot& s, bool last_in_batch);
    void run_stream(const Endpoint& ep, Request& req, RequestLife& life, bool& keep, int& status,
                    std::uint64_t& bytes);
    /// A WebSocket route: the opening handshake, then the handler, then the close. Returns
    /// the status recorded (101, or the handshake's refusal).
    int run_websocket(const Endpoint& ep, Request& req, bool& keep, std::uint64_t& bytes,
                      Clock::time_point received);
    bool draining_now() const noexcept;
    /// Appends status line and headers; clears `keep` when the connection must close.
    void append_head(const Request& req, const Response& r, bool& keep, bool chunked,
                     std::size_t content_length, bool with_length);
    void append_response(const Request& req, Response&& r, bool& keep, std::uint64_t& bytes,
                         bool head_only);
    /// Before a body that was asked to wait for "100 Continue": answers a request no route
    /// takes at once (and closes); false when the body is wanted.
    bool refused_before_body();
    /// Appends the error answer; returns its body's size.
    std::uint64_t append_error(Request& req, int status, const char* reason);
    /// The first line of the message being received, from `n` bytes of it at `p` (its start
    /// unless `continued`): what the access log shows for a refused request.
    void note_line(const char* p, std::size_t n, bool continued) noexcept;
    void append_external(std::string_view bytes);
    void close_out_piece() noexcept;
    Result<void> flush();
    /// A handler is about to wait (RequestLife's park hook): the answers of the requests
    /// pipelined before its own go out now, if the transport can send them without waiting,
    /// not after it (a slow request would hold them, and the times they are logged with: they
    /// are recorded after the batch, with this time).
    void flush_early() noexcept override;
    /// Notes the answer to slot `s`, for record_answered() after the batch is sent.
    void answered(Slot& s, int status, unsigned route_id, std::string_view route,
                  std::uint64_t bytes) noexcept;
    /// Records every answered request of the batch: its duration ends now, when its last
    /// byte was handed to the kernel, or queued for it (a detached send: see
    /// Connection::send), or the send failed.
    void record_answered();
    /// Frees a body's storage unless it is small, and gives its bytes back to the budget.
    void free_body(Slot& s) noexcept;
    /// Metrics time a request from `received` (complete); the access log from `started` (its
    /// first byte), as nginx's $request_time. `request_line` is for a refused request.
    void record(const Request& req, int status, unsigned route_id, std::string_view route,
                Clock::time_point started, Clock::time_point received, Clock::time_point sent,
                std::uint64_t bytes, std::string_view request_line);
    void set_labels(const Request& req) noexcept;

    const SessionContext& ctx_;
    RequestParser parser_;
    ConnectionInfo* conn_ = nullptr;
    Transport* transport_ = nullptr;

    RawParams raw_params_;     // the route match's captures (kept: it is 0.5 KiB)
    std::vector<Slot> slots_;  // [0, ready_): parsed; slot ready_: the request being parsed
    std::size_t ready_ = 0;
    std::string carry_;
    std::string carry_spare_;
    std::string after_close_;  // bytes after a request that closes (a WebSocket's first frames)
    Clock::time_point msg_started_{};
    static constexpr std::size_t kLineMax = 256;
    std::string line_;  // see note_line()
    bool line_done_ = false;
    Clock::time_point body_progress_at_{};  // end of the headers, then each body read
    Clock::time_point body_started_at_{};   // end of the headers (min_body_rate runs from it)
    /// When the body being read falls below min_body_rate; never when there is no minimum.
    Deadline body_rate_deadline() const noexcept;

    ByteBuffer out_;             // response bytes of the batch
    std::size_t out_mark_ = 0;   // start of out_'s bytes not yet in pieces_
    std::vector<Piece> pieces_;  // what the batch sends, in order
    std::vector<iovec> iov_;
    std::vector<Response> held_;  // responses whose large bodies pieces_ points into

    bool closing_ = false;
    bool stop_parsing_ = false;
    bool send_failed_ = false;
    bool in_flush_ = false;  // flush() is handing bytes to the transport (which may park)
    bool continue_sent_ = false;
    bool linger_ = false;
    RequestContextSlot request_context_;  // current_request() for the handlers
    bool last_in_batch_ = false;          // the request being answered is the batch's last
    bool grown_ = false;                  // some request's storage grew past the trim size

    // The streaming response in progress.
    const Request* stream_req_ = nullptr;
    const RequestLife* stream_life_ = nullptr;
    bool stream_keep_ = false;
    bool stream_started_ = false;
    bool stream_sent_ = false;  // a write of the stream went out (its head with it)
    bool stream_chunked_ = false;
    bool stream_no_body_ = false;
    bool stream_failed_ = false;
    std::uint64_t stream_bytes_ = 0;
    int stream_status_ = 200;

    FiberLabels labels_;
};

}  // namespace weft::http::detail

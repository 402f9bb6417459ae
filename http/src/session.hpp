// Http1Session: the HTTP/1.1 protocol of one connection, without sockets. Bytes go in through
// parse(); respond() runs the handlers of the requests parsed so far, in order, and writes all
// their responses with one Transport::send(); next() says what the connection waits for. The
// connection fiber drives it from a socket, the fuzzer from a buffer. A session is scratch that
// a connection borrows while it has work (idle connections hold none).
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "request_parser.hpp"
#include "serializer.hpp"
#include "weft/core/deadline.hpp"
#include "weft/core/fiber.hpp"
#include "weft/core/result.hpp"
#include "weft/http/response_stream.hpp"
#include "weft/http/router.hpp"
#include "weft/http/server_options.hpp"

namespace weft::http::detail {

class HubRequestMetrics;

/// Where response bytes go. send() writes all of `bufs` (blocking the fiber) or fails.
class Transport {
  public:
    virtual Result<void> send(std::span<const iovec> bufs) = 0;

  protected:
    ~Transport() = default;
};

/// What every session of one server on one hub shares.
struct SessionContext {
    const ServerOptions* options = nullptr;
    const Router* router = nullptr;
    HubRequestMetrics* metrics = nullptr;  ///< may be null (no metrics)
    DateCache* date = nullptr;             ///< also writes the Server header
    const bool* draining = nullptr;        ///< the hub's drain flag
    ParserLimits limits;
    unsigned hub = 0;
};

/// What a connection keeps between its busy periods.
struct ConnectionInfo {
    const SocketAddress* peer = nullptr;
    std::string_view peer_text;
    std::uint64_t requests = 0;  ///< requests answered on this connection
};

class Http1Session final : public StreamSink {
  public:
    enum class Next {
        idle,         ///< between requests, keep-alive: wait (fiber-less) for the next one
        read_header,  ///< a request's header section is incomplete
        read_body,    ///< a request's body is incomplete
        close,        ///< done: close the connection (see wants_linger())
    };
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

    /// Parses `bytes` received at `now`: copies every request in them (up to kMaxBatch; the
    /// rest goes to the carry buffer), so the caller may release the bytes right after.
    void parse(std::string_view bytes, Clock::time_point now);
    /// Runs the handlers of the parsed requests in order and sends their responses, all in
    /// one send (a streaming handler sends earlier). May block the calling fiber.
    void respond();
    /// Bytes left in the carry buffer (a batch was full): call parse_carry() then respond().
    bool has_carry() const noexcept { return !carry_.empty() && !closing_; }
    void parse_carry(Clock::time_point now);

    Next next() const noexcept;
    /// When the wait of next() gives up (header or body timeout).
    Deadline read_deadline() const noexcept;
    /// Before waiting for a body: sends "100 Continue" if the request asked for it.
    void before_read();
    /// The wait of next() timed out: answers 408 when a request had begun; then closes.
    void on_read_timeout();
    /// The connection is closing with input the client may still be sending: read and drop
    /// it for a while so the client sees our response rather than a reset.
    bool wants_linger() const noexcept { return closing_ && !send_failed_ && linger_; }

    const FiberLabels* labels() const noexcept { return &labels_; }

    Result<void> stream_write(const Response& head, std::string_view data) override;

  private:
    struct Slot {
        std::unique_ptr<Request> req;
        Clock::time_point received{};
        int error_status = 0;
        const char* error_reason = "";
    };
    struct Piece {
        const char* ptr;  // nullptr: an offset into out_
        std::size_t off;
        std::size_t len;
    };

    void parse_from(const char* data, std::size_t len, Clock::time_point now);
    Slot& slot(std::size_t i);
    void handle(Slot& s, bool last_in_batch);
    void run_stream(const Endpoint& ep, Request& req, bool& keep, int& status,
                    std::uint64_t& bytes);
    bool draining_now() const noexcept;
    /// Appends status line and headers; clears `keep` when the connection must close.
    void append_head(const Request& req, const Response& r, bool& keep, bool chunked,
                     std::size_t content_length, bool with_length);
    void append_response(const Request& req, Response&& r, bool& keep, std::uint64_t& bytes,
                         bool head_only);
    void append_error(Request& req, int status, const char* reason);
    void append_external(std::string_view bytes);
    void close_out_piece() noexcept;
    Result<void> flush();
    void record(const Request& req, int status, unsigned route_id, std::string_view route,
                Clock::time_point received, std::uint64_t bytes);
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
    Clock::time_point msg_started_{};
    Clock::time_point body_progress_at_{};  // end of the headers, then each body read

    ByteBuffer out_;             // response bytes of the batch
    std::size_t out_mark_ = 0;   // start of out_'s bytes not yet in pieces_
    std::vector<Piece> pieces_;  // what the batch sends, in order
    std::vector<iovec> iov_;
    std::vector<Response> held_;  // responses whose large bodies pieces_ points into

    bool closing_ = false;
    bool stop_parsing_ = false;
    bool send_failed_ = false;
    bool continue_sent_ = false;
    bool linger_ = false;
    bool last_in_batch_ = false;  // the request being answered is the batch's last
    bool grown_ = false;          // some request's storage grew past the trim size

    // The streaming response in progress.
    const Request* stream_req_ = nullptr;
    bool stream_keep_ = false;
    bool stream_started_ = false;
    bool stream_chunked_ = false;
    bool stream_no_body_ = false;
    bool stream_failed_ = false;
    std::uint64_t stream_bytes_ = 0;
    int stream_status_ = 200;

    FiberLabels labels_;
};

}  // namespace weft::http::detail

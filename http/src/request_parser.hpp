// RequestParser: the llhttp glue. Feeds bytes to llhttp (strict mode, no lenient flags), copies
// what it reports into a Request, enforces the size limits as the bytes arrive, and stops after
// each complete request so the caller decides what comes next. Errors carry the status to
// answer (400, 413, 414, 417, 431, 501, 505) and a reason in Weft's words (never llhttp's).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "weft/http/request.hpp"
#include "weft/http/server_options.hpp"

namespace weft::http::detail {

class BodyBudget;

class RequestParser {
  public:
    enum class Kind {
        need_more,  ///< every byte consumed; the request (if one started) is incomplete
        complete,   ///< a request is complete; `consumed` bytes belong to it (or precede it)
        error,      ///< malformed or over a limit: answer error_status() and close
    };
    struct Step {
        Kind kind = Kind::need_more;
        std::size_t consumed = 0;
    };

    /// A chunk-size line (with the CRLF ending the chunk before it, leading zeros and chunk
    /// extensions) longer than this is refused (400): nothing legitimate comes close.
    static constexpr std::size_t kMaxChunkLineBytes = 4096;
    /// A chunked body's framing (size lines, extensions, CRLFs, trailer section) may exceed
    /// its data by at most this plus max_header_bytes (the trailer's own limit); beyond, 413.
    /// So a chunked body costs at most about twice max_body_bytes on the wire.
    static constexpr std::size_t kFramingAllowance = 64 * 1024;

    /// Enforces the limits of `options` (max_header_bytes, max_uri_bytes, max_headers,
    /// max_body_bytes), which must outlive the parser. A body's storage is taken from `bodies`
    /// (when given) as it grows; beyond it, 503.
    explicit RequestParser(const ServerOptions& options, BodyBudget* bodies = nullptr) noexcept;
    RequestParser(ServerOptions&&, BodyBudget* = nullptr) = delete;  // it keeps a reference
    RequestParser(const RequestParser&) = delete;
    RequestParser& operator=(const RequestParser&) = delete;

    /// Back to "between requests" (a new connection, or after an error); gives back what the
    /// body of an unfinished request took from the budget (its storage is the caller's).
    void reset() noexcept;
    /// After a complete request: the bytes its body took from the budget, now the caller's to
    /// give back once the body is freed.
    std::size_t take_body_charge() noexcept {
        std::size_t n = body_charge_;
        body_charge_ = 0;
        return n;
    }
    /// Parses `data` into `req` (the same Request until a step returns complete or error;
    /// `peer` is recorded in it when a request begins).
    Step feed(const char* data, std::size_t len, Request& req, const SocketAddress* peer);

    /// A request has begun and is not complete.
    bool in_message() const noexcept { return in_message_; }
    /// The current request's header section is complete (its body may still be arriving).
    bool headers_done() const noexcept { return headers_done_; }
    /// The current request asked for "100 Continue" and its body has not started.
    bool wants_continue() const noexcept {
        return in_message_ && headers_done_ && expect_continue_ && !body_started_;
    }
    /// How many requests began so far (a request begins at its first byte).
    std::uint64_t messages_begun() const noexcept { return begun_; }
    int error_status() const noexcept { return error_status_; }
    /// Whether common requests take the fast path (on by default; tests compare both ways).
    void set_fast_path(bool on) noexcept { fast_ = on; }
    const char* error_reason() const noexcept { return error_reason_; }

    // llhttp callbacks (called from the glue's C trampolines).
    int on_message_begin() noexcept;
    int on_url(const char* at, std::size_t len);
    int on_url_complete() noexcept;
    int on_header_field(const char* at, std::size_t len);
    int on_header_field_complete() noexcept;
    int on_header_value(const char* at, std::size_t len);
    int on_header_value_complete() noexcept;
    int on_headers_complete();
    int on_body(const char* at, std::size_t len);
    int on_chunk_header() noexcept;
    int on_message_complete() noexcept;

    /// Records the status to answer and makes llhttp stop (returns its error code).
    int fail(int status, const char* reason) noexcept;

  private:
    struct HeaderSpan {
        std::uint32_t name_off, name_len, value_off, value_len;
    };
    // A request line whose method llhttp does not know: checked on to its end, so that only a
    // well-formed line gets 501 and anything else 400.
    enum class LineProbe : std::uint8_t { off, method, target_start, target, version, cr, lf };

    /// llhttp afresh, for a request, with this parser as its data.
    void start_llhttp() noexcept;
    bool folded(const char* p, std::size_t n) noexcept;
    /// Whether the request keeps the connection, from its Connection tokens (OWS trimmed).
    bool keep_alive_by_tokens(int http_minor) const noexcept;
    /// Whether an Upgrade field value offers WebSocket, the one protocol a route may switch to.
    static bool offers_websocket(std::string_view upgrade) noexcept;
    /// Whether the request asks for an upgrade the server may take (to WebSocket) or is a
    /// CONNECT: the connection is not HTTP/1.1 after it, unless refused.
    bool takes_upgrade() const noexcept;
    /// The checks of the trailer section's bytes `p` (see .cpp): 0, or -1 after fail().
    int check_trailer(const char* p, std::size_t n) noexcept;
    /// The checks of a complete header section; false after fail().
    int check_headers(int http_minor, bool has_body) noexcept;
    /// A whole common request at `data` parsed without llhttp: its length, or 0 to decline.
    std::size_t fast_request(const char* data, std::size_t len);
    /// A request is complete (both paths).
    void end_message() noexcept;
    bool split_target() noexcept;
    void classify_error(int err) noexcept;
    /// After the request-target: the protocol name in [p, end) must be HTTP's (see .cpp).
    int check_protocol(const char* p, const char* end) noexcept;
    /// Runs the request-line probe over [p, p + n); returns the bytes it took.
    std::size_t probe_line(const char* p, std::size_t n) noexcept;
    /// Counts `n` bytes of chunked framing; false (after fail()) beyond a bound.
    bool add_framing(std::size_t n) noexcept;

  public:
    /// The current request's Content-Length (0: none, or chunked).
    std::size_t body_announced() const noexcept { return body_announced_; }

  private:
    /// Makes room for `need` bytes of body (doubling), taken from the budget; false (after
    /// fail()) when the budget is spent.
    bool grow_body(std::string& body, std::size_t need);

    alignas(8) unsigned char llhttp_[128];  // llhttp_t (size checked in the .cpp)
    const ServerOptions& limits_;
    const std::size_t max_body_;  // max_body_bytes, with 0 (no limit) as SIZE_MAX
    BodyBudget* const bodies_;
    std::size_t body_charge_ = 0;     // what the current request's body took from bodies_
    std::size_t body_announced_ = 0;  // its Content-Length (0: none, or chunked)
    Request* req_ = nullptr;
    const SocketAddress* peer_ = nullptr;
    std::vector<HeaderSpan> spans_;
    std::size_t header_bytes_ = 0;   // bytes of the current header section so far
    std::size_t trailer_bytes_ = 0;  // chunked trailer fields (counted, not kept)
    bool in_message_ = false;
    bool headers_done_ = false;
    bool field_open_ = false;
    bool expect_continue_ = false;
    bool body_started_ = false;
    bool completed_ = false;        // set by on_message_complete during one llhttp_execute
    bool fold_after_lf_ = false;    // the header bytes so far end with a line feed
    bool fold_scan_done_ = false;   // the empty line ending the header section was seen
    const char* scan_reason_ = "";  // why folded() refused
    bool fold_started_ = false;     // a byte of the request line was seen
    bool field_seen_ = false;       // the current field line has name bytes
    LineProbe probe_ = LineProbe::off;
    std::uint8_t probe_version_ = 0;    // characters of "HTTP/d.d" matched so far
    bool protocol_pending_ = false;     // the target ended; the protocol name is not seen yet
    const char* url_end_ = nullptr;     // where llhttp's last target piece ended (a space)
    std::uint64_t url_end_exec_ = 0;    // ... in which llhttp_execute() (see exec_count_)
    const char* exec_begin_ = nullptr;  // the bytes llhttp is parsing
    const char* exec_end_ = nullptr;
    std::uint64_t exec_count_ = 0;  // llhttp_execute() calls so far
    // Chunked framing of the current request: what llhttp consumed that was not body data.
    bool chunked_ = false;
    bool last_chunk_ = false;       // the zero-size chunk was seen: the trailer follows
    bool trailer_next_ = false;     // paused at the last chunk: the trailer section follows
    bool trailer_scan_ = false;     // scanning the trailer section for bare LFs
    bool trailer_skip_lf_ = false;  // the last chunk's size line still ends in LF
    char trailer_prev_ = 0;
    std::size_t trailer_line_ = 0;      // bytes of the current trailer line
    std::size_t trailer_raw_ = 0;       // bytes of the trailer section, line ends included
    std::size_t trailer_fields_ = 0;    // its lines (fields) so far
    const char* frame_mark_ = nullptr;  // end of what was counted, in the slice being parsed
    std::size_t framing_run_ = 0;       // framing bytes since the last data byte
    std::size_t framing_total_ = 0;
    std::uint64_t begun_ = 0;
    bool fast_ = true;
    bool llhttp_done_ = false;     // llhttp ended the connection's requests (close, upgrade)
    bool restart_llhttp_ = false;  // llhttp would refuse the next request we keep
    bool llhttp_used_ = true;      // llhttp ran since its last init (reset() inits it only then)
    int error_status_ = 0;
    const char* error_reason_ = "";
};

}  // namespace weft::http::detail

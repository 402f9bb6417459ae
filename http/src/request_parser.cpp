// The llhttp glue: the only file that includes llhttp.h. llhttp runs in strict mode (built with
// LLHTTP_STRICT_MODE=1, no lenient flag set but the version's: see start_llhttp); its callbacks
// copy the request into a
// Request and enforce the limits, and on_message_complete pauses the parser so each step ends
// with at most one request.
#include "request_parser.hpp"

#include <llhttp.h>

#include <array>
#include <cstring>
#include <string_view>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "body_budget.hpp"
#include "request_access.hpp"
#include "uri.hpp"

namespace weft::http::detail {

static_assert(sizeof(llhttp_t) <= 128, "RequestParser reserves 128 bytes for llhttp_t");
static_assert(alignof(llhttp_t) <= 8);

namespace {

RequestParser* self(llhttp_t* p) noexcept {
    return static_cast<RequestParser*>(p->data);
}

// The callbacks copy into growing storage; running out of memory must not unwind through
// llhttp's C frames, so it becomes an error status here.
template <class F>
int guarded(llhttp_t* p, int status, F&& f) noexcept {
    try {
        return f(self(p));
    } catch (...) {
        return self(p)->fail(status, "request too large for the memory available");
    }
}

int cb_message_begin(llhttp_t* p) {
    return self(p)->on_message_begin();
}
int cb_url(llhttp_t* p, const char* at, size_t n) {
    return guarded(p, 414, [&](RequestParser* r) { return r->on_url(at, n); });
}
int cb_url_complete(llhttp_t* p) {
    return self(p)->on_url_complete();
}
int cb_header_field(llhttp_t* p, const char* at, size_t n) {
    return guarded(p, 431, [&](RequestParser* r) { return r->on_header_field(at, n); });
}
int cb_header_field_complete(llhttp_t* p) {
    return self(p)->on_header_field_complete();
}
int cb_header_value(llhttp_t* p, const char* at, size_t n) {
    return guarded(p, 431, [&](RequestParser* r) { return r->on_header_value(at, n); });
}
int cb_header_value_complete(llhttp_t* p) {
    return self(p)->on_header_value_complete();
}
int cb_headers_complete(llhttp_t* p) {
    return guarded(p, 431, [](RequestParser* r) { return r->on_headers_complete(); });
}
int cb_body(llhttp_t* p, const char* at, size_t n) {
    return guarded(p, 413, [&](RequestParser* r) { return r->on_body(at, n); });
}
int cb_chunk_header(llhttp_t* p) {
    return self(p)->on_chunk_header();
}
int cb_message_complete(llhttp_t* p) {
    return self(p)->on_message_complete();
}

const llhttp_settings_t& settings() noexcept {
    static const llhttp_settings_t s = [] {
        llhttp_settings_t v;
        llhttp_settings_init(&v);
        v.on_message_begin = cb_message_begin;
        v.on_url = cb_url;
        v.on_url_complete = cb_url_complete;
        v.on_header_field = cb_header_field;
        v.on_header_field_complete = cb_header_field_complete;
        v.on_header_value = cb_header_value;
        v.on_header_value_complete = cb_header_value_complete;
        v.on_headers_complete = cb_headers_complete;
        v.on_body = cb_body;
        v.on_chunk_header = cb_chunk_header;
        v.on_message_complete = cb_message_complete;
        return v;
    }();
    return s;
}

Method method_of(uint8_t m) noexcept {
    switch (m) {
        case HTTP_GET:
            return Method::get;
        case HTTP_HEAD:
            return Method::head;
        case HTTP_POST:
            return Method::post;
        case HTTP_PUT:
            return Method::put;
        case HTTP_DELETE:
            return Method::delete_;
        case HTTP_CONNECT:
            return Method::connect;
        case HTTP_OPTIONS:
            return Method::options;
        case HTTP_TRACE:
            return Method::trace;
        case HTTP_PATCH:
            return Method::patch;
        default:
            return Method::other;
    }
}

bool is_tchar(char c) noexcept {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != '\0';
}

bool istarts_with(std::string_view s, std::string_view prefix) noexcept {
    return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

}  // namespace

static llhttp_t* ll(unsigned char* raw) noexcept {
    return reinterpret_cast<llhttp_t*>(raw);
}
static const llhttp_t* ll(const unsigned char* raw) noexcept {
    return reinterpret_cast<const llhttp_t*>(raw);
}

RequestParser::RequestParser(const ServerOptions& options, BodyBudget* bodies) noexcept
    : limits_(options),
      max_body_(options.max_body_bytes ? options.max_body_bytes : SIZE_MAX),
      bodies_(bodies) {
    reset();
}

void RequestParser::start_llhttp() noexcept {
    llhttp_t* p = ll(llhttp_);
    llhttp_init(p, HTTP_REQUEST, &settings());
    p->data = this;
    // Any one-digit version parses; on_headers_complete decides. RFC 9110 §2.5: a higher minor
    // version of a major one we speak ("HTTP/1.2") is processed as the highest we speak (1.1),
    // as nginx and Go's net/http do; another major version gets 505. (llhttp 8 has the flag but
    // no setter for it.)
    p->lenient_flags |= LENIENT_VERSION;
}

void RequestParser::reset() noexcept {
    if (llhttp_used_) {  // a connection whose requests all took the fast path left it as it was
        start_llhttp();
        llhttp_used_ = false;
    }
    spans_.clear();
    header_bytes_ = 0;
    trailer_bytes_ = 0;
    llhttp_done_ = false;
    restart_llhttp_ = false;
    in_message_ = false;
    headers_done_ = false;
    field_open_ = false;
    expect_continue_ = false;
    body_started_ = false;
    error_status_ = 0;
    error_reason_ = "";
    fold_after_lf_ = false;
    fold_scan_done_ = false;
    fold_started_ = false;
    field_seen_ = false;
    probe_ = LineProbe::off;
    probe_version_ = 0;
    protocol_pending_ = false;
    chunked_ = false;
    last_chunk_ = false;
    body_announced_ = 0;
    trailer_next_ = false;
    trailer_scan_ = false;
    trailer_skip_lf_ = false;
    trailer_line_ = 0;
    frame_mark_ = nullptr;
    framing_run_ = 0;
    framing_total_ = 0;
    if (bodies_) bodies_->give_back(body_charge_);
    body_charge_ = 0;
}

bool RequestParser::folded(const char* p, std::size_t n) noexcept {
    // llhttp accepts obsolete line folding (a header line that starts with SP or HTAB) even in
    // strict mode, and with an empty first line it even merges the fold silently. RFC 9112
    // lets a server refuse it, and we do: it is a request-smuggling vector. So the header
    // bytes are scanned here for a line feed followed by whitespace, up to the empty line.
    // The empty line itself must be CRLF: llhttp 8 takes a bare LF there (and only there),
    // which a front end that ends lines at CRLF alone would frame differently.
    if (fold_scan_done_ || n == 0) return false;
    scan_reason_ = "obsolete line folding";
    const char* end = p + n;
    if (!fold_started_) {
        // Empty lines before the request line, which llhttp skips, end no header section.
        while (p < end && (*p == '\r' || *p == '\n'))
            ++p;
        if (p == end) return false;
        fold_started_ = true;
    }
    if (fold_after_lf_) {
        fold_after_lf_ = false;
        if (*p == ' ' || *p == '\t') return true;
        if (*p == '\n') {
            scan_reason_ = "lines must end with CRLF";
            return true;
        }
        if (*p == '\r') {
            fold_scan_done_ = true;
            return false;
        }
    }
    while (p < end) {
        auto* lf =
            static_cast<const char*>(std::memchr(p, '\n', static_cast<std::size_t>(end - p)));
        if (!lf) break;
        if (lf + 1 == end) {
            fold_after_lf_ = true;
            break;
        }
        char c = lf[1];
        if (c == ' ' || c == '\t') return true;
        if (c == '\n') {
            scan_reason_ = "lines must end with CRLF";
            return true;
        }
        if (c == '\r') {
            fold_scan_done_ = true;
            break;
        }
        p = lf + 1;
    }
    return false;
}

int RequestParser::fail(int status, const char* reason) noexcept {
    if (error_status_ == 0) {
        error_status_ = status;
        error_reason_ = reason;
    }
    return -1;
}

RequestParser::Step RequestParser::feed(const char* data, std::size_t len, Request& req,
                                        const SocketAddress* peer) {
    req_ = &req;
    peer_ = peer;
    if (restart_llhttp_ && !in_message_) {
        restart_llhttp_ = false;
        start_llhttp();
    }
    if (fast_ && !llhttp_done_ && !in_message_ && probe_ == LineProbe::off && error_status_ == 0) {
        if (const std::size_t n = fast_request(data, len); n > 0) return {Kind::complete, n};
    }
    llhttp_t* p = ll(llhttp_);
    std::size_t pos = 0;
    while (pos < len) {
        std::size_t n = len - pos;
        const bool in_headers = !headers_done_ || !in_message_;
        if (in_headers) {
            // Never hand llhttp more header bytes than the limit allows: the request line and
            // fields are copied as they are parsed, so this also bounds what is copied.
            std::size_t budget = limits_.max_header_bytes > header_bytes_
                                     ? limits_.max_header_bytes - header_bytes_
                                     : 0;
            if (budget == 0) {
                fail(431, "request header section too large");
                return {Kind::error, pos};
            }
            if (n > budget) n = budget;
        }
        if (probe_ != LineProbe::off) {
            const std::size_t used = probe_line(data + pos, n);
            pos += used;
            header_bytes_ += used;
            if (error_status_ != 0) return {Kind::error, pos};
            continue;
        }
        if (in_headers && folded(data + pos, n)) {
            fail(400, scan_reason_);
            return {Kind::error, pos};
        }
        if (trailer_scan_ && !in_headers && check_trailer(data + pos, n) != 0)
            return {Kind::error, pos};
        if (protocol_pending_ && in_message_ && check_protocol(data + pos, data + pos + n) != 0)
            return {Kind::error, pos};
        completed_ = false;
        // In a chunked body every byte llhttp takes is data (on_body) or framing: count the
        // framing from here on.
        const bool in_chunked_body = chunked_ && !in_headers;
        frame_mark_ = data + pos;
        llhttp_used_ = true;
        exec_begin_ = data + pos;
        exec_end_ = data + pos + n;
        ++exec_count_;
        llhttp_errno_t err = llhttp_execute(p, data + pos, n);
        std::size_t used = n;
        if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) {
            used = static_cast<std::size_t>(llhttp_get_error_pos(p) - (data + pos));
            if (err == HPE_PAUSED)
                llhttp_resume(p);
            else
                llhttp_resume_after_upgrade(p);
        } else if (err == HPE_INVALID_METHOD && error_status_ == 0 &&
                   is_tchar(*llhttp_get_error_pos(p))) {
            // A method llhttp does not know, so far well-formed: read on to the end of the
            // request line before choosing between 501 and 400.
            used = static_cast<std::size_t>(llhttp_get_error_pos(p) - (data + pos));
            probe_ = LineProbe::method;
            pos += used;
            header_bytes_ += used;
            continue;
        } else if (err != HPE_OK) {
            classify_error(err);
            return {Kind::error, pos};
        }
        if (in_chunked_body &&
            !add_framing(static_cast<std::size_t>(data + pos + used - frame_mark_)))
            return {Kind::error, pos};
        pos += used;
        if (completed_) return {Kind::complete, pos};
        if (in_headers && !headers_done_) header_bytes_ += used;
        if (used == 0) {
            // Paused without progress and without a request: llhttp is in a state we never
            // put it in (an upgrade pause after a request we keep parsing past). Refuse.
            fail(400, "unexpected parser state");
            return {Kind::error, pos};
        }
        if (trailer_next_) {
            // Paused at the last chunk: what follows is the trailer section, scanned from here
            // (the size line's LF may still be to come).
            trailer_next_ = false;
            trailer_scan_ = true;
            trailer_line_ = 0;
            trailer_raw_ = 0;
            trailer_fields_ = 0;
            trailer_prev_ = data[pos - 1];
            trailer_skip_lf_ = trailer_prev_ == '\r';
        }
    }
    return {Kind::need_more, pos};
}

// ---------------------------------------------------------------------------------------------
// The fast path: the common request (GET or HEAD, no body, plain ASCII, all of it already
// received) parsed in one pass, with the checks llhttp's strict mode and our callbacks make.
// Anything else, and anything it is unsure of, declines (returns 0) and goes to llhttp from
// the request's first byte, so that every error keeps its one source. The parser test runs
// both paths over the same inputs and requires the same requests.

namespace {

struct CharTables {
    std::array<bool, 256> tchar{};   // header name characters (RFC 9110 token)
    std::array<bool, 256> target{};  // request-target characters taken here (no '#', no CTL)
    std::array<bool, 256> value{};   // field-value characters taken here (VCHAR, SP, HTAB)
};

constexpr CharTables kChars = [] {
    CharTables t;
    for (int c = 0; c < 256; ++c) {
        const bool alnum =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        t.tchar[c] = alnum;
        t.target[c] = alnum;
        t.value[c] = (c >= 0x20 && c <= 0x7e) || c == '\t';
    }
    for (char c : std::string_view("!#$%&'*+-.^_`|~"))
        t.tchar[static_cast<unsigned char>(c)] = true;
    for (char c : std::string_view("-._~!$&'()*+,;=:@/?%"))
        t.target[static_cast<unsigned char>(c)] = true;
    return t;
}();

// The first byte at or after `p` that is not a field-value character (VCHAR, SP, HTAB), or
// `end`. Sixteen bytes at a time where they are there to read: a control byte, DEL or a byte
// above 0x7f (negative as a signed byte) stops the block; a tab among them is taken one by one.
const char* skip_value_chars(const char* p, const char* end) noexcept {
#if defined(__SSE2__)
    const __m128i space = _mm_set1_epi8(0x20);
    const __m128i del = _mm_set1_epi8(0x7f);
    while (end - p >= 16) {
        const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
        const int stop =
            _mm_movemask_epi8(_mm_or_si128(_mm_cmplt_epi8(x, space), _mm_cmpeq_epi8(x, del)));
        if (stop == 0) {
            p += 16;
            continue;
        }
        p += __builtin_ctz(static_cast<unsigned>(stop));
        if (*p != '\t') return p;
        ++p;
    }
#endif
    while (p < end && kChars.value[static_cast<unsigned char>(*p)])
        ++p;
    return p;
}

}  // namespace

std::size_t RequestParser::fast_request(const char* data, std::size_t len) {
    // The whole header section must be here, within the header limit.
    const std::size_t n = len < limits_.max_header_bytes ? len : limits_.max_header_bytes;
    const char* p = data;
    const char* const end = data + n;
    Method method;
    std::string_view method_name;
    if (n >= 4 && std::memcmp(p, "GET ", 4) == 0) {
        method = Method::get;
        method_name = "GET";
        p += 4;
    } else if (n >= 5 && std::memcmp(p, "HEAD ", 5) == 0) {
        method = Method::head;
        method_name = "HEAD";
        p += 5;
    } else {
        return 0;
    }
    const char* const target = p;
    if (p == end || *p != '/') return 0;
    while (p < end && kChars.target[static_cast<unsigned char>(*p)])
        ++p;
    const std::size_t target_len = static_cast<std::size_t>(p - target);
    if (target_len > limits_.max_uri_bytes) return 0;
    if (end - p < 11 || std::memcmp(p, " HTTP/1.", 8) != 0 || (p[8] != '0' && p[8] != '1') ||
        p[9] != '\r' || p[10] != '\n')
        return 0;
    const int minor = p[8] - '0';
    p += 11;

    // Header lines: name ":" OWS value OWS CRLF, until the empty line.
    struct Field {
        const char* name;
        std::uint32_t name_len;
        const char* value;
        std::uint32_t value_len;
    };
    constexpr std::size_t kMaxFast = 32;
    Field fields[kMaxFast];
    std::size_t count = 0;
    int connection = 0;  // 0: no Connection field; 1: close; 2: keep-alive
    int hosts = 0;
    for (;;) {
        if (end - p >= 2 && p[0] == '\r' && p[1] == '\n') {
            p += 2;
            break;
        }
        if (count == kMaxFast || count >= limits_.max_headers) return 0;
        const char* name = p;
        while (p < end && kChars.tchar[static_cast<unsigned char>(*p)])
            ++p;
        if (p == name || p == end || *p != ':') return 0;
        const auto name_len = static_cast<std::uint32_t>(p - name);
        ++p;
        while (p < end && (*p == ' ' || *p == '\t'))
            ++p;
        const char* value = p;
        p = skip_value_chars(p, end);
        if (end - p < 2 || p[0] != '\r' || p[1] != '\n') return 0;
        const char* value_end = p;
        while (value_end > value && (value_end[-1] == ' ' || value_end[-1] == '\t'))
            --value_end;
        p += 2;
        const std::string_view nm(name, name_len);
        const std::string_view v(value, static_cast<std::size_t>(value_end - value));
        // Fields that frame a body, ask for something or change the connection's protocol
        // are llhttp's to judge; so is a Connection field other than a lone close/keep-alive.
        // A Host field is checked here as check_headers() would; an invalid or repeated one
        // declines, so that llhttp's path gives the answer.
        switch (name_len) {
            case 4:
                if (iequals(nm, "host") && (++hosts > 1 || !valid_host(v))) return 0;
                break;
            case 6:
                if (iequals(nm, "expect")) return 0;
                break;
            case 7:
                if (iequals(nm, "upgrade")) return 0;
                break;
            case 10:
                if (iequals(nm, "connection")) {
                    if (connection != 0) return 0;
                    if (iequals(v, "close"))
                        connection = 1;
                    else if (iequals(v, "keep-alive"))
                        connection = 2;
                    else
                        return 0;
                }
                break;
            case 14:
                if (iequals(nm, "content-length")) return 0;
                break;
            case 17:
                if (iequals(nm, "transfer-encoding")) return 0;
                break;
            default:
                break;
        }
        fields[count++] = {name, name_len, value, static_cast<std::uint32_t>(v.size())};
    }
    // A request that ends the connection leaves llhttp refusing whatever follows: llhttp's.
    const bool keep = minor == 1 ? connection != 1 : connection == 2;
    if (!keep || (hosts == 0 && minor == 1)) return 0;
    const std::size_t used = static_cast<std::size_t>(p - data);

    // Nothing can refuse the request from here on. The head as it came, from the target to
    // the last field's end, is copied in one piece; the target and each name and value are
    // views of it. (No expect or framing field came this far: check_headers() has nothing
    // more to say, and the target is origin-form without a fragment.)
    Request& r = *req_;
    on_message_begin();
    std::string& a = RequestAccess::arena(r);
    const char* const head_end =
        count ? fields[count - 1].value + fields[count - 1].value_len : target + target_len;
    a.append(target, static_cast<std::size_t>(head_end - target));
    const char* const base = a.data();
    auto& list = RequestAccess::headers(r);
    list.clear();
    for (std::size_t i = 0; i < count; ++i) {
        const Field& f = fields[i];
        list.push_back({std::string_view(base + (f.name - target), f.name_len),
                        std::string_view(base + (f.value - target), f.value_len)});
    }
    // The query starts after the first '?'. Searched in the received bytes (a loop: targets are
    // short), not in the copy just written, which a vector load could not read back at once.
    std::size_t path_len = target_len;
    for (std::size_t i = 0; i < target_len; ++i) {
        if (target[i] == '?') {
            path_len = i;
            break;
        }
    }
    const std::string_view query =
        path_len < target_len ? std::string_view(base + path_len + 1, target_len - path_len - 1)
                              : std::string_view();
    RequestAccess::set_target(r, std::string_view(base, target_len),
                              std::string_view(base, path_len), query);
    RequestAccess::set_method(r, method, method_name);
    RequestAccess::set_version(r, 1, minor, true);
    end_message();
    return used;
}

void RequestParser::classify_error(int err) noexcept {
    if (error_status_ != 0) return;  // one of our callbacks refused with its own status
    int status = 400;
    const char* reason = "malformed request";
    // Our own words: llhttp's reasons name its internals ("Pause on PRI/Upgrade").
    switch (err) {
        case HPE_INVALID_METHOD:
            reason = "malformed request line";
            break;
        case HPE_INVALID_URL:
            reason = "invalid request-target";
            break;
        case HPE_INVALID_CONSTANT:
        case HPE_INVALID_VERSION:
            // Versions that parse reach on_headers_complete (505 there for "HTTP/2.0").
            reason = "malformed HTTP version";
            break;
        case HPE_PAUSED_H2_UPGRADE:
            status = 505;
            reason = "this server speaks HTTP/1.1, not HTTP/2";
            break;
        case HPE_INVALID_HEADER_TOKEN:
            reason = "invalid header field";
            break;
        case HPE_UNEXPECTED_SPACE:
            reason = "unexpected whitespace";
            break;
        case HPE_CR_EXPECTED:
        case HPE_LF_EXPECTED:
        case HPE_STRICT:
            // llhttp 8 also says HPE_STRICT of a chunk extension it refuses (among them a
            // quoted value with a quoted-pair, which RFC 9112 allows: a known limit).
            reason = std::strncmp(llhttp_get_error_reason(ll(llhttp_)),
                                  "Invalid character in chunk extension", 36) == 0
                         ? "invalid chunk extension"
                         : "lines must end with CRLF";
            break;
        case HPE_INVALID_CONTENT_LENGTH:
            reason = "invalid Content-Length";
            break;
        case HPE_UNEXPECTED_CONTENT_LENGTH:
            // llhttp says so of a repeated Content-Length too.
            reason =
                std::strcmp(llhttp_get_error_reason(ll(llhttp_)), "Duplicate Content-Length") == 0
                    ? "more than one Content-Length"
                    : "both Content-Length and Transfer-Encoding";
            break;
        case HPE_INVALID_TRANSFER_ENCODING:
            reason = "invalid Transfer-Encoding";
            break;
        case HPE_INVALID_CHUNK_SIZE:
            reason = "invalid chunk size";
            break;
        default:
            break;
    }
    error_status_ = status;
    error_reason_ = reason;
}

std::size_t RequestParser::probe_line(const char* p, std::size_t n) noexcept {
    static constexpr std::string_view kVersion = "HTTP/d.d";  // d: any digit
    for (std::size_t i = 0; i < n; ++i) {
        const char c = p[i];
        const bool vchar = static_cast<unsigned char>(c) > 0x20 && c != 0x7f;
        bool ok = true;
        switch (probe_) {
            case LineProbe::off:
                return i;
            case LineProbe::method:
                if (c == ' ')
                    probe_ = LineProbe::target_start;
                else
                    ok = is_tchar(c);
                break;
            case LineProbe::target_start:
            case LineProbe::target:
                if (c == ' ' && probe_ == LineProbe::target) {
                    probe_ = LineProbe::version;
                    probe_version_ = 0;
                } else {
                    ok = vchar;
                    probe_ = LineProbe::target;
                }
                break;
            case LineProbe::version: {
                const char want = kVersion[probe_version_];
                ok = want == 'd' ? c >= '0' && c <= '9' : c == want;
                if (++probe_version_ == kVersion.size()) probe_ = LineProbe::cr;
                break;
            }
            case LineProbe::cr:
                ok = c == '\r';
                probe_ = LineProbe::lf;
                break;
            case LineProbe::lf:
                probe_ = LineProbe::off;
                if (c != '\n') break;
                fail(501, "method not implemented");
                return i + 1;
        }
        if (!ok || probe_ == LineProbe::off) {
            probe_ = LineProbe::off;
            fail(400, "malformed request line");
            return i;
        }
    }
    return n;
}

int RequestParser::check_trailer(const char* p, std::size_t n) noexcept {
    // llhttp 8 takes a bare LF as the empty line that ends a chunked body's trailer section
    // (and only there): a front end that ends lines at CRLF alone would read the bytes after
    // it as this request's, where we read another request. Every line here must end in CRLF.
    // The trailer section is held to what the header section is (it is dropped, not kept, but
    // a front end may keep it): no obs-fold, at most max_headers fields, at most
    // max_header_bytes in all (line ends included).
    for (std::size_t i = 0; i < n; ++i) {
        const char c = p[i];
        if (trailer_skip_lf_) {
            trailer_skip_lf_ = false;
            if (c == '\n') {  // the end of the last chunk's size line
                trailer_prev_ = c;
                continue;
            }
        }
        if (++trailer_raw_ > limits_.max_header_bytes)
            return fail(431, "chunked trailer section too large");
        if (c == '\n') {
            if (trailer_prev_ != '\r') return fail(400, "lines must end with CRLF");
            if (trailer_line_ == 0) {
                trailer_scan_ = false;  // the empty line: the message ends here
                return 0;
            }
            trailer_line_ = 0;
            if (++trailer_fields_ > limits_.max_headers)
                return fail(431, "too many chunked trailer fields");
        } else if (c != '\r') {
            if (trailer_line_ == 0 && (c == ' ' || c == '\t'))
                return fail(400, "obsolete line folding (obs-fold) in the chunked trailer");
            ++trailer_line_;
        }
        trailer_prev_ = c;
    }
    return 0;
}

bool RequestParser::add_framing(std::size_t n) noexcept {
    framing_run_ += n;
    framing_total_ += n;
    if (!last_chunk_ && framing_run_ > kMaxChunkLineBytes) {
        fail(400, "chunk-size line too long");
        return false;
    }
    const std::size_t data = RequestAccess::body(*req_).size();
    if (framing_total_ > data + kFramingAllowance + limits_.max_header_bytes) {
        fail(413, "chunked framing too large for the data it carries");
        return false;
    }
    return true;
}

// ---------------------------------------------------------------------------------------------
// Callbacks.

int RequestParser::on_message_begin() noexcept {
    ++begun_;
    in_message_ = true;
    headers_done_ = false;
    field_open_ = false;
    expect_continue_ = false;
    body_started_ = false;
    trailer_bytes_ = 0;
    chunked_ = false;
    last_chunk_ = false;
    body_announced_ = 0;
    framing_run_ = 0;
    framing_total_ = 0;
    protocol_pending_ = false;
    spans_.clear();
    RequestAccess::reset(*req_, peer_);
    return 0;
}

int RequestParser::on_url(const char* at, std::size_t len) {
    std::string& a = RequestAccess::arena(*req_);
    if (a.size() + len > limits_.max_uri_bytes) return fail(414, "request-target too long");
    a.append(at, len);
    url_end_ = at + len;
    url_end_exec_ = exec_count_;
    // A target ended by CR or LF rather than a space: an HTTP/0.9 request line, which llhttp
    // takes and then waits for a byte after the line before it goes on. Its client sends no
    // more, and would wait out the header timeout for a 408: refuse it now. (A target cut by
    // the end of the bytes ends at exec_end_; the next piece, maybe empty, starts the call.)
    if (url_end_ < exec_end_ && (*url_end_ == '\r' || *url_end_ == '\n'))
        return fail(505, "HTTP/0.9 is not supported (the request line has no HTTP version)");
    return 0;
}

int RequestParser::on_url_complete() noexcept {
    // llhttp calls this once a byte follows the space after the target: the byte after that
    // space when it came in these same bytes, else the first of them (the slice before ended
    // with the space; its memory may be gone).
    protocol_pending_ = true;
    const char* first = url_end_exec_ == exec_count_ ? url_end_ + 1 : exec_begin_;
    return check_protocol(first, exec_end_);
}

int RequestParser::check_protocol(const char* p, const char* end) noexcept {
    // llhttp 8 takes "RTSP/1.0" and "ICE/1.0" for a request line's protocol as it takes
    // "HTTP/1.x", and reports neither: such a request would be answered as HTTP. Only HTTP is
    // spoken here (as Go's net/http: 400, malformed HTTP version). What is not a letter is
    // llhttp's to refuse, with its own reason.
    for (; p < end; ++p) {
        const char c = *p;
        if (c == ' ') continue;
        protocol_pending_ = false;
        const bool letter = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
        if (letter && c != 'H') return fail(400, "malformed HTTP version");
        return 0;
    }
    return 0;
}

int RequestParser::on_header_field(const char* at, std::size_t len) {
    if (len > 0) field_seen_ = true;
    if (headers_done_) {  // a chunked trailer: counted against the header limit, not kept
        trailer_bytes_ += len;
        if (trailer_bytes_ > limits_.max_header_bytes)
            return fail(431, "chunked trailer section too large");
        return 0;
    }
    std::string& a = RequestAccess::arena(*req_);
    if (!field_open_) {
        if (spans_.size() >= limits_.max_headers) return fail(431, "too many header fields");
        spans_.push_back({static_cast<std::uint32_t>(a.size()), 0, 0, 0});
        field_open_ = true;
    }
    a.append(at, len);
    spans_.back().name_len += static_cast<std::uint32_t>(len);
    return 0;
}

int RequestParser::on_header_field_complete() noexcept {
    // llhttp takes a line that starts with a colon as a field with an empty name.
    if (!field_seen_) return fail(400, "empty header field name");
    field_seen_ = false;
    field_open_ = false;
    if (!headers_done_ && !spans_.empty())
        spans_.back().value_off = static_cast<std::uint32_t>(RequestAccess::arena(*req_).size());
    return 0;
}

int RequestParser::on_header_value(const char* at, std::size_t len) {
    if (headers_done_) {
        trailer_bytes_ += len;
        if (trailer_bytes_ > limits_.max_header_bytes)
            return fail(431, "chunked trailer section too large");
        return 0;
    }
    if (spans_.empty()) return fail(400, "header value without a name");
    RequestAccess::arena(*req_).append(at, len);
    spans_.back().value_len += static_cast<std::uint32_t>(len);
    return 0;
}

int RequestParser::on_header_value_complete() noexcept {
    if (headers_done_ || spans_.empty()) return 0;
    const std::string& a = RequestAccess::arena(*req_);
    HeaderSpan& s = spans_.back();
    while (s.value_len > 0 &&
           (a[s.value_off + s.value_len - 1] == ' ' || a[s.value_off + s.value_len - 1] == '\t'))
        --s.value_len;
    return 0;
}

bool RequestParser::split_target() noexcept {
    Request& r = *req_;
    // The arena holds the target first, then the fields: the target ends where the first field
    // name starts (or at the arena's end when there are none).
    const std::string& a = RequestAccess::arena(r);
    std::string_view t(a.data(), spans_.empty() ? a.size() : spans_.front().name_off);
    if (t.empty()) return false;
    std::string_view path_and_query;
    if (t.front() == '/') {
        path_and_query = t;
    } else if (t == "*") {
        if (r.method() != Method::options) return false;
        RequestAccess::set_target(r, t, t, {});
        return true;
    } else if (r.method() == Method::connect) {
        RequestAccess::set_target(r, t, t, {});  // authority-form; no route will match it
        return true;
    } else if (istarts_with(t, "http://") || istarts_with(t, "https://")) {
        std::size_t scheme_end = t.find("://") + 3;
        std::size_t slash = t.find_first_of("/?#", scheme_end);
        if (slash == scheme_end) return false;  // no authority
        // RFC 9112 §3.2.2: with an absolute-form target the server ignores the Host field
        // and takes the target's authority instead: the request's Host becomes it (checked
        // as a Host is, so user info is refused), whatever the client wrote there.
        const std::string_view authority =
            t.substr(scheme_end, (slash == std::string_view::npos ? t.size() : slash) - scheme_end);
        // Refused here as the target it is (user info, a bad host), not later as the Host field
        // the client may have written right.
        if (!valid_host(authority)) return false;
        for (auto& h : RequestAccess::headers(r))
            if (h.name.size() == 4 && iequals(h.name, "host")) h.value = authority;
        if (slash == std::string_view::npos || t[slash] != '/') {
            static constexpr std::string_view kRoot = "/";
            std::string_view q;
            if (slash != std::string_view::npos && t[slash] == '?') {
                q = t.substr(slash + 1);
                q = q.substr(0, q.find('#'));
            }
            RequestAccess::set_target(r, t, kRoot, q);
            return true;
        }
        path_and_query = t.substr(slash);
    } else {
        return false;
    }
    std::string_view path = path_and_query;
    std::string_view query;
    std::size_t cut = path_and_query.find_first_of("?#");
    if (cut != std::string_view::npos) {
        path = path_and_query.substr(0, cut);
        if (path_and_query[cut] == '?') {
            query = path_and_query.substr(cut + 1);
            query = query.substr(0, query.find('#'));
        }
    }
    RequestAccess::set_target(r, t, path, query);
    return true;
}

int RequestParser::check_headers(int http_minor, bool has_body) noexcept {
    int hosts = 0;
    int chunked = 0;
    bool transfer_encoding = false;
    for (const Header& h : req_->headers()) {
        switch (h.name.size()) {
            case 4:
                if (iequals(h.name, "host")) {
                    ++hosts;
                    if (!valid_host(h.value)) return fail(400, "invalid Host header");
                }
                break;
            case 6:
                if (http_minor >= 1 && iequals(h.name, "expect")) {
                    if (!iequals(trim_ows(h.value), "100-continue"))
                        return fail(417, "unsupported expectation");
                    expect_continue_ = has_body;
                }
                break;
            case 17:
                if (iequals(h.name, "transfer-encoding")) {
                    transfer_encoding = true;
                    // RFC 9112 §6.1: HTTP/1.0 has no transfer codings; such framing is faulty.
                    if (http_minor == 0)
                        return fail(400, "Transfer-Encoding in an HTTP/1.0 request");
                    std::string_view v = h.value;
                    while (!v.empty()) {
                        std::size_t comma = v.find(',');
                        std::string_view coding = trim_ows(v.substr(0, comma));
                        if (coding.empty()) {
                        } else if (iequals(coding, "chunked")) {
                            ++chunked;
                        } else {
                            return fail(501, "transfer coding not implemented");
                        }
                        if (comma == std::string_view::npos) break;
                        v.remove_prefix(comma + 1);
                    }
                }
                break;
            default:
                break;
        }
    }
    if (chunked > 1) return fail(400, "chunked applied more than once");
    // A Transfer-Encoding field without a coding (blank, or only commas): llhttp 8 sets no
    // flag for it, so neither its CL+TE check nor its "chunked last" check runs, and the body
    // would be framed by a Content-Length or not at all. RFC 9112 §6.3: 400, and close.
    if (transfer_encoding && chunked == 0)
        return fail(400, "Transfer-Encoding without chunked last");
    if (hosts > 1) return fail(400, "more than one Host header");
    if (hosts == 0 && http_minor >= 1) return fail(400, "HTTP/1.1 request without Host");
    return 0;
}

bool RequestParser::keep_alive_by_tokens(int http_minor) const noexcept {
    bool close = false;
    bool keep_alive = false;
    bool upgrade = false;
    bool has_upgrade_field = false;
    for (const Header& h : req_->headers()) {
        if (h.name.size() == 7 && iequals(h.name, "upgrade"))
            has_upgrade_field = has_upgrade_field || offers_websocket(h.value);
        if (h.name.size() != 10 || !iequals(h.name, "connection")) continue;
        std::string_view v = h.value;
        while (!v.empty()) {
            const std::size_t comma = v.find(',');
            const std::string_view token = trim_ows(v.substr(0, comma));
            if (iequals(token, "close"))
                close = true;
            else if (iequals(token, "keep-alive"))
                keep_alive = true;
            else if (iequals(token, "upgrade"))
                upgrade = true;
            if (comma == std::string_view::npos) break;
            v.remove_prefix(comma + 1);
        }
    }
    // An upgrade the server may accept (to WebSocket) ends the connection unless it is taken;
    // one to a protocol it never speaks (h2c, TLS/1.0) is ignored: the connection goes on
    // in HTTP/1.1, as RFC 9110 section 7.8 allows and nginx and Go do.
    if (close || (upgrade && has_upgrade_field)) return false;
    return http_minor >= 1 || keep_alive;
}

bool RequestParser::offers_websocket(std::string_view upgrade) noexcept {
    while (!upgrade.empty()) {
        const std::size_t comma = upgrade.find(',');
        std::string_view token = trim_ows(upgrade.substr(0, comma));
        token = token.substr(0, token.find('/'));  // "websocket/13": a version
        if (iequals(trim_ows(token), "websocket")) return true;
        if (comma == std::string_view::npos) break;
        upgrade.remove_prefix(comma + 1);
    }
    return false;
}

bool RequestParser::takes_upgrade() const noexcept {
    const llhttp_t* p = ll(llhttp_);
    if (!p->upgrade) return false;
    if (p->method == HTTP_CONNECT) return true;
    for (const Header& h : req_->headers())
        if (h.name.size() == 7 && iequals(h.name, "upgrade") && offers_websocket(h.value))
            return true;
    return false;
}

int RequestParser::on_headers_complete() {
    llhttp_t* p = ll(llhttp_);
    Request& r = *req_;
    headers_done_ = true;
    if (p->http_major != 1) return fail(505, "HTTP version not supported");
    const int minor = p->http_minor > 1 ? 1 : p->http_minor;  // HTTP/1.2 is read as HTTP/1.1

    // The arena is complete: turn the offsets into views.
    const std::string& a = RequestAccess::arena(r);
    auto& list = RequestAccess::headers(r);
    list.clear();
    for (const HeaderSpan& s : spans_)
        list.push_back({std::string_view(a.data() + s.name_off, s.name_len),
                        std::string_view(a.data() + s.value_off, s.value_len)});

    Method m = method_of(p->method);
    RequestAccess::set_method(r, m, llhttp_method_name(static_cast<llhttp_method_t>(p->method)));
    // An upgrade (or CONNECT) is answered as plain HTTP and then the connection closes: what
    // follows on the wire is not ours to parse. The Connection tokens are read here, as the
    // fast path reads them: llhttp 8 trims spaces but not tabs around them ("close<TAB>" kept
    // the connection), and it also reads the obsolete Proxy-Connection field.
    bool keep = keep_alive_by_tokens(minor) && !takes_upgrade();
    RequestAccess::set_version(r, 1, minor, keep);
    if (!split_target()) return fail(400, "invalid request-target");
    if (int rc = check_headers(minor, (p->flags & F_CHUNKED) || p->content_length > 0); rc != 0)
        return rc;
    if ((p->flags & F_CONTENT_LENGTH) && !(p->flags & F_CHUNKED)) {
        if (p->content_length > max_body_) return fail(413, "request body too large");
        if (bodies_ && p->content_length > bodies_->limit())
            return fail(413, "request body larger than the server's memory budget for bodies");
        // Nothing is reserved before the bytes come (they may never come: two thousand
        // requests announcing a body and sending none took the whole budget for bodies, 64
        // KiB each, and every upload got 503); storage grows with them, up to what is
        // announced.
        body_announced_ = static_cast<std::size_t>(p->content_length);
    }
    if (p->flags & F_CHUNKED) {
        // Pause here so that feed() knows where the body starts and counts its framing.
        chunked_ = true;
        return HPE_PAUSED;
    }
    return 0;
}

int RequestParser::on_body(const char* at, std::size_t len) {
    body_started_ = true;
    if (chunked_) {
        if (!add_framing(static_cast<std::size_t>(at - frame_mark_))) return -1;
        frame_mark_ = at + len;
        framing_run_ = 0;
    }
    std::string& b = RequestAccess::body(*req_);
    if (len > max_body_ - b.size()) return fail(413, "request body too large");
    if (b.size() + len > b.capacity() && !grow_body(b, b.size() + len)) return -1;
    b.append(at, len);
    return 0;
}

bool RequestParser::grow_body(std::string& b, std::size_t need) {
    // Doubling, so that a body costs at most twice its bytes, and never past what is announced.
    const std::size_t cap =
        body_announced_ != 0 && body_announced_ < max_body_ ? body_announced_ : max_body_;
    std::size_t target = need > b.capacity() * 2 ? need : b.capacity() * 2;
    if (target > cap) target = need > cap ? need : cap;
    if (target > body_charge_ && bodies_ && !bodies_->take(target - body_charge_)) {
        // Not enough left to double: just what is needed, if that much is left.
        target = need;
        if (target > body_charge_ && !bodies_->take(target - body_charge_)) {
            // Larger than the whole budget, it would never fit: not a moment to retry.
            if (need > bodies_->limit())
                fail(413, "request body larger than the server's memory budget for bodies");
            else
                fail(503, "request bodies fill the server's memory budget; try again later");
            return false;
        }
    }
    if (target > body_charge_) body_charge_ = target;
    // A new string of exactly `target` bytes (reserve() on the old one may round up).
    std::string grown;
    grown.reserve(target);
    grown.append(b);
    b.swap(grown);
    return true;
}

int RequestParser::on_chunk_header() noexcept {
    body_started_ = true;
    llhttp_t* p = ll(llhttp_);
    // The chunk's size is known before its bytes: refuse an oversized body early. (Written
    // as a subtraction: with an unlimited body size the sum could wrap.)
    std::size_t have = RequestAccess::body(*req_).size();
    if (p->content_length > max_body_ - have) return fail(413, "request body too large");
    if (p->content_length == 0) {
        last_chunk_ = true;
        // Pause, so that feed() scans the trailer section before llhttp reads it.
        trailer_next_ = true;
        return HPE_PAUSED;
    }
    return 0;
}

int RequestParser::on_message_complete() noexcept {
    // After a request that ends the connection (or switches its protocol) llhttp refuses what
    // follows; the fast path must not answer for it.
    llhttp_t* p = ll(llhttp_);
    // Whether the connection goes on is ours to say (keep_alive_by_tokens); where llhttp
    // thinks otherwise ("Connection: keep-alive<TAB>" in HTTP/1.0), it is started afresh for
    // the next request instead of refusing it.
    if (!req_->keep_alive() || takes_upgrade())
        llhttp_done_ = true;
    else if (p->upgrade || !llhttp_should_keep_alive(p))
        restart_llhttp_ = true;  // a declined upgrade: llhttp would take the rest for it
    end_message();
    return HPE_PAUSED;
}

void RequestParser::end_message() noexcept {
    in_message_ = false;
    headers_done_ = false;
    header_bytes_ = 0;
    fold_after_lf_ = false;
    fold_scan_done_ = false;
    fold_started_ = false;
    completed_ = true;
}

}  // namespace weft::http::detail

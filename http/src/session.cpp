// Http1Session: parsing in batches, handler calls, response serialization and the keep-alive
// rules. Everything a request costs on the hot path is here: a copy of its bytes into reused
// storage, a route lookup, the handler, a few appends to the batch buffer.
#include "session.hpp"

#include <atomic>
#include <charconv>
#include <cstring>
#include <exception>

#include "body_budget.hpp"
#include "metrics_table.hpp"
#include "request_access.hpp"
#include "request_life.hpp"
#include "uri.hpp"
#include "websocket_core.hpp"
#include "weft/core/log.hpp"

namespace weft::http::detail {
// A handler's route in its log lines: "route /x", or "route /x of plugin 'p'". Formatted in
// spdlog's call, which catches what formatting throws: log_thrown stays noexcept.
struct RouteOf {
    const Endpoint& ep;
};
}  // namespace weft::http::detail

template <>
struct fmt::formatter<weft::http::detail::RouteOf> : fmt::formatter<std::string_view> {
    template <class Ctx>
    auto format(const weft::http::detail::RouteOf& r, Ctx& ctx) const {
        if (r.ep.owner.empty()) return fmt::format_to(ctx.out(), "route {}", r.ep.route);
        return fmt::format_to(ctx.out(), "route {} of plugin '{}'", r.ep.route, r.ep.owner);
    }
};

namespace weft::http::detail {

namespace {

constexpr std::size_t kInlineBody = 4096;      // larger bodies are sent from the Response
constexpr std::size_t kTrimBytes = 64 * 1024;  // storage beyond this is freed between uses
constexpr std::size_t kKeepBody = 16 * 1024;   // a body's storage beyond this is freed at once
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

bool safe_header_text(std::string_view s) noexcept {
    for (char c : s)
        if (c == '\r' || c == '\n' || c == '\0') return false;
    return true;
}

// A field name is a token (RFC 9110 §5.1): "Content-Length " or "X Y" is not, and a client
// may read it as another field (or as a framing one) than the one the filter saw.
bool token_name(std::string_view s) noexcept {
    if (s.empty()) return false;
    for (char c : s) {
        const bool alnum =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && std::string_view("!#$%&'*+-.^_`|~").find(c) == std::string_view::npos)
            return false;
    }
    return true;
}

bool framing_header(std::string_view name) noexcept {
    return iequals(name, "content-length") || iequals(name, "transfer-encoding") ||
           iequals(name, "connection");
}

bool bodiless_status(int status) noexcept {
    return status < 200 || status == 204 || status == 304;
}

void trim(std::string& s) noexcept {
    if (s.capacity() > kTrimBytes) std::string().swap(s);
}

// The one policy for handler failures: an exception (a weft::BadResultAccess from reading an
// error's value among them) or a status outside 200..599 is logged with the request and its
// route, and the client gets a 500; the connection and the server live on.
// Logs the exception being handled; call it from a catch block.
void log_thrown(const char* kind, const Request& req, const Endpoint& ep) noexcept {
    try {
        throw;
    } catch (const std::exception& e) {
        if (weft::this_fiber::cancelled() && weft::is_cancellation(std::current_exception())) {
            // Cancelled (its client hung up, or the server stops), and what it threw is how a
            // wait ended then, not a fault: anything else still is one.
            weft::logger("http")->debug("{} for {} {} ({}) ended by its cancellation: {}", kind,
                                        req.method_name(), req.path(), RouteOf{ep}, e.what());
            return;
        }
        if (weft::this_fiber::deadline().passed() &&
            weft::is_cancellation(std::current_exception())) {
            // The request's deadline passed and a wait threw timed_out (reading the error's
            // value, say): the 504 says what happened, as a Go handler returning ctx.Err()
            // would (the access log and weft_http_requests_timed_out_total have it).
            weft::logger("http")->debug("{} for {} {} ({}) ended at its deadline: {}", kind,
                                        req.method_name(), req.path(), RouteOf{ep}, e.what());
            return;
        }
        weft::logger("http")->error("{} for {} {} ({}) threw: {}", kind, req.method_name(),
                                    req.path(), RouteOf{ep}, e.what());
    } catch (...) {
        weft::logger("http")->error("{} for {} {} ({}) threw a non-std exception", kind,
                                    req.method_name(), req.path(), RouteOf{ep});
    }
}

template <class F>
bool guarded(const char* kind, const Request& req, const Endpoint& ep, F&& call) noexcept {
    try {
        call();
        return true;
    } catch (...) {
        log_thrown(kind, req, ep);
    }
    return false;
}

[[gnu::noinline, gnu::cold]] bool invalid_status(const char* kind, const Request& req,
                                                 const Endpoint& ep, int status) {
    weft::logger("http")->error("{} for {} {} ({}) returned status {}", kind, req.method_name(),
                                req.path(), RouteOf{ep}, status);
    return false;
}

// Every answer is checked: the check inlined, the logging kept out of the way.
inline bool valid_status(const char* kind, const Request& req, const Endpoint& ep, int status) {
    if (status >= 200 && status <= 599) [[likely]]
        return true;
    return invalid_status(kind, req, ep, status);
}

// The status a request whose client hung up before its answer is recorded with (nginx's).
constexpr int kClientClosedRequest = 499;

Response internal_error() {
    return Response(500, "Internal Server Error\n");
}

// What a request no route takes gets: 404, or 405 with the methods its path has.
Response unrouted_answer(const Router::Match& m) {
    if (m.status == 404) return Response(404, "Not Found\n");
    Response r(405, "Method Not Allowed\n");
    r.add_header("Allow", m.allow);
    return r;
}

// What a request whose deadline passed before anything went out gets.
Response deadline_passed_answer() {
    return Response(504, "Gateway Timeout: the request's deadline passed\n");
}

// The handler's answer, built where the caller keeps it (no default response to move over);
// a handler that throws gets a 500, by guarded()'s policy.
Response call_handler(Request& req, const Endpoint& ep) {
    try {
        return ep.handler(req);
    } catch (...) {
        log_thrown("handler", req, ep);
    }
    return internal_error();
}

}  // namespace

Http1Session::Http1Session(const SessionContext& ctx)
    : ctx_(ctx), parser_(*ctx.options, ctx.bodies) {
    line_.reserve(kLineMax);
    labels_.keys[0] = "method";
    labels_.keys[1] = "path";
    labels_.keys[2] = "route";
    labels_.keys[3] = "peer";
}

Http1Session::~Http1Session() = default;

void Http1Session::start(ConnectionInfo& conn, Transport& transport) noexcept {
    conn_ = &conn;
    transport_ = &transport;
    labels_.count = 0;
}

void Http1Session::finish() noexcept {
    if (conn_ && parser_.in_message() && !closing_) {
        // The connection ended with a request begun and unanswered: the client closed it or
        // failed mid-head or mid-upload (400, as nginx logs a client that "prematurely closed
        // connection"), or the server cut it (503: a drain's end, room made at
        // max_connections). Nothing went out: logged as incomplete, with its line as it came.
        const Clock::time_point now = Clock::now();
        send_failed_ = true;
        try {
            record(*slot(ready_).req, this_fiber::cancelled() ? 503 : 400, 0, {}, msg_started_, now,
                   now, 0, line_);
        } catch (...) {
            // Out of memory for a new metrics series: the line is lost, the connection ends.
        }
    }
    // Bodies too: a connection that ended mid-upload leaves its partial body here.
    for (Slot& s : slots_)
        free_body(s);
    parser_.reset();
    ready_ = 0;
    carry_.clear();
    carry_spare_.clear();
    std::string().swap(after_close_);
    line_.clear();
    line_done_ = false;
    out_.clear();
    out_mark_ = 0;
    pieces_.clear();
    iov_.clear();
    held_.clear();
    closing_ = stop_parsing_ = send_failed_ = continue_sent_ = linger_ = false;
    stream_req_ = nullptr;
    for (Slot& s : slots_)
        s.answered = false;
    if (grown_) {  // only after an unusually large request: the common case touches nothing
        for (Slot& s : slots_)
            trim(RequestAccess::arena(*s.req));
        grown_ = false;
    }
    out_.trim(kTrimBytes);
    trim(carry_);
    trim(carry_spare_);
    conn_ = nullptr;
    transport_ = nullptr;
    labels_.count = 0;
}

Http1Session::Slot& Http1Session::slot(std::size_t i) {
    while (slots_.size() <= i) {
        slots_.emplace_back();
        slots_.back().req = std::make_unique<Request>();
    }
    return slots_[i];
}

// ---------------------------------------------------------------------------------------------
// Parsing.

Step Http1Session::on_bytes(std::string_view bytes, Clock::time_point now, RecvBuffer* release) {
    parse(bytes, now);
    if (release) release->reset();  // every request is copied: the buffer may go back now
    respond();
    // A full batch left bytes in the carry buffer: answer them too before reading more.
    while (!carry_.empty() && !closing_) {
        carry_spare_.swap(carry_);
        carry_.clear();
        parse_from(carry_spare_.data(), carry_spare_.size(), now);
        carry_spare_.clear();
        respond();
    }
    if (next() == Next::read_body) before_read();
    return step();
}

Step Http1Session::on_timeout() {
    if (!closing_ && parser_.in_message()) {
        Request& req = *slot(ready_).req;
        std::string why = "request header timed out";
        // Of the two deadlines of a body's read, the earlier one passed.
        if (parser_.headers_done())
            why = body_rate_deadline().time_point() < body_progress_at_ + ctx_.options->body_timeout
                      ? "request body too slow: below the server's minimum of " +
                            std::to_string(ctx_.options->min_body_rate) + " bytes/s"
                      : "request body timed out";
        const std::uint64_t bytes = append_error(req, 408, why.c_str());
        const Clock::time_point answered_at = Clock::now();
        (void)flush();
        // The log's duration runs from the request's first byte, as for every request.
        record(req, 408, 0, {}, msg_started_, answered_at, Clock::now(), bytes, line_);
        linger_ = false;  // the client is slow or gone: do not wait for it any longer
    }
    closing_ = true;
    return step();
}

Step Http1Session::step() const noexcept {
    Step s;
    switch (next()) {
        case Next::idle:
            s.kind = Step::Kind::idle;
            break;
        case Next::read_header:
            s.head_started = msg_started_;
            [[fallthrough]];
        case Next::read_body:
            s.kind = Step::Kind::read;
            s.deadline = read_deadline();
            break;
        case Next::close:
            s.kind = Step::Kind::close;
            s.linger = closing_ && !send_failed_ && linger_;
            break;
    }
    return s;
}

void Http1Session::parse(std::string_view bytes, Clock::time_point now) {
    parse_from(bytes.data(), bytes.size(), now);
}

void Http1Session::parse_from(const char* data, std::size_t len, Clock::time_point now) {
    if (closing_ || stop_parsing_) {
        if (len > 0) linger_ = true;
        return;
    }
    std::size_t pos = 0;
    while (pos < len) {
        if (ready_ >= kMaxBatch) {
            carry_.append(data + pos, len - pos);
            return;
        }
        Slot& s = slot(ready_);
        const bool was_in = parser_.in_message();
        const bool had_head = was_in && parser_.headers_done();
        const std::size_t had_body = RequestAccess::body(*s.req).size();
        const std::uint64_t begun = parser_.messages_begun();
        const std::size_t at = pos;
        auto step = parser_.feed(data + pos, len - pos, *s.req, conn_->peer);
        pos += step.consumed;
        if (step.kind == RequestParser::Kind::need_more) {
            if (!was_in && parser_.in_message()) msg_started_ = now;
            if (parser_.in_message()) note_line(data + at, step.consumed, was_in);
            // The body timeout runs from the end of the headers, then from each read that
            // brought more of the body (nginx's client_body_timeout). Chunk framing alone
            // (sizes, extensions) is no progress: a client dribbling it still times out.
            if (parser_.headers_done() &&
                (!had_head || RequestAccess::body(*s.req).size() > had_body))
                body_progress_at_ = now;
            if (parser_.headers_done() && !had_head) body_started_at_ = now;
            return;
        }
        s.received = now;
        s.started = was_in ? msg_started_ : now;
        s.body_charge = parser_.take_body_charge();
        ++ready_;
        continue_sent_ = false;
        grown_ = grown_ || RequestAccess::arena(*s.req).capacity() > kTrimBytes;
        if (step.kind == RequestParser::Kind::error) {
            // Refused before a request began (garbage first): nothing of an earlier request
            // may show in the answer, the log or the metrics.
            if (!was_in && parser_.messages_begun() == begun)
                RequestAccess::reset(*s.req, conn_->peer);
            s.error_status = parser_.error_status();
            s.error_reason = parser_.error_reason();
            // The log shows the line as it came (the request may have none that parsed).
            note_line(data + at, len - at, was_in);
            stop_parsing_ = true;
            linger_ = true;
            return;
        }
        s.error_status = 0;
        if (!s.req->keep_alive()) {
            // Nothing after a closing request is answered; an upgrade's handler may want it.
            stop_parsing_ = true;
            if (pos < len) {
                linger_ = true;
                // An upgrade's handler takes what came after it (a WebSocket client's first
                // frames): at most one read, which is in memory already.
                if (s.req->header("upgrade")) after_close_.assign(data + pos, len - pos);
            }
            return;
        }
    }
}

Http1Session::Next Http1Session::next() const noexcept {
    if (closing_ || send_failed_) return Next::close;
    if (parser_.in_message()) return parser_.headers_done() ? Next::read_body : Next::read_header;
    if (stop_parsing_) return Next::close;
    return Next::idle;
}

Deadline Http1Session::read_deadline() const noexcept {
    const ServerOptions& o = *ctx_.options;
    if (parser_.headers_done())
        return earliest(Deadline(body_progress_at_ + o.body_timeout), body_rate_deadline());
    // The first request's head is due within header_timeout of the accept (as nginx's
    // client_header_timeout): its first byte had that long already, and a fresh timeout from
    // that byte let a client that waited, then trickled its head, take twice as long.
    Clock::time_point from = msg_started_;
    if (conn_->requests == 0 && conn_->accepted_at != Clock::time_point{} &&
        conn_->accepted_at < from)
        from = conn_->accepted_at;
    return Deadline(from + o.header_timeout);
}

Deadline Http1Session::body_rate_deadline() const noexcept {
    const std::size_t rate = ctx_.options->min_body_rate;
    if (rate == 0) return Deadline::never();
    // The bytes received so far (de-chunked) are due by this time at the minimum rate: the
    // deadline moves on with each read by what it brought, and passes once the client falls
    // behind.
    const std::size_t got =
        ready_ < slots_.size() ? RequestAccess::body(*slots_[ready_].req).size() : 0;
    const unsigned __int128 owed_ns = static_cast<unsigned __int128>(got) * 1'000'000'000 / rate;
    if (owed_ns > 1'000'000'000'000'000) return Deadline::never();  // 31 years: as good as never
    return Deadline(body_started_at_ + ServerOptions::kMinBodyRateGrace +
                    std::chrono::nanoseconds(static_cast<std::int64_t>(owed_ns)));
}

void Http1Session::before_read() {
    if (continue_sent_ || !parser_.wants_continue() || closing_) return;
    if (refused_before_body()) return;
    continue_sent_ = true;
    out_.append(kContinue);
    (void)flush();
}

bool Http1Session::refused_before_body() {
    // A request that asked for "100 Continue" and that no route takes gets its 404 or 405 now,
    // not an invitation to send a body that would be read only to be thrown away (RFC 9110
    // 10.1.1 lets the final answer come first; Go sends 100 only once a handler reads). Paths
    // that get another answer (dot segments, bad escapes, "OPTIONS *") take the usual way.
    Request& req = *slot(ready_).req;
    if (req.path().empty() || req.path().front() != '/' || path_form(req.path()) != PathForm::plain)
        return false;
    const Router::Match m =
        ctx_.router->match(req.method(), req.method_name(), req.path(), raw_params_);
    // A body the shared budget has no room for now (its first 64 KiB, or less when it, the
    // body size limit or the whole budget is smaller) would get 503 once on its way: the 503
    // comes first. (The bytes are taken as they come, not reserved here.)
    std::size_t first = 64 * 1024;
    if (const std::size_t announced = parser_.body_announced(); announced != 0)
        first = std::min(first, announced);
    if (ctx_.options->max_body_bytes != 0) first = std::min(first, ctx_.options->max_body_bytes);
    const bool full = m.status != 404 && m.status != 405 && ctx_.bodies &&
                      !ctx_.bodies->has_room(std::min(first, ctx_.bodies->limit()));
    if (m.status != 404 && m.status != 405 && !full) return false;
    RequestAccess::set_route(req, m.route);
    ++conn_->requests;
    bool keep = false;  // the body may be on its way all the same: close, lingering
    std::uint64_t bytes = 0;
    if (full)
        bytes = append_error(req, 503,
                             "request bodies fill the server's memory budget; try again later");
    else
        append_response(req, unrouted_answer(m), keep, bytes, req.method() == Method::head);
    const Clock::time_point answered_at = Clock::now();
    (void)flush();
    record(req, full ? 503 : m.status, m.route_id, m.route, msg_started_, answered_at, Clock::now(),
           bytes, {});
    closing_ = true;
    linger_ = true;
    return true;
}

// ---------------------------------------------------------------------------------------------
// Answering.

void Http1Session::set_labels(const Request& req) noexcept {
    // Installed again for each request: fibers the last one spawned stop showing them (they
    // served that request, not this one).
    this_fiber::set_labels(&labels_);
    // The watchdog's capture signal may read the labels between any two of these stores (a
    // pipelined request's come while the last one's are still published): it sees none while
    // they change, never a value half written.
    labels_.count = 0;
    std::atomic_signal_fence(std::memory_order_seq_cst);
    labels_.values[0] = req.method_name();
    labels_.values[1] = req.path();
    labels_.values[2] = req.route();
    labels_.values[3] = conn_->peer_text;
    std::atomic_signal_fence(std::memory_order_seq_cst);
    labels_.count = 4;
}

void Http1Session::respond() {
    std::size_t i = 0;
    for (; i < ready_ && !closing_; ++i)
        handle(slots_[i], i + 1 == ready_);
    // Closing with input left unanswered (requests pipelined behind the last answer, one
    // being received, bytes not parsed yet): a close now would reset the connection, and the
    // client could lose the answers sent. Linger, as after a refused request.
    if (closing_ && (i < ready_ || parser_.in_message() || !carry_.empty())) linger_ = true;
    labels_.count = 0;
    (void)flush();
    record_answered();
    // The batch is answered: its bodies are not needed any more.
    for (std::size_t i = 0; i < ready_; ++i)
        free_body(slots_[i]);
    if (ready_ > 0) {
        // The request still being parsed (if any) moves to the front for the next batch.
        if (parser_.in_message() && !stop_parsing_) std::swap(slots_[0], slots_[ready_]);
        ready_ = 0;
    }
}

void Http1Session::answered(Slot& s, int status, unsigned route_id, std::string_view route,
                            std::uint64_t bytes) noexcept {
    s.answered = true;
    s.status = status;
    s.route_id = route_id;
    s.route = route;
    s.bytes = bytes;
}

void Http1Session::free_body(Slot& s) noexcept {
    std::string& b = RequestAccess::body(*s.req);
    if (b.capacity() > kKeepBody) std::string().swap(b);
    if (ctx_.bodies) ctx_.bodies->give_back(s.body_charge);
    s.body_charge = 0;
}

void Http1Session::record_answered() {
    Clock::time_point sent{};  // one clock read for the whole batch, and none for an empty one
    for (std::size_t i = 0; i < ready_; ++i) {
        Slot& s = slots_[i];
        if (!s.answered) continue;
        s.answered = false;
        Clock::time_point at = s.sent_early;
        s.sent_early = {};
        if (at == Clock::time_point{}) {
            if (sent == Clock::time_point{}) sent = Clock::now();
            at = sent;
        }
        record(*s.req, s.status, s.route_id, s.route, s.started, s.received, at, s.bytes,
               s.error_status != 0 ? std::string_view(line_) : std::string_view());
    }
}

void Http1Session::handle(Slot& s, bool last_in_batch) {
    Request& req = *s.req;
    if (s.error_status != 0) {
        const std::uint64_t bytes = append_error(req, s.error_status, s.error_reason);
        // A request refused once its head was read whole (413 for its announced body, 400 for
        // a bad field) counts under the route it asked for: per-route dashboards show their
        // refusals too. (Before that, the target is not parsed yet: no route.)
        Router::Match m{};
        if (!req.path().empty() && req.path().front() == '/' &&
            path_form(req.path()) == PathForm::plain) {
            m = ctx_.router->match(req.method(), req.method_name(), req.path(), raw_params_);
            if (m.status == 404) m = Router::Match{};
            RequestAccess::set_route(req, m.route);
        }
        answered(s, s.error_status, m.route_id, m.route, bytes);
        closing_ = true;
        return;
    }
    const ServerOptions& o = *ctx_.options;
    ++conn_->requests;
    bool keep = req.keep_alive();
    if (o.max_requests_per_connection && conn_->requests >= o.max_requests_per_connection)
        keep = false;
    last_in_batch_ = last_in_batch;

    const bool head = req.method() == Method::head;
    RawParams& raw = raw_params_;
    // A path with "." or ".." segments ("/public/../admin", "/a/%2e%2e/b") is not routed as it
    // is: a route's {rest...} would take "../admin", and a handler that forwards it or opens a
    // file by it would reach what the route was not for. Clients resolve these segments before
    // sending; one that did not is sent to the path they name (Go's ServeMux does the same).
    // A path with a '%' that is not an escape is not a URI path (Go's and nginx's 400).
    const PathForm form = path_form(req.path());
    const bool dotted = form == PathForm::dot_segments;
    Router::Match m = form != PathForm::plain
                          ? Router::Match{}
                          : ctx_.router->match(req.method(), req.method_name(), req.path(), raw);
    RequestAccess::set_route(req, m.route);
    set_labels(req);

    int status = 0;
    std::uint64_t bytes = 0;
    if (form == PathForm::bad_escape) {
        append_response(req, Response(400, "Bad Request: invalid percent-encoding in path\n"), keep,
                        bytes, head);
        status = 400;
    } else if (form == PathForm::encoded_dot_segments) {
        append_response(
            req, Response(400, "Bad Request: a dot segment next to an encoded '/' (%2F) in path\n"),
            keep, bytes, head);
        status = 400;
    } else if (dotted && req.path().find('\\') != std::string_view::npos) {
        // Browsers take '\\' for '/' and would resolve the path otherwise than its segments
        // read here: no redirect is right for both.
        append_response(req, Response(400, "Bad Request: a path with dot segments and a '\\'\n"),
                        keep, bytes, head);
        status = 400;
    } else if (dotted) {
        std::string to = without_dot_segments(req.path());
        if (!req.raw_query().empty()) {
            to += '?';
            to += req.raw_query();
        }
        // 308 keeps the method and the body; a GET or HEAD gets the usual 301.
        status = req.method() == Method::get || head ? 301 : 308;
        Response r(status, "Moved: the path without its dot segments is " + to + "\n");
        r.add_header("Location", to);
        append_response(req, std::move(r), keep, bytes, head);
    } else if (m.status == 200) {
        // Decode the route parameters into the request (offsets first: the buffer may grow).
        std::string& store = RequestAccess::param_storage(req);
        auto& params = RequestAccess::params(req);
        std::size_t offs[RawParams::kMax + 1];
        bool ok = true;
        for (std::size_t i = 0; i < raw.count && ok; ++i) {
            offs[i] = store.size();
            ok = percent_decode(raw.items[i].value, store, false);
        }
        offs[raw.count] = store.size();
        if (!ok) {
            append_response(req, Response(400, "Bad Request: invalid percent-encoding in path\n"),
                            keep, bytes, head);
            status = 400;
        } else if (!o.timeout_header.empty() && !m.endpoint->websocket &&
                   !valid_timeout_header(req.header(o.timeout_header))) {
            // The client meant to shorten its deadline: it learns that it did not, rather
            // than waiting for the server's.
            append_response(req,
                            Response(400, "Bad Request: " + o.timeout_header +
                                              ": expected a duration such as 250m, 2S (gRPC's "
                                              "form) or 1500 (milliseconds)\n"),
                            keep, bytes, head);
            status = 400;
        } else {
            for (std::size_t i = 0; i < raw.count; ++i)
                params.push_back({raw.items[i].name,
                                  std::string_view(store.data() + offs[i], offs[i + 1] - offs[i])});
        }
    } else if (m.status == 404 && req.method() == Method::options && req.path() == "*") {
        // "OPTIONS *" asks about the server, not a resource (RFC 9110 §9.3.7): it is here.
        append_response(req, Response(200), keep, bytes, head);
        status = 200;
    } else {
        status = m.status;
        append_response(req, unrouted_answer(m), keep, bytes, head);
    }

    if (status == 0 && m.endpoint->websocket) {
        status = run_websocket(*m.endpoint, req, keep, bytes, s.received);
    } else if (status == 0) {
        const Endpoint& ep = *m.endpoint;
        if (ctx_.metrics) ctx_.metrics->active_add(req.method(), 1);
        RequestLife life(*ctx_.options, ep, req, s.received, conn_->fd, conn_->peer_text,
                         request_context_);
        if (&s != &slots_[0]) life.flush_on_park(this);  // answers before it may be waiting
        if (life.deadline_passed()) {
            // Past before its handler began (a client's deadline of 0, or one spent queued
            // behind pipelined requests): the handler does not run, so nothing it would do
            // happens after the client is told 504 (gRPC does not start such a call either).
            life.handler_done();
            Response r = deadline_passed_answer();
            if (ctx_.metrics) ctx_.metrics->count_timed_out();
            status = r.status();
            append_response(req, std::move(r), keep, bytes, head);
        } else if (ep.stream) {
            run_stream(ep, req, life, keep, status, bytes);
            life.handler_done();
        } else {
            Response r = call_handler(req, ep);
            life.handler_done();
            if (!valid_status("handler", req, ep, r.status())) r = internal_error();
            if (life.deadline_passed() && !life.client_gone()) {
                // Nothing went out yet: the client gets the answer its deadline promised.
                r = deadline_passed_answer();
                if (ctx_.metrics) ctx_.metrics->count_timed_out();
            }
            status = r.status();
            append_response(req, std::move(r), keep, bytes, head);
        }
        if (conn_->cut) {
            // The server cut it (the drain's end, room made at max_connections) while its
            // handler ran: a cancelled fiber sends nothing, so the client gets no answer.
            // Logged and counted as 503, as a request the server cut before its handler
            // answered is, not as the success the handler came to, nor as the client's
            // hang-up the cut looks like from the socket. A stream of which a write went out
            // keeps its status.
            if (!ep.stream || !stream_sent_) {
                status = 503;
                bytes = 0;
            }
            keep = false;
        } else if (life.client_gone()) {
            // It hung up while its handler waited: the handler was cancelled; nothing is sent.
            // Logged and counted as nginx does, 499 (client closed request): not the 200 or 500
            // the cancelled handler came to.
            if (ctx_.metrics) ctx_.metrics->count_abandoned();
            // A stream of which a write went out keeps its status (nginx also records 499
            // only when nothing was sent).
            if (!ep.stream || !stream_sent_) {
                status = kClientClosedRequest;
                bytes = 0;
            }
            keep = false;
        }
        if (ctx_.metrics) ctx_.metrics->active_add(req.method(), -1);
    }
    answered(s, status, m.route_id, m.route, bytes);
    labels_.count = 0;
    if (!keep) closing_ = true;
}

bool Http1Session::draining_now() const noexcept {
    // Draining: the last response before the connection would wait again says goodbye. Asked
    // when the response is written, since a drain may begin while its handler runs.
    return *ctx_.draining && last_in_batch_ && !parser_.in_message();
}

void Http1Session::append_head(const Request& req, const Response& r, bool& keep, bool chunked,
                               std::size_t content_length, bool with_length) {
    if (draining_now()) keep = false;
    // A handler may ask for the connection to close (as with Go's net/http); the header
    // itself is ours to write.
    std::size_t fields = 0;  // what the handler's own fields take at most
    // A Content-Type, Date or Server among them replaces the server's own (one field each).
    bool own_type = false;
    bool own_date = false;
    bool own_server = false;
    for (const auto& [name, value] : r.headers()) {
        if (iequals(name, "connection") && iequals(value, "close")) keep = false;
        if (name.size() == 12 && iequals(name, "content-type")) own_type = true;
        if (name.size() == 4 && iequals(name, "date")) own_date = true;
        if (name.size() == 6 && iequals(name, "server")) own_server = true;
        fields += name.size() + value.size() + 4;
    }
    const int status = r.status();
    const std::string_view reason = status == 200 ? std::string_view("OK") : status_reason(status);
    std::string_view date = ctx_.date->line();  // "Server: ...\r\n" (if any), "Date: ...\r\n"
    if (own_date || own_server) {
        const std::size_t server_part = ctx_.date->prefix_size();
        if (own_date) date = date.substr(0, server_part);
        if (own_server) date.remove_prefix(own_date ? date.size() : server_part);
    }
    std::string_view ct = own_type ? std::string_view() : r.content_type();
    if (!safe_header_text(ct)) ct = {};
    // The head's size is bounded before it is written: one capacity check, then every piece is
    // written through a local pointer (appends would reload the buffer's size after each).
    constexpr std::size_t kFixed = 9 + 4 + 2 + 14 + 2 + 16 + 20 + 2 + 28 + 24 + 2;
    char* const start = out_.tail(kFixed + reason.size() + date.size() + ct.size() + fields);
    char* p = start;
    auto put = [&p](std::string_view s) noexcept {
        std::memcpy(p, s.data(), s.size());
        p += s.size();
    };
    if (status == 200) {
        put("HTTP/1.1 200 OK\r\n");
    } else {
        put("HTTP/1.1 ");
        *p++ = static_cast<char>('0' + status / 100 % 10);
        *p++ = static_cast<char>('0' + status / 10 % 10);
        *p++ = static_cast<char>('0' + status % 10);
        *p++ = ' ';
        put(reason);
        put("\r\n");
    }
    put(date);
    if (!ct.empty()) {
        put("Content-Type: ");
        put(ct);
        put("\r\n");
    }
    if (with_length) {
        put("Content-Length: ");
        p = std::to_chars(p, p + 20, content_length).ptr;
        put("\r\n");
    } else if (chunked) {
        put("Transfer-Encoding: chunked\r\n");
    }
    if (!keep)
        put("Connection: close\r\n");
    else if (req.version_minor() == 0)
        put("Connection: keep-alive\r\n");
    for (const auto& [name, value] : r.headers()) {
        if (framing_header(name)) continue;
        if (!token_name(name)) {
            weft::logger("http")->warn(
                "dropped response header '{}': a field name is a token (no spaces, colons or "
                "control characters)",
                safe_header_text(name) ? name : "?");
            continue;
        }
        if (!safe_header_text(value)) {
            weft::logger("http")->warn("dropped response header '{}': CR, LF or NUL in its value",
                                       name);
            continue;
        }
        put(name);
        put(": ");
        put(value);
        put("\r\n");
    }
    put("\r\n");
    out_.commit(static_cast<std::size_t>(p - start));
}

void Http1Session::append_response(const Request& req, Response&& r, bool& keep,
                                   std::uint64_t& bytes, bool head_only) {
    const bool no_body = bodiless_status(r.status());
    // RFC 9110 §15.3.6: a 205 carries no content, but unlike a 204 it is framed (clients read
    // it by its Content-Length): "Content-Length: 0", whatever body the handler gave.
    std::string_view body = no_body || r.status() == 205 ? std::string_view() : r.body_bytes();
    bool with_length = !no_body;
    std::size_t length = body.size();
    if (head_only && body.empty() && with_length && r.status() != 205) {
        // A HEAD handler that built no body: the length a GET would get is the handler's to
        // say (a Content-Length of its own), or none is sent. Never one that differs from
        // GET's (RFC 9110 §8.6), as "0" would.
        with_length = false;
        for (const auto& [name, value] : r.headers()) {
            if (name.size() != 14 || !iequals(name, "content-length")) continue;
            std::string_view v = value;
            while (!v.empty() && (v.front() == ' ' || v.front() == '\t'))
                v.remove_prefix(1);
            while (!v.empty() && (v.back() == ' ' || v.back() == '\t'))
                v.remove_suffix(1);
            auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), length);
            with_length = ec == std::errc() && end == v.data() + v.size() && !v.empty();
        }
    }
    append_head(req, r, keep, false, length, with_length);
    if (head_only || body.empty()) return;
    bytes = body.size();
    if (body.size() <= kInlineBody) {
        out_.append(body);
        return;
    }
    // A large body goes out from the response itself: keep it alive until the batch is sent.
    held_.push_back(std::move(r));
    append_external(held_.back().body_bytes());
}

std::uint64_t Http1Session::append_error(Request& req, int status, const char* reason) {
    std::string body(status_reason(status));
    if (reason && *reason) {
        body += ": ";
        body += reason;
    }
    body += '\n';
    Response r(status, std::move(body));
    if (status == 503) r.add_header("Retry-After", "1");
    std::uint64_t bytes = 0;
    bool keep = false;
    // Errors always close. A request that failed before its header section was complete has
    // no method yet (Method::other), so its error carries a body; a HEAD does not.
    append_response(req, std::move(r), keep, bytes, req.method() == Method::head);
    return bytes;
}

void Http1Session::note_line(const char* p, std::size_t n, bool continued) noexcept {
    if (!continued) {
        line_.clear();
        line_done_ = false;
        while (n > 0 && (*p == '\r' || *p == '\n')) {  // empty lines before a request
            ++p;
            --n;
        }
    }
    if (line_done_) return;
    const auto* lf = static_cast<const char*>(std::memchr(p, '\n', n));
    std::size_t take = lf ? static_cast<std::size_t>(lf - p) : n;
    if (take > kLineMax - line_.size()) take = kLineMax - line_.size();
    line_.append(p, take);  // reserved by the constructor: no allocation
    if (lf || line_.size() == kLineMax) {
        line_done_ = true;
        if (!line_.empty() && line_.back() == '\r') line_.pop_back();
    }
}

void Http1Session::close_out_piece() noexcept {
    if (out_.size() > out_mark_) {
        pieces_.push_back({nullptr, out_mark_, out_.size() - out_mark_});
        out_mark_ = out_.size();
    }
}

void Http1Session::append_external(std::string_view bytes) {
    close_out_piece();
    pieces_.push_back({bytes.data(), 0, bytes.size()});
}

void Http1Session::flush_early() noexcept {
    if (in_flush_ || send_failed_ || !transport_) return;
    close_out_piece();
    // Only bytes of out_'s own (no body referenced in place): the transport takes them whole.
    if (pieces_.size() != 1 || pieces_[0].ptr || pieces_[0].off != 0 ||
        pieces_[0].len != out_.size() || !transport_->send_now(out_))
        return;
    out_.clear();
    out_mark_ = 0;
    pieces_.clear();
    held_.clear();
    // Their durations end now, not with the batch's. They are recorded with the batch all the
    // same: a hook must not block, and the access log's callback is the user's.
    Clock::time_point now{};
    for (std::size_t i = 0; i < ready_; ++i) {
        Slot& s = slots_[i];
        if (!s.answered || s.sent_early != Clock::time_point{}) continue;
        if (now == Clock::time_point{}) now = Clock::now();
        s.sent_early = now;
    }
}

Result<void> Http1Session::flush() {
    close_out_piece();
    if (pieces_.empty()) return {};
    struct InFlush {
        bool& b;
        explicit InFlush(bool& f) : b(f) { b = true; }
        ~InFlush() { b = false; }
    } in_flush(in_flush_);
    Result<void> r = Errc::closed;
    if (!send_failed_ && transport_ && pieces_.size() == 1 && !pieces_[0].ptr &&
        pieces_[0].off == 0 && pieces_[0].len == out_.size()) {
        // The common batch: everything is in out_, which the transport may take as it is.
        r = transport_->send_buffer(out_);
    } else if (!send_failed_ && transport_) {
        iov_.clear();
        for (const Piece& p : pieces_) {
            const char* base = p.ptr ? p.ptr : out_.data() + p.off;
            iov_.push_back({const_cast<char*>(base), p.len});
        }
        r = transport_->send(iov_);
    }
    out_.clear();
    out_mark_ = 0;
    pieces_.clear();
    held_.clear();
    if (!r) {
        send_failed_ = true;
        closing_ = true;
    }
    return r;
}

void Http1Session::record(const Request& req, int status, unsigned route_id, std::string_view route,
                          Clock::time_point started, Clock::time_point received,
                          Clock::time_point sent, std::uint64_t bytes,
                          std::string_view request_line) {
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(sent - received);
    // A head refused or cut before its end (408, 431...) has no parsed method; the line as it
    // came may still name one ("GET / HTTP/1.1" then silence), which the log shows too.
    Method method = req.method();
    if (method == Method::other && req.method_name().empty() && !request_line.empty())
        method = parse_method(request_line.substr(0, request_line.find(' ')));
    if (ctx_.metrics) ctx_.metrics->observe(method, status, route_id, route, ns.count());
    if (ctx_.options->access_log) {
        AccessLogEntry e;
        e.method = req.method_name();
        e.target = req.target();
        e.route = route;
        e.status = status;
        e.bytes = bytes;
        e.duration = std::chrono::duration_cast<std::chrono::nanoseconds>(sent - started);
        e.request_line = request_line;
        e.referer = req.header("referer").value_or(std::string_view());
        e.user_agent = req.header("user-agent").value_or(std::string_view());
        e.peer = conn_->peer;
        e.peer_text = conn_->peer_text;
        e.hub = ctx_.hub;
        e.version_minor = req.version_minor();
        e.complete = !send_failed_ && !stream_failed_;
        try {
            ctx_.options->access_log(e);
        } catch (const std::exception& ex) {
            weft::logger("http")->error("access log callback threw: {}", ex.what());
        } catch (...) {
            weft::logger("http")->error("access log callback threw a non-std exception");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// WebSocket routes.

namespace {

// Whether the comma-separated header value `list` holds `token` (case-insensitive unless
// `exact`).
bool has_token(std::string_view list, std::string_view token, bool exact = false) noexcept {
    while (!list.empty()) {
        const std::size_t comma = list.find(',');
        std::string_view item = list.substr(0, comma);
        while (!item.empty() && (item.front() == ' ' || item.front() == '\t'))
            item.remove_prefix(1);
        while (!item.empty() && (item.back() == ' ' || item.back() == '\t'))
            item.remove_suffix(1);
        if (exact ? item == token : iequals(item, token)) return true;
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
    }
    return false;
}

bool any_header_has_token(const Request& req, std::string_view name, std::string_view token,
                          bool exact = false) {
    for (const auto& h : req.headers())
        if (iequals(h.name, name) && has_token(h.value, token, exact)) return true;
    return false;
}

// A Sec-WebSocket-Key: base64 of 16 bytes (22 characters and "==").
bool valid_ws_key(std::string_view k) noexcept {
    if (k.size() != 24 || k.substr(22) != "==") return false;
    for (char c : k.substr(0, 22))
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '/') return false;
    return true;
}

// Whether `origin` matches an allowed entry "scheme://*.domain[:port]": the same scheme and
// port, and a host of one or more labels ending in ".domain".
bool subdomain_match(std::string_view pattern, std::string_view origin) noexcept {
    const std::size_t sep = pattern.find("://*.");
    if (sep == std::string_view::npos) return false;
    const std::string_view prefix = pattern.substr(0, sep + 3);  // "https://"
    const std::string_view suffix = pattern.substr(sep + 4);     // ".example.com[:port]"
    if (origin.size() <= prefix.size() + suffix.size()) return false;
    if (!iequals(origin.substr(0, prefix.size()), prefix) ||
        !iequals(origin.substr(origin.size() - suffix.size()), suffix))
        return false;
    const std::string_view labels =
        origin.substr(prefix.size(), origin.size() - prefix.size() - suffix.size());
    if (labels.front() == '.' || labels.back() == '.') return false;
    for (char c : labels)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.') return false;
    return true;
}

// `origin` ("https://host[:port]") without its scheme's default port: the same origin however
// it is written ("https://a.example:443" is "https://a.example").
std::string_view without_default_port(std::string_view origin) noexcept {
    const std::size_t sep = origin.find("://");
    if (sep == std::string_view::npos) return origin;
    const std::string_view scheme = origin.substr(0, sep);
    std::string_view port;
    if (iequals(scheme, "https") || iequals(scheme, "wss"))
        port = ":443";
    else if (iequals(scheme, "http") || iequals(scheme, "ws"))
        port = ":80";
    if (!port.empty() && origin.size() > sep + 3 + port.size() && origin.ends_with(port))
        origin.remove_suffix(port.size());
    return origin;
}

// Whether a browser page of the handshake's Origin may open this WebSocket (see
// ServerOptions::websocket_allowed_origins).
// A parameter ("host=", "proto=") of the first element of the Forwarded field (RFC 7239: what
// the first proxy saw), its quotes removed; nullopt without one.
std::optional<std::string_view> forwarded_param(const Request& req, std::string_view key) noexcept {
    const auto fwd = req.header("forwarded");
    if (!fwd) return std::nullopt;
    std::string_view first = fwd->substr(0, fwd->find(','));
    while (!first.empty()) {
        const std::size_t semi = first.find(';');
        const std::string_view pair = trim_ows(first.substr(0, semi));
        first = semi == std::string_view::npos ? std::string_view() : first.substr(semi + 1);
        if (pair.size() < key.size() || !iequals(pair.substr(0, key.size()), key)) continue;
        std::string_view v = pair.substr(key.size());
        if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
        return v;
    }
    return std::nullopt;
}

// The scheme the browser used to reach this server, as "http" or "https": the listener's
// when it is TLS; else what a proxy says (X-Forwarded-Proto, Forwarded's proto=), or "" when
// unknown (a plain listener may sit behind a proxy that ends TLS and says nothing).
std::string_view page_scheme(const Request& req, bool tls) noexcept {
    if (tls) return "https";
    auto scheme = [](std::string_view v) -> std::string_view {
        v = trim_ows(v.substr(0, v.find(',')));
        if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
        if (iequals(v, "https")) return "https";
        if (iequals(v, "http")) return "http";
        return "";
    };
    if (const auto xfp = req.header("x-forwarded-proto"))
        if (const std::string_view v = scheme(*xfp); !v.empty()) return v;
    if (const auto proto = forwarded_param(req, "proto=")) return scheme(*proto);
    return "";
}

bool origin_allowed(const Request& req, const std::vector<std::string>& allowed,
                    bool tls) noexcept {
    const auto field = req.header("origin");
    if (!field) return true;  // not a browser (RFC 6455 10.2): nothing to check
    const std::string_view origin = trim_ows(*field);
    const std::string_view plain = without_default_port(origin);
    for (const std::string& a : allowed) {
        const std::string_view want = without_default_port(a);
        if (a == "*" || (want.find('*') == std::string_view::npos ? iequals(want, plain)
                                                                  : subdomain_match(want, plain)))
            return true;
    }
    // The page's own server: scheme "://" host [":" port], the host and port of the request.
    // Behind a proxy that names another Host, the host the browser used is in X-Forwarded-Host
    // or Forwarded's host=, which are taken too: a page cannot set either on a WebSocket
    // handshake (the browser's API sets no fields), and only pages are what this check is for.
    const std::size_t sep = origin.find("://");
    if (sep == std::string_view::npos) return false;
    const std::string_view scheme = origin.substr(0, sep);
    const std::string_view authority = origin.substr(sep + 3);
    if (authority.empty() || authority.find_first_of("/?#@") != std::string_view::npos)
        return false;
    std::string_view default_port;
    const bool secure = iequals(scheme, "https") || iequals(scheme, "wss");
    if (secure)
        default_port = ":443";
    else if (iequals(scheme, "http") || iequals(scheme, "ws"))
        default_port = ":80";
    // A page of the same host under the other scheme is another origin: an http:// page (which
    // anyone on the path can rewrite) may not use the cookies of the https:// site's socket.
    if (const std::string_view want = page_scheme(req, tls);
        !want.empty() && (want == "https") != secure)
        return false;
    auto bare = [&](std::string_view h) {
        if (!default_port.empty() && h.size() > default_port.size() && h.ends_with(default_port))
            h.remove_suffix(default_port.size());
        return h;
    };
    auto same = [&](std::string_view host) {
        return !host.empty() && iequals(bare(authority), bare(trim_ows(host)));
    };
    if (const auto host = req.header("host"); host && same(*host)) return true;
    // The first of a list is the one the client sent to the first proxy.
    if (const auto xfh = req.header("x-forwarded-host");
        xfh && same(xfh->substr(0, xfh->find(','))))
        return true;
    if (const auto host = forwarded_param(req, "host="); host && same(*host)) return true;
    return false;
}

}  // namespace

int Http1Session::run_websocket(const Endpoint& ep, Request& req, bool& keep, std::uint64_t& bytes,
                                Clock::time_point received) {
    keep = false;  // whatever happens, the connection ends with this request
    auto refuse = [&](int status, std::string text, bool upgrade_hint) {
        Response r(status, std::move(text));
        if (upgrade_hint) {
            r.add_header("Upgrade", "websocket");
            r.add_header("Sec-WebSocket-Version", "13");
        }
        append_response(req, std::move(r), keep, bytes, req.method() == Method::head);
        return status;
    };
    if (!any_header_has_token(req, "upgrade", "websocket"))
        return refuse(426, "Upgrade Required: this route speaks WebSocket\n", true);
    if (req.method() != Method::get || req.version_minor() < 1)
        return refuse(400, "Bad Request: a WebSocket handshake is an HTTP/1.1 GET\n", false);
    if (!any_header_has_token(req, "connection", "upgrade"))
        return refuse(400, "Bad Request: a WebSocket handshake needs Connection: Upgrade\n", false);
    // Each at most once (RFC 6455 section 11.3): of two keys, which one to answer for?
    for (std::string_view once : {"sec-websocket-key", "sec-websocket-version"}) {
        int n = 0;
        for (const Header& h : req.headers())
            n += iequals(h.name, once) ? 1 : 0;
        if (n > 1)
            return refuse(400,
                          "Bad Request: more than one " +
                              std::string(once == "sec-websocket-key" ? "Sec-WebSocket-Key"
                                                                      : "Sec-WebSocket-Version") +
                              " field\n",
                          false);
    }
    auto version = req.header("sec-websocket-version");
    if (!version || *version != "13")
        return refuse(426, "Upgrade Required: WebSocket version 13 only\n", true);
    auto key = req.header("sec-websocket-key");
    if (!key || !valid_ws_key(*key))
        return refuse(400, "Bad Request: missing or malformed Sec-WebSocket-Key\n", false);

    const auto& origins = ep.websocket_options.allowed_origins.empty()
                              ? ctx_.options->websocket_allowed_origins
                              : ep.websocket_options.allowed_origins;
    if (!origin_allowed(req, origins, conn_->tls))
        return refuse(403,
                      "Forbidden: pages of this Origin may not open this WebSocket "
                      "(websocket.allowed_origins)\n",
                      false);

    if (*ctx_.draining) {
        Response r(503, "Service Unavailable: the server is shutting down\n");
        r.add_header("Retry-After", "1");
        append_response(req, std::move(r), keep, bytes, false);
        return 503;
    }
    // The server's preference among what the client offers, compared exactly: the client
    // fails a handshake that names a subprotocol it did not offer as it spelled it (RFC 6455
    // 4.1).
    std::string chosen;
    for (const std::string& p : ep.websocket_options.subprotocols) {
        if (any_header_has_token(req, "sec-websocket-protocol", p, true)) {
            chosen = p;
            break;
        }
    }
    out_.append(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Accept: ");
    out_.append(ws_accept_key(*key));
    out_.append("\r\n", 2);
    if (!chosen.empty()) {
        out_.append("Sec-WebSocket-Protocol: ");
        out_.append(chosen);
        out_.append("\r\n", 2);
    }
    out_.append(ctx_.date->line());
    out_.append("\r\n", 2);
    if (!flush()) return 101;  // the client is gone: nothing more to do

    const ServerOptions& o = *ctx_.options;
    WebSocketSettings ws;
    // The route's own limit when it sets one, larger or smaller than the server's (memory stays
    // within the server's budget of buffered input either way: 1013 beyond it).
    ws.max_message = ep.websocket_options.max_message_bytes != 0
                         ? ep.websocket_options.max_message_bytes
                         : o.websocket_max_message_bytes;
    if (ws.max_message == 0) ws.max_message = SIZE_MAX;
    ws.ping_interval = o.websocket_ping_interval;
    ws.idle_timeout = o.websocket_idle_timeout;
    ws.budget = ctx_.bodies;
    ws.metrics = ctx_.metrics;
    WebSocketCore core(*transport_, ws, chosen, after_close_);
    std::string().swap(after_close_);
    WebSocket socket(core);
    if (ctx_.metrics) ctx_.metrics->websocket_add(1);
    conn_->websocket = &core;
    // A drain that began while the handshake's answer went out missed this connection (it
    // looks for conn_->websocket): the WebSocket goes away at once instead of at the drain's
    // timeout.
    if (*ctx_.draining) core.close(ws_close::going_away, "server shutting down");
    {
        // No request deadline unless the route set one, and no hang-up watch: recv() sees it.
        RequestLife life(o, ep, req, received, -1, conn_->peer_text, request_context_);
        const bool ok = guarded("WebSocket handler", req, ep, [&] { ep.websocket(req, socket); });
        life.handler_done();
        if (!this_fiber::cancelled())
            core.close(ok ? ws_close::normal : ws_close::internal_error,
                       ok ? "" : "internal error");
    }
    conn_->websocket = nullptr;
    if (ctx_.metrics) ctx_.metrics->websocket_add(-1);
    closing_ = true;
    // Unless the client's close frame came, it may still be sending (a message over the size
    // limit, say): closing with its bytes unread would reset the connection, and the client
    // would lose our close frame. Linger, as after a refused request.
    linger_ = !core.peer_closed();
    return 101;
}

// ---------------------------------------------------------------------------------------------
// Streaming responses.

void Http1Session::run_stream(const Endpoint& ep, Request& req, RequestLife& life, bool& keep,
                              int& status, std::uint64_t& bytes) {
    stream_req_ = &req;
    stream_life_ = &life;
    stream_keep_ = keep;
    stream_started_ = false;
    stream_sent_ = false;
    stream_failed_ = false;
    stream_bytes_ = 0;
    ResponseStream stream(*this);
    const bool failed = !guarded("streaming handler", req, ep, [&] { ep.stream(req, stream); });
    stream_req_ = nullptr;
    stream_life_ = nullptr;
    if (!stream_started_) {
        // Nothing went out yet: an ordinary response (a 500 if the handler failed, a 504 if
        // its deadline passed, as for an ordinary handler).
        Response r = failed ? internal_error() : stream.head();
        if (!failed && !valid_status("streaming handler", req, ep, r.status()))
            r = internal_error();
        if (life.deadline_passed() && !life.client_gone()) {
            r = deadline_passed_answer();
            if (ctx_.metrics) ctx_.metrics->count_timed_out();
        }
        status = r.status();
        append_response(req, std::move(r), keep, bytes, req.method() == Method::head);
        return;
    }
    status = stream_status_;
    bytes = stream_bytes_;
    if (failed || stream_failed_) {
        // Part of the response is out: the only honest end is closing the connection.
        keep = false;
        closing_ = true;
        linger_ = false;
        if (failed && status < 500) status = 500;
        return;
    }
    keep = stream_keep_;
    if (stream_chunked_ && !stream_no_body_) out_.append("0\r\n\r\n", 5);
}

Result<void> Http1Session::stream_write(const Response& head, std::string_view data) {
    if (!stream_req_ || stream_failed_ || send_failed_) return Errc::closed;
    const Request& req = *stream_req_;
    // Past the deadline nothing starts: the handler's return answers 504.
    if (!stream_started_ && stream_life_ && stream_life_->deadline_passed()) return Errc::timed_out;
    if (!stream_started_) {
        stream_started_ = true;
        stream_status_ = head.status() >= 200 && head.status() <= 599 ? head.status() : 500;
        stream_no_body_ = req.method() == Method::head || bodiless_status(stream_status_);
        // HTTP/1.0 has no chunked coding: the body ends when the connection closes.
        stream_chunked_ = req.version_minor() >= 1;
        if (!stream_chunked_) stream_keep_ = false;
        Response h = head;
        h.set_status(stream_status_);
        append_head(req, h, stream_keep_, stream_chunked_ && !bodiless_status(stream_status_), 0,
                    false);
    }
    if (!stream_no_body_ && !data.empty()) {
        if (stream_chunked_) {
            append_hex(out_, data.size());
            out_.append("\r\n", 2);
            append_external(data);
            out_.append("\r\n", 2);
        } else {
            append_external(data);
        }
    }
    auto r = flush();
    if (!r) stream_failed_ = true;
    if (r) stream_sent_ = true;
    // The access log's bytes are the body's that went out: a write that failed (the deadline
    // passed, the client left) is not counted, as nginx counts only what it sent.
    if (r && !stream_no_body_) stream_bytes_ += data.size();
    // No body may follow (HEAD, 204, 304): say so to a handler that has one, or it would
    // stream into nothing for as long as it runs (an event stream: until its client leaves,
    // and requests pipelined behind it wait that long).
    if (r && stream_no_body_ && !data.empty()) return Errc::closed;
    return r;
}

}  // namespace weft::http::detail

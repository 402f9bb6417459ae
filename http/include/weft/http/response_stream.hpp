// ResponseStream: the body of a streaming handler's response, written in pieces. The first
// write() sends the status line and headers; each write() then goes out as one chunk
// (Transfer-Encoding: chunked; an HTTP/1.0 client instead gets a body ended by closing the
// connection). The server ends the body when the handler returns.
#pragma once

#include <string_view>

#include "weft/core/result.hpp"
#include "weft/http/response.hpp"

namespace weft::http {

namespace detail {
/// Where a ResponseStream's bytes go (the connection's session).
class StreamSink {
  public:
    virtual Result<void> stream_write(const Response& head, std::string_view data) = 0;

  protected:
    ~StreamSink() = default;
};
}  // namespace detail

/// Owned by the connection; valid only during the handler call. Fiber-blocking: write() parks
/// the calling fiber while the socket is full.
class ResponseStream {
  public:
    explicit ResponseStream(detail::StreamSink& sink) noexcept : sink_(&sink) {}
    ResponseStream(const ResponseStream&) = delete;
    ResponseStream& operator=(const ResponseStream&) = delete;

    /// Status and headers: effective only before the first write().
    ResponseStream& set_status(int status) noexcept {
        head_.set_status(status);
        return *this;
    }
    ResponseStream& set_content_type(std::string_view type) {
        head_.set_content_type(type);
        return *this;
    }
    ResponseStream& add_header(std::string_view name, std::string_view value) {
        head_.add_header(name, value);
        return *this;
    }

    /// Sends `data` now (after the status line and headers if this is the first write).
    /// Blocking: parks until the bytes are handed to the kernel (up to 16 KiB on io_uring: until
    /// the previous write's are, and this one's are queued; a failure to send them shows at the
    /// next write, or closes the connection). Errors: Errc::timed_out
    /// (the server's send timeout), Errc::connection_reset or Errc::closed when the client is
    /// gone; after an error every later write fails too and the connection closes. An empty
    /// `data` only sends the headers. When no body may follow (a HEAD request, a 204 or 304),
    /// the headers go out and a write with data returns Errc::closed (Go's
    /// http.ErrBodyNotAllowed, which Go gives for 204 and 304; for HEAD Go drops the bytes
    /// silently, and an event stream runs on until its client leaves): a handler that streams
    /// until a write fails ends at once, and the connection goes on. A handler that takes that
    /// failure for an error of its own gets the 500 it asks for.
    Result<void> write(std::string_view data) {
        started_ = true;
        return sink_->stream_write(head_, data);
    }
    /// True once write() was called.
    bool started() const noexcept { return started_; }
    const Response& head() const noexcept { return head_; }

  private:
    detail::StreamSink* sink_;
    Response head_;
    bool started_ = false;
};

}  // namespace weft::http

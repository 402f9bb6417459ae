// Response: what a handler returns. The common case — a status, a content type and a body
// string — costs one string move. The server adds Date, Server, Content-Length and Connection;
// a handler's own framing headers (Content-Length, Transfer-Encoding, Connection) are not sent,
// except that "Connection: close" makes the server close the connection after the response.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace weft::http {

/// The reason phrase of a status code ("Not Found"); "Unknown" for codes without one.
std::string_view status_reason(int status) noexcept;

class Response {
  public:
    /// 200 with an empty body.
    Response() noexcept = default;
    explicit Response(int status) noexcept : status_(status) {}
    /// `content_type` is copied unless it is one of the common types (text/plain,
    /// application/json...), which are kept by reference at no cost.
    Response(int status, std::string body, std::string_view content_type = "text/plain")
        : status_(status), body_(std::move(body)) {
        set_content_type(content_type);
    }
    /// The same with a C string body (a literal, most often), copied straight into place. A
    /// null pointer is an empty body: `Response(204, {})` picks this overload.
    Response(int status, const char* body, std::string_view content_type = "text/plain")
        : status_(status), body_(body ? body : "") {
        set_content_type(content_type);
    }

    /// text/plain; charset=utf-8
    static Response text(std::string body, int status = 200) {
        return Response(status, std::move(body), "text/plain; charset=utf-8");
    }
    /// application/json
    static Response json(std::string body, int status = 200) {
        return Response(status, std::move(body), "application/json");
    }

    int status() const noexcept { return status_; }
    Response& set_status(int status) noexcept {
        status_ = status;
        return *this;
    }

    /// Empty: no Content-Type header is sent.
    std::string_view content_type() const noexcept {
        return ct_static_ ? std::string_view(ct_static_, ct_static_len_)
                          : std::string_view(ct_owned_);
    }
    Response& set_content_type(std::string_view type);

    /// The bytes sent as the body: the view set by set_body_view(), else body().
    std::string_view body_bytes() const noexcept {
        return has_view_ ? body_view_ : std::string_view(body_);
    }
    const std::string& body() const noexcept { return body_; }
    std::string& body() noexcept { return body_; }
    Response& set_body(std::string body) noexcept {
        body_ = std::move(body);
        has_view_ = false;
        return *this;
    }
    /// Sends `bytes` without copying them; they must stay valid until the response has been
    /// sent (static data, or data owned by something that outlives the request).
    Response& set_body_view(std::string_view bytes) noexcept {
        body_view_ = bytes;
        has_view_ = true;
        return *this;
    }

    /// Adds a header field (repeats allowed). A name or value containing CR, LF or NUL is
    /// dropped when the response is sent (and logged): it would split the response.
    Response& add_header(std::string_view name, std::string_view value) {
        headers_.emplace_back(std::string(name), std::string(value));
        return *this;
    }
    const std::vector<std::pair<std::string, std::string>>& headers() const noexcept {
        return headers_;
    }

  private:
    int status_ = 200;
    const char* ct_static_ = nullptr;
    std::size_t ct_static_len_ = 0;
    std::string ct_owned_;
    std::string body_;
    std::string_view body_view_;
    bool has_view_ = false;
    std::vector<std::pair<std::string, std::string>> headers_;
};

}  // namespace weft::http

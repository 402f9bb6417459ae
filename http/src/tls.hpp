// TLS for Weft's HTTP client (and listeners): an OpenSSL context (which certificates to trust or
// present) and a session that runs TLS over a TcpStream through memory BIOs, so that it works
// the same on both I/O backends and parks only the calling fiber. tls.cpp is the one file that
// includes OpenSSL's headers.
#pragma once

#include <array>
#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "weft/core/deadline.hpp"
#include "weft/core/result.hpp"
#include "weft/core/tcp.hpp"

namespace weft::http::detail {

/// SHA-1 of `data` (OpenSSL's; for the WebSocket handshake's Sec-WebSocket-Accept).
std::array<unsigned char, 20> sha1(std::string_view data) noexcept;

/// Why a TLS operation failed. `tls` is true for TLS-level failures (a certificate, a protocol
/// error), false for the transport's (a timeout, a reset: `transport` says which).
struct TlsError {
    bool tls = true;
    Error transport{Errc::ok};
    std::string message;  ///< "certificate has expired", "hostname mismatch"...
};

/// An SSL_CTX. Thread-safe once made; shared by sessions on every hub.
class TlsContext {
  public:
    /// A client context: TLS 1.2 and 1.3, ALPN http/1.1, certificates checked against
    /// `ca_file` (PEM) or, when empty, the system's store. Errors name the file and what
    /// OpenSSL said.
    static Result<std::shared_ptr<TlsContext>, std::string> client(const std::string& ca_file,
                                                                   bool verify_peer);
    ~TlsContext();
    TlsContext(const TlsContext&) = delete;
    TlsContext& operator=(const TlsContext&) = delete;

    void* native() const noexcept { return ctx_; }  ///< SSL_CTX*
    bool verify_peer() const noexcept { return verify_; }

  private:
    TlsContext(void* ctx, bool verify) noexcept : ctx_(ctx), verify_(verify) {}
    void* ctx_;
    bool verify_;
};

/// One TLS connection over `stream` (which it does not own; it must outlive the session).
class TlsSession {
  public:
    TlsSession(std::shared_ptr<TlsContext> ctx, TcpStream& stream);
    ~TlsSession();
    TlsSession(const TlsSession&) = delete;
    TlsSession& operator=(const TlsSession&) = delete;

    /// The client handshake: SNI and the certificate's host name (or IP address) checked
    /// against `host`.
    Result<void, TlsError> connect(std::string_view host, Deadline deadline);
    /// Up to buf.size() bytes of plaintext; 0 at the end of the stream.
    Result<std::size_t, TlsError> read(std::span<char> buf, Deadline deadline);
    Result<void, TlsError> write(std::string_view data, Deadline deadline);
    /// Plaintext already decrypted and waiting (so a read would not park).
    std::size_t pending() const noexcept;

  private:
    // Runs `op` (an SSL call) until it stops asking for I/O; returns its result.
    template <class Op>
    Result<int, TlsError> drive(Op op, Deadline deadline);
    Result<void, TlsError> flush(Deadline deadline);

    std::shared_ptr<TlsContext> ctx_;
    TcpStream& stream_;
    void* ssl_ = nullptr;   ///< SSL*
    void* rbio_ = nullptr;  ///< BIO*: bytes from the network, for OpenSSL to read
    void* wbio_ = nullptr;  ///< BIO*: bytes OpenSSL wrote, for the network
    /// Ciphertext on its way between a BIO and the stream (on the heap: fiber stacks are small).
    std::unique_ptr<char[]> io_buf_;
};

}  // namespace weft::http::detail

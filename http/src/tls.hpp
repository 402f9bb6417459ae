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
#include "weft/core/wait_queue.hpp"

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
    /// OpenSSL said. It keeps the newest session each origin gave (see TlsSession::connect),
    /// so that a new connection to it resumes instead of a full handshake.
    static Result<std::shared_ptr<TlsContext>, std::string> client(const std::string& ca_file,
                                                                   bool verify_peer);
    /// A server context: the certificate chain in `cert_file` (PEM, leaf first) and its key
    /// in `key_file`; TLS 1.2 and 1.3, ALPN http/1.1, server-preferred ECDHE AEAD ciphers,
    /// session resumption (tickets and a session cache). Errors name the file and what
    /// OpenSSL said; `summary` (when given) gets "CN=..., expires ...", and `warning` what is
    /// wrong with a certificate that loads (expired, not valid yet), or "".
    static Result<std::shared_ptr<TlsContext>, std::string> server(const std::string& cert_file,
                                                                   const std::string& key_file,
                                                                   std::string* summary = nullptr,
                                                                   std::string* warning = nullptr);
    ~TlsContext();
    TlsContext(const TlsContext&) = delete;
    TlsContext& operator=(const TlsContext&) = delete;

    void* native() const noexcept { return ctx_; }  ///< SSL_CTX*
    /// A server context's certificate is valid now (neither expired nor not valid yet).
    bool certificate_valid_now() const noexcept;
    /// A server context's certificate's notAfter, in seconds since the Unix epoch (0 if
    /// unknown).
    std::int64_t certificate_expires_unix() const noexcept;
    bool verify_peer() const noexcept { return verify_; }

    /// A client context's sessions to resume, by origin (bounded; expired ones are dropped).
    class ClientSessions;
    ClientSessions* client_sessions() const noexcept { return sessions_.get(); }

  private:
    TlsContext(void* ctx, bool verify) noexcept;
    void* ctx_;
    bool verify_;
    std::unique_ptr<ClientSessions> sessions_;  ///< client contexts only
};

/// One TLS connection over `stream` (which it does not own; it must outlive the session).
class TlsSession {
  public:
    TlsSession(std::shared_ptr<TlsContext> ctx, TcpStream& stream);
    ~TlsSession();
    TlsSession(const TlsSession&) = delete;
    TlsSession& operator=(const TlsSession&) = delete;

    /// The client handshake: SNI and the certificate's host name (or IP address) checked
    /// against `host`. `origin` ("https://host:port") names the server for resumption: a
    /// session it gave an earlier connection is offered, and the one it gives now is kept
    /// ("": neither).
    Result<void, TlsError> connect(std::string_view host, Deadline deadline,
                                   std::string_view origin = {});
    /// The server handshake, with what feed() gave it and what it reads itself.
    Result<void, TlsError> accept(Deadline deadline);
    bool handshake_done() const noexcept;
    /// The handshake resumed an earlier session (no certificate was exchanged).
    bool resumed() const noexcept;
    /// Ciphertext that arrived without the session asking (a fiber-less watch received it).
    void feed(std::string_view ciphertext);
    /// Up to buf.size() bytes of plaintext; 0 at the end of the stream.
    Result<std::size_t, TlsError> read(std::span<char> buf, Deadline deadline);
    /// Plaintext that can be had without waiting for the network: 0 when a whole record has
    /// not arrived yet; `eof` set when the peer ended the stream.
    Result<std::size_t, TlsError> read_buffered(std::span<char> buf, bool& eof);
    /// Bytes received and not yet turned into plaintext (or plaintext not yet read).
    bool has_buffered() const noexcept;
    /// Sends close_notify (best effort, within `deadline`).
    void shutdown(Deadline deadline) noexcept;
    /// Sends close_notify on `fd` without waiting (for a connection closed between requests,
    /// with no fiber: its idle timeout, a drain, room made at max_connections): nothing if a
    /// send is under way, or if the socket has no room for the alert.
    void close_now(int fd) noexcept;
    /// Frees the session's I/O buffer while the connection is idle (it is made again when
    /// needed).
    void release_buffers() noexcept;
    Result<void, TlsError> write(std::string_view data, Deadline deadline);
    /// What bounds the sends of write() besides its deadline: no byte going out for `stall`
    /// (0: only the deadline). A slow peer that keeps taking bytes is not cut off.
    void set_send_stall(std::chrono::nanoseconds stall) noexcept { send_stall_ = stall; }
    /// Plaintext already decrypted and waiting (so a read would not park).
    std::size_t pending() const noexcept;
    /// Whether the peer ended its stream with a close_notify alert. An end without one may
    /// have been cut short by an attacker: a body delimited by the close is then not whole.
    bool close_notified() const noexcept { return close_notified_; }

  private:
    // Runs `op` (an SSL call) until it stops asking for I/O; returns its result.
    template <class Op>
    Result<int, TlsError> drive(Op op, Deadline deadline, bool reading = false);
    /// Sends what OpenSSL wrote. `wait_turn` false (a reader): if another fiber is sending,
    /// return at once, that fiber sends it.
    Result<void, TlsError> flush(Deadline deadline, bool wait_turn = true);

    /// A buffer for ciphertext on its way between a BIO and the stream, held while a receive
    /// or a send uses it. A fiber that sends while another receives (a WebSocket) gets a
    /// buffer of its own: the receive's bytes may land in its buffer at any moment.
    class IoBuf {
      public:
        explicit IoBuf(TlsSession& s);
        ~IoBuf();
        IoBuf(const IoBuf&) = delete;
        IoBuf& operator=(const IoBuf&) = delete;
        char* data() const noexcept { return p_; }

      private:
        TlsSession& s_;
        int slot_ = -1;                  // which of the session's buffers; -1: its own
        std::unique_ptr<char[]> extra_;  // a third user at once (never in practice)
        char* p_ = nullptr;
    };

    std::shared_ptr<TlsContext> ctx_;
    TcpStream& stream_;
    std::chrono::nanoseconds send_stall_{0};
    void* ssl_ = nullptr;   ///< SSL*
    void* rbio_ = nullptr;  ///< BIO*: bytes from the network, for OpenSSL to read
    void* wbio_ = nullptr;  ///< BIO*: bytes OpenSSL wrote, for the network
    /// The IoBufs' storage (on the heap: fiber stacks are small), made when first needed.
    std::unique_ptr<char[]> bufs_[2];
    bool buf_busy_[2] = {false, false};
    /// One fiber flushes at a time: records must leave in the order OpenSSL made them.
    bool flushing_ = false;
    WaitQueue flush_turn_;
    bool close_notified_ = false;
    std::string origin_;  ///< a client's key for resumption (the SSL's app data); "" when none
};

}  // namespace weft::http::detail

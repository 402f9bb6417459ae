// OpenSSL, in one file: contexts and sessions over memory BIOs. The session pumps ciphertext
// between the BIOs and the TcpStream itself, so every wait is the stream's own (io_uring or
// epoll), parking only the fiber.
#include "tls.hpp"

#include <openssl/bio.h>
#include <openssl/buffer.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509err.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <mutex>
#include <optional>
#include <system_error>
#include <unordered_map>

#include "weft/core/fiber.hpp"

namespace weft::http::detail {

namespace {

constexpr std::size_t kIoBuf = 17 * 1024;  // a whole TLS record and its header

SSL* ssl_of(void* p) noexcept {
    return static_cast<SSL*>(p);
}
BIO* bio_of(void* p) noexcept {
    return static_cast<BIO*>(p);
}

// The newest error on OpenSSL's thread-local queue, as text (and the queue emptied).
std::string openssl_error() {
    unsigned long last = 0;
    bool not_pem = false;
    int sys_errno = 0;
    for (unsigned long e; (e = ERR_get_error()) != 0;) {
        last = e;
        not_pem =
            not_pem || (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE);
        if (ERR_GET_LIB(e) == ERR_LIB_SYS) sys_errno = ERR_GET_REASON(e);
    }
    if (last == 0) return "unknown error";
    // OpenSSL's last word for a file that is not PEM is "PEM lib"; for one it cannot open,
    // "system lib", after the system's own reason, which says more.
    if (not_pem) return "not a PEM file (no '-----BEGIN ...-----' line)";
    if (sys_errno != 0 && ERR_GET_REASON(last) == ERR_R_SYS_LIB)
        return std::system_category().message(sys_errno);
    char buf[256];
    ERR_error_string_n(last, buf, sizeof buf);
    // "error:0A000086:SSL routines::certificate verify failed" -> the reason after the last ':'
    const char* reason = std::strrchr(buf, ':');
    return reason && reason[1] ? std::string(reason + 1) : std::string(buf);
}

TlsError transport_error(Error e) {
    TlsError t;
    t.tls = false;
    t.transport = e;
    t.message = e.message();
    return t;
}

// OpenSSL's passphrase callback: a server asks nobody. Without it, OpenSSL prompts on the
// terminal for an encrypted key (a start under a tty would wait there; a reload would sit in
// the prompt with the signals its prompt code catches).
int no_passphrase(char*, int, int, void* asked) {
    *static_cast<bool*>(asked) = true;
    return 0;
}

// Why a key file that OpenSSL refused cannot be used, in words a user can act on, from what
// the file holds; "" when its content says nothing more.
// The first 64 KiB of `path`, or nullopt with errno set.
std::optional<std::string> file_head(const std::string& path) {
    std::string text;
    FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) return std::nullopt;
    char buf[4096];
    std::size_t n;
    while (text.size() < 64 * 1024 && (n = std::fread(buf, 1, sizeof buf, f)) > 0)
        text.append(buf, n);
    std::fclose(f);
    return text;
}

// The label of the first PEM block in `text` ("CERTIFICATE REQUEST"), or "" when none.
std::string first_pem_label(const std::string& text) {
    const auto begin = text.find("-----BEGIN ");
    if (begin == std::string::npos) return "";
    const auto start = begin + 11;
    const auto end = text.find("-----", start);
    if (end == std::string::npos || end - start > 64) return "";
    return text.substr(start, end - start);
}

std::string key_file_problem(const std::string& path) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) return "it is a directory, not a file";
    const auto text = file_head(path);
    if (!text) return std::strerror(errno);
    if (text->find("PRIVATE KEY-----") != std::string::npos) return "";
    if (text->find("-----BEGIN CERTIFICATE-----") != std::string::npos)
        return "it holds a certificate, not a private key (are tls_cert and tls_key swapped?)";
    if (text->find("PUBLIC KEY-----") != std::string::npos)
        return "it holds a public key; tls_key needs the private key";
    if (const std::string label = first_pem_label(*text); !label.empty())
        return "it holds a '" + label + "' PEM block, not a private key";
    return "not a PEM file (no '-----BEGIN ... PRIVATE KEY-----' line; a DER key converts with "
           "openssl pkey -inform der)";
}

// Why a certificate file that OpenSSL refused cannot be used, when its contents say more than
// OpenSSL does ("" otherwise).
std::string cert_file_problem(const std::string& path) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) return "it is a directory, not a file";
    const auto text = file_head(path);
    if (!text) return "";
    if (text->find("-----BEGIN CERTIFICATE-----") != std::string::npos) return "";
    if (text->find("PRIVATE KEY-----") != std::string::npos)
        return "it holds a private key, not a certificate (are tls_cert and tls_key swapped?)";
    if (text->find("-----BEGIN CERTIFICATE REQUEST-----") != std::string::npos)
        return "it holds a certificate signing request, not a certificate (a CA signs the "
               "request into one)";
    if (const std::string label = first_pem_label(*text); !label.empty())
        return "it holds a '" + label + "' PEM block, not a certificate";
    return "not a PEM file (no '-----BEGIN CERTIFICATE-----' line; a DER certificate converts "
           "with openssl x509 -inform der)";
}

// When the key does not match the chain's first certificate: which later one it matches
// (1-based), or 0. A chain with the leaf after its issuer is a common mistake.
int key_matches_later_certificate(const std::string& cert_file, const std::string& key_file) {
    BIO* kb = BIO_new_file(key_file.c_str(), "rb");
    if (!kb) return 0;
    bool asked = false;  // no terminal prompt for an encrypted key (see no_passphrase)
    EVP_PKEY* key = PEM_read_bio_PrivateKey(kb, nullptr, no_passphrase, &asked);
    BIO_free(kb);
    if (!key) return 0;
    int found = 0;
    if (BIO* cb = BIO_new_file(cert_file.c_str(), "rb")) {
        int n = 0;
        while (X509* c = PEM_read_bio_X509(cb, nullptr, nullptr, nullptr)) {
            ++n;
            const bool match = n > 1 && X509_check_private_key(c, key) == 1;
            X509_free(c);
            if (match) {
                found = n;
                break;
            }
        }
        BIO_free(cb);
    }
    EVP_PKEY_free(key);
    ERR_clear_error();
    return found;
}

std::string mismatch_text(const std::string& cert_file, const std::string& key_file) {
    std::string text = "the private key in '" + key_file + "' does not match the certificate in '" +
                       cert_file + "'";
    if (const int n = key_matches_later_certificate(cert_file, key_file); n > 0)
        text += ": it matches certificate " + std::to_string(n) +
                " of the file; the chain must start with the server's own (leaf) certificate, "
                "then its issuers";
    return text;
}

bool is_ip_literal(std::string_view host) {
    std::string h(host);
    unsigned char buf[16];
    return inet_pton(AF_INET, h.c_str(), buf) == 1 || inet_pton(AF_INET6, h.c_str(), buf) == 1;
}

}  // namespace

std::array<unsigned char, 20> sha1(std::string_view data) noexcept {
    std::array<unsigned char, 20> out{};
    SHA1(reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data());
    return out;
}

// The newest session each origin gave, for the next connection to it to resume (as curl keeps
// them): no certificate chain to send and check, one round trip less under TLS 1.2. Sessions
// come from OpenSSL's new-session callback, at the end of a TLS 1.2 handshake or with the
// tickets a TLS 1.3 server sends after it; a connection made before the first one arrived
// does a full handshake. Any hub's thread may store or take one.
class TlsContext::ClientSessions {
  public:
    ~ClientSessions() {
        for (auto& [origin, sess] : by_origin_)
            SSL_SESSION_free(sess);
    }
    /// Offers `origin`'s session to `ssl`, if one is kept and still valid.
    void offer(SSL* ssl, const std::string& origin) {
        std::lock_guard<std::mutex> g(mu_);
        auto it = by_origin_.find(origin);
        if (it == by_origin_.end()) return;
        if (!usable(it->second)) {
            SSL_SESSION_free(it->second);
            by_origin_.erase(it);
            return;
        }
        SSL_set_session(ssl, it->second);  // takes a reference of its own
    }
    /// Keeps `sess` (whose reference it takes) as `origin`'s.
    void keep(const std::string& origin, SSL_SESSION* sess) {
        std::lock_guard<std::mutex> g(mu_);
        auto [it, fresh] = by_origin_.try_emplace(origin, sess);
        if (!fresh) {
            SSL_SESSION_free(it->second);
            it->second = sess;
            return;
        }
        if (by_origin_.size() <= kMaxOrigins) return;
        // Full: the expired go; failing that, some other origin's.
        for (auto i = by_origin_.begin(); i != by_origin_.end();) {
            if (i != it && !usable(i->second)) {
                SSL_SESSION_free(i->second);
                i = by_origin_.erase(i);
            } else {
                ++i;
            }
        }
        if (by_origin_.size() > kMaxOrigins) {
            auto victim = by_origin_.begin();
            if (victim == it) ++victim;
            SSL_SESSION_free(victim->second);
            by_origin_.erase(victim);
        }
    }

  private:
    static constexpr std::size_t kMaxOrigins = 1024;
    static bool usable(SSL_SESSION* s) noexcept {
        const long until = SSL_SESSION_get_time(s) + SSL_SESSION_get_timeout(s);
        return SSL_SESSION_is_resumable(s) == 1 && until > static_cast<long>(std::time(nullptr));
    }
    std::mutex mu_;
    std::unordered_map<std::string, SSL_SESSION*> by_origin_;
};

TlsContext::TlsContext(void* ctx, bool verify) noexcept : ctx_(ctx), verify_(verify) {}

namespace {

// OpenSSL's new-session callback on client contexts: 1 keeps the reference it hands over.
int keep_client_session(SSL* ssl, SSL_SESSION* sess) {
    auto* origin = static_cast<const std::string*>(SSL_get_app_data(ssl));
    auto* ctx = static_cast<TlsContext*>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)));
    if (!origin || origin->empty() || !ctx || !ctx->client_sessions()) return 0;
    try {
        ctx->client_sessions()->keep(*origin, sess);
    } catch (...) {
        return 0;  // out of memory: the next connection does a full handshake
    }
    return 1;
}

}  // namespace

Result<std::shared_ptr<TlsContext>, std::string> TlsContext::client(const std::string& ca_file,
                                                                    bool verify_peer) {
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) return std::string("cannot make a TLS context: ") + openssl_error();
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    // Idle pooled connections keep no record buffers.
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    static const unsigned char kAlpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    SSL_CTX_set_alpn_protos(ctx, kAlpn, sizeof kAlpn);
    if (verify_peer) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
        ERR_clear_error();  // what the queue says next is about this file
        const int ok = ca_file.empty()
                           ? SSL_CTX_set_default_verify_paths(ctx)
                           : SSL_CTX_load_verify_locations(ctx, ca_file.c_str(), nullptr);
        if (ok != 1) {
            std::string why = openssl_error();
            SSL_CTX_free(ctx);
            return ca_file.empty() ? "cannot load the system's CA certificates: " + why
                                   : "cannot load CA file '" + ca_file + "': " + why;
        }
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
    }
    std::shared_ptr<TlsContext> out(new TlsContext(ctx, verify_peer));
    out->sessions_ = std::make_unique<ClientSessions>();
    SSL_CTX_set_app_data(ctx, out.get());
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, keep_client_session);
    return out;
}

namespace {

// ALPN: this server speaks http/1.1 only. A client that offers it gets it; one that offers only
// others (h2) proceeds without ALPN rather than failing, as nginx does without http2.
int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned int inlen, void*) {
    static const unsigned char kHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    unsigned char* sel = nullptr;
    unsigned char sel_len = 0;
    if (SSL_select_next_proto(&sel, &sel_len, kHttp11, sizeof kHttp11, in, inlen) ==
        OPENSSL_NPN_NEGOTIATED) {
        *out = sel;
        *outlen = sel_len;
        return SSL_TLSEXT_ERR_OK;
    }
    return SSL_TLSEXT_ERR_NOACK;
}

std::string asn1_time_text(const ASN1_TIME* t) {
    BIO* b = BIO_new(BIO_s_mem());
    if (!b) return "?";
    ASN1_TIME_print(b, t);
    char* data = nullptr;
    const long n = BIO_get_mem_data(b, &data);
    std::string out(data, static_cast<std::size_t>(n > 0 ? n : 0));
    BIO_free(b);
    return out;
}

}  // namespace

Result<std::shared_ptr<TlsContext>, std::string> TlsContext::server(const std::string& cert_file,
                                                                    const std::string& key_file,
                                                                    std::string* summary,
                                                                    std::string* warning) {
    ERR_clear_error();
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) return std::string("cannot make a TLS context: ") + openssl_error();
    auto fail = [&](std::string what) {
        if (ERR_peek_error() != 0) what += openssl_error();
        SSL_CTX_free(ctx);
        return what;
    };
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(
        ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    // TLS 1.2: forward-secret AEAD suites only, ECDSA before RSA (Mozilla's "intermediate");
    // TLS 1.3's suites are all modern and keep OpenSSL's order.
    if (SSL_CTX_set_cipher_list(ctx,
                                "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                                "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                                "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305") != 1)
        return fail("cannot set the cipher list: ");
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    // Resumption: stateless tickets (TLS 1.2 and 1.3) and a server-side cache for clients
    // without them.
    static const unsigned char kSidCtx[] = "weft";
    SSL_CTX_set_session_id_context(ctx, kSidCtx, sizeof kSidCtx - 1);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
    SSL_CTX_sess_set_cache_size(ctx, 20 * 1024);
    SSL_CTX_set_alpn_select_cb(ctx, select_alpn, nullptr);
    bool passphrase_asked = false;
    SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
    SSL_CTX_set_default_passwd_cb_userdata(ctx, &passphrase_asked);
    // A file that cannot be read says why (OpenSSL's word for it is "system lib").
    for (const std::string* f : {&cert_file, &key_file}) {
        if (FILE* fp = std::fopen(f->c_str(), "rb")) {
            std::fclose(fp);
        } else {
            const int e = errno;
            ERR_clear_error();
            return fail("cannot read '" + *f + "': " + std::strerror(e));
        }
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file.c_str()) != 1) {
        if (std::string why = cert_file_problem(cert_file); !why.empty()) {
            ERR_clear_error();
            return fail("cannot load the certificate chain from '" + cert_file + "': " + why);
        }
        return fail("cannot load the certificate chain from '" + cert_file + "': ");
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
        const bool mismatch = ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH;
        std::string why = passphrase_asked
                              ? "the key is encrypted; give an unencrypted PEM key (weft asks "
                                "for no passphrase)"
                              : key_file_problem(key_file);
        if (mismatch || !why.empty()) ERR_clear_error();
        return fail(mismatch ? mismatch_text(cert_file, key_file)
                             : "cannot load the private key from '" + key_file + "': " + why);
    }
    SSL_CTX_set_default_passwd_cb_userdata(ctx, nullptr);  // the flag is this frame's
    SSL_CTX_set_default_passwd_cb(ctx, nullptr);
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ERR_clear_error();  // its reason ("no certificate assigned") would mislead
        return fail(mismatch_text(cert_file, key_file));
    }
    if (warning) {
        warning->clear();
        if (const X509* leaf = SSL_CTX_get0_certificate(ctx)) {
            if (X509_cmp_current_time(X509_get0_notAfter(leaf)) < 0)
                *warning = "the certificate in '" + cert_file + "' expired on " +
                           asn1_time_text(X509_get0_notAfter(leaf)) +
                           ": clients that check certificates refuse it";
            else if (X509_cmp_current_time(X509_get0_notBefore(leaf)) > 0)
                *warning = "the certificate in '" + cert_file + "' is not valid before " +
                           asn1_time_text(X509_get0_notBefore(leaf)) +
                           ": clients that check certificates refuse it until then (is the "
                           "clock right?)";
        }
    }
    if (summary) {
        X509* leaf = SSL_CTX_get0_certificate(ctx);
        std::string name = "?";
        if (BIO* b = BIO_new(BIO_s_mem()); b && leaf) {
            X509_NAME_print_ex(b, X509_get_subject_name(leaf), 0, XN_FLAG_RFC2253);
            char* data = nullptr;
            const long n = BIO_get_mem_data(b, &data);
            name.assign(data, static_cast<std::size_t>(n > 0 ? n : 0));
            BIO_free(b);
        }
        *summary = name + ", valid until " +
                   (leaf ? asn1_time_text(X509_get0_notAfter(leaf)) : std::string("?"));
        if (leaf && X509_cmp_current_time(X509_get0_notAfter(leaf)) < 0)
            *summary += " (EXPIRED: clients will refuse it)";
    }
    return std::shared_ptr<TlsContext>(new TlsContext(ctx, false));
}

bool TlsContext::certificate_valid_now() const noexcept {
    const X509* leaf = SSL_CTX_get0_certificate(static_cast<SSL_CTX*>(ctx_));
    return leaf && X509_cmp_current_time(X509_get0_notAfter(leaf)) > 0 &&
           X509_cmp_current_time(X509_get0_notBefore(leaf)) < 0;
}

std::int64_t TlsContext::certificate_expires_unix() const noexcept {
    const X509* leaf = SSL_CTX_get0_certificate(static_cast<SSL_CTX*>(ctx_));
    std::tm tm{};
    if (!leaf || ASN1_TIME_to_tm(X509_get0_notAfter(leaf), &tm) != 1) return 0;
    return static_cast<std::int64_t>(::timegm(&tm));
}

TlsContext::~TlsContext() {
    sessions_.reset();  // the sessions before the context that made them
    SSL_CTX_free(static_cast<SSL_CTX*>(ctx_));
}

TlsSession::TlsSession(std::shared_ptr<TlsContext> ctx, TcpStream& stream)
    : ctx_(std::move(ctx)), stream_(stream) {
    SSL* ssl = SSL_new(static_cast<SSL_CTX*>(ctx_->native()));
    BIO* r = BIO_new(BIO_s_mem());
    BIO* w = BIO_new(BIO_s_mem());
    if (!ssl || !r || !w) {
        SSL_free(ssl);
        BIO_free(r);
        BIO_free(w);
        throw std::bad_alloc();
    }
    // An empty memory BIO reads as "retry", not end of file: OpenSSL then asks for more.
    BIO_set_mem_eof_return(r, -1);
    SSL_set_bio(ssl, r, w);  // the SSL owns both now
    ssl_ = ssl;
    rbio_ = r;
    wbio_ = w;
}

TlsSession::IoBuf::IoBuf(TlsSession& s) : s_(s) {
    for (int i = 0; i < 2; ++i) {
        if (s.buf_busy_[i]) continue;
        if (!s.bufs_[i]) s.bufs_[i].reset(new char[kIoBuf]);  // no need to zero it
        s.buf_busy_[i] = true;
        slot_ = i;
        p_ = s.bufs_[i].get();
        return;
    }
    extra_.reset(new char[kIoBuf]);
    p_ = extra_.get();
}

TlsSession::IoBuf::~IoBuf() {
    if (slot_ >= 0) s_.buf_busy_[slot_] = false;
}

void TlsSession::release_buffers() noexcept {
    for (int i = 0; i < 2; ++i)
        if (!buf_busy_[i]) bufs_[i].reset();
    // OpenSSL's memory BIOs keep the largest buffer they ever held (22 KiB after one 16 KiB
    // record): an idle connection that once received or sent a large piece gets fresh, empty
    // ones, if nothing waits in them. Small ones stay (no churn for small exchanges).
    constexpr std::size_t kKeep = 4096;
    BIO* r = bio_of(rbio_);
    BIO* w = bio_of(wbio_);
    if (BIO_ctrl_pending(r) != 0 || BIO_ctrl_pending(w) != 0) return;
    BUF_MEM* rm = nullptr;
    BUF_MEM* wm = nullptr;
    BIO_get_mem_ptr(r, &rm);
    BIO_get_mem_ptr(w, &wm);
    if ((!rm || rm->max <= kKeep) && (!wm || wm->max <= kKeep)) return;
    BIO* nr = BIO_new(BIO_s_mem());
    BIO* nw = BIO_new(BIO_s_mem());
    if (!nr || !nw) {
        BIO_free(nr);
        BIO_free(nw);
        return;
    }
    BIO_set_mem_eof_return(nr, -1);
    SSL_set_bio(ssl_of(ssl_), nr, nw);  // frees the old pair
    rbio_ = nr;
    wbio_ = nw;
}

TlsSession::~TlsSession() {
    // Closed without close_notify (an idle timeout, a reset): OpenSSL would then drop the
    // session from the cache. Resuming it is still safe, so keep it.
    if (SSL_is_init_finished(ssl_of(ssl_)) == 1)
        SSL_set_shutdown(ssl_of(ssl_), SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    SSL_free(ssl_of(ssl_));
}

Result<void, TlsError> TlsSession::flush(Deadline deadline, bool wait_turn) {
    // Another fiber is sending records. A sender waits for its turn (and so for room on the
    // wire); a reader does not: the fiber sending takes along whatever the read added (an
    // alert, a key update), and a reader held up behind a slow send would miss a pong, or
    // deadlock with a peer that also sends before it reads.
    if (flushing_ && !wait_turn) return {};
    while (flushing_)
        if (auto w = flush_turn_.wait(deadline, "send"); !w) return transport_error(w.error());
    if (BIO_ctrl_pending(bio_of(wbio_)) == 0) return {};
    flushing_ = true;
    struct Turn {
        TlsSession& s;
        ~Turn() {
            s.flushing_ = false;
            s.flush_turn_.notify_all();  // each waiter looks again; one takes the turn
        }
    } turn{*this};
    IoBuf buf(*this);
    for (;;) {
        if (BIO_ctrl_pending(bio_of(wbio_)) == 0) return {};
        const int n = BIO_read(bio_of(wbio_), buf.data(), static_cast<int>(kIoBuf));
        if (n <= 0) return {};
        const std::string_view out(buf.data(), static_cast<std::size_t>(n));
        Result<void> r;
        if (send_stall_.count() > 0) {
            ScopedDeadline bound(deadline);
            r = stream_.send_until_stalled(out, send_stall_);
        } else {
            r = stream_.send(out, deadline);
        }
        if (!r) return transport_error(r.error());
    }
}

template <class Op>
Result<int, TlsError> TlsSession::drive(Op op, Deadline deadline, bool reading) {
    SSL* ssl = ssl_of(ssl_);
    for (;;) {
        ERR_clear_error();
        const int rc = op(ssl);
        const int err = rc > 0 ? SSL_ERROR_NONE : SSL_get_error(ssl, rc);
        // Whatever OpenSSL wrote (handshake messages, records, alerts) goes out first.
        if (auto f = flush(deadline, !reading); !f) return f.error();
        switch (err) {
            case SSL_ERROR_NONE:
                return rc;
            case SSL_ERROR_ZERO_RETURN:
                close_notified_ = true;
                return rc;
            case SSL_ERROR_WANT_WRITE:
                continue;  // flushed: try again
            case SSL_ERROR_WANT_READ: {
                IoBuf buf(*this);
                auto n = stream_.recv(std::span<char>(buf.data(), kIoBuf), deadline);
                if (!n) return transport_error(n.error());
                if (*n == 0) return 0;  // the peer closed the connection
                BIO_write(bio_of(rbio_), buf.data(), static_cast<int>(*n));
                continue;
            }
            case SSL_ERROR_SYSCALL:
                // With memory BIOs this is an end of stream without close_notify, or a bug.
                if (ERR_peek_error() == 0) return 0;
                [[fallthrough]];
            default: {
                TlsError e;
                e.message = openssl_error();
                return e;
            }
        }
    }
}

Result<void, TlsError> TlsSession::connect(std::string_view host, Deadline deadline,
                                           std::string_view origin) {
    SSL* ssl = ssl_of(ssl_);
    const std::string h(host);
    // A name that cannot be set (out of memory, a malformed address) would leave the handshake
    // checking the chain alone, for any name: refused instead.
    bool named = true;
    if (is_ip_literal(host)) {
        if (ctx_->verify_peer())
            named = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), h.c_str()) == 1;
    } else {
        named = SSL_set_tlsext_host_name(ssl, h.c_str()) == 1;
        if (named && ctx_->verify_peer()) named = SSL_set1_host(ssl, h.c_str()) == 1;
    }
    if (!named) {
        TlsError e;
        e.message = "cannot check the certificate for '" + h + "': " + openssl_error();
        return e;
    }
    if (!origin.empty() && ctx_->client_sessions()) {
        origin_ = origin;
        SSL_set_app_data(ssl, &origin_);  // for keep_client_session()
        ctx_->client_sessions()->offer(ssl, origin_);
    }
    auto r = drive([](SSL* s) { return SSL_connect(s); }, deadline);
    if (!r) {
        TlsError e = std::move(r).error();
        // A failed certificate check says why better than the handshake error does.
        const long v = SSL_get_verify_result(ssl);
        if (e.tls && v != X509_V_OK) e.message = X509_verify_cert_error_string(v);
        return e;
    }
    if (*r <= 0) {
        TlsError e;
        e.message = "the server closed the connection during the TLS handshake";
        return e;
    }
    return {};
}

Result<void, TlsError> TlsSession::accept(Deadline deadline) {
    auto r = drive([](SSL* s) { return SSL_accept(s); }, deadline);
    if (!r) return r.error();
    if (*r <= 0) {
        TlsError e;
        e.tls = false;
        e.transport = Error(Errc::eof);
        e.message = "the client closed the connection during the TLS handshake";
        return e;
    }
    return {};
}

bool TlsSession::handshake_done() const noexcept {
    return SSL_is_init_finished(ssl_of(ssl_)) == 1;
}

bool TlsSession::resumed() const noexcept {
    return SSL_session_reused(ssl_of(ssl_)) == 1;
}

void TlsSession::feed(std::string_view ciphertext) {
    if (!ciphertext.empty())
        BIO_write(bio_of(rbio_), ciphertext.data(), static_cast<int>(ciphertext.size()));
}

bool TlsSession::has_buffered() const noexcept {
    return SSL_pending(ssl_of(ssl_)) > 0 || BIO_ctrl_pending(bio_of(rbio_)) > 0;
}

Result<std::size_t, TlsError> TlsSession::read_buffered(std::span<char> buf, bool& eof) {
    eof = false;
    SSL* ssl = ssl_of(ssl_);
    ERR_clear_error();
    const int cap = static_cast<int>(std::min<std::size_t>(buf.size(), 1 << 30));
    const int rc = SSL_read(ssl, buf.data(), cap);
    const int err = rc > 0 ? SSL_ERROR_NONE : SSL_get_error(ssl, rc);
    // A record may have asked for an answer (a key update, an alert): send it without waiting
    // long; a peer that reads nothing is the send timeout's business later.
    if (auto f = flush(Deadline(std::chrono::seconds(5)), false); !f) return f.error();
    switch (err) {
        case SSL_ERROR_NONE:
            return static_cast<std::size_t>(rc);
        case SSL_ERROR_WANT_READ:
        case SSL_ERROR_WANT_WRITE:
            return std::size_t{0};
        case SSL_ERROR_ZERO_RETURN:
            close_notified_ = true;
            eof = true;
            return std::size_t{0};
        case SSL_ERROR_SYSCALL:
            if (ERR_peek_error() == 0) {
                eof = true;
                return std::size_t{0};
            }
            [[fallthrough]];
        default: {
            TlsError e;
            e.message = openssl_error();
            return e;
        }
    }
}

void TlsSession::shutdown(Deadline deadline) noexcept {
    SSL* ssl = ssl_of(ssl_);
    if (!handshake_done()) return;
    ERR_clear_error();
    (void)SSL_shutdown(ssl);
    try {
        (void)flush(deadline);
    } catch (...) {
    }
}

void TlsSession::close_now(int fd) noexcept {
    SSL* ssl = ssl_of(ssl_);
    if (!handshake_done() || flushing_ || (SSL_get_shutdown(ssl) & SSL_SENT_SHUTDOWN)) return;
    BIO* w = bio_of(wbio_);
    if (BIO_ctrl_pending(w) != 0) return;  // bytes of a send that did not finish
    ERR_clear_error();
    if (SSL_shutdown(ssl) < 0) {
        ERR_clear_error();
        return;
    }
    // The alert is one short record, sent whole or not at all (a part would be garbage to the
    // peer): not when bytes of ours still wait to go out (a client that stopped reading; the
    // socket may not have room for all of it).
    int unsent = 0;
    if (::ioctl(fd, SIOCOUTQNSD, &unsent) != 0 || unsent != 0) return;
    char alert[256];
    const std::size_t n = BIO_ctrl_pending(w);
    if (n == 0 || n > sizeof alert ||
        BIO_read(w, alert, static_cast<int>(n)) != static_cast<int>(n))
        return;
    (void)::send(fd, alert, n, MSG_DONTWAIT | MSG_NOSIGNAL);
}

Result<std::size_t, TlsError> TlsSession::read(std::span<char> buf, Deadline deadline) {
    const int cap = static_cast<int>(std::min<std::size_t>(buf.size(), 1 << 30));
    auto r = drive([&](SSL* s) { return SSL_read(s, buf.data(), cap); }, deadline, true);
    if (!r) return r.error();
    return static_cast<std::size_t>(*r > 0 ? *r : 0);
}

Result<void, TlsError> TlsSession::write(std::string_view data, Deadline deadline) {
    while (!data.empty()) {
        const int cap = static_cast<int>(std::min<std::size_t>(data.size(), 1 << 30));
        auto r = drive([&](SSL* s) { return SSL_write(s, data.data(), cap); }, deadline);
        if (!r) return r.error();
        if (*r <= 0) return transport_error(Error(Errc::connection_reset));
        data.remove_prefix(static_cast<std::size_t>(*r));
    }
    return {};
}

std::size_t TlsSession::pending() const noexcept {
    return static_cast<std::size_t>(SSL_pending(ssl_of(ssl_)));
}

}  // namespace weft::http::detail

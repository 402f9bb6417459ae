// libcurl: curl_easy_perform (blocking), and the multi socket interface with
// CURLMOPT_SOCKETFUNCTION / CURLMOPT_TIMERFUNCTION driven by weft::poll_fds (explicit).
#include <curl/curl.h>
#include <poll.h>

#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "cooperative.hpp"
#include "weft/core/fd_wait.hpp"

namespace coop {

namespace {

struct EasyDeleter {
    void operator()(CURL* e) const noexcept { curl_easy_cleanup(e); }
};
using Easy = std::unique_ptr<CURL, EasyDeleter>;

std::size_t count_bytes(char*, std::size_t size, std::size_t n, void* total) {
    *static_cast<std::size_t*>(total) += size * n;
    return size * n;
}

Easy make_easy(const std::string& url, std::size_t& bytes) {
    Easy e(curl_easy_init());
    if (!e) throw std::runtime_error("curl_easy_init failed");
    curl_easy_setopt(e.get(), CURLOPT_URL, url.c_str());
    curl_easy_setopt(e.get(), CURLOPT_WRITEFUNCTION, &count_bytes);
    curl_easy_setopt(e.get(), CURLOPT_WRITEDATA, &bytes);
    curl_easy_setopt(e.get(), CURLOPT_NOSIGNAL, 1L);  // no SIGALRM: this is a threaded program
    return e;
}

std::string outcome(CURL* e, std::size_t bytes) {
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    return "status=" + std::to_string(status) + " bytes=" + std::to_string(bytes);
}

// What the multi handle asked for: which sockets, which events, and when to call it back.
struct MultiWants {
    std::map<curl_socket_t, short> sockets;
    long timeout_ms = -1;
};

int on_socket(CURL*, curl_socket_t s, int what, void* userp, void*) {
    auto* w = static_cast<MultiWants*>(userp);
    if (what == CURL_POLL_REMOVE) {
        w->sockets.erase(s);
    } else {
        w->sockets[s] = static_cast<short>(((what & CURL_POLL_IN) ? POLLIN : 0) |
                                           ((what & CURL_POLL_OUT) ? POLLOUT : 0));
    }
    return 0;
}

int on_timer(CURLM*, long timeout_ms, void* userp) {
    static_cast<MultiWants*>(userp)->timeout_ms = timeout_ms;
    return 0;
}

}  // namespace

std::string curl_get_blocking(const std::string& url, std::chrono::milliseconds timeout) {
    std::size_t bytes = 0;
    Easy e = make_easy(url, bytes);
    curl_easy_setopt(e.get(), CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
    const CURLcode rc = curl_easy_perform(e.get());
    if (rc != CURLE_OK) throw std::runtime_error(std::string("curl: ") + curl_easy_strerror(rc));
    return outcome(e.get(), bytes);
}

std::string curl_get_explicit(const std::string& url, weft::Deadline deadline) {
    std::size_t bytes = 0;
    Easy e = make_easy(url, bytes);
    std::unique_ptr<CURLM, decltype(&curl_multi_cleanup)> m(curl_multi_init(), &curl_multi_cleanup);
    if (!m) throw std::runtime_error("curl_multi_init failed");
    MultiWants wants;
    curl_multi_setopt(m.get(), CURLMOPT_SOCKETFUNCTION, &on_socket);
    curl_multi_setopt(m.get(), CURLMOPT_SOCKETDATA, &wants);
    curl_multi_setopt(m.get(), CURLMOPT_TIMERFUNCTION, &on_timer);
    curl_multi_setopt(m.get(), CURLMOPT_TIMERDATA, &wants);
    curl_multi_add_handle(m.get(), e.get());
    struct Remove {
        CURLM* m;
        CURL* e;
        ~Remove() { curl_multi_remove_handle(m, e); }
    } remove{m.get(), e.get()};

    int running = 1;
    curl_multi_socket_action(m.get(), CURL_SOCKET_TIMEOUT, 0, &running);
    while (running) {
        if (deadline.passed()) throw std::runtime_error("curl: the deadline passed");
        // Wait for curl's sockets, or until its timer is due (whichever comes first).
        weft::Deadline wake = deadline;
        if (wants.timeout_ms >= 0)
            wake = earliest(wake, weft::Deadline(std::chrono::milliseconds(wants.timeout_ms)));
        std::vector<pollfd> fds;
        for (const auto& [s, ev] : wants.sockets)
            fds.push_back({s, ev, 0});
        auto r = weft::poll_fds(fds, wake);
        if (!r) throw std::runtime_error("curl: waiting: " + r.error().message());
        if (*r == 0) {
            curl_multi_socket_action(m.get(), CURL_SOCKET_TIMEOUT, 0, &running);
            continue;
        }
        for (const pollfd& p : fds) {
            if (!p.revents) continue;
            int mask = ((p.revents & POLLIN) ? CURL_CSELECT_IN : 0) |
                       ((p.revents & POLLOUT) ? CURL_CSELECT_OUT : 0) |
                       ((p.revents & (POLLERR | POLLHUP | POLLNVAL)) ? CURL_CSELECT_ERR : 0);
            curl_multi_socket_action(m.get(), p.fd, mask, &running);
        }
    }
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(m.get(), &left)) {
        if (msg->msg == CURLMSG_DONE && msg->data.result != CURLE_OK)
            throw std::runtime_error(std::string("curl: ") + curl_easy_strerror(msg->data.result));
    }
    return outcome(e.get(), bytes);
}

}  // namespace coop

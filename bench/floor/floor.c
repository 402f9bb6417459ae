/* floor: the lower bound for bench/http. A minimal io_uring HTTP/1.1 responder with no parsing:
 * it counts "\r\n\r\n" in what each connection sends (a terminator may be split across reads)
 * and answers each with the same canned 200 "Hello, World!", all the answers one read earned
 * in one send. One thread per CPU (or -t N), each with its own ring, SO_REUSEPORT listener,
 * multishot accept and multishot recv into a ring of provided buffers.
 * With -f the answer also carries the Server and Date fields an origin server sends (weft and
 * nginx do), 129 bytes instead of 78: the same bytes on the wire as weft's answer to GET /. The
 * Date is the start's, not refreshed (the bytes are what is measured).
 *
 * Usage: floor [-f] [-t THREADS] [-a ADDR] PORT [THREADS]     (ADDR defaults to 127.0.0.1)
 * Prints "listening on ADDR:PORT" once every listener is bound; SIGTERM/SIGINT end it.
 * Build: cc -O2 -o floor floor.c -luring -lpthread   (liburing >= 2.2, Linux >= 5.19)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RESPONSE                                                                           \
    "HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nHello, World!"
#define PLAIN_LEN (sizeof(RESPONSE) - 1)
#define RESP_MAX 256
#define RESP_COPIES 1024     /* canned answers back to back: the most one send carries */
#define RING_ENTRIES 4096
#define NBUFS 512            /* provided receive buffers per thread (a power of two) */
#define BUF_SIZE 16384
#define BGID 0

enum { OP_ACCEPT = 1, OP_RECV = 2, OP_SEND = 3, OP_MASK = 3 };

struct conn {
    int fd;
    unsigned tail;      /* the last 3 bytes received, oldest in bits 16..23 */
    uint64_t owed;      /* bytes of answers not yet handed to a send */
    uint64_t phase;     /* offset in the canned stream where the next send starts */
    int sending;        /* a send is in flight */
    int recving;        /* the multishot recv is armed */
    int closed;         /* the peer is gone: free once nothing is in flight */
};

struct worker {
    struct io_uring ring;
    struct io_uring_buf_ring *br;
    char *bufs;
    int lfd;
};

static char response[RESP_MAX];
static size_t resp_len;            /* the answer's length, set once at start */
static char *canned;               /* RESP_COPIES answers back to back */
static size_t canned_len;

static void die(const char *what, int err) {
    fprintf(stderr, "floor: %s: %s\n", what, strerror(err));
    exit(1);
}

static struct io_uring_sqe *sqe_get(struct io_uring *ring) {
    struct io_uring_sqe *sqe;
    while (!(sqe = io_uring_get_sqe(ring))) io_uring_submit(ring);
    return sqe;
}

static void arm_accept(struct worker *w) {
    struct io_uring_sqe *sqe = sqe_get(&w->ring);
    io_uring_prep_multishot_accept(sqe, w->lfd, NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, OP_ACCEPT);
}

static void arm_recv(struct worker *w, struct conn *c) {
    struct io_uring_sqe *sqe = sqe_get(&w->ring);
    io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = BGID;
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)c | OP_RECV);
    c->recving = 1;
}

static void push_send(struct worker *w, struct conn *c) {
    /* The plain answer's length is a constant: its modulo stays a multiplication. */
    uint64_t start = resp_len == PLAIN_LEN ? c->phase % PLAIN_LEN : c->phase % resp_len;
    uint64_t len = canned_len - start;
    if (len > c->owed) len = c->owed;
    struct io_uring_sqe *sqe = sqe_get(&w->ring);
    io_uring_prep_send(sqe, c->fd, canned + start, len, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)c | OP_SEND);
    c->sending = 1;
}

static void maybe_free(struct conn *c) {
    if (c->closed && !c->sending && !c->recving) {
        close(c->fd);
        free(c);
    }
}

/* Requests in buf: each '\n' whose three predecessors (here or in the tail) are "\r\n\r". */
static uint64_t count_requests(struct conn *c, const unsigned char *buf, size_t n) {
    uint64_t count = 0;
    const unsigned char *p = buf, *end = buf + n;
    while ((p = memchr(p, '\n', (size_t)(end - p)))) {
        size_t i = (size_t)(p - buf);
        unsigned prev = 0;
        for (size_t k = 1; k <= 3; k++)
            prev |= (unsigned)(i >= k ? buf[i - k] : (c->tail >> (8 * (k - 1 - i))) & 0xff)
                    << (8 * (k - 1));
        if (prev == ('\r' | '\n' << 8 | '\r' << 16)) count++;  /* buf[i-1], [i-2], [i-3] */
        p++;
    }
    for (size_t k = n > 3 ? n - 3 : 0; k < n; k++) c->tail = ((c->tail << 8) | buf[k]) & 0xffffff;
    return count;
}

static void on_recv(struct worker *w, struct conn *c, struct io_uring_cqe *cqe) {
    if (!(cqe->flags & IORING_CQE_F_MORE)) c->recving = 0;
    if (cqe->res > 0) {
        unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
        char *buf = w->bufs + (size_t)bid * BUF_SIZE;
        uint64_t n = count_requests(c, (unsigned char *)buf, (size_t)cqe->res);
        io_uring_buf_ring_add(w->br, buf, BUF_SIZE, bid, io_uring_buf_ring_mask(NBUFS), 0);
        io_uring_buf_ring_advance(w->br, 1);
        c->owed += n * resp_len;
        if (c->owed && !c->sending && !c->closed) push_send(w, c);
        if (!c->recving && !c->closed) arm_recv(w, c);
    } else if (cqe->res == -ENOBUFS) {
        if (!c->recving && !c->closed) arm_recv(w, c);  /* buffers come back this turn */
    } else {
        c->closed = 1;  /* 0: the peer closed; < 0: an error */
        if (c->recving) shutdown(c->fd, SHUT_RDWR);
    }
    maybe_free(c);
}

static void on_send(struct worker *w, struct conn *c, int res) {
    c->sending = 0;
    if (res < 0) {
        c->closed = 1;
        if (c->recving) shutdown(c->fd, SHUT_RDWR);  /* ends the multishot recv */
    } else {
        c->owed -= (uint64_t)res;
        c->phase += (uint64_t)res;
        if (c->owed && !c->closed) push_send(w, c);
    }
    maybe_free(c);
}

static void *run(void *arg) {
    struct worker *w = arg;
    struct io_uring_params p = {0};
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL;
    int r = io_uring_queue_init_params(RING_ENTRIES, &w->ring, &p);
    if (r == -EINVAL) {
        memset(&p, 0, sizeof p);
        r = io_uring_queue_init_params(RING_ENTRIES, &w->ring, &p);
    }
    if (r < 0) die("io_uring_queue_init", -r);

    size_t ring_bytes = NBUFS * sizeof(struct io_uring_buf);
    w->br = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    w->bufs = malloc((size_t)NBUFS * BUF_SIZE);
    if (w->br == MAP_FAILED || !w->bufs) die("buffers", ENOMEM);
    struct io_uring_buf_reg reg = {.ring_addr = (uintptr_t)w->br, .ring_entries = NBUFS,
                                   .bgid = BGID};
    if ((r = io_uring_register_buf_ring(&w->ring, &reg, 0)) < 0) die("buffer ring", -r);
    io_uring_buf_ring_init(w->br);
    for (unsigned i = 0; i < NBUFS; i++)
        io_uring_buf_ring_add(w->br, w->bufs + (size_t)i * BUF_SIZE, BUF_SIZE, (unsigned short)i,
                              io_uring_buf_ring_mask(NBUFS), (int)i);
    io_uring_buf_ring_advance(w->br, NBUFS);

    arm_accept(w);
    for (;;) {
        r = io_uring_submit_and_wait(&w->ring, 1);
        if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) die("io_uring_submit_and_wait", -r);
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&w->ring, head, cqe) {
            seen++;
            uint64_t ud = io_uring_cqe_get_data64(cqe);
            struct conn *c = (struct conn *)(uintptr_t)(ud & ~(uint64_t)OP_MASK);
            switch (ud & OP_MASK) {
            case OP_ACCEPT:
                if (cqe->res >= 0) {
                    int one = 1;
                    setsockopt(cqe->res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct conn *n = calloc(1, sizeof *n);
                    if (!n) { close(cqe->res); break; }
                    n->fd = cqe->res;
                    arm_recv(w, n);
                }
                if (!(cqe->flags & IORING_CQE_F_MORE)) arm_accept(w);
                break;
            case OP_RECV: on_recv(w, c, cqe); break;
            case OP_SEND: on_send(w, c, cqe->res); break;
            }
        }
        io_uring_cq_advance(&w->ring, seen);
    }
    return NULL;
}

static int listener(const char *addr, int port) {
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) die("address (IPv4 only)", EINVAL);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    if (fd < 0) die("socket", errno);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) die("bind", errno);
    if (listen(fd, 4096) < 0) die("listen", errno);
    return fd;
}

int main(int argc, char **argv) {
    const char *addr = "127.0.0.1";
    int threads = 0, opt, fields = 0;
    while ((opt = getopt(argc, argv, "ft:a:h")) != -1) {
        if (opt == 't') threads = atoi(optarg);
        else if (opt == 'a') addr = optarg;
        else if (opt == 'f') fields = 1;
        else {
            fprintf(stderr, "usage: %s [-f] [-t THREADS] [-a ADDR] PORT [THREADS]\n", argv[0]);
            return opt == 'h' ? 0 : 2;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "usage: %s [-f] [-t THREADS] [-a ADDR] PORT [THREADS]\n", argv[0]);
        return 2;
    }
    int port = atoi(argv[optind]);
    if (optind + 1 < argc) threads = atoi(argv[optind + 1]);
    if (threads <= 0) {
        cpu_set_t set;
        threads = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
    }
    if (fields) {
        char date[64];
        time_t now = time(NULL);
        struct tm tm;
        strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", gmtime_r(&now, &tm));
        snprintf(response, sizeof response,
                 "HTTP/1.1 200 OK\r\nServer: weft\r\nDate: %s\r\nContent-Type: text/plain\r\n"
                 "Content-Length: 13\r\n\r\nHello, World!", date);
    } else {
        snprintf(response, sizeof response, "%s", RESPONSE);
    }
    resp_len = strlen(response);
    canned_len = resp_len * RESP_COPIES;
    if (!(canned = malloc(canned_len))) die("malloc", ENOMEM);
    for (size_t i = 0; i < RESP_COPIES; i++) memcpy(canned + i * resp_len, response, resp_len);

    struct worker *ws = calloc((size_t)threads, sizeof *ws);
    if (!ws) die("calloc", ENOMEM);
    for (int i = 0; i < threads; i++) {
        ws[i].lfd = listener(addr, port);
        if (port == 0) {  /* the others share the port the first one got */
            struct sockaddr_in sa;
            socklen_t len = sizeof sa;
            getsockname(ws[i].lfd, (struct sockaddr *)&sa, &len);
            port = ntohs(sa.sin_port);
        }
    }
    for (int i = 1; i < threads; i++) {
        pthread_t t;
        int r = pthread_create(&t, NULL, run, &ws[i]);
        if (r) die("pthread_create", r);
    }
    printf("listening on %s:%d (%d thread%s)\n", addr, port, threads, threads == 1 ? "" : "s");
    fflush(stdout);
    run(&ws[0]);
    return 0;
}

// The watchdog against real blockages, one per scenario: a CPU loop, sleep_for, a pipe read, a
// std::mutex held by another thread, a getaddrinfo that waits for a (local, deliberately slow)
// DNS server, exceptions thrown during a blockage, and a hub thread starved of CPU. Each asserts
// exactly one report and one closing record, the classification, the culprit in the symbolized
// stack, the measured duration against the truth, and that the counters and histogram bucket moved.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <resolv.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <thread>

#include <gmock/gmock.h>

#include "monitor_test_util.hpp"
#include "weft/core/internal/hub_probe.hpp"
#include "weft/monitor/exposition.hpp"
#include "weft/monitor/standard_metrics.hpp"

using namespace std::chrono_literals;
using weft::monitor::BlockingCause;
using weft::monitor::BlockingEnd;
using weft::monitor::BlockingReport;
using weft::monitor::test::stack_has;
using weft::monitor::test::stack_text;

namespace {

constexpr auto kBlock = 400ms;

std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// How long the culprit really blocked, measured by itself.
struct Truth {
    std::atomic<std::int64_t> start{0};
    std::atomic<std::int64_t> end{0};
    void begin() { start.store(now_ns()); }
    void finish() { end.store(now_ns()); }
    double seconds() const { return static_cast<double>(end.load() - start.load()) / 1e9; }
};

// The culprits: not inlined, and not tail calls (the asm after each call keeps their frame).

__attribute__((noinline)) void culprit_busy_loop(Truth& t) {
    t.begin();
    auto until = std::chrono::steady_clock::now() + kBlock;
    volatile std::uint64_t x = 0;
    while (std::chrono::steady_clock::now() < until)
        for (int i = 0; i < 10000; ++i)
            x = x + static_cast<std::uint64_t>(i);
    t.finish();
    asm volatile("" ::: "memory");
}

__attribute__((noinline)) void culprit_sleep(Truth& t) {
    t.begin();
    std::this_thread::sleep_for(kBlock);
    t.finish();
    asm volatile("" ::: "memory");
}

__attribute__((noinline)) void culprit_pipe_read(Truth& t, int fd) {
    t.begin();
    char c = 0;
    ssize_t n = ::read(fd, &c, 1);
    t.finish();
    EXPECT_EQ(n, 1);
    asm volatile("" ::: "memory");
}

__attribute__((noinline)) void culprit_mutex_lock(Truth& t, std::mutex& mu) {
    t.begin();
    mu.lock();
    t.finish();
    mu.unlock();
    asm volatile("" ::: "memory");
}

__attribute__((noinline)) int culprit_getaddrinfo(Truth& t, const char* host) {
    addrinfo hints{};
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    t.begin();
    int rc = ::getaddrinfo(host, "80", &hints, &res);
    t.finish();
    if (res) ::freeaddrinfo(res);
    asm volatile("" ::: "memory");
    return rc;
}

// A leaf function that keeps its caller's frame pointer in the red zone below its stack pointer
// (the ABI allows it), clobbers it meanwhile, and spins until *release is set. Its CFI says where
// the frame pointer was saved: below the stack pointer, as at the `ret` of any function that
// popped it (glibc's free, where a capture once landed). Whatever instruction of the spin the
// watchdog's signal lands on, the frames past its caller can only be unwound from that slot.
extern "C" void weft_test_spin_with_rbp_in_red_zone(const bool* release);
asm(R"(
    .pushsection .text
    .globl weft_test_spin_with_rbp_in_red_zone
    .type weft_test_spin_with_rbp_in_red_zone, @function
weft_test_spin_with_rbp_in_red_zone:
    .cfi_startproc
    movq %rbp, -8(%rsp)
    .cfi_offset %rbp, -16
    xorl %ebp, %ebp
1:  cmpb $0, (%rdi)
    je 1b
    movq -8(%rsp), %rbp
    .cfi_restore %rbp
    ret
    .cfi_endproc
    .size weft_test_spin_with_rbp_in_red_zone, .-weft_test_spin_with_rbp_in_red_zone
    .popsection
)");

__attribute__((noinline)) void culprit_red_zone(Truth& t, const std::atomic<bool>& release) {
    static_assert(sizeof(std::atomic<bool>) == sizeof(bool));
    t.begin();
    weft_test_spin_with_rbp_in_red_zone(reinterpret_cast<const bool*>(&release));
    t.finish();
    asm volatile("" ::: "memory");
}

__attribute__((noinline)) void culprit_throw_in_loop(Truth& t, std::uint64_t& caught) {
    t.begin();
    auto until = std::chrono::steady_clock::now() + kBlock;
    while (std::chrono::steady_clock::now() < until) {
        try {
            throw std::runtime_error("thrown during a blockage");
        } catch (const std::runtime_error&) {
            ++caught;
        }
    }
    t.finish();
    asm volatile("" ::: "memory");
}

// Waits up to kBlock for a lock that a fiber of its own hub holds while it is parked: with a
// lock() instead of a timed one, the hub would never run again.
__attribute__((noinline)) int culprit_own_lock(Truth& t, pthread_mutex_t& mu) {
    timespec until{};
    ::clock_gettime(CLOCK_REALTIME, &until);
    const auto ns = until.tv_nsec + std::chrono::nanoseconds(kBlock).count();
    until.tv_sec += ns / 1'000'000'000;
    until.tv_nsec = ns % 1'000'000'000;
    t.begin();
    int rc = ::pthread_mutex_timedlock(&mu, &until);
    t.finish();
    if (rc == 0) ::pthread_mutex_unlock(&mu);
    asm volatile("" ::: "memory");
    return rc;
}

// A thread that spins on one CPU for a while, made ready before the blockage begins: created
// by the test's thread (at its nice, 0), then asleep until the culprit names its CPU. Woken
// there, it takes the CPU from the culprit at once: started from the culprit instead, it spent
// up to 18 ms (seen under ctest -j2) being created and moved while the culprit still ran. Not
// SCHED_FIFO, although root could: a realtime hog also starves the watchdog's thread whenever
// that one runs on the same CPU, and a watchdog that first looks at the slice once the hog is
// done sees a hub that computes (seen under ctest -j2).
class Hog {
  public:
    explicit Hog(std::chrono::nanoseconds spin) {
        thread_ = std::thread([this, spin] {
            ready_ = true;
            ready_.notify_all();
            go_.wait(false);
            const auto until = std::chrono::steady_clock::now() + spin;
            volatile std::uint64_t x = 0;
            while (std::chrono::steady_clock::now() < until)
                x = x + 1;
        });
        ready_.wait(false);
    }
    ~Hog() { stop(); }
    // From the culprit: the hog is pinned to `cpu` while it sleeps, then woken there.
    void start_on(const cpu_set_t& cpu) {
        if (!thread_.joinable()) return;  // the test gave up on the culprit already
        EXPECT_EQ(::pthread_setaffinity_np(thread_.native_handle(), sizeof cpu, &cpu), 0);
        go_ = true;
        go_.notify_all();
    }
    void stop() {
        if (!thread_.joinable()) return;
        go_ = true;
        go_.notify_all();
        thread_.join();
    }

  private:
    std::atomic<bool> ready_{false};
    std::atomic<bool> go_{false};
    std::thread thread_;
};

// Computes for kBlock on a thread that gets almost no CPU meanwhile: the hub thread is pinned
// to the CPU it runs on and made nice 19, and the hog, pinned to the same CPU, spins there at
// nice 0 (weights 1024 against 15: about 1.5 % of the CPU is left to the hub) for all but the
// last 100 ms.
// Pins the calling thread to the CPU it runs on and makes it nice 19; returns that CPU, for
// the hog (Hog::start_on).
cpu_set_t pin_here_at_nice_19() {
    const int cpu = ::sched_getcpu();
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    EXPECT_EQ(::pthread_setaffinity_np(::pthread_self(), sizeof one, &one), 0);
    EXPECT_EQ(::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 19), 0);
    return one;
}

// Every CPU again (widening needs no privilege, unlike a nice back to 0): the test's wait for a
// wrong second report must not find the hub starved again.
void unpin() {
    cpu_set_t all;
    CPU_ZERO(&all);
    for (int i = 0; i < CPU_SETSIZE; ++i)
        CPU_SET(i, &all);
    ::pthread_setaffinity_np(::pthread_self(), sizeof all, &all);
}

__attribute__((noinline)) void culprit_starved(Truth& t, Hog& hog) {
    const cpu_set_t one = pin_here_at_nice_19();
    t.begin();
    hog.start_on(one);
    auto until = std::chrono::steady_clock::now() + kBlock;
    volatile std::uint64_t x = 0;
    while (std::chrono::steady_clock::now() < until)
        x = x + 1;
    t.finish();
    unpin();
    asm volatile("" ::: "memory");
}

// A DNS server on 127.0.0.1 that answers every query after a delay, so that a resolver pointed
// at it blocks for a known time without any traffic leaving the machine.
class SlowDnsServer {
  public:
    explicit SlowDnsServer(std::chrono::milliseconds delay) : delay_(delay) {
        fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
        socklen_t len = sizeof addr_;
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr_), &len);
        timeval tv{0, 100'000};
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        thread_ = std::thread([this] { serve(); });
    }
    ~SlowDnsServer() {
        stop_ = true;
        thread_.join();
        ::close(fd_);
    }
    const sockaddr_in& address() const { return addr_; }

  private:
    void serve() {
        while (!stop_) {
            unsigned char q[512];
            sockaddr_in from{};
            socklen_t fl = sizeof from;
            ssize_t n = ::recvfrom(fd_, q, sizeof q, 0, reinterpret_cast<sockaddr*>(&from), &fl);
            if (n < 12) continue;
            std::this_thread::sleep_for(delay_);
            // The query echoed back as a response with one A record: 127.0.0.9.
            unsigned char r[600];
            std::memcpy(r, q, static_cast<std::size_t>(n));
            r[2] = 0x81;
            r[3] = 0x80;
            r[6] = 0;
            r[7] = 1;
            const unsigned char answer[] = {0xc0, 0x0c, 0, 1, 0,   1, 0, 0,
                                            0,    60,   0, 4, 127, 0, 0, 9};
            std::memcpy(r + n, answer, sizeof answer);
            ::sendto(fd_, r, static_cast<std::size_t>(n) + sizeof answer, 0,
                     reinterpret_cast<sockaddr*>(&from), fl);
        }
    }
    std::chrono::milliseconds delay_;
    int fd_ = -1;
    sockaddr_in addr_{};
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

class Blocking : public ::testing::Test {
  protected:
    static weft::monitor::MonitorSettings settings() {
        weft::monitor::MonitorSettings s;
        s.max_blocking_time = 100ms;
        return s;
    }

    weft::Runtime rt_{weft::monitor::test::runtime_options(2)};
    weft::monitor::Watchdog wd_{rt_, settings()};
    weft::monitor::test::Recorder rec_{wd_};
    weft::monitor::Registry registry_;
    weft::monitor::CollectorHandle hub_metrics_ = weft::monitor::add_hub_metrics(registry_, rt_);
    weft::monitor::CollectorHandle wd_metrics_ = wd_.add_metrics(registry_);

    std::vector<std::uint64_t> run_buckets(unsigned hub) {
        std::vector<std::uint64_t> v;
        for (const auto& b : weft::internal::probe(rt_.hub(hub)).run_duration.buckets)
            v.push_back(b.load(std::memory_order_relaxed));
        return v;
    }

    // Runs `body` as the fiber "culprit" on hub 0 and waits for it and for the watchdog.
    template <class F>
    void block_hub0(F body) {
        before_ = run_buckets(0);
        const std::size_t ends_before = rec_.ends().size();
        std::atomic<bool> done{false};
        weft::monitor::test::spawn_on_hub(rt_, 0, "culprit", [&] {
            body();
            done = true;
        });
        ASSERT_TRUE(rec_.wait_ends(ends_before + 1)) << "no closing record within 10 s";
        for (int i = 0; i < 500 && !done; ++i)
            std::this_thread::sleep_for(10ms);
        ASSERT_TRUE(done.load());
        // Long enough for a second (wrong) report to show up.
        std::this_thread::sleep_for(wd_.check_period() * 5 + 100ms);
    }

    // The report of the fiber "culprit" and its closing record; any other report must be of
    // the hub's own loop (starting a fiber may hold it on a loaded machine).
    // (Both default-made when there is not exactly one of each: a failure is recorded.)
    std::pair<BlockingReport, BlockingEnd> culprits_blockage() {
        std::pair<BlockingReport, BlockingEnd> out;
        const auto mine = rec_.reports_of("culprit");
        const std::size_t found = mine.size();
        std::size_t ended = 0;
        if (found == 1) out.first = mine[0];
        for (const auto& e : rec_.ends()) {
            if (e.report_id != out.first.id) continue;
            ++ended;
            out.second = e;
        }
        EXPECT_EQ(found, 1u);
        EXPECT_EQ(ended, 1u);
        if (found != 1 || ended != 1) return {};
        return out;
    }

    // The checks every scenario shares.
    void expect_one_blockage(const Truth& truth, BlockingCause cause, const std::string& culprit) {
        const auto reports = rec_.reports();
        const auto [r, e] = culprits_blockage();
        ASSERT_NE(r.id, 0u) << "not one report and one end of the culprit";
        const std::size_t of_loop = reports.size() - 1;  // the hub's own loop's (see above)
        std::size_t at = 0;
        while (at < reports.size() && reports[at].id != r.id)
            ++at;
        report_ = r;
        EXPECT_EQ(r.hub, 0u);
        EXPECT_EQ(r.fiber_name, "culprit");
        EXPECT_NE(r.fiber_id, 0u);
        EXPECT_EQ(e.report_id, r.id);
        EXPECT_EQ(e.fiber_id, r.fiber_id);
        EXPECT_EQ(r.cause, cause) << "cause " << weft::monitor::cause_name(r.cause) << ", cpu "
                                  << r.cpu_share << ", syscall " << r.syscall;
        EXPECT_TRUE(stack_has(r, culprit)) << "culprit " << culprit << " not in\n" << stack_text(r);
        // Reported once the threshold passed. blocked_s is read when the report is made, so a
        // watchdog thread that wakes late on a loaded machine makes it larger: its bound is the
        // time the test saw pass from the culprit's start to the report's arrival (plus the
        // moment between the slice's start and the culprit's own clock reading).
        EXPECT_GE(r.blocked_s, 0.1);
        double arrived_s =
            static_cast<double>(rec_.report_times_ns().at(at) - truth.start.load()) / 1e9;
        EXPECT_LE(r.blocked_s, arrived_s + 0.05) << "report arrived " << arrived_s << " s in";
        double truth_s = truth.seconds();
        EXPECT_NEAR(e.duration_s, truth_s, 0.2 * truth_s) << "truth " << truth_s;
        EXPECT_EQ(r.hubs.size(), 2u);  // every hub's fiber tree
        EXPECT_FALSE(r.threads.empty());

        auto stats = wd_.hub_stats(0);
        EXPECT_EQ(stats.events, 1u + of_loop);
        EXPECT_NEAR(stats.seconds, e.duration_s + rec_.seconds_not_of("culprit"), 1e-6);
        EXPECT_FALSE(stats.blocked_now);
        EXPECT_EQ(wd_.hub_stats(1).events, 0u);
        std::string text = weft::monitor::render(registry_.collect(),
                                                 weft::monitor::ExpositionFormat::prometheus_text);
        EXPECT_THAT(text, ::testing::HasSubstr("weft_hub_blocking_events_total{hub=\"0\"} " +
                                               std::to_string(1 + of_loop) + "\n"));
        EXPECT_THAT(text, ::testing::HasSubstr("weft_hub_blocking_events_total{hub=\"1\"} 0\n"));

        // The blocked slice landed in the run-duration bucket that holds its length.
        auto after = run_buckets(0);
        std::size_t want = 0;
        auto slice_ns = static_cast<std::int64_t>(e.duration_s * 1e9);
        while (want < weft::kLatencyBucketBoundsNs.size() &&
               slice_ns > weft::kLatencyBucketBoundsNs[want])
            ++want;
        EXPECT_GE(after[want], before_[want] + 1) << "bucket " << want;
    }

    std::vector<std::uint64_t> before_;
    BlockingReport report_;
};

TEST_F(Blocking, CpuBusyLoop) {
    Truth t;
    weft::FiberLabels labels;
    labels.keys[0] = "method";
    labels.values[0] = "GET";
    labels.keys[1] = "route";
    labels.values[1] = "/spin";
    labels.keys[2] = "peer";
    labels.values[2] = "127.0.0.1:40000";
    labels.count = 3;
    block_hub0([&] {
        weft::this_fiber::set_labels(&labels);
        culprit_busy_loop(t);
        weft::this_fiber::set_labels(nullptr);
    });
    expect_one_blockage(t, BlockingCause::running_on_cpu, "culprit_busy_loop");
    // On a CPU, or queued for one on a busy machine: runnable nearly all along.
    EXPECT_GT(report_.cpu_share + report_.cpu_wait_share, 0.5);
    ASSERT_EQ(report_.labels.size(), 3u);
    EXPECT_EQ(report_.labels[0], std::make_pair(std::string("method"), std::string("GET")));
    EXPECT_EQ(report_.labels[1], std::make_pair(std::string("route"), std::string("/spin")));
    EXPECT_EQ(report_.labels[2],
              std::make_pair(std::string("peer"), std::string("127.0.0.1:40000")));
    EXPECT_THAT(weft::monitor::format_text(report_),
                ::testing::HasSubstr("Request: method=GET route=/spin peer=127.0.0.1:40000"));
    EXPECT_THAT(weft::monitor::format_text(report_),
                ::testing::HasSubstr("What to do: code computed on the hub all along: move the "
                                     "work to weft::offload"));
}

TEST_F(Blocking, SleepFor) {
    Truth t;
    block_hub0([&] { culprit_sleep(t); });
    expect_one_blockage(t, BlockingCause::in_system_call, "culprit_sleep");
    EXPECT_THAT(report_.syscall, ::testing::AnyOf("clock_nanosleep", "nanosleep"));
    EXPECT_LT(report_.cpu_share, 0.5);
    // Asleep after the report too (not starved: it was not runnable).
    const BlockingCause after = culprits_blockage().second.cause_after_report;
    EXPECT_EQ(after, BlockingCause::in_system_call) << weft::monitor::cause_name(after);
}

TEST_F(Blocking, PipeRead) {
    int fds[2];
    ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    Truth t;
    std::thread writer([&] {
        while (t.start.load() == 0)
            std::this_thread::sleep_for(1ms);
        std::this_thread::sleep_for(kBlock);
        char c = 'x';
        EXPECT_EQ(::write(fds[1], &c, 1), 1);
    });
    block_hub0([&] { culprit_pipe_read(t, fds[0]); });
    writer.join();
    expect_one_blockage(t, BlockingCause::in_system_call, "culprit_pipe_read");
    EXPECT_EQ(report_.syscall, "read");
    EXPECT_THAT(report_.syscall_detail, ::testing::HasSubstr("pipe:["));
    ::close(fds[0]);
    ::close(fds[1]);
}

TEST_F(Blocking, MutexHeldByAnotherThread) {
    std::mutex mu;
    std::atomic<bool> held{false};
    Truth t;
    std::thread holder([&] {
        std::lock_guard<std::mutex> g(mu);
        held = true;
        while (t.start.load() == 0)
            std::this_thread::sleep_for(1ms);
        std::this_thread::sleep_for(kBlock);
    });
    while (!held)
        std::this_thread::sleep_for(1ms);
    block_hub0([&] { culprit_mutex_lock(t, mu); });
    holder.join();
    expect_one_blockage(t, BlockingCause::in_system_call, "culprit_mutex_lock");
    EXPECT_EQ(report_.syscall, "futex");
    EXPECT_FALSE(report_.own_lock);  // another thread holds it: it may let go
    EXPECT_THAT(report_.advice, ::testing::Not(::testing::HasSubstr("deadlock")));
}

// getaddrinfo of a name the local resolver answers only after kBlock. The hub thread's resolver
// state (_res, per thread) is pointed at a DNS server on 127.0.0.1, so the lookup is
// deterministic and never leaves the machine.
TEST_F(Blocking, Getaddrinfo) {
    SlowDnsServer dns(std::chrono::duration_cast<std::chrono::milliseconds>(kBlock));
    Truth t;
    int rc = -1;
    block_hub0([&] {
        res_init();
        _res.nscount = 1;
        _res.nsaddr_list[0] = dns.address();
        _res.options &= ~static_cast<unsigned long>(RES_DNSRCH | RES_DEFNAMES);
        rc = culprit_getaddrinfo(t, "slow.weft.test");
    });
    EXPECT_EQ(rc, 0) << gai_strerror(rc);
    expect_one_blockage(t, BlockingCause::in_system_call, "culprit_getaddrinfo");
    EXPECT_THAT(report_.syscall, ::testing::AnyOf("poll", "ppoll", "recvfrom", "select"));
}

// A thread lock held across a cooperative wait: the next fiber of the hub to take it waits in
// futex for its own thread. The report says that this is a deadlock.
TEST_F(Blocking, LockHeldByAFiberOfTheSameHub) {
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    Truth t;
    int rc = -1;
    block_hub0([&] {
        auto holder = weft::spawn("holder", [&] {
            ::pthread_mutex_lock(&mu);
            (void)weft::sleep_for(kBlock + 200ms);  // parked, the lock held
            ::pthread_mutex_unlock(&mu);
        });
        (void)weft::sleep_for(20ms);
        rc = culprit_own_lock(t, mu);
        holder.join();
    });
    EXPECT_EQ(rc, ETIMEDOUT);
    expect_one_blockage(t, BlockingCause::in_system_call, "culprit_own_lock");
    EXPECT_EQ(report_.syscall, "futex");
    EXPECT_TRUE(report_.own_lock);
    EXPECT_THAT(report_.advice, ::testing::HasSubstr("deadlock"));
    EXPECT_THAT(weft::monitor::format_text(report_),
                ::testing::HasSubstr("this thread waits for a lock it holds itself"));
}

// The machine, not the code, holds the hub: its thread is runnable but gets (almost) no CPU.
// The kernel adds a wait to the thread's schedstat only once the wait ends, so the watchdog
// must see the wait still going on for itself.
TEST_F(Blocking, StarvedOfCpu) {
    if (std::thread::hardware_concurrency() < 2) GTEST_SKIP() << "needs a second CPU";
    Truth t;
    Hog hog(kBlock - 100ms);
    block_hub0([&] { culprit_starved(t, hog); });
    hog.stop();
    const BlockingReport r = culprits_blockage().first;
    ASSERT_NE(r.id, 0u) << "not one report and one end of the culprit";
    EXPECT_EQ(r.fiber_name, "culprit");
    EXPECT_EQ(r.cause, BlockingCause::waiting_for_cpu)
        << "cause " << weft::monitor::cause_name(r.cause) << ", cpu " << r.cpu_share << ", waiting "
        << r.cpu_wait_share << ", syscall " << r.syscall;
    // Under a tenth of the time it was runnable on a CPU (the rule the watchdog applies).
    EXPECT_LT(r.cpu_share, 0.1 * std::min(r.cpu_share + r.cpu_wait_share, 1.0));
    EXPECT_GT(r.cpu_wait_share, 0.5);
    EXPECT_THAT(weft::monitor::format_text(r), ::testing::HasSubstr("Waiting for a CPU"));
    EXPECT_THAT(weft::monitor::format_text(r),
                ::testing::HasSubstr("What to do: the machine, not the code"));
    // The capture signal waits for the CPU too: a stack that came names the culprit, and a
    // missing one says why.
    if (r.stack.empty())
        EXPECT_THAT(r.stack_note, ::testing::HasSubstr("waiting for a CPU"));
    else
        EXPECT_TRUE(stack_has(r, "culprit_starved")) << stack_text(r);
}

// Computes until the watchdog sees the blockage, then goes on computing starved of a CPU (as
// culprit_starved) for `starved`: the report finds code that computes, the time after it was
// the machine's.
__attribute__((noinline)) void culprit_starved_after_report(Truth& t, Hog& hog,
                                                            const weft::monitor::Watchdog& wd,
                                                            std::chrono::milliseconds starved) {
    // Its own blockage seen: one more event than when it began (a blockage of the hub's own
    // loop starting it was counted while that one went on, before).
    const std::uint64_t events_before = wd.hub_stats(0).events;
    t.begin();
    volatile std::uint64_t x = 0;
    const auto give_up = std::chrono::steady_clock::now() + 10s;
    while (wd.hub_stats(0).events == events_before && std::chrono::steady_clock::now() < give_up)
        x = x + 1;
    hog.start_on(pin_here_at_nice_19());
    const auto until = std::chrono::steady_clock::now() + starved;
    while (std::chrono::steady_clock::now() < until)
        x = x + 1;
    t.finish();
    unpin();
    asm volatile("" ::: "memory");
}

// What held the hub after the report is judged again when the blockage ends: a blockage that
// computed until its report and was then starved of a CPU to its end says so in its closing
// record (and the stall budget charges nobody for that part).
TEST_F(Blocking, StarvedAfterTheReport) {
    if (std::thread::hardware_concurrency() < 2) GTEST_SKIP() << "needs a second CPU";
    Truth t;
    Hog hog(900ms);  // outlasts the starved part: the culprit ends starved
    block_hub0([&] { culprit_starved_after_report(t, hog, wd_, 600ms); });
    hog.stop();
    // The culprit's report and its end (a loaded machine may add one of the hub's own loop).
    const auto [r, e] = culprits_blockage();
    EXPECT_EQ(r.cause, BlockingCause::running_on_cpu)
        << "cause " << weft::monitor::cause_name(r.cause) << ", cpu " << r.cpu_share;
    EXPECT_EQ(e.report_id, r.id);
    EXPECT_EQ(e.cause_after_report, BlockingCause::waiting_for_cpu)
        << "after the report: " << weft::monitor::cause_name(e.cause_after_report);
    EXPECT_GT(e.duration_s, 0.6);
    EXPECT_THAT(weft::monitor::format_text(e),
                ::testing::HasSubstr("; after it the hub was starved of a CPU)"));
    EXPECT_THAT(weft::monitor::to_json(e),
                ::testing::HasSubstr("\"cause_after_report\":\"waiting_for_cpu\""));
}

// The captured stack copies the red zone too: a leaf interrupted while its caller's frame
// pointer is only there still unwinds to the fiber's start with CFI.
TEST_F(Blocking, FramePointerKeptInTheRedZone) {
    Truth t;
    std::atomic<bool> release{false};
    // Released once the culprit's report came (the capture is made before it is sent) and it
    // has spun for kBlock, whatever a loaded machine delays; within 10 s in any case.
    std::thread releaser([&] {
        const auto give_up = std::chrono::steady_clock::now() + 10s;
        auto reported = [&] {
            for (const auto& r : rec_.reports())
                if (r.fiber_name == "culprit") return true;
            return false;
        };
        while (std::chrono::steady_clock::now() < give_up &&
               (t.start.load() == 0 || !reported() ||
                now_ns() - t.start.load() < std::chrono::nanoseconds(kBlock).count()))
            std::this_thread::sleep_for(5ms);
        release = true;
    });
    block_hub0([&] { culprit_red_zone(t, release); });
    releaser.join();
    expect_one_blockage(t, BlockingCause::running_on_cpu, "culprit_red_zone");
    EXPECT_THAT(report_.stack_note, ::testing::HasSubstr("unwound with CFI"))
        << stack_text(report_);
    ASSERT_FALSE(report_.stack.empty());
    EXPECT_EQ(report_.stack.front().function, "weft_test_spin_with_rbp_in_red_zone")
        << stack_text(report_);
    EXPECT_TRUE(stack_has(report_, "fiber_entry_point")) << stack_text(report_);
}

// The reverse is the common case: a blockage that computes to its end was computing after
// its report too.
TEST_F(Blocking, ComputingAfterTheReport) {
    Truth t;
    block_hub0([&] { culprit_busy_loop(t); });
    const auto [r, e] = culprits_blockage();
    EXPECT_EQ(e.cause_after_report, BlockingCause::running_on_cpu)
        << weft::monitor::cause_name(e.cause_after_report);
    EXPECT_THAT(weft::monitor::format_text(e), ::testing::Not(::testing::HasSubstr("starved")));
}

TEST_F(Blocking, ExceptionsThrownDuringTheBlockage) {
    // The capture works while the culprit throws (no deadlock in the unwinder's locks, a stack
    // through __cxa_throw). A signal that lands where libgcc's unwinder installs a landing pad
    // leaves registers its CFI cannot go past: that stack ends inside libgcc_s ("?? , then
    // _Unwind_RaiseException", seen in a local run). Up to three blockages, then: one must
    // name the culprit, and any other must have ended in libgcc_s.
    for (std::size_t attempt = 0; attempt < 3; ++attempt) {
        Truth t;
        std::uint64_t caught = 0;
        block_hub0([&] { culprit_throw_in_loop(t, caught); });
        EXPECT_GT(caught, 100u);
        const auto reports = rec_.reports_of("culprit");  // (and perhaps the loop's)
        ASSERT_EQ(reports.size(), attempt + 1);
        const BlockingReport& r = reports.back();
        if (stack_has(r, "culprit_throw_in_loop")) {
            if (attempt == 0)
                expect_one_blockage(t, BlockingCause::running_on_cpu, "culprit_throw_in_loop");
            else
                EXPECT_EQ(r.cause, BlockingCause::running_on_cpu);
            return;
        }
        ASSERT_FALSE(r.stack.empty()) << r.stack_note;
        EXPECT_EQ(r.stack.front().module, "libgcc_s.so.1") << stack_text(r);
    }
    ADD_FAILURE() << "three captures in a row did not reach the culprit";
}

}  // namespace

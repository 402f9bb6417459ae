// Runtime: hub count from affinity, cgroup quota and WEFT_HUBS; backend selection and its
// errors; cross-hub post; offload keeping the hub responsive; stop; stack overflow reports.
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <stdexcept>
#include <string_view>
#include <thread>

#include "cpu_quota.hpp"
#include "fiber_test.hpp"
#include "weft/core/internal/clock.hpp"
#include "weft/core/internal/hub_probe.hpp"
#include "weft/core/internal/introspect.hpp"
#include "weft/core/internal/offload_stats.hpp"
#include "weft/core/weft.hpp"

using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

struct EnvGuard {
    std::string name;
    std::string old;
    bool had;
    EnvGuard(const char* n, const char* v) : name(n) {
        const char* o = std::getenv(n);
        had = o != nullptr;
        if (o) old = o;
        if (v)
            setenv(n, v, 1);
        else
            unsetenv(n);
    }
    ~EnvGuard() {
        if (had)
            setenv(name.c_str(), old.c_str(), 1);
        else
            unsetenv(name.c_str());
    }
};

void write_file(const fs::path& p, const std::string& text) {
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
}

// A fake /proc + cgroup tree under a temp dir.
struct FakeRoot {
    fs::path root;
    FakeRoot() {
        root = fs::temp_directory_path() /
               ("weft-cg-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
        fs::create_directories(root);
    }
    ~FakeRoot() { fs::remove_all(root); }
    static inline int counter = 0;
};

}  // namespace

TEST(CpuQuota, ParsesCpuMax) {
    EXPECT_EQ(weft::detail::parse_cpu_max("max 100000"), 0u);
    EXPECT_EQ(weft::detail::parse_cpu_max("200000 100000"), 2u);
    EXPECT_EQ(weft::detail::parse_cpu_max("150000 100000"), 2u);  // 1.5 CPUs round up
    EXPECT_EQ(weft::detail::parse_cpu_max("50000 100000"), 1u);
    EXPECT_EQ(weft::detail::parse_cpu_max("garbage"), 0u);
    EXPECT_EQ(weft::detail::quota_to_cpus(-1, 100000), 0u);
    EXPECT_EQ(weft::detail::quota_to_cpus(300000, 100000), 3u);
}

TEST(CpuQuota, CgroupV2Quota) {
    FakeRoot r;
    write_file(r.root / "proc/self/cgroup", "0::/kubepods/pod1\n");
    write_file(r.root / "proc/self/mountinfo", "30 23 0:26 / " +
                                                   (r.root / "sys/fs/cgroup").string() +
                                                   " rw,nosuid - cgroup2 cgroup2 rw\n");
    write_file(r.root / "sys/fs/cgroup/kubepods/pod1/cpu.max", "200000 100000\n");
    write_file(r.root / "sys/fs/cgroup/kubepods/cpu.max", "max 100000\n");
    EXPECT_EQ(weft::detail::cgroup_cpu_limit(r.root.string()), 2u);
    // A tighter limit on a parent wins.
    write_file(r.root / "sys/fs/cgroup/kubepods/cpu.max", "100000 100000\n");
    EXPECT_EQ(weft::detail::cgroup_cpu_limit(r.root.string()), 1u);
}

TEST(CpuQuota, CgroupV1QuotaInHybridLayout) {
    FakeRoot r;
    write_file(r.root / "proc/self/cgroup",
               "4:cpu,cpuacct:/docker/abc\n3:memory:/docker/abc\n0::/docker/abc\n");
    std::string cg = (r.root / "sys/fs/cgroup").string();
    write_file(r.root / "proc/self/mountinfo",
               "31 23 0:27 / " + cg + "/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n" +
                   "32 23 0:28 / " + cg + "/unified rw - cgroup2 cgroup2 rw\n");
    write_file(r.root / "sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "300000\n");
    write_file(r.root / "sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us", "100000\n");
    write_file(r.root / "sys/fs/cgroup/unified/docker/abc/cpu.max", "max 100000\n");
    EXPECT_EQ(weft::detail::cgroup_cpu_limit(r.root.string()), 3u);
    // Unlimited v1 quota: no limit.
    write_file(r.root / "sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "-1\n");
    EXPECT_EQ(weft::detail::cgroup_cpu_limit(r.root.string()), 0u);
}

TEST(CpuQuota, CgroupNamespaceRootIsMapped) {
    // Inside a container the mount's root is the container's cgroup, and /proc/self/cgroup
    // shows paths relative to the namespace: "/" means the mount point itself.
    FakeRoot r;
    write_file(r.root / "proc/self/cgroup", "0::/\n");
    write_file(
        r.root / "proc/self/mountinfo",
        "30 23 0:26 / " + (r.root / "sys/fs/cgroup").string() + " rw - cgroup2 cgroup2 rw\n");
    write_file(r.root / "sys/fs/cgroup/cpu.max", "100000 100000\n");
    EXPECT_EQ(weft::detail::cgroup_cpu_limit(r.root.string()), 1u);
}

TEST(HubCount, FollowsAffinityMask) {
    // In a child: restrict affinity to one CPU and ask.
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(0, &set);
        unsigned n = sched_setaffinity(0, sizeof set, &set) == 0 ? weft::default_hub_count() : 99;
        ssize_t w = write(fds[1], &n, sizeof n);
        _exit(w == sizeof n ? 0 : 1);
    }
    unsigned n = 0;
    ASSERT_EQ(read(fds[0], &n, sizeof n), static_cast<ssize_t>(sizeof n));
    int status = 0;
    waitpid(pid, &status, 0);
    close(fds[0]);
    close(fds[1]);
    EXPECT_EQ(n, 1u);
    EXPECT_GE(weft::default_hub_count(), 1u);
}

TEST(Runtime, HubsFromOptionAndEnvironment) {
    {
        EnvGuard g("WEFT_HUBS", "3");
        weft::Runtime rt(weft::testing::test_options());
        EXPECT_EQ(rt.hub_count(), 3u);
        for (unsigned i = 0; i < 3; ++i)
            EXPECT_EQ(rt.hub(i).index(), i);
    }
    {
        EnvGuard g("WEFT_HUBS", "3");
        auto o = weft::testing::test_options();
        o.hubs = 2;  // an explicit option wins over the environment
        weft::Runtime rt(o);
        EXPECT_EQ(rt.hub_count(), 2u);
    }
    for (const char* automatic : {" AUTO ", "0"}) {  // the settings' grammar
        EnvGuard g("WEFT_HUBS", automatic);
        weft::Runtime rt(weft::testing::test_options());
        EXPECT_EQ(rt.hub_count(), weft::default_hub_count()) << automatic;
    }
}

TEST(Runtime, BadEnvironmentIsAClearError) {
    {
        EnvGuard g("WEFT_HUBS", "lots");
        try {
            weft::Runtime rt(weft::testing::test_options());
            FAIL() << "no error";
        } catch (const std::invalid_argument& e) {
            EXPECT_NE(std::string(e.what()).find("WEFT_HUBS='lots'"), std::string::npos);
            EXPECT_NE(std::string(e.what()).find("1 to 1024"), std::string::npos);
        }
    }
    {
        EnvGuard g("WEFT_BACKEND", "kqueue");
        try {
            weft::Runtime rt(weft::testing::test_options());
            FAIL() << "no error";
        } catch (const std::invalid_argument& e) {
            EXPECT_NE(std::string(e.what()).find("io_uring, epoll, auto"), std::string::npos);
        }
    }
}

TEST(Runtime, BackendFollowsEnvironment) {
    for (const char* b : {"epoll", "io_uring"}) {
        EnvGuard g("WEFT_BACKEND", b);
        auto o = weft::testing::test_options();
        o.hubs = 1;
        std::unique_ptr<weft::Runtime> rt;
        try {
            rt = std::make_unique<weft::Runtime>(o);
        } catch (const std::runtime_error& e) {
            // Container runtimes' default seccomp profiles hide io_uring.
            if (std::string_view(b) == "io_uring")
                GTEST_SKIP() << "io_uring is not available here, so only epoll was checked: "
                             << e.what();
            throw;
        }
        EXPECT_STREQ(weft::backend_name(rt->backend()), b);
        EXPECT_STREQ(rt->hub(0).backend_name(), b);
        EXPECT_NE(rt->backend_reason().find("WEFT_BACKEND"), std::string::npos);
    }
}

TEST(Runtime, PostRunsOnTheTargetHubThread) {
    auto o = weft::testing::test_options();
    o.hubs = 2;
    weft::Runtime rt(o);
    std::promise<std::pair<unsigned, std::thread::id>> p0, p1;
    rt.hub(0).post([&] {
        p0.set_value({weft::Hub::current()->index(), std::this_thread::get_id()});
    });
    rt.hub(1).post([&] {
        p1.set_value({weft::Hub::current()->index(), std::this_thread::get_id()});
    });
    auto a = p0.get_future().get();
    auto b = p1.get_future().get();
    EXPECT_EQ(a.first, 0u);
    EXPECT_EQ(b.first, 1u);
    EXPECT_NE(a.second, b.second);
    EXPECT_NE(a.second, std::this_thread::get_id());
}

TEST(Runtime, CrossHubPostFromAFiberWakesAFiberOnTheOtherHub) {
    auto o = weft::testing::test_options();
    o.hubs = 2;
    weft::Runtime rt(o);
    std::promise<int> done;
    rt.hub(0).post([&] {
        weft::spawn("asker", [&] {
            // Ask hub 1 to compute, wait for its answer on our hub through an Event.
            weft::Event answered;
            int value = 0;
            weft::Hub* home = weft::Hub::current();
            rt.hub(1).post([&, home] {
                int v = static_cast<int>(weft::Hub::current()->index()) + 41;
                home->post([&, v] {
                    value = v;
                    answered.set();
                });
            });
            (void)answered.wait(5s);
            done.set_value(value);
        }).detach();
    });
    EXPECT_EQ(done.get_future().get(), 42);
}

// Schedule delay is ready -> running. A fiber woken inside another fiber's slice is stamped
// ready by the clock read that ends that slice (one clock read per slice), so the time it then
// waits in the ready queue behind other fibers must be what it reports.
TEST(Runtime, ScheduleDelayCountsTheWaitInTheReadyQueue) {
    auto o = weft::testing::test_options();
    o.hubs = 1;
    o.lag_probe_interval = 0ms;
    weft::Runtime rt(o);
    const weft::HubProbe& probe = weft::internal::probe(rt.hub(0));
    constexpr std::int64_t kHogNs = 30'000'000;
    auto over = [&](std::int64_t ns) {  // observations above `ns` so far
        std::uint64_t n = 0;
        for (std::size_t i = 0; i < weft::kLatencyBucketBoundsNs.size(); ++i)
            if (weft::kLatencyBucketBoundsNs[i] >= ns)
                n += probe.schedule_delay.buckets[i + 1].load(std::memory_order_relaxed);
        return n;
    };
    std::promise<std::uint64_t> before_p, after_p;
    rt.hub(0).post([&] {
        weft::spawn("main", [&] {
            weft::Event ev;
            auto waiter = weft::spawn("waiter", [&] { (void)ev.wait(5s); });
            weft::this_fiber::yield();  // the waiter parks on ev
            before_p.set_value(over(10'000'000));
            auto hog = weft::spawn("hog", [&] {  // queued first: it runs first
                auto until = std::chrono::steady_clock::now() + std::chrono::nanoseconds(kHogNs);
                while (std::chrono::steady_clock::now() < until) {
                }
            });
            ev.set();  // the waiter is queued behind the hog
            hog.join();
            waiter.join();
            after_p.set_value(over(10'000'000));
        }).detach();
    });
    std::uint64_t before = before_p.get_future().get();
    std::uint64_t after = after_p.get_future().get();
    // The waiter waited the hog's 30 ms; nothing else on this idle hub waited 10 ms or more.
    EXPECT_EQ(after - before, 1u);
}

TEST(RequestPathClock, CoarseClockIsOnTheExactClocksEpochAndNeverAhead) {
    const auto tick = weft::internal::coarse_tick();
    EXPECT_GT(tick, 0ns);
    EXPECT_LE(tick, 100ms);
    for (int i = 0; i < 1000; ++i) {
        const auto exact0 = std::chrono::steady_clock::now();
        const auto rough = weft::internal::coarse_now();
        const auto exact1 = std::chrono::steady_clock::now();
        ASSERT_LE(rough, exact1);  // never ahead
        // Behind by a tick (one more is allowed for a virtual CPU that was paused).
        ASSERT_GE(rough + 2 * tick, exact0);
        // A deadline set by it is not early, and late by a tick at most.
        const weft::Deadline d = weft::internal::coarse_deadline(10s);
        ASSERT_GE(d.time_point() + tick, exact0 + 10s);
        ASSERT_LE(d.time_point(), std::chrono::steady_clock::now() + 10s + tick);
    }
}

TEST(RequestPathClock, SliceTimeIsWhenTheFiberGotTheCpu) {
    auto o = weft::testing::test_options();
    o.hubs = 1;
    o.collect_stats = true;
    weft::Runtime rt(o);
    std::promise<bool> done;
    rt.hub(0).post([&] {
        const auto before = std::chrono::steady_clock::now();
        weft::spawn("sliced", [&, before] {
            const auto start = weft::internal::slice_now();
            const auto spin_until = std::chrono::steady_clock::now() + 5ms;
            while (std::chrono::steady_clock::now() < spin_until) {
            }
            // Still the slice's start, 5 ms later, and not before the fiber was spawned.
            const auto again = weft::internal::slice_now();
            done.set_value(start >= before && again == start &&
                           again <= std::chrono::steady_clock::now() - 5ms);
        }).detach();
    });
    EXPECT_TRUE(done.get_future().get());
    // Off a hub it is the clock.
    const auto t0 = std::chrono::steady_clock::now();
    const auto off = weft::internal::slice_now();
    EXPECT_GE(off, t0);
    EXPECT_LE(off, std::chrono::steady_clock::now());
}

TEST(HubStats, BusyTimeGrowsWhileAHubNeverWaits) {
    // A hub with always something ready never waits: its busy time was added only at its next
    // wait, so weft_hub_busy_seconds_total stood still while the hub was saturated.
    auto o = weft::testing::test_options();
    o.hubs = 1;
    o.collect_stats = true;
    weft::Runtime rt(o);
    std::atomic<bool> stop{false}, started{false};
    rt.hub(0).post([&] {
        weft::spawn("yielding", [&] {
            started = true;
            while (!stop.load())
                weft::yield();
        }).detach();
    });
    while (!started.load())
        std::this_thread::sleep_for(1ms);
    const auto& p = weft::internal::probe(rt.hub(0));
    const std::uint64_t b0 = p.busy_ns.load();
    const auto t0 = std::chrono::steady_clock::now();
    std::this_thread::sleep_for(200ms);
    const std::uint64_t b1 = p.busy_ns.load();
    const auto wall = std::chrono::steady_clock::now() - t0;
    const std::int64_t since = p.busy_since_ns.load();
    stop = true;
    // Most of the 200 ms (the thread may lose its CPU to others: this machine is shared).
    EXPECT_GT(b1 - b0, static_cast<std::uint64_t>(
                           std::chrono::duration_cast<std::chrono::nanoseconds>(wall).count() / 4));
    // While it runs, the start of the busy time not yet added is published.
    EXPECT_GT(since, 0);
}

TEST(Runtime, StopCancelsParkedFibersAndJoins) {
    std::atomic<int> cancelled{0};
    {
        auto o = weft::testing::test_options();
        o.hubs = 2;
        weft::Runtime rt(o);
        for (unsigned h = 0; h < 2; ++h)
            rt.hub(h).post([&] {
                for (int i = 0; i < 10; ++i)
                    weft::spawn("parked", [&] {
                        if (!weft::sleep_for(60s)) ++cancelled;
                    }).detach();
            });
        std::this_thread::sleep_for(20ms);
    }  // destructor: stop + join
    EXPECT_EQ(cancelled.load(), 20);
}

TEST(Runtime, JoinForSaysWhetherTheHubsEndedInTime) {
    auto o = weft::testing::test_options();
    o.hubs = 2;
    weft::Runtime rt(o);
    // One fiber ignores its cancellation for a while: it holds hub 1 (a plain thread sleep).
    std::atomic<bool> started{false};
    rt.hub(1).post([&] {
        weft::spawn("stubborn", [&] {
            started = true;
            while (weft::sleep_for(5ms)) {
            }
            std::this_thread::sleep_for(400ms);
        }).detach();
    });
    while (!started)
        std::this_thread::sleep_for(1ms);
    rt.stop();
    EXPECT_FALSE(rt.join_for(50ms));  // hub 1 is still held
    EXPECT_TRUE(rt.join_for(10s));    // then the fiber returns and every hub ends
    EXPECT_TRUE(rt.join_for(0ms));    // and stays ended
}

// What the watchdog shows for a fiber (introspect::current_fiber_view().labels): a fiber a
// handler spawns serves the handler's request, so it shows the handler's labels while it has
// none of its own, and none once the handler installed others (its next request), removed
// them or ended.
TEST(Runtime, SpawnedFibersShowTheirSpawnersLabels) {
    auto shown = [] {
        const weft::FiberLabels* l = weft::introspect::current_fiber_view().labels;
        return l && l->count > 0 ? std::string(l->values[0]) : std::string("none");
    };
    weft::run([&] {
        weft::FiberLabels a;
        a.keys[0] = "route";
        a.values[0] = "/a";
        a.count = 1;
        weft::FiberLabels b = a;
        b.values[0] = "/b";
        std::vector<std::string> seen;
        weft::Event go, done;
        weft::Fiber<void> grandchild;
        auto parent = weft::spawn("handler", [&] {
            weft::this_fiber::set_labels(&a);
            auto child = weft::spawn("child", [&] {
                seen.push_back(shown());  // the handler's
                grandchild = weft::spawn("grandchild", [&] {
                    seen.push_back(shown());  // the handler's, two levels down
                    (void)go.wait();
                    seen.push_back(shown());  // the handler installed others: not its
                    (void)done.wait();
                    seen.push_back(shown());  // the handler ended
                });
                weft::FiberLabels own = a;
                own.values[0] = "/own";
                weft::this_fiber::set_labels(&own);
                seen.push_back(shown());  // its own come first
                weft::this_fiber::set_labels(nullptr);
            });
            child.join();
            (void)weft::sleep_for(1ms);
            weft::this_fiber::set_labels(&b);
            go.set();
            (void)weft::sleep_for(1ms);
        });
        parent.join();
        done.set();
        grandchild.join();
        // (The grandchild first runs once the child parked: after the child's "/own".)
        EXPECT_EQ(seen, (std::vector<std::string>{"/a", "/own", "/a", "none", "none"}));
        // A fiber spawned under the new labels shows them.
        seen.clear();
        weft::spawn("handler", [&] {
            weft::this_fiber::set_labels(&a);
            weft::this_fiber::set_labels(&b);
            weft::spawn("child", [&] { seen.push_back(shown()); }).join();
        }).join();
        EXPECT_EQ(seen, std::vector<std::string>{"/b"});
        seen.clear();
        weft::spawn("unlabelled", [&] { seen.push_back(shown()); }).join();
        EXPECT_EQ(seen, std::vector<std::string>{"none"});
    });
}

FIBER_TEST(Offload, ReturnsValueAndRethrows) {
    EXPECT_EQ(weft::offload([] { return 6 * 7; }), 42);
    EXPECT_THROW(weft::offload([]() -> int { throw std::runtime_error("pool"); }),
                 std::runtime_error);
    auto tid = weft::offload([] { return std::this_thread::get_id(); });
    EXPECT_NE(tid, std::this_thread::get_id());
}

FIBER_TEST(Offload, KeepsTheHubResponsive) {
    // Another fiber ticks every 10 ms while 200 ms of blocking work runs in offload().
    int ticks = 0;
    bool stop = false;
    auto ticker = weft::spawn("ticker", [&] {
        while (!stop) {
            ++ticks;
            (void)weft::sleep_for(10ms);
        }
    });
    auto t0 = weft::Clock::now();
    weft::offload([] { std::this_thread::sleep_for(200ms); });
    stop = true;
    EXPECT_GE(weft::Clock::now() - t0, 200ms);
    // About 20 nominally; a hub held by the work would tick once at most. A loaded machine
    // wakes the ticker late, so ask only for clearly more than that.
    EXPECT_GE(ticks, 5);
    ticker.join();
}

TEST(Offload, ADeadlineWithdrawsWorkThatNoThreadTookYet) {
    auto o = weft::testing::test_options();
    o.offload_threads = 1;
    weft::run(
        [] {
            // The pool's one thread is busy for 500 ms: the second offload's deadline passes
            // while it waits in the queue, and its work never runs.
            std::atomic<bool> second_ran{false};
            auto busy = weft::spawn(
                "busy", [] { weft::offload([] { std::this_thread::sleep_for(500ms); }); });
            (void)weft::sleep_for(10ms);
            auto t0 = weft::Clock::now();
            auto r = weft::offload(weft::Deadline(30ms), [&] { second_ran = true; });
            ASSERT_FALSE(r);
            EXPECT_EQ(r.error().code, weft::Errc::timed_out);
            // Well before the busy thread is free (490 ms after t0), with room for a loaded
            // machine that wakes the fiber late.
            EXPECT_LT(weft::Clock::now() - t0, 300ms) << "the wait outlived its deadline";
            // A cancel withdraws it the same way.
            weft::Result<int> cr = weft::Errc::ok;
            auto waiter = weft::spawn(
                "waiter", [&] { cr = weft::offload(weft::Deadline::never(), [] { return 1; }); });
            (void)weft::sleep_for(10ms);
            waiter.cancel();
            waiter.join();
            ASSERT_FALSE(cr);
            EXPECT_EQ(cr.error().code, weft::Errc::cancelled);
            busy.join();
            // Work a thread took runs to the end, deadline or not, and gives its value.
            auto v = weft::offload(weft::Deadline(300ms), [] {
                std::this_thread::sleep_for(500ms);
                return 7;
            });
            ASSERT_TRUE(v);
            EXPECT_EQ(*v, 7);
            EXPECT_FALSE(second_ran.load());
            const auto stats = weft::internal::offload_stats(weft::Hub::current()->runtime());
            EXPECT_EQ(stats.max_threads, 1u);
            EXPECT_EQ(stats.threads, 1u);
            EXPECT_EQ(stats.started, 2u);
            EXPECT_EQ(stats.withdrawn, 2u);
            EXPECT_EQ(stats.queued, 0u);
            std::uint64_t waited = 0;
            for (auto c : stats.queue_wait_buckets)
                waited += c;
            EXPECT_EQ(waited, 2u);
        },
        o);
}

TEST(Offload, OwnedWorkIsLeftAtTheDeadlineEvenWhileItRuns) {
    // What resolve() does with getaddrinfo: the fiber's deadline ends the wait while a thread
    // runs the work, which runs on unobserved; its end wakes nobody (the fiber is gone).
    auto o = weft::testing::test_options();
    o.offload_threads = 1;
    auto done = std::make_shared<std::atomic<bool>>(false);
    weft::run(
        [done] {
            auto t0 = weft::Clock::now();
            weft::Result<void> r = weft::Errc::ok;
            weft::spawn("leaves", [&] {
                weft::ScopedDeadline bound(weft::Deadline(50ms));
                r = weft::detail::offload_owned([done]() noexcept {
                    std::this_thread::sleep_for(300ms);
                    done->store(true);
                });
            }).join();
            ASSERT_FALSE(r);
            EXPECT_EQ(r.error().code, weft::Errc::timed_out);
            EXPECT_LT(weft::Clock::now() - t0, 250ms) << "the wait outlived its deadline";
            EXPECT_FALSE(done->load());
            // A cancel leaves it the same way.
            weft::Result<void> cr = weft::Errc::ok;
            auto waiter = weft::spawn("cancelled", [&] {
                cr = weft::detail::offload_owned(
                    []() noexcept { std::this_thread::sleep_for(100ms); });
            });
            (void)weft::sleep_for(10ms);
            waiter.cancel();
            waiter.join();
            ASSERT_FALSE(cr);
            EXPECT_EQ(cr.error().code, weft::Errc::cancelled);
            // The first work ends meanwhile, and the next one runs as usual.
            EXPECT_EQ(weft::offload([] { return 5; }), 5);
            EXPECT_TRUE(done->load());
            // Without a deadline, owned work is waited for like any other.
            bool ran = false;
            ASSERT_TRUE(weft::detail::offload_owned([&ran]() noexcept { ran = true; }));
            EXPECT_TRUE(ran);
        },
        o);
}

TEST(Offload, OwnedCallsGiveValuesAndExceptionsAndCanBeLeft) {
    // The public offload_owned(): the work is moved in (a move-only capture here), its value
    // or exception comes back; the deadline or a cancel ends the wait while the work runs.
    auto o = weft::testing::test_options();
    o.offload_threads = 2;  // the cancelled call's work runs (on the second) as it is left
    auto done = std::make_shared<std::atomic<bool>>(false);
    weft::run(
        [done] {
            auto box = std::make_unique<int>(41);
            EXPECT_EQ(weft::offload_owned([b = std::move(box)] { return *b + 1; }), 42);
            auto s = weft::offload_owned(weft::Deadline(5s), [] { return std::string("x"); });
            ASSERT_TRUE(s);
            EXPECT_EQ(*s, "x");
            EXPECT_THROW(weft::offload_owned([]() -> int { throw std::runtime_error("boom"); }),
                         std::runtime_error);
            // A deadline of its own ends the wait, not the work.
            const auto t0 = weft::Clock::now();
            auto left = weft::offload_owned(weft::Deadline(50ms), [done] {
                std::this_thread::sleep_for(300ms);
                done->store(true);
            });
            ASSERT_FALSE(left);
            EXPECT_EQ(left.error().code, weft::Errc::timed_out);
            EXPECT_LT(weft::Clock::now() - t0, 250ms) << "the wait outlived its deadline";
            EXPECT_FALSE(done->load());
            // The throwing form, cancelled while its work runs: ResultError with
            // Errc::cancelled at once, the work running on.
            weft::Errc seen = weft::Errc::ok;
            auto started = std::make_shared<std::atomic<bool>>(false);
            auto waiter = weft::spawn("cancelled", [&] {
                try {
                    weft::offload_owned([started] {
                        started->store(true);
                        std::this_thread::sleep_for(300ms);
                    });
                } catch (const weft::ResultError<weft::Error>& e) {
                    seen = e.error().code;
                }
            });
            while (!started->load())
                (void)weft::sleep_for(1ms);
            const auto t1 = weft::Clock::now();
            waiter.cancel();
            waiter.join();
            EXPECT_EQ(seen, weft::Errc::cancelled);
            EXPECT_LT(weft::Clock::now() - t1, 200ms) << "the cancel waited for the work";
        },
        o);
    EXPECT_TRUE(done->load()) << "the runtime ended before the work its fiber left";
}

TEST(Offload, ARuntimeEndsAfterTheLookupsItsFibersLeft) {
    // A lookup of a dead DNS server runs on after its fiber gave up. The runtime that ends
    // meanwhile waits for it while its hubs are still there: the lookup's end is posted to one
    // (under ASan, a use after free before this was so).
    // The fiber gives up once the lookup runs (a deadline could come before a resolver thread
    // took it, and a lookup no thread took is withdrawn, never run).
    auto o = weft::testing::test_options();
    auto started = std::make_shared<std::atomic<bool>>(false);
    auto done = std::make_shared<std::atomic<bool>>(false);
    weft::run(
        [started, done] {
            weft::Errc seen = weft::Errc::ok;
            auto waiter = weft::spawn("lookup", [&] {
                auto r = weft::detail::resolver_owned([started, done]() noexcept {
                    started->store(true);
                    std::this_thread::sleep_for(200ms);
                    done->store(true);
                });
                if (!r) seen = r.error().code;
            });
            while (!started->load())
                (void)weft::sleep_for(1ms);
            waiter.cancel();
            waiter.join();
            EXPECT_EQ(seen, weft::Errc::cancelled);
            EXPECT_FALSE(done->load());
        },
        o);
    EXPECT_TRUE(done->load()) << "the runtime ended before the lookup it ran";
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Winfinite-recursion"
namespace {
[[gnu::noinline]] int recurse_forever(int depth) {
    volatile char pad[512];
    pad[0] = static_cast<char>(depth);
    return recurse_forever(depth + 1) + pad[0];
}
}  // namespace
#pragma GCC diagnostic pop

TEST(StackOverflowDeathTest, ReportsTheFiberName) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_DEATH(
        weft::run([] { weft::spawn("deep-recursion", [] { return recurse_forever(0); }).join(); }),
        "stack overflow in fiber 'deep-recursion' .*-byte stack is exhausted");
}

// Any other fatal fault in a fiber leaves a line naming it, its thread and the fault before the
// process dies as it would have (a crash in a handler used to end the log at "ready"). ("fatal"
// is left out where another handler was there first, a sanitizer's in those builds.)
TEST(FatalSignalDeathTest, NamesTheFiberAndItsThread) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_DEATH(weft::run([] {
                     weft::spawn("bad-pointer", [] {
                         weft::FiberLabels labels;
                         labels.keys[0] = "route";
                         labels.values[0] = "/users/{id}";
                         labels.count = 1;
                         weft::this_fiber::set_labels(&labels);
                         // Not null (a sanitizer would stop at that first): an unmapped page.
                         volatile int* p = reinterpret_cast<volatile int*>(std::uintptr_t{16});
                         return *p;
                     }).join();
                 }),
                 "weft: (fatal )?SIGSEGV \\(invalid memory access\\) at address 0x10 in thread "
                 "'[^']+', fiber 'bad-pointer' \\(id [0-9]+\\), serving route=/users/\\{id\\}");
}

// join() on a hub's thread outside a fiber would poll there for ever (the fiber it waits for
// never runs): it throws UsageError saying why, rather than hanging (or ending the process).
TEST(JoinOutsideAFiber, OnAHubThreadThrowsAndSaysWhy) {
    weft::Runtime rt(weft::testing::test_options());
    std::promise<std::string> said;
    rt.hub(0).post([&] {
        auto f = weft::spawn("sleeper", [] { (void)weft::sleep_for(1s); });
        try {
            f.join();
            said.set_value("join returned");
        } catch (const weft::UsageError& e) {
            said.set_value(e.what());
        }
    });
    auto got = said.get_future();
    ASSERT_EQ(got.wait_for(5s), std::future_status::ready);
    EXPECT_NE(got.get().find("outside a fiber would block that hub"), std::string::npos);
}

// Waiting from one hub's posted function for a fiber of another hub blocks the first hub for
// a while, but the fiber runs: allowed.
TEST(JoinOutsideAFiber, AFiberOfAnotherHubIsWaitedFor) {
    auto o = weft::testing::test_options();
    o.hubs = 2;
    weft::Runtime rt(o);
    std::promise<weft::Fiber<int>> made;
    rt.hub(1).post([&] {
        made.set_value(weft::spawn("on-1", [] {
            (void)weft::sleep_for(20ms);
            return 5;
        }));
    });
    auto f = made.get_future().get();
    std::promise<int> got;
    rt.hub(0).post([&] { got.set_value(f.join()); });
    EXPECT_EQ(got.get_future().get(), 5);
}

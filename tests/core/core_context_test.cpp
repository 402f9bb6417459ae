// What flows with a fiber and what all hubs share: FiberLocal (inherited by spawned fibers), the
// fiber's own deadline (ScopedDeadline, inherited, bounding every blocking call), and the
// primitives shared by every hub (SharedSemaphore, SharedPool).
#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "fiber_test.hpp"
#include "weft/core/weft.hpp"

using namespace std::chrono_literals;
using weft::Errc;

namespace {

weft::FiberLocal<std::string> request_id;

struct Counted {
    static inline std::atomic<int> alive{0};
    int value;
    explicit Counted(int v) : value(v) { ++alive; }
    Counted(const Counted& o) : value(o.value) { ++alive; }
    ~Counted() { --alive; }
};
weft::FiberLocal<Counted> counted;

// Records which fiber its destructor ran on, and what that fiber's request_id was then.
struct Witness {
    std::shared_ptr<weft::FiberId> died_on;
    std::shared_ptr<std::string> saw;
    Witness(const Witness&) = delete;
    Witness(std::shared_ptr<weft::FiberId> d, std::shared_ptr<std::string> s)
        : died_on(std::move(d)), saw(std::move(s)) {}
    Witness(Witness&& o) noexcept = default;
    ~Witness() {
        if (!died_on) return;
        *died_on = weft::this_fiber::id();
        *saw = request_id.get() ? *request_id.get() : "none";
    }
};
weft::FiberLocal<Witness> witness;

}  // namespace

// --- FiberLocal --------------------------------------------------------------------------------

FIBER_TEST(FiberLocal, PerFiberAndInheritedBySpawnedFibers) {
    EXPECT_EQ(request_id.get(), nullptr);
    request_id.set("parent");
    ASSERT_NE(request_id.get(), nullptr);
    EXPECT_EQ(*request_id.get(), "parent");
    std::string child_saw, grandchild_saw, child_after_set;
    weft::spawn("child", [&] {
        child_saw = *request_id.get();
        weft::spawn("grandchild", [&] { grandchild_saw = *request_id.get(); }).join();
        request_id.set("child");
        child_after_set = *request_id.get();
    }).join();
    EXPECT_EQ(child_saw, "parent");
    EXPECT_EQ(grandchild_saw, "parent");
    EXPECT_EQ(child_after_set, "child");
    EXPECT_EQ(*request_id.get(), "parent") << "a child's set() changed its parent's value";
    // A fiber spawned before the value was set does not see it; one spawned after does.
    weft::Event go;
    std::string early = "unset";
    request_id.reset();
    auto before = weft::spawn("early", [&] {
        (void)go.wait();
        early = request_id.get() ? *request_id.get() : "none";
    });
    request_id.set("late");
    go.set();
    before.join();
    EXPECT_EQ(early, "none");
}

FIBER_TEST(FiberLocal, InheritedValuesAreSharedAndFreedWithTheirFibers) {
    const int before = Counted::alive;
    {
        weft::Event release;
        counted.set(Counted(7));
        auto child = weft::spawn("child", [&] {
            counted.get()->value = 8;  // the same object as the parent's
            (void)release.wait();
        });
        weft::yield();
        EXPECT_EQ(counted.get()->value, 8);
        counted.reset();
        EXPECT_EQ(Counted::alive, before + 1) << "the child still holds the value";
        release.set();
        child.join();
    }
    EXPECT_EQ(Counted::alive, before) << "the value outlived every fiber that saw it";
}

// A fiber's values die as it ends, on that fiber (a destructor may read its locals or log with
// its name), and before its joiner wakes.
FIBER_TEST(FiberLocal, ValuesDieOnTheirOwnFiber) {
    auto died_on = std::make_shared<weft::FiberId>(0);
    auto saw = std::make_shared<std::string>();
    weft::FiberId child_id = 0;
    weft::spawn("child", [&] {
        child_id = weft::this_fiber::id();
        request_id.set("req-7");  // a local made before the witness's
        witness.set(Witness(died_on, saw));
    }).join();
    EXPECT_NE(child_id, 0u);
    EXPECT_EQ(*died_on, child_id) << "the value died on fiber " << *died_on << ", not its own";
    EXPECT_EQ(*saw, "req-7") << "its destructor could not read the fiber's other locals";
}

// A value's destructor that spawns a fiber (to export a span, say) shares the fiber's locals
// with it: the values it reads are still there when it runs.
namespace {
struct Exporter {
    std::shared_ptr<std::string> saw;
    std::shared_ptr<weft::Fiber<void>> spawned;
    Exporter(std::shared_ptr<std::string> s, std::shared_ptr<weft::Fiber<void>> f)
        : saw(std::move(s)), spawned(std::move(f)) {}
    Exporter(Exporter&&) noexcept = default;
    ~Exporter() {
        if (!saw) return;
        *spawned = weft::spawn("export", [s = saw] {
            weft::this_fiber::yield();
            *s = request_id.get() ? *request_id.get() : "none";
        });
    }
};
weft::FiberLocal<Exporter> exporter;
}  // namespace

FIBER_TEST(FiberLocal, AFiberSpawnedByADyingValueSeesTheLocals) {
    auto saw = std::make_shared<std::string>();
    auto spawned = std::make_shared<weft::Fiber<void>>();
    weft::spawn("child", [&] {
        request_id.set("req-9");
        exporter.set(Exporter(saw, spawned));
    }).join();
    ASSERT_TRUE(spawned->valid());
    spawned->join();
    EXPECT_EQ(*saw, "req-9");
}

TEST(FiberLocal, OutsideAFiber) {
    EXPECT_EQ(request_id.get(), nullptr);
    EXPECT_THROW(request_id.set("x"), std::logic_error);
}

// --- the fiber's own deadline -------------------------------------------------------------------

FIBER_TEST(ScopedDeadline, BoundsEveryBlockingCallAndFlowsIntoChildren) {
    EXPECT_TRUE(weft::this_fiber::deadline().is_never());
    {
        weft::ScopedDeadline d(60ms);
        EXPECT_FALSE(weft::this_fiber::deadline().is_never());
        auto t0 = weft::Clock::now();
        auto r = weft::sleep_for(5s);
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error().code, Errc::timed_out);
        EXPECT_LT(weft::Clock::now() - t0, 2s);
        // Already passed: every wait fails at once, an event's and a channel's included.
        weft::Event never;
        EXPECT_EQ(never.wait().error().code, Errc::timed_out);
        weft::Channel<int> ch(1);
        EXPECT_FALSE(ch.recv());
        // A child spawned now inherits it.
        weft::Result<void> child = Errc::ok;
        weft::spawn("child", [&] { child = weft::sleep_for(5s); }).join();
        ASSERT_FALSE(child);
        EXPECT_EQ(child.error().code, Errc::timed_out);
        // Cleanup that must run anyway lifts it for a while.
        {
            weft::ScopedDeadline none(weft::Deadline::never(), weft::ScopedDeadline::Mode::replace);
            EXPECT_TRUE(weft::sleep_for(5ms));
        }
        EXPECT_FALSE(weft::sleep_for(5ms));
    }
    EXPECT_TRUE(weft::this_fiber::deadline().is_never());
    EXPECT_TRUE(weft::sleep_for(5ms));
}

FIBER_TEST(ScopedDeadline, OnlyTightensUnlessToldToReplace) {
    weft::ScopedDeadline outer(50ms);
    const auto first = weft::this_fiber::deadline().time_point();
    {
        weft::ScopedDeadline looser(10s);
        EXPECT_EQ(weft::this_fiber::deadline().time_point(), first);
        weft::ScopedDeadline tighter(10ms);
        EXPECT_LT(weft::this_fiber::deadline().time_point(), first);
    }
    EXPECT_EQ(weft::this_fiber::deadline().time_point(), first);
    // An explicit deadline on a call still counts when it is the earlier one.
    auto r = weft::sleep_until(weft::Deadline(5ms));
    EXPECT_TRUE(r) << "the sleep's own time came first";
}

FIBER_TEST(ScopedDeadline, OffloadAndLocksKeepToIt) {
    weft::Mutex m;
    m.lock().value();
    weft::Result<void> locked = Errc::ok;
    weft::spawn("locker", [&] {
        weft::ScopedDeadline d(30ms);
        locked = m.lock();
    }).join();
    ASSERT_FALSE(locked);
    EXPECT_EQ(locked.error().code, Errc::timed_out);
    m.unlock();
}

FIBER_TEST(ScopedDeadline, OffloadWithoutADeadlineOfItsOwnStillKeepsToIt) {
    // Past the fiber's deadline the work is not taken: offload(fn) has no value to return and
    // says so with the typed exception (it used to read an empty value), and resolve() returns
    // the error.
    bool ran = false;
    weft::Errc code = Errc::ok;
    weft::Result<std::vector<weft::SocketAddress>> addrs = Errc::ok;
    weft::spawn("late", [&] {
        weft::ScopedDeadline d(weft::Deadline(std::chrono::nanoseconds(1)));
        try {
            (void)weft::offload([&] {
                ran = true;
                return std::string(100, 'x');
            });
        } catch (const weft::ResultError<weft::Error>& e) {
            code = e.error().code;
        }
        addrs = weft::resolve("localhost", 80);
    }).join();
    EXPECT_FALSE(ran);
    EXPECT_EQ(code, Errc::timed_out);
    ASSERT_FALSE(addrs.ok());
    EXPECT_EQ(addrs.error().code, Errc::timed_out);
}

// --- SharedSemaphore and SharedPool ------------------------------------------------------------

TEST(SharedSemaphore, FibersOfTwoHubsShareItWithoutBlockingTheirHubs) {
    auto o = weft::testing::test_options();
    o.hubs = 2;
    weft::Runtime rt(o);
    weft::SharedSemaphore sem(2);
    std::atomic<int> inside{0}, most{0}, done{0}, ticks{0};
    std::atomic<bool> stop_ticking{false};
    constexpr int kPerHub = 20;
    for (unsigned h = 0; h < 2; ++h) {
        rt.hub(h).post([&] {
            weft::spawn("ticker", [&] {
                while (!stop_ticking) {
                    (void)weft::sleep_for(1ms);
                    ++ticks;
                }
            }).detach();
            for (int i = 0; i < kPerHub; ++i) {
                weft::spawn("worker", [&] {
                    for (int k = 0; k < 5; ++k) {
                        ASSERT_TRUE(sem.acquire(10s));
                        int now = ++inside;
                        int m = most.load();
                        while (now > m && !most.compare_exchange_weak(m, now)) {
                        }
                        (void)weft::sleep_for(1ms);
                        --inside;
                        sem.release();
                    }
                    ++done;
                }).detach();
            }
        });
    }
    for (int i = 0; i < 2000 && done < 2 * kPerHub; ++i)
        std::this_thread::sleep_for(5ms);
    stop_ticking = true;
    EXPECT_EQ(done.load(), 2 * kPerHub);
    EXPECT_LE(most.load(), 2);
    EXPECT_EQ(most.load(), 2) << "the two permits were never used at once";
    EXPECT_GT(ticks.load(), 20) << "the hubs did not run other fibers while workers waited";
    EXPECT_EQ(sem.available(), 2u);
    rt.stop();
    rt.join();
}

FIBER_TEST(SharedSemaphore, TimeoutCancelAndAThreadWaiter) {
    weft::SharedSemaphore sem(1);
    ASSERT_TRUE(sem.acquire());
    auto r = sem.acquire(20ms);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::timed_out);
    weft::Result<void> cr = Errc::ok;
    auto f = weft::spawn("waiter", [&] { cr = sem.acquire(); });
    (void)weft::sleep_for(5ms);
    EXPECT_EQ(sem.waiting(), 1u);
    f.cancel();
    f.join();
    ASSERT_FALSE(cr);
    EXPECT_EQ(cr.error().code, Errc::cancelled);
    EXPECT_EQ(sem.waiting(), 0u);
    // A plain thread waits on it too, and a fiber's release() wakes it.
    std::atomic<bool> got{false};
    std::thread t([&] {
        got = sem.acquire(5s).ok();
        sem.release();
    });
    while (sem.waiting() == 0)
        (void)weft::sleep_for(1ms);
    EXPECT_FALSE(got);
    sem.release();
    t.join();
    EXPECT_TRUE(got);
    EXPECT_EQ(sem.available(), 1u);
    EXPECT_TRUE(sem.try_acquire());
    EXPECT_FALSE(sem.try_acquire());
    sem.release();
}

// On a hub's thread outside its fibers (a posted task) acquire() cannot wait: the holder may
// be one of that hub's fibers, which would never run again.
FIBER_TEST(SharedSemaphore, APostedTaskOnAHubDoesNotWait) {
    weft::SharedSemaphore sem(1);
    ASSERT_TRUE(sem.acquire());  // held by this fiber, on this hub
    weft::Event done;
    weft::Result<void> in_task = Errc::ok;
    weft::Hub::current()->post([&] {
        in_task = sem.acquire(2s);
        done.set();
    });
    const auto t0 = weft::Clock::now();
    ASSERT_TRUE(done.wait(5s));
    EXPECT_LT(weft::Clock::now() - t0, 1s) << "the hub waited for a permit its fiber held";
    ASSERT_FALSE(in_task);
    EXPECT_EQ(in_task.error().code, Errc::would_block);
    sem.release();
    bool took = false;
    done.clear();
    weft::Hub::current()->post([&] {
        took = sem.acquire().ok();  // a free permit is taken as usual
        done.set();
    });
    ASSERT_TRUE(done.wait(5s));
    EXPECT_TRUE(took);
    EXPECT_EQ(sem.available(), 0u);
}

TEST(SharedPool, BoundedAcrossHubsWithDiscardAndFailingFactory) {
    auto o = weft::testing::test_options();
    o.hubs = 2;
    weft::Runtime rt(o);
    struct Conn {
        int id;
    };
    std::atomic<int> made{0};
    std::atomic<bool> fail_next{false};
    weft::SharedPool<Conn> pool(3, [&] {
        if (fail_next.exchange(false)) throw std::runtime_error("cannot connect");
        return std::make_unique<Conn>(Conn{++made});
    });
    std::atomic<int> done{0}, errors{0};
    for (unsigned h = 0; h < 2; ++h) {
        rt.hub(h).post([&] {
            for (int i = 0; i < 10; ++i) {
                weft::spawn("borrower", [&] {
                    for (int k = 0; k < 3; ++k) {
                        auto lease = pool.acquire(10s);
                        if (!lease) {
                            ++errors;
                            continue;
                        }
                        (void)weft::sleep_for(1ms);
                    }
                    ++done;
                }).detach();
            }
        });
    }
    for (int i = 0; i < 2000 && done < 20; ++i)
        std::this_thread::sleep_for(5ms);
    EXPECT_EQ(done.load(), 20);
    EXPECT_EQ(errors.load(), 0);
    EXPECT_EQ(made.load(), 3) << "the pool made more than its size, or never filled";
    EXPECT_EQ(pool.idle(), 3u);

    std::atomic<int> step{0};
    rt.hub(0).post([&] {
        weft::spawn("discarder", [&] {
            {
                auto a = pool.acquire();
                a.value().discard();  // broken: the next borrower gets a new one
            }
            auto b = pool.acquire().value();
            auto c = pool.acquire().value();
            auto d = pool.acquire().value();  // the pool made one to replace the discarded
            EXPECT_EQ(made.load(), 4);
            auto full = pool.acquire(10ms);
            EXPECT_FALSE(full);
            d.discard();
            fail_next = true;
            EXPECT_THROW((void)pool.acquire(), std::runtime_error);
            auto e = pool.acquire(1s);  // the failed make gave its slot back
            EXPECT_TRUE(e);
            step = 1;
        }).detach();
    });
    for (int i = 0; i < 1000 && step == 0; ++i)
        std::this_thread::sleep_for(5ms);
    EXPECT_EQ(step.load(), 1);
    rt.stop();
    rt.join();
}

// Cooperative primitives: Event, Mutex, Semaphore, Channel, WaitGroup — waking, fairness,
// deadlines, and cancellation while parked.
#include <future>
#include <stdexcept>
#include <string>
#include <vector>

#include "fiber_test.hpp"
#include "weft/core/weft.hpp"

using namespace std::chrono_literals;
using weft::Errc;

static Errc code(const weft::Result<void>& r) {
    return r.ok() ? Errc::ok : r.error().code;
}

FIBER_TEST(Event, WaitersWakeOnSet) {
    weft::Event ev;
    int woke = 0;
    std::vector<weft::Fiber<void>> fs;
    for (int i = 0; i < 3; ++i)
        fs.push_back(weft::spawn("w", [&] {
            if (ev.wait()) ++woke;
        }));
    weft::yield();
    EXPECT_EQ(woke, 0);
    ev.set();
    for (auto& f : fs)
        f.join();
    EXPECT_EQ(woke, 3);
    EXPECT_TRUE(ev.wait().ok());  // already set: returns at once
}

FIBER_TEST(Event, WaitTimesOut) {
    weft::Event ev;
    auto t0 = weft::Clock::now();
    EXPECT_EQ(code(ev.wait(30ms)), Errc::timed_out);
    EXPECT_GE(weft::Clock::now() - t0, 30ms);
}

FIBER_TEST(Mutex, ExcludesAndHandsOffInOrder) {
    weft::Mutex m;
    std::vector<int> order;
    int inside = 0, max_inside = 0;
    std::vector<weft::Fiber<void>> fs;
    for (int i = 0; i < 4; ++i)
        fs.push_back(weft::spawn("locker", [&, i] {
            weft::MutexLock g(m);
            ASSERT_TRUE(g.owns_lock());
            ++inside;
            max_inside = std::max(max_inside, inside);
            order.push_back(i);
            (void)weft::sleep_for(2ms);
            --inside;
        }));
    for (auto& f : fs)
        f.join();
    EXPECT_EQ(max_inside, 1);
    EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3}));
    EXPECT_FALSE(m.is_locked());
}

FIBER_TEST(Mutex, LockTimesOut) {
    weft::Mutex m;
    ASSERT_TRUE(m.try_lock());
    auto f = weft::spawn("late", [&] { return code(m.lock(20ms)); });
    EXPECT_EQ(f.join(), Errc::timed_out);
    m.unlock();
    EXPECT_FALSE(m.is_locked());
}

FIBER_TEST(Mutex, CancelWhileWaitingForLock) {
    weft::Mutex m;
    ASSERT_TRUE(m.try_lock());
    auto f = weft::spawn("waiter", [&] { return code(m.lock()); });
    weft::yield();
    f.cancel();
    EXPECT_EQ(f.join(), Errc::cancelled);
    m.unlock();
    EXPECT_FALSE(m.is_locked());  // the cancelled waiter was not handed the lock
}

FIBER_TEST(Semaphore, LimitsConcurrency) {
    weft::Semaphore sem(2);
    int inside = 0, max_inside = 0;
    std::vector<weft::Fiber<void>> fs;
    for (int i = 0; i < 6; ++i)
        fs.push_back(weft::spawn("s", [&] {
            ASSERT_TRUE(sem.acquire().ok());
            ++inside;
            max_inside = std::max(max_inside, inside);
            (void)weft::sleep_for(2ms);
            --inside;
            sem.release();
        }));
    for (auto& f : fs)
        f.join();
    EXPECT_EQ(max_inside, 2);
    EXPECT_EQ(sem.available(), 2u);
}

FIBER_TEST(Semaphore, AcquireTimesOutAndCancels) {
    weft::Semaphore sem(0);
    EXPECT_EQ(code(sem.acquire(10ms)), Errc::timed_out);
    auto f = weft::spawn("c", [&] { return code(sem.acquire()); });
    weft::yield();
    f.cancel();
    EXPECT_EQ(f.join(), Errc::cancelled);
    sem.release();
    EXPECT_EQ(sem.available(), 1u);
}

FIBER_TEST(Channel, PassesValuesInOrderWithBackpressure) {
    weft::Channel<std::string> ch(2);
    auto producer = weft::spawn("producer", [&] {
        for (int i = 0; i < 5; ++i)
            EXPECT_TRUE(ch.send(std::to_string(i)).ok());
        ch.close();
    });
    weft::yield();
    EXPECT_EQ(ch.size(), 2u);  // producer parked on a full channel
    std::vector<std::string> got;
    for (;;) {
        auto v = ch.recv();
        if (!v) {
            EXPECT_EQ(v.error().code, Errc::closed);
            break;
        }
        got.push_back(*v);
    }
    producer.join();
    EXPECT_EQ(got, (std::vector<std::string>{"0", "1", "2", "3", "4"}));
    EXPECT_EQ(code(ch.send("late")), Errc::closed);
}

FIBER_TEST(Channel, RecvTimesOutAndTryOps) {
    weft::Channel<int> ch(1);
    auto r = ch.recv(10ms);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::timed_out);
    EXPECT_EQ(ch.try_recv().error().code, Errc::would_block);
    EXPECT_TRUE(ch.try_send(1).ok());
    EXPECT_EQ(code(ch.try_send(2)), Errc::would_block);
    EXPECT_EQ(*ch.try_recv(), 1);
}

FIBER_TEST(Channel, CancelWhileWaitingToReceive) {
    weft::Channel<int> ch(1);
    auto f = weft::spawn("rx", [&] {
        auto v = ch.recv();
        return v ? Errc::ok : v.error().code;
    });
    weft::yield();
    f.cancel();
    EXPECT_EQ(f.join(), Errc::cancelled);
    EXPECT_TRUE(ch.try_send(5).ok());  // nothing was consumed by the cancelled receiver
    EXPECT_EQ(ch.size(), 1u);
}

FIBER_TEST(Channel, CloseWakesBlockedSender) {
    weft::Channel<int> ch(1);
    ASSERT_TRUE(ch.send(1).ok());
    auto f = weft::spawn("tx", [&] { return code(ch.send(2)); });
    weft::yield();
    ch.close();
    EXPECT_EQ(f.join(), Errc::closed);
    EXPECT_EQ(*ch.recv(), 1);  // drained after close
    EXPECT_EQ(ch.recv().error().code, Errc::closed);
}

// Go's order: room made while a sender waits is that sender's, and a value sent while a
// receiver waits is that receiver's; newcomers queue behind them. (Before, a newcomer could
// take either in the gap before the woken fiber ran, and a waiter could wait without end.)
FIBER_TEST(Channel, WaitersGoFirstAndInTheOrderTheyCame) {
    weft::Channel<int> ch(1);
    ASSERT_TRUE(ch.try_send(0).ok());
    std::vector<int> sent;
    std::vector<weft::Fiber<void>> senders;
    for (int i = 1; i <= 3; ++i) {
        senders.push_back(weft::spawn("tx", [&, i] {
            // Bounded, so that a channel that lets newcomers in first fails here, not hangs.
            if (ch.send(i, 2s).ok()) sent.push_back(i);
        }));
        weft::yield();  // each parks on the full channel, in turn
    }
    std::vector<int> got;
    for (int i = 0; i < 4; ++i) {
        auto v = ch.recv(2s);
        ASSERT_TRUE(v);
        got.push_back(*v);
        // The room just made is the first waiting sender's, not ours.
        if (i < 3) {
            EXPECT_EQ(code(ch.try_send(99)), Errc::would_block) << i;
        }
        weft::yield();
    }
    for (auto& f : senders)
        f.join();
    EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 3}));
    EXPECT_EQ(sent, (std::vector<int>{1, 2, 3}));

    // Receivers: a value sent to a waiting receiver is not taken by try_recv meanwhile.
    std::vector<int> received;
    auto rx = weft::spawn("rx", [&] {
        if (auto v = ch.recv(1s)) received.push_back(*v);
    });
    weft::yield();
    ASSERT_TRUE(ch.try_send(7).ok());
    EXPECT_EQ(ch.try_recv().error().code, Errc::would_block) << "took the waiter's value";
    rx.join();
    EXPECT_EQ(received, (std::vector<int>{7}));
}

// A sender handed room that closes before it runs fails like any send after close; what is
// in the channel still drains.
FIBER_TEST(Channel, CloseAfterAHandOffStillDrains) {
    weft::Channel<int> ch(1);
    ASSERT_TRUE(ch.send(1).ok());
    auto tx = weft::spawn("tx", [&] { return code(ch.send(2)); });
    weft::yield();
    EXPECT_EQ(*ch.recv(), 1);  // hands the room to tx
    ch.close();
    EXPECT_EQ(tx.join(), Errc::closed);
    EXPECT_EQ(ch.recv().error().code, Errc::closed);

    weft::Channel<int> two(2);
    auto rx = weft::spawn("rx", [&] { return two.recv(); });
    weft::yield();
    ASSERT_TRUE(two.send(5).ok());  // handed to rx
    ASSERT_TRUE(two.send(6).ok());
    two.close();
    // Both values come out, whoever takes them.
    auto mine = two.try_recv();
    auto theirs = rx.join();
    ASSERT_TRUE(mine);
    ASSERT_TRUE(theirs);
    EXPECT_EQ(*mine + *theirs, 11);
    EXPECT_EQ(two.try_recv().error().code, Errc::closed);
}

// A value whose move throws (out of memory in a deque, say) gives the room it was handed to
// the next waiting sender: the channel does not stall with room free and a sender waiting.
struct ThrowsOnMove {
    int v = 0;
    bool throws = false;
    ThrowsOnMove(int x, bool t) : v(x), throws(t) {}
    ThrowsOnMove(ThrowsOnMove&& o) : v(o.v), throws(o.throws) {
        if (throws) throw std::runtime_error("move");
    }
    ThrowsOnMove& operator=(ThrowsOnMove&& o) {
        if (o.throws) throw std::runtime_error("move");
        v = o.v;
        return *this;
    }
};

FIBER_TEST(Channel, AThrowingSendPassesItsRoomOn) {
    weft::Channel<ThrowsOnMove> ch(1);
    ASSERT_TRUE(ch.try_send(ThrowsOnMove(0, false)).ok());
    bool first_threw = false;
    auto s1 = weft::spawn("tx1", [&] {
        try {
            (void)ch.send(ThrowsOnMove(1, true), 2s);
        } catch (const std::runtime_error&) {
            first_threw = true;
        }
    });
    weft::yield();
    auto s2 = weft::spawn("tx2", [&] { return code(ch.send(ThrowsOnMove(2, false), 2s)); });
    weft::yield();
    auto v = ch.recv(2s);  // room for tx1, whose value throws as it goes in
    ASSERT_TRUE(v);
    EXPECT_EQ(v->v, 0);
    s1.join();
    EXPECT_TRUE(first_threw);
    EXPECT_EQ(s2.join(), Errc::ok) << "the room stayed with the sender that threw";
    auto w = ch.recv(2s);
    ASSERT_TRUE(w);
    EXPECT_EQ(w->v, 2);
}

FIBER_TEST(WaitGroup, WaitsForAll) {
    weft::WaitGroup wg;
    int done = 0;
    for (int i = 0; i < 5; ++i) {
        wg.add();
        weft::spawn("job", [&, i] {
            (void)weft::sleep_for(std::chrono::milliseconds(i));
            ++done;
            wg.done();
        }).detach();
    }
    EXPECT_TRUE(wg.wait(1s).ok());
    EXPECT_EQ(done, 5);
    EXPECT_EQ(wg.count(), 0);
}

FIBER_TEST(WaitGroup, WaitTimesOut) {
    weft::WaitGroup wg;
    wg.add(1);
    EXPECT_EQ(code(wg.wait(10ms)), Errc::timed_out);
    wg.done();
    EXPECT_TRUE(wg.wait().ok());
}

// A primitive belongs to the hub that used it first: another hub's fiber, or a thread of
// offload(), that touches it gets UsageError instead of racing with that hub's fibers.
TEST(SyncOwnership, AnotherHubOrAPoolThreadGetsUsageError) {
    auto o = weft::testing::test_options();
    o.hubs = 2;
    weft::Runtime rt(o);
    weft::Mutex m;  // as a plugin's `static weft::Mutex` would be, with two hubs
    weft::Channel<int> ch(4);
    std::promise<void> owned;
    std::promise<void> done;
    auto finished = done.get_future();
    std::promise<void> released;  // hub 0's fiber is done with what this frame owns
    rt.hub(0).post([&] {
        weft::spawn("owner", [&] {
            ASSERT_TRUE(m.lock());  // held while hub 1 tries
            ASSERT_TRUE(ch.send(1));
            owned.set_value();
            finished.wait();  // holds the hub: fine for a test, the other hub runs
            m.unlock();
            released.set_value();
        }).detach();
    });
    owned.get_future().wait();
    std::promise<std::string> said;
    rt.hub(1).post([&] {
        weft::spawn("intruder", [&] {
            std::string out;
            try {
                (void)m.lock(weft::Deadline(100ms));  // held by hub 0's fiber
                out = "lock returned";
            } catch (const weft::UsageError& e) {
                out = e.what();
            }
            try {
                (void)ch.recv();
                out += " | recv returned";
            } catch (const weft::UsageError& e) {
                out += std::string(" | ") + e.what();
            }
            // From a pool thread too.
            out += " | " + weft::offload([&] {
                       try {
                           (void)m.lock();
                           return std::string("pool lock returned");
                       } catch (const weft::UsageError& e) {
                           return std::string(e.what());
                       }
                   });
            said.set_value(out);
        }).detach();
    });
    const std::string got = said.get_future().get();
    auto all_released = released.get_future();
    done.set_value();
    all_released.wait();
    EXPECT_NE(got.find("weft::Mutex belongs to the fibers of hub 0 (its first user), but a "
                       "fiber of hub 1 used it"),
              std::string::npos)
        << got;
    EXPECT_NE(got.find("weft::Channel belongs to the fibers of hub 0"), std::string::npos) << got;
    EXPECT_NE(got.find("a thread that is no hub's (offload(), a plain thread) used it"),
              std::string::npos)
        << got;
}

// An idle primitive passes to the next hub that uses it (an object handed on through a
// SharedPool): no error, and it works there.
TEST(SyncOwnership, AnIdleOnePassesToAnotherHub) {
    auto o = weft::testing::test_options();
    o.hubs = 2;
    weft::Runtime rt(o);
    weft::Mutex m;
    for (unsigned hub : {0u, 1u, 0u}) {
        std::promise<bool> locked;
        rt.hub(hub).post([&] {
            weft::spawn("user", [&] {
                const bool ok = static_cast<bool>(m.lock());
                if (ok) m.unlock();
                locked.set_value(ok);
            }).detach();
        });
        EXPECT_TRUE(locked.get_future().get()) << "hub " << hub;
    }
}

// Before any hub used it, a thread that is no hub's may (a plugin's init); the first hub to
// use it then owns it.
TEST(SyncOwnership, UseBeforeAnyHubLeavesItUnclaimed) {
    weft::Mutex m;
    ASSERT_TRUE(m.lock());
    m.unlock();
    weft::run([&] {
        ASSERT_TRUE(m.lock());
        m.unlock();
    });
}

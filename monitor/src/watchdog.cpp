// The watchdog's threads: a detector thread reads every hub's probe each check period and lets
// the EpisodeTracker decide (episode_tracker.cpp); for a new blockage it takes the facts that
// only exist now (the native stack by signal, CPU time, the system call, the fiber trees) and
// hands them to a reporter thread, which symbolizes, collapses and hands each report, and later
// its closing record, to every ReportSink. Symbolization (slow the first time, very slow under
// sanitizers) and slow sinks or subscribers therefore never delay detection, nor the measurement
// of when a blockage ends. The detector also samples RSS for the memory monitor. Both only read
// what hubs publish; they never write hub-owned data.
#include "weft/monitor/watchdog.hpp"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <thread>

#include <fmt/format.h>

#include "display.hpp"
#include "episode_tracker.hpp"
#include "json_file_sink.hpp"
#include "log_sink.hpp"
#include "monitor_clock.hpp"
#include "recent_reports_sink.hpp"
#include "report_json.hpp"
#include "report_sink.hpp"
#include "stack_capture.hpp"
#include "subscriber_list.hpp"
#include "subscriber_sink.hpp"
#include "symbolizer.hpp"
#include "syscall_advice.hpp"
#include "thread_inspect.hpp"
#include "weft/core/internal/hub_probe.hpp"
#include "weft/core/log.hpp"
#include "weft/monitor/run_info.hpp"

namespace weft::monitor {

namespace {

constexpr std::size_t kStackCopyBytes = 256 * 1024;
constexpr auto kCaptureTimeout = std::chrono::milliseconds(100);
constexpr std::size_t kFibersPerHubInReport = 64;

std::uint64_t sum_buckets(const LatencyHistogram& h) noexcept {
    std::uint64_t n = 0;
    for (const auto& b : h.buckets)
        n += b.load(std::memory_order_relaxed);
    return n;
}

// The SIGUSR1 hook: a process-wide eventfd that is never closed (so a handler can always write
// to it) and the watchdog that currently listens to it.
std::atomic<int> g_dump_fd{-1};
std::mutex g_dump_mu;
void on_dump_signal(int) {
    int saved = errno;
    int fd = g_dump_fd.load(std::memory_order_relaxed);
    if (fd >= 0) {
        std::uint64_t one = 1;
        ssize_t w = ::write(fd, &one, sizeof one);
        (void)w;
    }
    errno = saved;
}

// The per-hub blocking metrics, each a value of a hub's totals.
struct HubFamily {
    const char* name;
    const char* help;
    const char* unit;
    MetricType type;
    double (*value)(const HubBlockingStats& st, double threshold_s);
};
constexpr HubFamily kHubFamilies[] = {
    {"weft_hub_blocking_events_total",
     "Blockages detected by the watchdog (a hub held by one fiber or by its own loop for longer "
     "than the threshold), except those the code allowed.",
     "", MetricType::counter,
     [](const HubBlockingStats& st, double) { return static_cast<double>(st.events); }},
    {"weft_hub_blocking_seconds_total",
     "Total measured duration of the blockages that ended, except those the code allowed.",
     "seconds", MetricType::counter, [](const HubBlockingStats& st, double) { return st.seconds; }},
    {"weft_hub_blocking_allowed_events_total",
     "Blockages by code that allowed itself to block its hub (monitor::AllowBlocking): "
     "reported as allowed, not counted in weft_hub_blocking_events_total.",
     "", MetricType::counter,
     [](const HubBlockingStats& st, double) { return static_cast<double>(st.allowed_events); }},
    {"weft_hub_blocking_allowed_seconds_total",
     "Total measured duration of the allowed blockages that ended.", "seconds", MetricType::counter,
     [](const HubBlockingStats& st, double) { return st.allowed_seconds; }},
    {"weft_hub_blocking_reports_dropped_total",
     "Blockages (allowed or not) counted but not reported because of the per-minute rate limit "
     "or a stuck reporter.",
     "", MetricType::counter,
     [](const HubBlockingStats& st, double) { return static_cast<double>(st.dropped); }},
    {"weft_hub_blocked_seconds",
     "How long the hub has been blocked by the blockage in progress (not allowed), 0 while "
     "none: a hub stuck for good grows here, where the counters wait for the blockage to end.",
     "seconds", MetricType::gauge,
     [](const HubBlockingStats& st, double) { return st.blocked_for; }},
    {"weft_hub_blocking_threshold_seconds", "The watchdog's max_blocking_time.", "seconds",
     MetricType::gauge, [](const HubBlockingStats&, double threshold_s) { return threshold_s; }},
};

}  // namespace

struct Watchdog::Impl {
    Runtime& rt;
    MonitorSettings s;
    std::shared_ptr<spdlog::logger> log;
    std::int64_t threshold_ns;
    std::int64_t period_ns;
    bool stats;

    int wake_fd = -1;
    std::atomic<bool> stop{false};
    std::atomic<bool> dump_requested{false};
    std::thread thread;    // the detector
    std::thread reporter;  // symbolizes, collapses, hands to the sinks

    // Detector -> reporter, in order (a report always before its closing record).
    struct PendingReport {
        BlockingReport report;
        bool have_stack = false;
        detail::RawStack raw;
        std::uint64_t pc_only = 0;  // a lone pc when only that is known
    };
    struct Job {
        enum Kind { report, end, dump } kind;
        std::unique_ptr<PendingReport> pending;
        BlockingEnd end_record;
        std::uint64_t requests = 0;  // dump: the requests it answers
    };
    std::mutex jobs_mu;
    std::condition_variable jobs_cv;
    std::deque<Job> jobs;
    bool jobs_closed = false;
    static constexpr std::size_t kMaxJobs = 256;

    // Detector thread only.
    // Run-info dumps: one per kDumpInterval at most (with 5,000 fibers one is ~1 MB of log);
    // requests in between are merged into one dump at the end of the interval.
    static constexpr std::int64_t kDumpIntervalNs = 5'000'000'000;
    std::int64_t last_dump_ns = 0;
    std::uint64_t dump_requests = 0;  // not yet answered
    struct CpuBaseline {  // the hub thread's scheduler times when its slice was first seen
        detail::SchedSample sched;
        std::int64_t at_ns = 0;
    };
    std::vector<CpuBaseline> baselines;
    // A reported blockage's hub thread as its report read it, and as the last check that still
    // saw it blocked read it: what held the hub between the two (its end is noticed up to a
    // check period late, and the hub's next work must not count).
    struct AfterReport {
        std::uint64_t report_id = 0;  // 0: none open
        int tid = 0;
        CpuBaseline base;
        detail::SyscallState base_sys;
        CpuBaseline last;
        detail::SyscallState last_sys;
    };
    // `s` (the thread's scheduler times) with its CPU time from the thread's CPU clock, which
    // the kernel brings up to date at every read (schedstat's total only at ticks and switches).
    static CpuBaseline exact_cpu(int tid, detail::SchedSample s, std::int64_t at_ns) {
        if (const std::int64_t cpu = detail::thread_cpu_ns(tid); cpu >= 0) s.cpu_ns = cpu;
        return {s, at_ns};
    }
    std::vector<AfterReport> after_report;
    detail::CaptureSlot* slot = nullptr;
    std::unique_ptr<char[]> stack_buf;
    detail::Symbolizer symbolizer;  // reporter thread only

    detail::SystemMonitorClock clock;
    detail::EpisodeTracker episodes;

    // The sinks, in the order they get each record: the ring first, so that /debug/blocking
    // already shows a report when a subscriber hears of it.
    detail::RecentReportsSink* recent = nullptr;
    detail::SubscriberSink* subscribers = nullptr;
    std::vector<std::unique_ptr<detail::ReportSink>> sinks;
    // Set by set_annotator() while the reporter may already run: read under the lock.
    std::mutex annotator_mu;
    std::function<void(BlockingReport&)> annotator;

    using MemorySubscribers = detail::SubscriberList<MemoryEvent>;
    std::shared_ptr<MemorySubscribers> mem_above_subs = std::make_shared<MemorySubscribers>();
    std::shared_ptr<MemorySubscribers> mem_below_subs = std::make_shared<MemorySubscribers>();

    std::mutex mem_mu;
    bool mem_above = false;
    std::uint64_t mem_peak = 0;
    std::atomic<std::uint64_t> mem_last{0};
    std::atomic<bool> mem_over{false};

    std::atomic<int> hooked_signal{-1};
    struct sigaction prev_action {};

    Impl(Runtime& r, MonitorSettings settings)
        : rt(r),
          s(std::move(settings)),
          log(weft::logger(s.logger_name)),
          threshold_ns(s.max_blocking_time.count()),
          period_ns(
              std::clamp<std::int64_t>(s.max_blocking_time.count() / 5, 1'000'000, 1'000'000'000)),
          stats(r.options().collect_stats),
          baselines(r.hub_count()),
          after_report(r.hub_count()),
          episodes(r.hub_count(),
                   {threshold_ns, period_ns, s.reports_per_minute, r.options().collect_stats,
                    std::max<std::size_t>(1024, s.recent_reports + 1)},
                   clock) {
        auto ring = std::make_unique<detail::RecentReportsSink>(s.recent_reports);
        recent = ring.get();
        sinks.push_back(std::move(ring));
        sinks.push_back(std::make_unique<detail::LogSink>(log, s.print_blocking_reports));
        // Disabled, the watchdog writes no report: its file is not created.
        if (!s.reports_file.empty() && s.enabled)
            sinks.push_back(std::make_unique<detail::JsonFileSink>(s.reports_file));
        auto subs = std::make_unique<detail::SubscriberSink>(log);
        subscribers = subs.get();
        sinks.push_back(std::move(subs));
    }

    // ---- the loop ------------------------------------------------------------------------

    void run() {
        sigset_t all;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, nullptr);  // signals are for the hubs and main
        pthread_setname_np(pthread_self(), "weft-watchdog");
        std::int64_t next_mem = weft::now_ns() + s.memory_period.count();
        while (!stop.load(std::memory_order_acquire)) {
            wait(period_ns);
            if (stop.load(std::memory_order_acquire)) break;
            if (dump_requested.exchange(false)) ++dump_requests;
            if (dump_requests > 0 &&
                (last_dump_ns == 0 || weft::now_ns() - last_dump_ns >= kDumpIntervalNs)) {
                last_dump_ns = weft::now_ns();
                enqueue(Job{Job::dump, nullptr, {}, dump_requests});
                dump_requests = 0;
            }
            try {
                tick();
            } catch (const std::exception& ex) {
                log->error("watchdog: {}; carrying on", ex.what());
            } catch (...) {
                log->error("watchdog: unknown error; carrying on");
            }
            if (s.memory_max && weft::now_ns() >= next_mem) {
                next_mem = weft::now_ns() + s.memory_period.count();
                try {
                    check_memory();
                } catch (...) {
                    log->error("memory monitor failed; carrying on");
                }
            }
        }
    }

    void run_reporter() {
        sigset_t all;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, nullptr);
        pthread_setname_np(pthread_self(), "weft-reporter");
        try {
            symbolizer.warm();
        } catch (...) {
        }
        for (;;) {
            Job job;
            {
                std::unique_lock<std::mutex> g(jobs_mu);
                jobs_cv.wait(g, [&] { return !jobs.empty() || jobs_closed; });
                if (jobs.empty()) return;  // closed and drained
                job = std::move(jobs.front());
                jobs.pop_front();
            }
            try {
                switch (job.kind) {
                    case Job::report:
                        publish(*job.pending);
                        break;
                    case Job::end:
                        publish(job.end_record);
                        break;
                    case Job::dump:
                        dump_run_info(job.requests);
                        break;
                }
            } catch (const std::exception& ex) {
                sink("reporter",
                     [&] { log->error("watchdog reporter: {}; carrying on", ex.what()); });
            } catch (...) {
            }
        }
    }

    // False when the queue is full (the reporter is stuck in a sink): the job is dropped. A
    // closing record is never refused: there is at most one per report taken and not yet
    // closed (those queued, and one open episode per hub), and a dropped one would leave its
    // report open for good (in /debug/blocking, in the file).
    bool enqueue(Job job) {
        {
            std::lock_guard<std::mutex> g(jobs_mu);
            if (job.kind != Job::end && jobs.size() >= kMaxJobs) return false;
            jobs.push_back(std::move(job));
        }
        jobs_cv.notify_one();
        return true;
    }

    void wait(std::int64_t ns) {
        struct pollfd fds[2];
        int n = 0;
        fds[n++] = {wake_fd, POLLIN, 0};
        int dump_fd = hooked_signal >= 0 ? g_dump_fd.load() : -1;
        if (dump_fd >= 0) fds[n++] = {dump_fd, POLLIN, 0};
        struct timespec ts {
            static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)
        };
        if (::ppoll(fds, static_cast<nfds_t>(n), &ts, nullptr) > 0) {
            std::uint64_t v;
            if (fds[0].revents & POLLIN) {
                ssize_t r = ::read(wake_fd, &v, sizeof v);
                (void)r;
            }
            if (n > 1 && (fds[1].revents & POLLIN)) {
                ssize_t r = ::read(dump_fd, &v, sizeof v);
                (void)r;
                dump_requested.store(true);
            }
        }
    }

    // Looks at every hub first, then captures what the new blockages need: a slow capture never
    // delays the measurement of another hub's blockage.
    void tick() {
        std::vector<std::pair<unsigned, detail::Detection>> detected;
        for (unsigned i = 0; i < rt.hub_count(); ++i) {
            detail::HubSample sample = read_probe(weft::internal::probe(rt.hub(i)));
            detail::Observation o = episodes.observe(i, sample);
            if (o.ended) {
                judge_after_report(i, *o.ended);
                (void)enqueue(Job{Job::end, nullptr, std::move(*o.ended)});  // has room
            } else if (AfterReport& a = after_report[i]; a.report_id != 0) {
                a.last = exact_cpu(a.tid, detail::sched_sample(a.tid), weft::now_ns());
                a.last_sys = detail::read_syscall(a.tid);
            }
            if (o.watch_began) baselines[i] = {detail::sched_sample(sample.tid), weft::now_ns()};
            if (o.detected) detected.emplace_back(i, *o.detected);
        }
        for (const auto& [i, d] : detected) {
            try {
                report(i, d);
            } catch (...) {
                // Out of memory for the report: it was never made, so no closing record either
                // (the blockage is counted, as a dropped report). The other hubs' go on.
                episodes.abandon(i, d.suppressed_before);
                after_report[i].report_id = 0;
                log->error("watchdog: the report of hub {}'s blockage could not be made", i);
            }
        }
    }

    detail::HubSample read_probe(const HubProbe& p) const {
        detail::HubSample s;
        s.epoch = p.epoch.load(std::memory_order_relaxed);
        s.running = p.activity.load(std::memory_order_relaxed) == HubActivity::running;
        s.tid = p.tid.load(std::memory_order_relaxed);
        s.running_fiber = p.running_fiber.load(std::memory_order_relaxed);
        // Allowed by the fiber holding the hub, not by one that waits inside its scope.
        s.blocking_allowed =
            p.blocking_allowed.load(std::memory_order_relaxed) > 0 &&
            p.blocking_allowed_fiber.load(std::memory_order_relaxed) == s.running_fiber;
        if (stats) {
            s.slice_start_ns = p.slice_start_ns.load(std::memory_order_relaxed);
            s.slices = sum_buckets(p.run_duration);
            s.slice_ns = p.run_duration.sum_ns.load(std::memory_order_relaxed);
        }
        return s;
    }

    // The cause from the report to the last check that saw the hub still blocked. Left unknown
    // when no check came between (a tail under a check period), or without the times spent
    // waiting for a CPU (schedstat). The kernel counts a wait for a CPU only once it ends: a
    // thread running (not asleep, in a system call or a page fault) at both samples that never
    // went to sleep in between was runnable all along, whatever part of its wait is not counted
    // yet.
    void judge_after_report(unsigned i, BlockingEnd& e) {
        AfterReport& a = after_report[i];
        const bool mine = e.report_id != 0 && a.report_id == e.report_id;
        a.report_id = 0;
        if (!mine || a.last.at_ns <= a.base.at_ns) return;
        if (a.base.sched.wait_ns < 0 || a.last.sched.wait_ns < 0) return;
        const bool running_both =
            a.base_sys.valid && a.base_sys.running && a.last_sys.valid && a.last_sys.running;
        e.cause_after_report =
            detail::classify_blockage(a.base.sched, a.last.sched,
                                      static_cast<double>(a.last.at_ns - a.base.at_ns), a.last_sys,
                                      running_both)
                .cause;
    }

    void publish(const BlockingEnd& e) {
        for (auto& k : sinks)
            sink(k->name(), [&] { k->on_end(e); });
    }

    // ---- one report ----------------------------------------------------------------------

    void report(unsigned i, const detail::Detection& d) {
        const CpuBaseline& base = baselines[i];
        const Hub& hub = rt.hub(i);
        const HubProbe& p = weft::internal::probe(hub);
        int tid = p.tid.load(std::memory_order_relaxed);

        BlockingReport r;
        r.id = d.report_id;
        r.when = clock.wall();
        r.hub = i;
        r.tid = tid;
        r.threshold_s = static_cast<double>(threshold_ns) / 1e9;
        r.blocked_s = static_cast<double>(clock.now_ns() - d.start_ns) / 1e9;
        r.suppressed_before = d.suppressed_before;
        r.allowed = d.allowed;

        // What the thread does, read before the capture signal disturbs it.
        detail::SchedSample sched = detail::sched_sample(tid);
        std::int64_t sched_ns = weft::now_ns();
        detail::SyscallState sys = detail::read_syscall(tid);
        r.wchan = detail::read_wchan(tid);
        r.thread_name = detail::thread_name(tid);
        bool in_syscall = sys.valid && !sys.running && sys.nr >= 0;
        detail::CauseEstimate cause =
            detail::judge_blockage(tid, base.sched, base.at_ns, sched, sched_ns, sys);
        r.cause = cause.cause;
        {  // the same samples, with the exact CPU time
            const CpuBaseline at_report = exact_cpu(tid, sched, sched_ns);
            after_report[i] = {d.report_id, tid, at_report, sys, at_report, sys};
        }
        r.cpu_share = cause.cpu_share;
        r.cpu_wait_share = cause.cpu_wait_share;
        r.own_lock = detail::waits_for_own_lock(sys, tid);
        if (sys.valid && !sys.running && sys.nr >= 0) {
            r.syscall_nr = sys.nr;
            r.syscall = detail::syscall_name(sys.nr);
            r.syscall_detail = detail::syscall_detail(sys);
        }

        auto pending = std::make_unique<PendingReport>();
        if (in_syscall && !s.stacks_in_system_calls) {
            r.stack_note = fmt::format(
                "no stack: the hub is in a system call ({}) and [monitor] stacks_in_system_calls "
                "is off (the capture signal would end the call early)",
                r.syscall.empty() ? std::to_string(sys.nr) : r.syscall);
        } else {
            capture_stack(*pending, r, tid, d.fiber);
        }

        // The fiber, from the capture when there is one, else from the probe.
        if (r.fiber_id == 0) r.fiber_id = d.fiber;
        std::vector<FiberInfo> fibers = hub.fibers();
        for (const auto& f : fibers) {
            if (f.id != r.fiber_id || r.fiber_id == 0) continue;
            if (r.fiber_name.empty()) r.fiber_name = f.name;
            r.parent_id = f.parent;
            r.spawn_file = detail::display_path(f.spawn_file ? f.spawn_file : "");
            r.spawn_line = f.spawn_line;
            r.spawn_function = f.spawn_function ? f.spawn_function : "";
        }
        episodes.describe(i, r.fiber_id, r.fiber_name);

        if (s.track_fiber_tree) r.hubs = snapshot_hubs(rt, kFibersPerHubInReport, r.fiber_id);
        r.threads = snapshot_threads(&rt);
        pending->report = std::move(r);
        // The reporter is stuck (a sink that never returns): count it as dropped.
        if (!enqueue(Job{Job::report, std::move(pending), {}})) {
            episodes.abandon(i, d.suppressed_before);
            after_report[i].report_id = 0;
        }
    }

    // Reporter side: symbolize, collapse, hand to the sinks.
    void publish(PendingReport& p) {
        BlockingReport& r = p.report;
        if (p.have_stack) {
            try {
                r.stack = symbolizer.stack(p.raw, r.tid, r.stack_note);
            } catch (const std::exception& ex) {
                r.stack_note = std::string("symbolization failed: ") + ex.what();
            }
        } else if (p.pc_only) {
            r.stack.push_back(symbolizer.describe(p.pc_only, true));
        }
        detail::explain_system_call(r, rt.options().patch_syscalls);
        std::function<void(BlockingReport&)> annotate;
        {
            std::lock_guard<std::mutex> g(annotator_mu);
            annotate = annotator;
        }
        if (annotate) sink("annotator", [&] { annotate(r); });
        episodes.collapse(r);
        for (auto& k : sinks)
            sink(k->name(), [&] { k->on_report(r); });
    }

    // Detector side: the signal, and copying the stack out of the slot while it is fresh.
    // `fiber`: the one the probe saw blocking (0: the hub's loop itself).
    void capture_stack(PendingReport& p, BlockingReport& r, int tid, FiberId fiber) {
        if (!slot) {
            r.stack_note =
                "no stack: stack capture is unavailable (no free realtime signal or capture slot)";
            return;
        }
        slot->stack_buf = stack_buf.get();
        slot->stack_cap = kStackCopyBytes;
        detail::CaptureResult res = detail::CaptureResult::unavailable;
        for (int attempt = 0; attempt < 3; ++attempt) {
            res = detail::capture(*slot, tid, kCaptureTimeout);
            if (res != detail::CaptureResult::ok) break;
            if (slot->status != detail::CaptureStatus::in_switch) break;
            detail::finish(*slot);  // caught mid-switch: try again in a moment
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        switch (res) {
            case detail::CaptureResult::ok:
                break;
            case detail::CaptureResult::timed_out:
                r.stack_note = fmt::format(
                    "no stack: the thread did not answer the capture signal ({}) within {} ms",
                    detail::capture_signal(), kCaptureTimeout.count());
                // Queued for a CPU, the thread may also be stopped inside the signal's handler,
                // where the signal is blocked: the mask says nothing then.
                if (r.cause == BlockingCause::waiting_for_cpu)
                    r.stack_note += "; the thread is waiting for a CPU";
                else if (detail::signal_blocked(tid, detail::capture_signal()))
                    r.stack_note += "; the signal is blocked in the thread's signal mask";
                return;
            case detail::CaptureResult::send_failed:
                r.stack_note =
                    fmt::format("no stack: cannot signal thread {}: {}", tid, std::strerror(errno));
                return;
            case detail::CaptureResult::unavailable:
                r.stack_note = "no stack: stack capture is unavailable";
                return;
        }
        // The blockage may have ended between its detection and the signal (the /proc reads
        // and other hubs' captures come first): a stack of whatever ran then would blame the
        // wrong fiber, request and plugin.
        const bool named = slot->status == detail::CaptureStatus::ok ||
                           slot->status == detail::CaptureStatus::no_stack;
        if (named && slot->fiber_id != fiber) {
            r.stack_note = fmt::format(
                "no stack: the blockage ended before the capture signal came (fiber {} was "
                "running by then)",
                slot->fiber_id);
            detail::finish(*slot);
            return;
        }
        if (named) {
            // The fiber and its request, with or without a stack.
            r.fiber_id = slot->fiber_id;
            r.fiber_name = slot->fiber_name;
            for (int k = 0; k < slot->label_count; ++k) {
                const auto& l = slot->labels[k];
                std::string v(l.value, l.value_len);
                if (l.truncated) v += "...";
                r.labels.emplace_back(std::string(l.key, l.key_len), std::move(v));
            }
        }
        switch (slot->status) {
            case detail::CaptureStatus::ok:
                p.raw = detail::copy_out(*slot);
                p.have_stack = true;
                break;
            case detail::CaptureStatus::in_switch:
                r.stack_note = "no stack: the thread was switching between fibers each time";
                break;
            case detail::CaptureStatus::not_a_hub:
                r.stack_note = "no stack: the signalled thread runs no hub any more";
                break;
            case detail::CaptureStatus::no_stack:
                r.stack_note = "no stack: the stack pointer was outside the fiber's stack";
                p.pc_only = slot->regs[16];
                break;
        }
        detail::finish(*slot);
    }

    template <class F>
    void sink(const char* name, F&& f) {
        try {
            f();
        } catch (const std::exception& ex) {
            try {
                log->error("blocking report sink '{}' failed: {}; the watchdog carries on", name,
                           ex.what());
            } catch (...) {
            }
        } catch (...) {
        }
    }

    void dump_run_info(std::uint64_t requests) {
        sink("run-info dump", [&] {
            if (requests > 1)
                log->warn(
                    "run-info dump requested ({} requests merged: one dump every {} s at most)\n{}",
                    requests, kDumpIntervalNs / 1'000'000'000, format_run_info(rt));
            else
                log->warn("run-info dump requested\n{}", format_run_info(rt));
        });
    }

    // ---- memory --------------------------------------------------------------------------

    void check_memory() {
        if (s.memory_max == 0) return;
        std::uint64_t rss = detail::resident_bytes();
        if (rss == 0) return;
        MemoryEvent ev;
        bool fire_above = false, fire_below = false;
        {
            std::lock_guard<std::mutex> g(mem_mu);
            mem_peak = std::max(mem_peak, rss);
            mem_last.store(rss, std::memory_order_relaxed);
            ev = {rss, s.memory_max, mem_peak, rss > s.memory_max};
            if (rss > s.memory_max && !mem_above) {
                mem_above = true;
                fire_above = true;
            } else if (rss <= s.memory_max && mem_above) {
                mem_above = false;
                fire_below = true;
            }
            mem_over.store(mem_above, std::memory_order_relaxed);
        }
        if (fire_above) {
            sink("log", [&] {
                log->warn("memory usage {} bytes is above the limit of {} bytes", rss,
                          s.memory_max);
            });
            mem_above_subs->emit(ev, *log, "on_memory_above");
        }
        if (fire_below) {
            sink("log", [&] {
                log->warn("memory usage {} bytes is back under the limit of {} bytes (peak {})",
                          rss, s.memory_max, ev.peak_bytes);
            });
            mem_below_subs->emit(ev, *log, "on_memory_below");
        }
    }
};

// ---------------------------------------------------------------------------------------------

Watchdog::Watchdog(Runtime& rt, MonitorSettings settings) {
    if (auto errs = validate(settings); !errs.empty()) {
        std::string msg;
        for (const auto& e : errs)
            msg += (msg.empty() ? "" : "; ") + e.message();
        throw std::invalid_argument("monitor settings: " + msg);
    }
    impl_ = std::make_unique<Impl>(rt, std::move(settings));
    Impl& d = *impl_;
    d.wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (d.wake_fd < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
    if (!d.s.enabled) return;
    if (detail::install_capture_handler() >= 0) {
        d.slot = detail::acquire_slot();
        if (d.slot) d.stack_buf.reset(new char[kStackCopyBytes]);
    }
    if (!d.slot)
        d.log->warn("watchdog: native stack capture is unavailable; reports have no stack");
    d.reporter = std::thread([&d] { d.run_reporter(); });
    d.thread = std::thread([&d] { d.run(); });
}

Watchdog::~Watchdog() {
    Impl& d = *impl_;
    d.stop.store(true, std::memory_order_release);
    std::uint64_t one = 1;
    ssize_t w = ::write(d.wake_fd, &one, sizeof one);
    (void)w;
    if (d.thread.joinable()) d.thread.join();
    {
        std::lock_guard<std::mutex> g(d.jobs_mu);
        d.jobs_closed = true;  // the reporter writes what is queued, then ends
    }
    d.jobs_cv.notify_all();
    if (d.reporter.joinable()) d.reporter.join();
    if (d.hooked_signal >= 0) {
        std::lock_guard<std::mutex> g(g_dump_mu);
        sigaction(d.hooked_signal, &d.prev_action, nullptr);
    }
    if (d.slot) detail::release_slot(d.slot);
    ::close(d.wake_fd);
}

const MonitorSettings& Watchdog::settings() const noexcept {
    return impl_->s;
}
std::chrono::nanoseconds Watchdog::check_period() const noexcept {
    return std::chrono::nanoseconds(impl_->period_ns);
}

Subscription Watchdog::on_blocked(std::function<void(const BlockingReport&)> fn) {
    return Subscription(impl_->subscribers->add_blocked(std::move(fn)));
}
void Watchdog::set_annotator(std::function<void(BlockingReport&)> fn) {
    std::lock_guard<std::mutex> g(impl_->annotator_mu);
    impl_->annotator = std::move(fn);
}
Subscription Watchdog::on_unblocked(std::function<void(const BlockingEnd&)> fn) {
    return Subscription(impl_->subscribers->add_unblocked(std::move(fn)));
}
Subscription Watchdog::on_memory_above(std::function<void(const MemoryEvent&)> fn) {
    return Subscription(impl_->mem_above_subs->add(std::move(fn)));
}
Subscription Watchdog::on_memory_below(std::function<void(const MemoryEvent&)> fn) {
    return Subscription(impl_->mem_below_subs->add(std::move(fn)));
}

std::string Watchdog::recent_reports_json() const {
    const Impl& d = *impl_;
    std::vector<HubBlockingStats> totals;
    for (unsigned i = 0; i < d.episodes.hub_count(); ++i)
        totals.push_back(d.episodes.stats(i));
    return detail::debug_blocking_json(d.s.enabled, static_cast<double>(d.threshold_ns) / 1e9,
                                       totals, d.recent->entries(), d.episodes.stacks());
}

std::vector<BlockingReport> Watchdog::recent_reports() const {
    return impl_->recent->reports();
}

HubBlockingStats Watchdog::hub_stats(unsigned hub) const {
    if (hub >= impl_->episodes.hub_count())
        throw std::out_of_range("Watchdog::hub_stats: no such hub");
    return impl_->episodes.stats(hub);
}

std::string Watchdog::run_info() const {
    return format_run_info(impl_->rt);
}

void Watchdog::request_run_info_dump() noexcept {
    if (!impl_->s.enabled) {
        // No thread to hand it to: the caller's (a signal-handling loop, not a handler).
        impl_->dump_run_info(1);
        return;
    }
    impl_->dump_requested.store(true);
    std::uint64_t one = 1;
    ssize_t w = ::write(impl_->wake_fd, &one, sizeof one);
    (void)w;
}

void Watchdog::install_run_info_signal(int signo) {
    Impl& d = *impl_;
    if (!d.s.enabled)
        throw std::logic_error("install_run_info_signal: the watchdog is disabled (no thread)");
    std::lock_guard<std::mutex> g(g_dump_mu);
    if (g_dump_fd.load() < 0) {
        int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (fd < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
        g_dump_fd.store(fd);
    }
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_handler = &on_dump_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    struct sigaction prev;
    if (sigaction(signo, &sa, &prev) != 0)
        throw std::system_error(errno, std::generic_category(), "sigaction");
    if (d.hooked_signal < 0) d.prev_action = prev;
    d.hooked_signal = signo;
    // Wake the thread so that it starts polling the signal's eventfd now.
    std::uint64_t one = 1;
    ssize_t w = ::write(d.wake_fd, &one, sizeof one);
    (void)w;
}

void Watchdog::check_memory_now() {
    impl_->check_memory();
}

CollectorHandle Watchdog::add_metrics(Registry& registry) const {
    const Impl* d = impl_.get();
    return registry.add_collector([d](std::vector<MetricFamily>& out) {
        const double threshold_s = static_cast<double>(d->threshold_ns) / 1e9;
        std::vector<HubBlockingStats> stats;
        for (unsigned i = 0; i < d->episodes.hub_count(); ++i)
            stats.push_back(d->episodes.stats(i));
        // Off, nothing is measured: no series, rather than zeros that read as "no blockage".
        for (const HubFamily& f : kHubFamilies) {
            if (!d->s.enabled) break;
            MetricFamily m{f.name, f.help, f.unit, f.type, {}, {}};
            for (unsigned i = 0; i < stats.size(); ++i)
                m.samples.push_back({{{"hub", std::to_string(i)}}, f.value(stats[i], threshold_s)});
            out.push_back(std::move(m));
        }
        if (d->s.memory_max) {
            out.push_back({"weft_monitor_memory_max_bytes",
                           "The memory monitor's RSS limit (WEFT_MONITOR_MEMORY_MAX).",
                           "bytes",
                           MetricType::gauge,
                           {{{}, static_cast<double>(d->s.memory_max)}},
                           {}});
            out.push_back({"weft_monitor_memory_over_limit",
                           "1 while the resident set size is above the memory monitor's limit.",
                           "",
                           MetricType::gauge,
                           {{{}, d->mem_over.load() ? 1.0 : 0.0}},
                           {}});
        }
    });
}

}  // namespace weft::monitor

// Collectors for the hub probes, the process (/proc/self) and the build.
#include "weft/monitor/standard_metrics.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>

#include "weft/core/internal/hub_probe.hpp"
#include "weft/core/internal/offload_stats.hpp"
#include "weft/core/runtime.hpp"

#ifndef WEFT_VERSION
#define WEFT_VERSION "unknown"
#endif
#ifndef WEFT_BUILD_TYPE
#define WEFT_BUILD_TYPE "unknown"
#endif
#ifndef WEFT_SANITIZERS
#define WEFT_SANITIZERS "none"
#endif

namespace weft::monitor {

namespace {

MetricFamily::HistogramSample from_probe(const LatencyHistogram& h, LabelSet labels) {
    MetricFamily::HistogramSample s;
    s.labels = std::move(labels);
    auto b = latency_buckets_seconds();
    s.bounds.assign(b.begin(), b.end());
    s.counts.resize(LatencyHistogram::kBuckets);
    for (std::size_t i = 0; i < LatencyHistogram::kBuckets; ++i)
        s.counts[i] = h.buckets[i].load(std::memory_order_relaxed);
    s.sum = static_cast<double>(h.sum_ns.load(std::memory_order_relaxed)) / 1e9;
    return s;
}

std::string slurp(const char* path) {
    std::string out;
    int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return out;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0)
        out.append(buf, static_cast<std::size_t>(n));
    ::close(fd);
    return out;
}

// A pool of threads that fibers hand blocking work to: the offload pool (weft::offload) or the
// resolver threads (name lookups). `prefix` names the families; `pool` and `tasks` ("offload
// tasks") are words of their help.
void add_pool_families(const weft::internal::OffloadStats& st, const std::string& prefix,
                       const std::string& pool, const std::string& tasks,
                       std::vector<MetricFamily>& out) {
    auto gauge = [&](const char* name, const std::string& help, double v) {
        out.push_back({prefix + name, help, "", MetricType::gauge, {{{}, v}}, {}});
    };
    gauge("_threads", "Threads of the " + pool + " started so far.", st.threads);
    gauge("_max_threads", "Size of the " + pool + " (threads start on demand).", st.max_threads);
    gauge("_busy_threads", "Threads of the " + pool + " running a task now.", st.busy_threads);
    std::string capitalized = tasks;
    if (!capitalized.empty())
        capitalized[0] =
            static_cast<char>(std::toupper(static_cast<unsigned char>(capitalized[0])));
    gauge("_queue_length", capitalized + " waiting for a thread.", static_cast<double>(st.queued));
    out.push_back({prefix + "_tasks_started_total",
                   capitalized + " a thread has taken.",
                   "",
                   MetricType::counter,
                   {{{}, static_cast<double>(st.started)}},
                   {}});
    out.push_back({prefix + "_tasks_withdrawn_total",
                   capitalized +
                       " whose caller stopped waiting (deadline or cancel) before a thread "
                       "took them; they never ran.",
                   "",
                   MetricType::counter,
                   {{{}, static_cast<double>(st.withdrawn)}},
                   {}});
    MetricFamily wait{prefix + "_queue_wait_seconds",
                      "How long " + tasks + " waited in the queue for a thread.",
                      "seconds",
                      MetricType::histogram,
                      {},
                      {}};
    MetricFamily::HistogramSample h;
    auto b = latency_buckets_seconds();
    h.bounds.assign(b.begin(), b.end());
    h.counts.assign(st.queue_wait_buckets.begin(), st.queue_wait_buckets.end());
    h.sum = static_cast<double>(st.queue_wait_sum_ns) / 1e9;
    wait.histograms.push_back(std::move(h));
    out.push_back(std::move(wait));
}

}  // namespace

CollectorHandle add_hub_metrics(Registry& registry, const Runtime& rt) {
    const Runtime* r = &rt;
    return registry.add_collector([r](std::vector<MetricFamily>& out) {
        MetricFamily run{"weft_hub_run_duration_seconds",
                         "How long each fiber slice held its hub (from resume to the next switch).",
                         "seconds",
                         MetricType::histogram,
                         {},
                         {}};
        MetricFamily delay{"weft_hub_schedule_delay_seconds",
                           "Time from a fiber becoming ready to it running, every wakeup.",
                           "seconds",
                           MetricType::histogram,
                           {},
                           {}};
        MetricFamily lag{"weft_hub_lag_seconds",
                         "Lateness of the hub's periodic probe timer (its interval subtracted).",
                         "seconds",
                         MetricType::histogram,
                         {},
                         {}};
        MetricFamily busy{
            "weft_hub_busy_seconds_total",
            "Time the hub thread spent running fibers and its loop, and on a CPU in the kernel "
            "inside its I/O poll (io_uring does the hub's sends and receives there).",
            "seconds",
            MetricType::counter,
            {},
            {}};
        MetricFamily idle{"weft_hub_idle_seconds_total",
                          "Time the hub thread spent waiting for I/O or timers, off a CPU.",
                          "seconds",
                          MetricType::counter,
                          {},
                          {}};
        MetricFamily fibers{
            "weft_hub_fibers", "Fibers on the hub, by state.", "", MetricType::gauge, {}, {}};
        MetricFamily spawned{"weft_hub_fibers_spawned_total",
                             "Fibers spawned on the hub.",
                             "",
                             MetricType::counter,
                             {},
                             {}};
        MetricFamily patched{"weft_patched_calls_total",
                             "Blocking libc calls made by the hub's fibers that syscall patching "
                             "handled, by call (only calls made at least once are listed).",
                             "",
                             MetricType::counter,
                             {},
                             {}};
        MetricFamily patched_waits{"weft_patched_call_waits_total",
                                   "Patched calls that would have blocked and parked their fiber "
                                   "instead, by call.",
                                   "",
                                   MetricType::counter,
                                   {},
                                   {}};
        for (unsigned i = 0; i < r->hub_count(); ++i) {
            const HubProbe& p = weft::internal::probe(r->hub(i));
            for (std::size_t c = 0; c < weft::internal::kPatchedCallCount; ++c) {
                const auto n = p.patched_calls[c].load(std::memory_order_relaxed);
                if (n == 0) continue;
                const char* call =
                    weft::internal::patched_call_name(static_cast<weft::internal::PatchedCall>(c));
                LabelSet cl{{"hub", std::to_string(i)}, {"call", call}};
                patched.samples.push_back({cl, static_cast<double>(n)});
                patched_waits.samples.push_back(
                    {cl, static_cast<double>(p.patched_waits[c].load(std::memory_order_relaxed))});
            }
            std::string hub = std::to_string(i);
            LabelSet l{{"hub", hub}};
            run.histograms.push_back(from_probe(p.run_duration, l));
            delay.histograms.push_back(from_probe(p.schedule_delay, l));
            lag.histograms.push_back(from_probe(p.lag, l));
            busy.samples.push_back(
                {l, static_cast<double>(p.busy_ns.load(std::memory_order_relaxed)) / 1e9});
            idle.samples.push_back(
                {l, static_cast<double>(p.idle_ns.load(std::memory_order_relaxed)) / 1e9});
            auto counts = r->hub(i).fiber_counts();
            for (int st = 0; st < kFiberStateCount; ++st) {
                fibers.samples.push_back(
                    {{{"hub", hub}, {"state", fiber_state_name(static_cast<FiberState>(st))}},
                     static_cast<double>(counts[static_cast<std::size_t>(st)])});
            }
            spawned.samples.push_back(
                {l, static_cast<double>(p.fibers_spawned.load(std::memory_order_relaxed))});
        }
        out.push_back(std::move(run));
        out.push_back(std::move(delay));
        out.push_back(std::move(lag));
        out.push_back(std::move(busy));
        out.push_back(std::move(idle));
        out.push_back(std::move(fibers));
        out.push_back(std::move(spawned));
        out.push_back(std::move(patched));
        out.push_back(std::move(patched_waits));
        add_pool_families(weft::internal::offload_stats(*r), "weft_offload", "offload pool",
                          "offload tasks", out);
        add_pool_families(weft::internal::resolver_stats(*r), "weft_resolver", "resolver pool",
                          "name lookups", out);
    });
}

namespace {

// The /proc files the process metrics read, opened once and kept: a process out of file
// descriptors (EMFILE) is when process_open_fds matters most, and a scrape that got in (the
// admin listener's reserved descriptors) must not need more. Reopened after a fork.
class ProcFiles {
  public:
    // At registration: a process starts with descriptors to spare. The boot time is the
    // boot's: read once.
    ProcFiles() {
        open_all();
        std::string pstat = slurp("/proc/stat");
        if (auto at = pstat.find("\nbtime "); at != std::string::npos)
            btime_ = std::strtod(pstat.c_str() + at + 7, nullptr);
    }
    ~ProcFiles() { close_all(); }

    // /proc/self/stat and the number of open descriptors (-1: unknown), or false when /proc
    // cannot be read.
    bool read(std::string& stat, double& fds) {
        std::lock_guard<std::mutex> g(mu_);
        if (pid_ != ::getpid()) {
            close_all();
            open_all();
        }
        if (stat_fd_ < 0 || !pread_all(stat_fd_, stat)) {
            // Not kept (opened while out of descriptors, say): try again next time.
            close_all();
            return false;
        }
        fds = count_fds();
        return true;
    }

    // The boot time (/proc/stat's btime), or -1 when it could not be read.
    double btime() const noexcept { return btime_; }

  private:
    static bool pread_all(int fd, std::string& out) {
        out.clear();
        char buf[4096];
        for (;;) {
            const ssize_t n = ::pread(fd, buf, sizeof buf, static_cast<off_t>(out.size()));
            if (n < 0) return false;
            if (n == 0) return !out.empty();
            out.append(buf, static_cast<std::size_t>(n));
        }
    }

    // Entries of /proc/self/fd (the kept descriptors among them: they are open), or -1.
    double count_fds() {
        if (fd_dir_ < 0) fd_dir_ = ::open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd_dir_ < 0 || ::lseek(fd_dir_, 0, SEEK_SET) != 0) return -1;
        double n = 0;
        alignas(8) char buf[8192];
        for (;;) {
            const ssize_t got = ::getdents64(fd_dir_, buf, sizeof buf);
            if (got < 0) return -1;
            if (got == 0) break;
            for (ssize_t at = 0; at < got;) {
                const auto* d = reinterpret_cast<const dirent64*>(buf + at);
                if (d->d_name[0] != '.') ++n;
                at += d->d_reclen;
            }
        }
        return n;
    }

    void open_all() noexcept {
        pid_ = ::getpid();
        stat_fd_ = ::open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
        fd_dir_ = ::open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    }

    void close_all() noexcept {
        if (stat_fd_ >= 0) ::close(stat_fd_);
        if (fd_dir_ >= 0) ::close(fd_dir_);
        stat_fd_ = fd_dir_ = -1;
        pid_ = -1;
    }

    std::mutex mu_;
    pid_t pid_ = -1;
    int stat_fd_ = -1;
    int fd_dir_ = -1;
    double btime_ = -1;
};

}  // namespace

CollectorHandle add_process_metrics(Registry& registry) {
    auto files = std::make_shared<ProcFiles>();
    return registry.add_collector([files](std::vector<MetricFamily>& out) {
        std::string stat;
        double fds = 0;
        if (!files->read(stat, fds)) return;
        auto close = stat.rfind(')');
        if (close == std::string::npos) return;
        // Fields after "(comm)": state is field 3; utime 14, stime 15, num_threads 20,
        // starttime 22, vsize 23, rss 24.
        std::vector<std::string> f;
        std::size_t pos = close + 2;
        while (pos < stat.size()) {
            std::size_t sp = stat.find(' ', pos);
            if (sp == std::string::npos) sp = stat.size();
            f.push_back(stat.substr(pos, sp - pos));
            pos = sp + 1;
        }
        auto field = [&](int n) -> double {
            std::size_t idx = static_cast<std::size_t>(n - 3);
            return idx < f.size() ? std::strtod(f[idx].c_str(), nullptr) : 0;
        };
        double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
        double page = static_cast<double>(::sysconf(_SC_PAGESIZE));
        const double btime = files->btime();
        struct rlimit rl {};
        double max_fds =
            ::getrlimit(RLIMIT_NOFILE, &rl) == 0 ? static_cast<double>(rl.rlim_cur) : 0;

        auto one = [&](const char* name, const char* help, MetricType t, double v) {
            out.push_back({name, help, "", t, {{{}, v}}, {}});
        };
        one("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
            MetricType::counter, (field(14) + field(15)) / ticks);
        one("process_resident_memory_bytes", "Resident memory size in bytes.", MetricType::gauge,
            field(24) * page);
        one("process_virtual_memory_bytes", "Virtual memory size in bytes.", MetricType::gauge,
            field(23));
        if (fds >= 0)
            one("process_open_fds", "Number of open file descriptors.", MetricType::gauge, fds);
        one("process_max_fds", "Maximum number of open file descriptors.", MetricType::gauge,
            max_fds);
        if (btime >= 0)
            one("process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.", MetricType::gauge,
                btime + field(22) / ticks);
        one("process_threads", "Number of OS threads in the process.", MetricType::gauge,
            field(20));
    });
}

CollectorHandle add_build_info(Registry& registry) {
    return registry.add_collector([](std::vector<MetricFamily>& out) {
#if defined(__clang__)
        std::string compiler = "clang " __clang_version__;
#elif defined(__GNUC__)
        std::string compiler = "gcc " __VERSION__;
#else
        std::string compiler = "unknown";
#endif
        out.push_back({"weft_build_info",
                       "Weft build information; the value is always 1.",
                       "",
                       MetricType::info,
                       {{{{"version", WEFT_VERSION},
                          {"compiler", compiler},
                          {"build_type", WEFT_BUILD_TYPE},
                          {"sanitizers", WEFT_SANITIZERS}},
                         1.0}},
                       {}});
    });
}

}  // namespace weft::monitor

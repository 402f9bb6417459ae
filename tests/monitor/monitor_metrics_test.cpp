// The metric registry and the two text formats: exact renderings, number and `le` formatting,
// Accept negotiation, name checks, collectors (merge, removal, failure), and concurrent updates
// while scraping.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

#include "weft/core/runtime.hpp"
#include "weft/core/text.hpp"
#include "weft/monitor/exposition.hpp"
#include "weft/monitor/metrics.hpp"
#include "weft/monitor/standard_metrics.hpp"

using namespace weft::monitor;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

TEST(FormatValue, GoStyleShortest) {
    EXPECT_EQ(format_value(0), "0");
    EXPECT_EQ(format_value(10), "10");
    EXPECT_EQ(format_value(-3), "-3");
    EXPECT_EQ(format_value(2.5), "2.5");
    EXPECT_EQ(format_value(0.1), "0.1");
    EXPECT_EQ(format_value(-0.5), "-0.5");
    EXPECT_EQ(format_value(5e-06), "5e-06");
    EXPECT_EQ(format_value(1e-05), "1e-05");
    EXPECT_EQ(format_value(0.0001), "0.0001");
    EXPECT_EQ(format_value(1234567.5), "1.2345675e+06");
    EXPECT_EQ(format_value(1.5e-10), "1.5e-10");
    EXPECT_EQ(format_value(std::numeric_limits<double>::infinity()), "+Inf");
    EXPECT_EQ(format_value(-std::numeric_limits<double>::infinity()), "-Inf");
    EXPECT_EQ(format_value(std::nan("")), "NaN");
}

TEST(FormatValue, LatencyBucketBoundsAreWrittenExactly) {
    const char* want[] = {"5e-06", "1e-05", "2e-05", "5e-05", "0.0001", "0.0002", "0.0005",
                          "0.001", "0.002", "0.005", "0.01",  "0.02",   "0.05",   "0.1",
                          "0.2",   "0.5",   "1",     "2",     "5",      "10"};
    auto b = latency_buckets_seconds();
    ASSERT_EQ(b.size(), std::size(want));
    for (std::size_t i = 0; i < b.size(); ++i)
        EXPECT_EQ(format_value(b[i]), want[i]) << i;
}

TEST(Negotiate, PicksOpenMetricsOnlyWhenAsked) {
    // Prometheus 2.x's default scrape Accept header.
    EXPECT_EQ(negotiate_format("application/openmetrics-text;version=1.0.0,application/"
                               "openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;"
                               "q=0.5,*/*;q=0.1"),
              ExpositionFormat::openmetrics);
    EXPECT_EQ(negotiate_format("application/openmetrics-text; version=1.0.0"),
              ExpositionFormat::openmetrics);
    EXPECT_EQ(negotiate_format(""), ExpositionFormat::prometheus_text);
    EXPECT_EQ(negotiate_format("*/*"), ExpositionFormat::prometheus_text);
    EXPECT_EQ(negotiate_format("text/plain;version=0.0.4"), ExpositionFormat::prometheus_text);
    EXPECT_EQ(negotiate_format("application/openmetrics-text;q=0.3,text/plain;q=0.5"),
              ExpositionFormat::prometheus_text);
    EXPECT_EQ(negotiate_format("application/openmetrics-text;q=0"),
              ExpositionFormat::prometheus_text);
    EXPECT_EQ(negotiate_format(",,;;garbage;q=x"), ExpositionFormat::prometheus_text);
    EXPECT_EQ(content_type(ExpositionFormat::prometheus_text),
              "text/plain; version=0.0.4; charset=utf-8");
    EXPECT_EQ(content_type(ExpositionFormat::openmetrics),
              "application/openmetrics-text; version=1.0.0; charset=utf-8");
}

class Rendering : public ::testing::Test {
  protected:
    void SetUp() override {
        auto& requests = reg_.counter("http_requests_total", "Requests served.", {"code"});
        requests.labels({"200"}).inc(3);
        requests.labels({"500"}).inc();
        auto& temp =
            reg_.gauge("room_temperature_celsius", "Temperature \\ \"now\"\nsecond line", {"room"});
        temp.labels({"a \"b\"\\c\nd"}).set(21.5);
        static const double kBounds[] = {0.1, 1};
        auto& h = reg_.histogram("job_duration_seconds", "How long jobs take.", kBounds);
        h.get().observe(0.0625);
        h.get().observe(0.5);
        h.get().observe(3);
    }
    Registry reg_;
};

TEST_F(Rendering, PrometheusText) {
    std::string want =
        "# TYPE http_requests_total counter\n"
        "# HELP http_requests_total Requests served.\n"
        "http_requests_total{code=\"200\"} 3\n"
        "http_requests_total{code=\"500\"} 1\n"
        "# TYPE room_temperature_celsius gauge\n"
        "# HELP room_temperature_celsius Temperature \\\\ \"now\"\\nsecond line\n"
        "room_temperature_celsius{room=\"a \\\"b\\\"\\\\c\\nd\"} 21.5\n"
        "# TYPE job_duration_seconds histogram\n"
        "# HELP job_duration_seconds How long jobs take.\n"
        "job_duration_seconds_bucket{le=\"0.1\"} 1\n"
        "job_duration_seconds_bucket{le=\"1\"} 2\n"
        "job_duration_seconds_bucket{le=\"+Inf\"} 3\n"
        "job_duration_seconds_sum 3.5625\n"
        "job_duration_seconds_count 3\n";
    EXPECT_EQ(render(reg_.collect(), ExpositionFormat::prometheus_text), want);
}

TEST_F(Rendering, OpenMetrics) {
    std::string want =
        "# TYPE http_requests counter\n"
        "# HELP http_requests Requests served.\n"
        "http_requests_total{code=\"200\"} 3\n"
        "http_requests_total{code=\"500\"} 1\n"
        "# TYPE room_temperature_celsius gauge\n"
        "# UNIT room_temperature_celsius celsius\n"
        "# HELP room_temperature_celsius Temperature \\\\ \\\"now\\\"\\nsecond line\n"
        "room_temperature_celsius{room=\"a \\\"b\\\"\\\\c\\nd\"} 21.5\n"
        "# TYPE job_duration_seconds histogram\n"
        "# UNIT job_duration_seconds seconds\n"
        "# HELP job_duration_seconds How long jobs take.\n"
        "job_duration_seconds_bucket{le=\"0.1\"} 1\n"
        "job_duration_seconds_bucket{le=\"1\"} 2\n"
        "job_duration_seconds_bucket{le=\"+Inf\"} 3\n"
        "job_duration_seconds_count 3\n"
        "job_duration_seconds_sum 3.5625\n"
        "# EOF\n";
    EXPECT_EQ(render(reg_.collect(), ExpositionFormat::openmetrics), want);
}

TEST_F(Rendering, ScrapeNegotiates) {
    auto s = scrape(reg_, "application/openmetrics-text;version=1.0.0");
    EXPECT_EQ(s.content_type, "application/openmetrics-text; version=1.0.0; charset=utf-8");
    EXPECT_THAT(s.body, HasSubstr("# EOF\n"));
    auto t = scrape(reg_, "text/plain");
    EXPECT_EQ(t.content_type, "text/plain; version=0.0.4; charset=utf-8");
    EXPECT_THAT(t.body, Not(HasSubstr("# EOF")));
}

TEST(Registry, InfoAndLabelLessMetrics) {
    Registry reg;
    reg.counter("events_total", "Events.");  // shows 0 before the first inc()
    auto h = add_build_info(reg);
    std::string text = render(reg.collect(), ExpositionFormat::prometheus_text);
    EXPECT_THAT(text, HasSubstr("events_total 0\n"));
    EXPECT_THAT(text, HasSubstr("# TYPE weft_build_info gauge\n"));
    EXPECT_THAT(text, HasSubstr("weft_build_info{version=\"0.1.0\","));
    std::string om = render(reg.collect(), ExpositionFormat::openmetrics);
    EXPECT_THAT(om, HasSubstr("# TYPE weft_build info\n"));
    EXPECT_THAT(om, HasSubstr("\nweft_build_info{version=\"0.1.0\","));
}

TEST(Registry, BytesThatAreNotUtf8AndNaNCannotSpoilAScrape) {
    // A plugin's label value taken from a request: Prometheus refuses a whole scrape for one
    // value that is not UTF-8, so such bytes go out as U+FFFD; valid UTF-8 stays as it is.
    Registry reg;
    auto& c = reg.counter("seen_total", "Seen.", {"v"});
    c.labels({"a\xff\xfe\xc3"}).inc();
    c.labels({"caf\xc3\xa9"}).inc();
    static const double kBounds[] = {0.001, 0.5};
    auto& h = reg.histogram("took_seconds", "Took.", kBounds);
    h.get().observe(std::nan(""));
    h.get().observe(0.2);
    const std::string text = render(reg.collect(), ExpositionFormat::prometheus_text);
    EXPECT_THAT(text, HasSubstr("seen_total{v=\"a\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"} 1\n"));
    EXPECT_THAT(text, HasSubstr("seen_total{v=\"caf\xc3\xa9\"} 1\n"));
    EXPECT_TRUE(weft::valid_utf8(text));
    // NaN is below no bound: it counts in +Inf only.
    EXPECT_THAT(text, HasSubstr("took_seconds_bucket{le=\"0.001\"} 0\n"));
    EXPECT_THAT(text, HasSubstr("took_seconds_bucket{le=\"0.5\"} 1\n"));
    EXPECT_THAT(text, HasSubstr("took_seconds_bucket{le=\"+Inf\"} 2\n"));
}

TEST(Registry, ChecksNames) {
    Registry reg;
    EXPECT_THROW(reg.counter("requests", "no _total"), std::invalid_argument);
    EXPECT_THROW(reg.gauge("9lives", "bad start"), std::invalid_argument);
    EXPECT_THROW(reg.gauge("has-dash", "bad char"), std::invalid_argument);
    EXPECT_THROW(reg.gauge("ok_name", "bad label", {"__reserved"}), std::invalid_argument);
    EXPECT_THROW(reg.gauge("ok_name2", "dup label", {"a", "a"}), std::invalid_argument);
    static const double kBounds[] = {1, 2};
    static const double kBadBounds[] = {2, 1};
    EXPECT_THROW(reg.histogram("h_seconds", "le label", kBounds, {"le"}), std::invalid_argument);
    EXPECT_THROW(reg.histogram("h2_seconds", "unsorted", kBadBounds), std::invalid_argument);
    // The same definition again is the same family; a different one is refused.
    auto& a = reg.gauge("queue_depth", "Depth.", {"queue"});
    auto& b = reg.gauge("queue_depth", "Depth.", {"queue"});
    EXPECT_EQ(&a, &b);
    EXPECT_THROW(reg.gauge("queue_depth", "Other help.", {"queue"}), std::invalid_argument);
    EXPECT_THROW(reg.counter("queue_depth", "Depth.", {"queue"}), std::invalid_argument);
    EXPECT_THROW(a.labels({"x", "y"}), std::invalid_argument);
    EXPECT_EQ(&a.labels({"x"}), &a.labels({"x"}));
}

TEST(Registry, RefusesNamesWhoseSeriesCollide) {
    Registry reg;
    static const double kBounds[] = {1, 2};
    reg.histogram("job_seconds", "Jobs.", kBounds);
    try {
        reg.gauge("job_seconds_count", "Count.");
        ADD_FAILURE() << "a gauge named like a histogram's series was registered";
    } catch (const std::invalid_argument& e) {
        EXPECT_STREQ(e.what(),
                     "metric 'job_seconds_count' clashes with metric 'job_seconds': both would "
                     "expose 'job_seconds_count'");
    }
    reg.gauge("lat_sum", "Sum.");
    EXPECT_THROW(reg.histogram("lat", "Latency.", kBounds), std::invalid_argument);
    // OpenMetrics names the counter 'reqs_total' family 'reqs'.
    reg.counter("reqs_total", "Requests.");
    EXPECT_THROW(reg.gauge("reqs", "Requests."), std::invalid_argument);
    EXPECT_THROW(reg.gauge("reqs_created", "Created."), std::invalid_argument);
    // Without a histogram or counter behind them, such names are ordinary.
    reg.gauge("queue", "Queue.");
    reg.gauge("queue_count", "Count.");
    reg.gauge("queue_sum", "Sum.");
    std::string text = render(reg.collect(), ExpositionFormat::prometheus_text);
    EXPECT_THAT(text, HasSubstr("\nqueue_count 0\n"));
}

TEST(Registry, LeavesOutAFamilyThatCollidesWithACollectedOne) {
    // The server's families come from collectors added after the plugins registered theirs: a
    // plugin's gauge named like one of their series is left out, not the server's histogram.
    auto sink_out = std::make_shared<std::ostringstream>();
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(*sink_out);
    auto log = std::make_shared<spdlog::logger>("weft.monitor", sink);
    spdlog::drop("weft.monitor");
    spdlog::register_logger(log);
    Registry reg;
    reg.gauge("built_seconds_sum", "A plugin's gauge.").get().set(7);
    reg.gauge("plugin_level", "Fine.").get().set(1);
    auto built = reg.add_collector([](std::vector<MetricFamily>& out) {
        MetricFamily f{"built_seconds", "Built.", "", MetricType::histogram, {}, {}};
        f.histograms.push_back({{}, {1.0}, {2, 0}, 0.5});
        out.push_back(std::move(f));
        out.push_back({"built_gauge", "Another.", "", MetricType::gauge, {{{}, 3}}, {}});
        // A second collected family clashing with an earlier one: the earlier stays.
        out.push_back({"built_seconds_bucket", "Clash.", "", MetricType::gauge, {{{}, 9}}, {}});
    });
    for (int i = 0; i < 2; ++i) {
        std::vector<std::string> names;
        for (const MetricFamily& f : reg.collect())
            names.push_back(f.name);
        EXPECT_THAT(names, ::testing::ElementsAre("plugin_level", "built_seconds", "built_gauge"));
    }
    const std::string text = render(reg.collect(), ExpositionFormat::prometheus_text);
    EXPECT_THAT(text, HasSubstr("built_seconds_sum 0.5\n"));
    EXPECT_THAT(text, Not(HasSubstr("built_seconds_sum 7")));
    log->flush();
    const std::string said = sink_out->str();
    EXPECT_THAT(said, HasSubstr("metric 'built_seconds_sum' is left out of the exposition: it "
                                "would expose 'built_seconds_sum', as metric 'built_seconds' "
                                "does"));
    EXPECT_THAT(said, HasSubstr("metric 'built_seconds_bucket' is left out"));
    // Said once, though three scrapes saw it.
    EXPECT_EQ(said.find("'built_seconds_sum' is left out"),
              said.rfind("'built_seconds_sum' is left out"));
    spdlog::drop("weft.monitor");
}

TEST(Registry, CollectorsMergeFailAndGoAway) {
    Registry reg;
    auto one = reg.add_collector([](std::vector<MetricFamily>& out) {
        out.push_back(
            {"active_requests", "In flight.", "", MetricType::gauge, {{{{"hub", "0"}}, 2}}, {}});
    });
    auto two = reg.add_collector([](std::vector<MetricFamily>& out) {
        out.push_back(
            {"active_requests", "In flight.", "", MetricType::gauge, {{{{"hub", "1"}}, 5}}, {}});
    });
    auto broken = reg.add_collector(
        [](std::vector<MetricFamily>&) { throw std::runtime_error("collector bug"); });
    std::string text = render(reg.collect(), ExpositionFormat::prometheus_text);
    EXPECT_EQ(text,
              "# TYPE active_requests gauge\n"
              "# HELP active_requests In flight.\n"
              "active_requests{hub=\"0\"} 2\n"
              "active_requests{hub=\"1\"} 5\n");
    two.reset();
    text = render(reg.collect(), ExpositionFormat::prometheus_text);
    EXPECT_THAT(text, Not(HasSubstr("hub=\"1\"")));
    { CollectorHandle moved = std::move(one); }
    EXPECT_EQ(render(reg.collect(), ExpositionFormat::prometheus_text), "");
}

// A plugin registered process_cpu_seconds_total: /metrics showed the server's samples twice,
// under the plugin's HELP. The server's own (collected) family keeps the name.
TEST(Registry, ARegisteredFamilyNamedAsACollectedOneIsLeftOut) {
    Registry reg;
    reg.counter("process_cpu_seconds_total", "A plugin's.").get().inc(7);
    reg.counter("plugin_events_total", "A plugin's own.").get().inc(1);
    auto server = reg.add_collector([](std::vector<MetricFamily>& out) {
        out.push_back({"process_cpu_seconds_total",
                       "CPU time.",
                       "seconds",
                       MetricType::counter,
                       {{{}, 1.5}},
                       {}});
    });
    const std::string text = render(reg.collect(), ExpositionFormat::prometheus_text);
    EXPECT_EQ(text,
              "# TYPE plugin_events_total counter\n"
              "# HELP plugin_events_total A plugin's own.\n"
              "plugin_events_total 1\n"
              "# TYPE process_cpu_seconds_total counter\n"
              "# HELP process_cpu_seconds_total CPU time.\n"
              "process_cpu_seconds_total 1.5\n");
}

TEST(Registry, HandleOutlivingTheRegistryIsHarmless) {
    CollectorHandle h;
    {
        Registry reg;
        h = reg.add_collector([](std::vector<MetricFamily>&) {});
    }
    h.reset();
}

TEST(Registry, HubMetricsHaveEveryHubAndBucket) {
    weft::RuntimeOptions o;
    o.hubs = 2;
    weft::Runtime rt(o);
    Registry reg;
    auto h = add_hub_metrics(reg, rt);
    std::string text = render(reg.collect(), ExpositionFormat::prometheus_text);
    for (const char* hub : {"0", "1"}) {
        for (const char* name : {"weft_hub_run_duration_seconds", "weft_hub_schedule_delay_seconds",
                                 "weft_hub_lag_seconds"}) {
            for (const char* le : {"5e-06", "0.0001", "0.5", "10", "+Inf"}) {
                std::string line =
                    std::string(name) + "_bucket{hub=\"" + hub + "\",le=\"" + le + "\"} ";
                EXPECT_THAT(text, HasSubstr(line));
            }
            EXPECT_THAT(text, HasSubstr(std::string(name) + "_count{hub=\"" + hub + "\"} "));
        }
        EXPECT_THAT(text, HasSubstr(std::string("weft_hub_busy_seconds_total{hub=\"") + hub));
        EXPECT_THAT(text, HasSubstr(std::string("weft_hub_idle_seconds_total{hub=\"") + hub));
        EXPECT_THAT(
            text, HasSubstr(std::string("weft_hub_fibers{hub=\"") + hub + "\",state=\"parked\"}"));
    }
    std::string om = render(reg.collect(), ExpositionFormat::openmetrics);
    EXPECT_THAT(om, HasSubstr("# TYPE weft_hub_busy_seconds counter\n# UNIT weft_hub_busy_seconds "
                              "seconds\n"));
    EXPECT_THAT(om, HasSubstr("# UNIT weft_hub_lag_seconds seconds\n"));
}

TEST(Registry, ProcessMetrics) {
    Registry reg;
    auto h = add_process_metrics(reg);
    std::string text = render(reg.collect(), ExpositionFormat::prometheus_text);
    for (const char* m : {"process_cpu_seconds_total ", "process_resident_memory_bytes ",
                          "process_virtual_memory_bytes ", "process_open_fds ", "process_max_fds ",
                          "process_start_time_seconds ", "process_threads "})
        EXPECT_THAT(text, HasSubstr(std::string("\n") + m)) << m;
}

// A process out of file descriptors is when process_open_fds matters most: the collector keeps
// what it reads open, and a scrape needs no new descriptor.
TEST(Registry, ProcessMetricsWhenOutOfDescriptors) {
#ifdef WEFT_SANITIZER_BUILD
    // A sanitizer's runtime opens files of its own (its background thread, a report) and
    // ends the process when it cannot; this test is about reading /proc, not memory or threads.
    GTEST_SKIP() << "a sanitizer's runtime needs descriptors of its own";
#endif
    Registry reg;
    auto h = add_process_metrics(reg);  // opens what it keeps
    rlimit saved{};
    ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &saved), 0);
    rlimit low = saved;
    low.rlim_cur = 256;
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
    std::vector<int> held;
    for (;;) {
        const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            EXPECT_EQ(errno, EMFILE);
            break;
        }
        held.push_back(fd);
        if (held.size() > 100'000) break;  // the limit did not hold: fail below
    }
    std::string text = render(reg.collect(), ExpositionFormat::prometheus_text);
    for (int fd : held)
        ::close(fd);
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &saved), 0);
    ASSERT_LE(held.size(), 256u);
    EXPECT_THAT(text, HasSubstr("\nprocess_max_fds 256\n"));
    EXPECT_THAT(text, HasSubstr("\nprocess_cpu_seconds_total "));
    EXPECT_THAT(text, HasSubstr("\nprocess_threads "));
    const auto started = text.find("\nprocess_start_time_seconds ");
    ASSERT_NE(started, std::string::npos) << text;
    EXPECT_GT(std::strtod(text.c_str() + started + 28, nullptr), 1.6e9);  // after 2020, not 1970
    // Every descriptor under the limit was taken when the open failed.
    const auto at = text.find("\nprocess_open_fds ");
    ASSERT_NE(at, std::string::npos) << text;
    EXPECT_GE(std::strtod(text.c_str() + at + 18, nullptr), 256.0);
}

// Updates from several threads while another thread scrapes (run under TSan too).
TEST(Registry, ConcurrentUpdatesAndScrapes) {
    Registry reg;
    auto& c = reg.counter("ops_total", "Ops.", {"worker"});
    auto& h = reg.histogram("op_seconds", "Op time.", latency_buckets_seconds(), {"worker"});
    auto& g = reg.gauge("level", "Level.").get();
    std::atomic<bool> stop{false};
    std::vector<std::thread> workers;
    for (int w = 0; w < 3; ++w) {
        workers.emplace_back([&, w] {
            auto& cw = c.labels({std::to_string(w)});
            auto& hw = h.labels({std::to_string(w)});
            for (int i = 0; i < 20000; ++i) {
                cw.inc();
                hw.observe(1e-4 * (i % 7));
                g.inc();
            }
        });
    }
    std::thread scraper([&] {
        while (!stop)
            (void)render(reg.collect(), ExpositionFormat::openmetrics);
    });
    for (auto& t : workers)
        t.join();
    stop = true;
    scraper.join();
    double total = 0;
    for (int w = 0; w < 3; ++w)
        total += c.labels({std::to_string(w)}).value();
    EXPECT_EQ(total, 60000);
    EXPECT_EQ(g.value(), 60000);
    std::uint64_t n = 0;
    for (auto v : h.labels({"0"}).counts())
        n += v;
    EXPECT_EQ(n, 20000u);
}

}  // namespace

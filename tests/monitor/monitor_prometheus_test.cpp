// The exposition against the real tools: `promtool check metrics` on a full scrape (hub,
// process, build, watchdog and registry metrics), and Debian's Prometheus server scraping a
// small endpoint served with the core TCP API, then answering a histogram_quantile over its
// HTTP API. Everything stays on 127.0.0.1; Prometheus runs in a temporary directory, bounded in
// time, and is ended by its PID.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "monitor_http_util.hpp"
#include "monitor_test_util.hpp"
#include "weft/monitor/standard_metrics.hpp"

using namespace std::chrono_literals;
using namespace weft::monitor;
using weft::monitor::test::ChildProcess;
using weft::monitor::test::http_get;

namespace {

bool have(const char* tool) {
    std::string cmd = std::string("command -v ") + tool + " >/dev/null 2>&1";
    return std::system(cmd.c_str()) == 0;
}

std::string temp_dir() {
    std::string t = (std::filesystem::temp_directory_path() / "weft-prom-XXXXXX").string();
    char* d = ::mkdtemp(t.data());
    return d ? std::string(d) : std::string();
}

// A registry with everything a Weft process exports, plus a plugin's own metrics.
struct FullScrape {
    weft::Runtime rt{weft::monitor::test::runtime_options(2)};
    Watchdog wd{rt, [] {
                    MonitorSettings s;
                    s.memory_max = 1ull << 40;
                    return s;
                }()};
    Registry reg;
    CollectorHandle hubs = add_hub_metrics(reg, rt);
    CollectorHandle proc = add_process_metrics(reg);
    CollectorHandle build = add_build_info(reg);
    CollectorHandle blocking = wd.add_metrics(reg);

    FullScrape() {
        auto& req =
            reg.counter("plugin_requests_total", "Requests the plugin served.", {"route", "code"});
        req.labels({"/users/{id}", "200"}).inc(7);
        req.labels({"/say \"hi\"\\now", "500"}).inc();
        req.labels({"/not-utf8-\xff\xfe", "400"}).inc();  // taken from a request, say
        reg.gauge("plugin_queue_depth", "Items waiting in the plugin's queue.").get().set(3);
        static const double kBounds[] = {0.001, 0.002, 0.005, 0.01};
        auto& h =
            reg.histogram("plugin_request_duration_seconds", "Time to serve a request.", kBounds);
        for (int i = 0; i < 100; ++i)
            h.get().observe(0.003);
        // Some hub activity so that the histograms are not all zero.
        std::atomic<int> done{0};
        for (unsigned i = 0; i < 2; ++i)
            weft::monitor::test::spawn_on_hub(rt, i, "warm", [&] {
                for (int k = 0; k < 20; ++k) {
                    (void)weft::sleep_for(1ms);
                    weft::yield();
                }
                ++done;
            });
        while (done < 2)
            std::this_thread::sleep_for(5ms);
    }
};

TEST(Promtool, CheckMetricsPassesOnAFullScrape) {
    ASSERT_TRUE(have("promtool")) << "promtool is missing (Debian package: prometheus; "
                                     "scripts/install-deps.sh installs it)";
    FullScrape f;
    std::string text = render(f.reg.collect(), ExpositionFormat::prometheus_text);
    std::string dir = temp_dir();
    ASSERT_FALSE(dir.empty());
    std::string path = dir + "/scrape.txt";
    std::ofstream(path) << text;
    std::string cmd = "promtool check metrics < '" + path + "' 2>&1";
    FILE* p = ::popen(cmd.c_str(), "r");
    ASSERT_NE(p, nullptr);
    std::string out;
    char buf[512];
    while (std::fgets(buf, sizeof buf, p))
        out += buf;
    int status = ::pclose(p);
    EXPECT_EQ(status, 0) << out << "\n--- scrape ---\n" << text;
    EXPECT_EQ(out, "") << out;
    std::filesystem::remove_all(dir);
}

TEST(PrometheusServer, ScrapesAndAnswersHistogramQuantile) {
    ASSERT_TRUE(have("prometheus")) << "the prometheus server is missing (Debian package: "
                                       "prometheus)";
    FullScrape f;
    weft::monitor::test::MetricsEndpoint endpoint(f.rt, f.reg);
    std::string dir = temp_dir();
    ASSERT_FALSE(dir.empty());
    int prom_port = weft::monitor::test::free_port();
    {
        std::ofstream cfg(dir + "/prometheus.yml");
        cfg << "global:\n"
               "  scrape_interval: 1s\n"
               "  scrape_timeout: 1s\n"
               "scrape_configs:\n"
               "  - job_name: weft\n"
               "    static_configs:\n"
               "      - targets: ['127.0.0.1:"
            << endpoint.port() << "']\n";
    }
    ChildProcess prom(
        {"prometheus", "--config.file=" + dir + "/prometheus.yml",
         "--storage.tsdb.path=" + dir + "/data",
         "--web.listen-address=127.0.0.1:" + std::to_string(prom_port), "--log.level=warn"},
        dir + "/prometheus.log");
    auto deadline = std::chrono::steady_clock::now() + 60s;
    auto query = [&](const std::string& q) -> nlohmann::json {
        std::string enc;
        for (unsigned char c : q) {
            if (std::isalnum(c) || c == '_' || c == '.' || c == '-')
                enc += static_cast<char>(c);
            else {
                char b[4];
                std::snprintf(b, sizeof b, "%%%02X", c);
                enc += b;
            }
        }
        auto r = http_get(prom_port, "/api/v1/query?query=" + enc);
        if (r.status != 200) return nullptr;
        auto j = nlohmann::json::parse(r.body, nullptr, false);
        if (j.is_discarded() || j["status"] != "success" || j["data"]["result"].empty())
            return nullptr;
        return j["data"]["result"][0]["value"][1];
    };
    auto value_of = [&](const std::string& q) -> double {
        while (std::chrono::steady_clock::now() < deadline && prom.running()) {
            auto v = query(q);
            if (v.is_string()) return std::stod(v.get<std::string>());
            std::this_thread::sleep_for(250ms);
        }
        return std::nan("");
    };

    // The target is up: Prometheus parsed our OpenMetrics (its default Accept asks for it).
    EXPECT_EQ(value_of("up{job=\"weft\"}"), 1) << "prometheus log:\n"
                                               << std::ifstream(dir + "/prometheus.log").rdbuf();
    EXPECT_GT(endpoint.openmetrics_scrapes(), 0);
    // 100 observations of 3 ms in the (2 ms, 5 ms] bucket: the median interpolates to 3.5 ms.
    double median =
        value_of("histogram_quantile(0.5, plugin_request_duration_seconds_bucket{job=\"weft\"})");
    EXPECT_NEAR(median, 0.0035, 1e-9);
    // And the hubs' own histograms answer too.
    double p99 =
        value_of("histogram_quantile(0.99, sum by (le) (weft_hub_run_duration_seconds_bucket))");
    EXPECT_TRUE(std::isfinite(p99)) << p99;
    EXPECT_GT(p99, 0);
    EXPECT_EQ(value_of("weft_build_info{job=\"weft\"}"), 1);
    prom.stop();
    std::filesystem::remove_all(dir);
}

}  // namespace

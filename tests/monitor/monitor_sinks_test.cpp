// The report sinks: the JSON-lines reports file keeps every record a line of its own, also after
// a write that failed part way (a full disk, here a file size limit); the ring behind
// /debug/blocking keeps the bulky parts of its newest reports only.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "json_file_sink.hpp"
#include "recent_reports_sink.hpp"

namespace {

weft::monitor::BlockingEnd end_record(std::uint64_t id) {
    weft::monitor::BlockingEnd e;
    e.report_id = id;
    e.fiber_name = std::string(200, 'x');  // a line long enough to be cut
    e.duration_s = 0.5;
    return e;
}

TEST(MonitorJsonFile, ALineCutByAFailedWriteDoesNotGlueTheNextRecord) {
    const std::filesystem::path dir =
        std::filesystem::temp_directory_path() / ("weft-json-file-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir);
    const std::string path = (dir / "reports.jsonl").string();
    // A child process: it lowers its own file size limit.
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        signal(SIGXFSZ, SIG_IGN);  // over the limit, write() fails instead of killing
        int code = 0;
        try {
            weft::monitor::detail::JsonFileSink sink(path);
            sink.on_end(end_record(1));
            rlimit old{};
            getrlimit(RLIMIT_FSIZE, &old);
            rlimit low = old;
            low.rlim_cur = static_cast<rlim_t>(std::filesystem::file_size(path) + 40);
            setrlimit(RLIMIT_FSIZE, &low);
            try {
                sink.on_end(end_record(2));  // 40 bytes go out, then EFBIG
                code = 2;                    // no error: wrong
            } catch (const std::system_error&) {
            }
            setrlimit(RLIMIT_FSIZE, &old);
            sink.on_end(end_record(3));
        } catch (...) {
            code = 3;
        }
        _exit(code);
    }
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    ASSERT_EQ(WEXITSTATUS(status), 0);

    std::ifstream in(path);
    std::vector<std::string> lines;
    for (std::string l; std::getline(in, l);)
        lines.push_back(l);
    std::filesystem::remove_all(dir);
    ASSERT_EQ(lines.size(), 3u) << "the first record, the cut one, the last one";
    EXPECT_EQ(nlohmann::json::parse(lines[0])["report_id"], 1);
    EXPECT_EQ(lines[1].size(), 40u);
    EXPECT_FALSE(nlohmann::json::accept(lines[1]));
    ASSERT_TRUE(nlohmann::json::accept(lines[2])) << lines[2];
    EXPECT_EQ(nlohmann::json::parse(lines[2])["report_id"], 3);
    // Report ids restart with every run: each line names its run (start time and pid).
    const std::string run = nlohmann::json::parse(lines[0])["run"];
    EXPECT_EQ(nlohmann::json::parse(lines[2])["run"], run);
    EXPECT_EQ(run.substr(run.find('/') + 1), std::to_string(pid)) << run;
    EXPECT_EQ(run.find('Z'), run.find('/') - 1) << "UTC, then the pid: " << run;
}

TEST(MonitorJsonFile, ALineLeftCutByAnEarlierRunDoesNotGlueTheFirstRecord) {
    const std::filesystem::path dir =
        std::filesystem::temp_directory_path() / ("weft-json-cut-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir);
    const std::string path = (dir / "reports.jsonl").string();
    {
        std::ofstream out(path);
        out << "{\"run\":\"earlier\",\"report_id\":1,\"hu";  // killed mid-write
    }
    {
        weft::monitor::detail::JsonFileSink sink(path);
        sink.on_end(end_record(1));
    }
    std::ifstream in(path);
    std::vector<std::string> lines;
    for (std::string l; std::getline(in, l);)
        lines.push_back(l);
    std::filesystem::remove_all(dir);
    ASSERT_EQ(lines.size(), 2u);
    EXPECT_FALSE(nlohmann::json::accept(lines[0]));
    ASSERT_TRUE(nlohmann::json::accept(lines[1])) << lines[1];
    EXPECT_EQ(nlohmann::json::parse(lines[1])["report_id"], 1);
}

TEST(MonitorJsonFile, ARotatedFileIsOpenedAgain) {
    // logrotate renames the file: the next line goes to a new file at the path.
    const std::filesystem::path dir =
        std::filesystem::temp_directory_path() / ("weft-json-rot-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir);
    const std::string path = (dir / "reports.jsonl").string();
    auto read_lines = [](const std::string& p) {
        std::ifstream in(p);
        std::vector<std::string> lines;
        for (std::string l; std::getline(in, l);)
            lines.push_back(l);
        return lines;
    };
    {
        weft::monitor::detail::JsonFileSink sink(path);
        sink.on_end(end_record(1));
        std::filesystem::rename(path, path + ".1");
        sink.on_end(end_record(2));
        std::filesystem::remove(path);  // removed, not renamed: the same
        sink.on_end(end_record(3));
    }
    const auto old_lines = read_lines(path + ".1");
    const auto new_lines = read_lines(path);
    std::filesystem::remove_all(dir);
    ASSERT_EQ(old_lines.size(), 1u);
    EXPECT_EQ(nlohmann::json::parse(old_lines[0])["report_id"], 1);
    ASSERT_EQ(new_lines.size(), 1u);
    EXPECT_EQ(nlohmann::json::parse(new_lines[0])["report_id"], 3);
}

TEST(MonitorRecentReports, OnlyTheNewestKeepEveryHubsFibersAndTheThreads) {
    weft::monitor::detail::RecentReportsSink ring(20);
    constexpr std::size_t kFull = weft::monitor::detail::RecentReportsSink::kFullReports;
    for (std::uint64_t id = 1; id <= 12; ++id) {
        weft::monitor::BlockingReport r;
        r.id = id;
        r.hubs.resize(2);
        r.threads.resize(3);
        r.stack.resize(4);
        ring.on_report(r);
    }
    const auto reports = ring.reports();
    ASSERT_EQ(reports.size(), 12u);
    for (std::size_t i = 0; i < reports.size(); ++i) {
        const bool full = i >= reports.size() - kFull;
        EXPECT_EQ(reports[i].id, i + 1);
        EXPECT_EQ(reports[i].hubs.size(), full ? 2u : 0u) << i;
        EXPECT_EQ(reports[i].threads.size(), full ? 3u : 0u) << i;
        EXPECT_EQ(reports[i].stack.size(), 4u) << "the stack stays";
    }
}

}  // namespace

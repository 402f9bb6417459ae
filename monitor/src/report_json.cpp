// JSON renderings of reports and closing records (nlohmann/json is included here only).
#include "report_json.hpp"

#include "display.hpp"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

namespace weft::monitor {

namespace {

using nlohmann::json;

using detail::utc;

std::string dump(const json& j) {
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

json frames_json(const std::vector<StackFrame>& frames) {
    json a = json::array();
    for (const auto& f : frames) {
        json o = {{"address", fmt::format("0x{:x}", f.address)}};
        if (!f.function.empty()) {
            o["function"] = f.function;
            o["offset"] = f.offset;
        }
        if (!f.module.empty()) {
            o["module"] = f.module;
            o["module_offset"] = fmt::format("0x{:x}", f.module_offset);
        }
        if (!f.file.empty()) {
            o["file"] = f.file;
            o["line"] = f.line;
        }
        a.push_back(std::move(o));
    }
    return a;
}

json hubs_json(const std::vector<HubFibers>& hubs) {
    json a = json::array();
    for (const auto& h : hubs) {
        json fibers = json::array();
        for (const auto& n : h.fibers) {
            const FiberInfo& f = n.info;
            json o = {{"id", f.id},
                      {"name", f.name},
                      {"parent", f.parent},
                      {"depth", n.depth},
                      {"state", fiber_state_name(f.state)},
                      {"age_seconds", static_cast<double>(f.age_ns) / 1e9}};
            if (!f.wait_reason.empty()) o["wait_reason"] = f.wait_reason;
            if (f.spawn_file && *f.spawn_file)
                o["spawn_site"] = {{"file", detail::display_path(f.spawn_file)},
                                   {"line", f.spawn_line},
                                   {"function", f.spawn_function ? f.spawn_function : ""}};
            fibers.push_back(std::move(o));
        }
        a.push_back({{"hub", h.hub},
                     {"tid", h.tid},
                     {"backend", h.backend},
                     {"activity", h.activity},
                     {"running_fiber", h.running_fiber},
                     {"fibers", std::move(fibers)},
                     {"omitted", h.omitted}});
    }
    return a;
}

json report_json(const BlockingReport& r, bool include_stack) {
    json j = {{"kind", "blocked"},
              {"id", r.id},
              {"time", utc(r.when)},
              {"hub", r.hub},
              {"tid", r.tid},
              {"thread", r.thread_name},
              {"threshold_seconds", r.threshold_s},
              {"blocked_seconds", r.blocked_s},
              {"allowed", r.allowed},
              {"cause", cause_name(r.cause)},
              {"cpu_share", r.cpu_share},
              {"cpu_wait_share", r.cpu_wait_share},
              {"stack_hash", fmt::format("{:016x}", r.stack_hash)},
              {"stack_seen", r.stack_seen},
              {"stack_note", r.stack_note}};
    json fiber = {{"id", r.fiber_id}, {"name", r.fiber_name}, {"parent", r.parent_id}};
    if (!r.spawn_file.empty())
        fiber["spawn_site"] = {
            {"file", r.spawn_file}, {"line", r.spawn_line}, {"function", r.spawn_function}};
    j["fiber"] = std::move(fiber);
    json request = json::object();
    for (const auto& [k, v] : r.labels)
        request[k] = v;
    j["request"] = std::move(request);
    if (r.syscall_nr >= 0 || !r.syscall.empty()) {
        j["syscall"] = {{"name", r.syscall},
                        {"nr", r.syscall_nr},
                        {"detail", r.syscall_detail},
                        {"patchable", r.syscall_patchable},
                        {"patching_on", r.patching_on}};
        if (!r.caller_module.empty())
            j["syscall"]["caller"] = {{"module", r.caller_module}, {"function", r.caller_function}};
        if (!r.advice.empty()) j["syscall"]["advice"] = r.advice;
        if (r.own_lock) j["syscall"]["own_lock"] = true;
    }
    if (!r.advice.empty()) j["advice"] = r.advice;
    if (!r.wchan.empty()) j["wchan"] = r.wchan;
    if (r.same_stack_as) j["same_stack_as"] = r.same_stack_as;
    if (include_stack) j["stack"] = frames_json(r.stack);
    if (r.suppressed_before) j["suppressed_before"] = r.suppressed_before;
    if (!r.hubs.empty()) j["hubs"] = hubs_json(r.hubs);
    if (!r.threads.empty()) {
        json t = json::array();
        for (const auto& th : r.threads)
            t.push_back({{"tid", th.tid},
                         {"name", th.name},
                         {"state", std::string(1, th.state)},
                         {"hub", th.hub}});
        j["threads"] = std::move(t);
    }
    return j;
}

json end_json(const BlockingEnd& e) {
    return {{"kind", "unblocked"},
            {"report_id", e.report_id},
            {"time", utc(e.when)},
            {"hub", e.hub},
            {"fiber", {{"id", e.fiber_id}, {"name", e.fiber_name}}},
            {"duration_seconds", e.duration_s},
            {"allowed", e.allowed},
            {"cause_after_report", cause_name(e.cause_after_report)}};
}

}  // namespace

std::string to_json(const BlockingReport& r, bool include_stack) {
    return dump(report_json(r, include_stack));
}

std::string to_json(const BlockingEnd& e) {
    return dump(end_json(e));
}

namespace detail {

std::string debug_blocking_json(bool enabled, double threshold_s,
                                const std::vector<HubBlockingStats>& hubs,
                                const std::deque<RingEntry>& recent,
                                const std::vector<StackStat>& stacks) {
    json j;
    j["enabled"] = enabled;  // off: nothing below is measured
    j["threshold_seconds"] = threshold_s;
    json h = json::array();
    for (std::size_t i = 0; i < hubs.size(); ++i) {
        const HubBlockingStats& t = hubs[i];
        h.push_back({{"hub", i},
                     {"blocking_events", t.events},
                     {"blocking_seconds", t.seconds},
                     {"reports_dropped", t.dropped},
                     {"blocked_now", t.blocked_now},
                     {"allowed_events", t.allowed_events},
                     {"allowed_seconds", t.allowed_seconds},
                     {"allowed_now", t.allowed_now}});
    }
    j["hubs"] = std::move(h);
    json reports = json::array();
    for (auto it = recent.rbegin(); it != recent.rend(); ++it) {  // newest first
        json r = report_json(it->report, false);
        r.erase("hubs");
        r.erase("threads");
        if (it->end) {
            r["duration_seconds"] = it->end->duration_s;
            r["cause_after_report"] = cause_name(it->end->cause_after_report);
        }
        r["open"] = !it->end.has_value();
        reports.push_back(std::move(r));
    }
    j["reports"] = std::move(reports);
    json s = json::array();
    for (const auto& st : stacks)
        s.push_back({{"hash", fmt::format("{:016x}", st.hash)},
                     {"count", st.count},
                     {"first_report", st.first_report},
                     {"last_report", st.last_report},
                     {"frames", frames_json(st.frames)}});
    j["stacks"] = std::move(s);
    return dump(j);
}

}  // namespace detail
}  // namespace weft::monitor

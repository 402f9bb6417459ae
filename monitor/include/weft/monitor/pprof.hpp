// Profiles in pprof's format (profile.proto, gzipped), so that `go tool pprof` and every tool
// that reads Go's profiles can open what Weft measures: hub-blocking time by stack and the hub
// threads' CPU samples. A small protobuf writer of our own; zlib does the gzip.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "weft/monitor/blocking_report.hpp"

namespace weft::monitor {

/// A profile under construction: sample types, then samples (a stack, one value per sample
/// type, string labels). Identical frames share one location and one function entry.
///
/// Threads: not thread-safe; build it on one thread.
class PprofProfile {
  public:
    /// `sample_types`: (type, unit) pairs such as {"blocked", "nanoseconds"}; every sample has
    /// one value per type, in this order. `default_type` names the one pprof shows first.
    PprofProfile(std::vector<std::pair<std::string, std::string>> sample_types,
                 std::string_view default_type);

    /// The sampling period (CPU profiles): `type`/`unit` of one period and its length.
    void set_period(std::string_view type, std::string_view unit, std::int64_t period);
    /// When the profile starts (Unix ns) and how long it covers (ns).
    void set_time(std::int64_t time_nanos, std::int64_t duration_nanos);
    void add_comment(std::string_view text);

    /// Adds one sample. `stack` is innermost first (as BlockingReport::stack); a frame with no
    /// function name is shown as its module+offset, or its address. `values` has one entry per
    /// sample type (missing ones are 0).
    void add_sample(const std::vector<StackFrame>& stack, const std::vector<std::int64_t>& values,
                    const std::vector<std::pair<std::string, std::string>>& labels = {});

    std::size_t samples() const noexcept { return samples_.size(); }

    /// The serialized profile.proto message, not compressed.
    std::string serialize() const;
    /// serialize(), gzipped: what /debug/pprof/* serve and `go tool pprof` reads.
    std::string gzipped() const;

  private:
    struct Sample {
        std::vector<std::uint64_t> locations;
        std::vector<std::int64_t> values;
        std::vector<std::pair<std::int64_t, std::int64_t>> labels;  // string ids: key, value
    };
    struct Function {
        std::int64_t name = 0;
        std::int64_t file = 0;
    };
    struct Location {
        std::uint64_t address = 0;
        std::uint64_t function = 0;
        std::int64_t line = 0;
    };
    std::int64_t string_id(std::string_view s);
    std::uint64_t location_id(const StackFrame& f);

    std::vector<std::pair<std::int64_t, std::int64_t>> sample_types_;
    std::int64_t default_type_ = 0;
    std::pair<std::int64_t, std::int64_t> period_type_{0, 0};
    std::int64_t period_ = 0;
    std::int64_t time_nanos_ = 0;
    std::int64_t duration_nanos_ = 0;
    std::vector<std::int64_t> comments_;
    std::vector<std::string> strings_{""};
    std::map<std::string, std::int64_t, std::less<>> string_ids_;
    std::vector<Function> functions_;
    std::map<std::pair<std::int64_t, std::int64_t>, std::uint64_t> function_ids_;
    std::vector<Location> locations_;
    std::map<std::tuple<std::uint64_t, std::uint64_t, std::int64_t>, std::uint64_t> location_ids_;
    std::vector<Sample> samples_;
};

/// Gzips `data` (RFC 1952), as pprof's files are. Throws std::runtime_error if zlib fails.
std::string gzip(std::string_view data);

}  // namespace weft::monitor

// profile.proto written by hand: varints, length-delimited fields and packed repeated integers
// are all the message needs (github.com/google/pprof/proto/profile.proto), and zlib gzips it.
// The one file that includes zlib.h.
#include "weft/monitor/pprof.hpp"

#include <zlib.h>

#include <cstdio>
#include <stdexcept>

namespace weft::monitor {

namespace {

// Field numbers of profile.proto.
namespace field {
// Profile
constexpr int kSampleType = 1, kSample = 2, kMapping = 3, kLocation = 4, kFunction = 5,
              kStringTable = 6, kTimeNanos = 9, kDurationNanos = 10, kPeriodType = 11, kPeriod = 12,
              kComment = 13, kDefaultSampleType = 14;
// ValueType
constexpr int kType = 1, kUnit = 2;
// Sample
constexpr int kLocationId = 1, kValue = 2, kLabel = 3;
// Label
constexpr int kKey = 1, kStr = 2;
// Mapping
constexpr int kMappingId = 1, kMemoryLimit = 3, kFilename = 5, kHasFunctions = 7, kHasFilenames = 8,
              kHasLineNumbers = 9;
// Location
constexpr int kLocId = 1, kLocMappingId = 2, kAddress = 3, kLine = 4;
// Line
constexpr int kFunctionId = 1, kLineNumber = 2;
// Function
constexpr int kFnId = 1, kName = 2, kSystemName = 3, kFnFilename = 4;
}  // namespace field

class Writer {
  public:
    void varint(std::uint64_t v) {
        while (v >= 0x80) {
            out_ += static_cast<char>((v & 0x7f) | 0x80);
            v >>= 7;
        }
        out_ += static_cast<char>(v);
    }
    void tag(int field, int wire) { varint(static_cast<std::uint64_t>(field) << 3 | wire); }
    /// An integer field; zero is the default and is left out.
    void integer(int field, std::int64_t v) {
        if (v == 0) return;
        tag(field, 0);
        varint(static_cast<std::uint64_t>(v));
    }
    void bytes(int field, std::string_view b) {
        tag(field, 2);
        varint(b.size());
        out_ += b;
    }
    void message(int field, const Writer& m) { bytes(field, m.out_); }
    template <class Int>
    void packed(int field, const std::vector<Int>& vs) {
        if (vs.empty()) return;
        Writer p;
        for (Int v : vs)
            p.varint(static_cast<std::uint64_t>(v));
        bytes(field, p.out_);
    }
    std::string take() { return std::move(out_); }

  private:
    std::string out_;
};

Writer value_type(std::pair<std::int64_t, std::int64_t> t) {
    Writer w;
    w.integer(field::kType, t.first);
    w.integer(field::kUnit, t.second);
    return w;
}

}  // namespace

PprofProfile::PprofProfile(std::vector<std::pair<std::string, std::string>> sample_types,
                           std::string_view default_type) {
    for (const auto& [type, unit] : sample_types)
        sample_types_.emplace_back(string_id(type), string_id(unit));
    default_type_ = string_id(default_type);
}

void PprofProfile::set_period(std::string_view type, std::string_view unit, std::int64_t period) {
    period_type_ = {string_id(type), string_id(unit)};
    period_ = period;
}

void PprofProfile::set_time(std::int64_t time_nanos, std::int64_t duration_nanos) {
    time_nanos_ = time_nanos;
    duration_nanos_ = duration_nanos;
}

void PprofProfile::add_comment(std::string_view text) {
    comments_.push_back(string_id(text));
}

std::int64_t PprofProfile::string_id(std::string_view s) {
    if (s.empty()) return 0;
    auto it = string_ids_.find(s);
    if (it != string_ids_.end()) return it->second;
    const auto id = static_cast<std::int64_t>(strings_.size());
    strings_.emplace_back(s);
    string_ids_.emplace(std::string(s), id);
    return id;
}

std::uint64_t PprofProfile::location_id(const StackFrame& f) {
    std::string name = f.function;
    if (name.empty()) {
        // Named by where it is in its module (addr2line's numbers, the same in every run and
        // process), or by its address when no module holds it.
        char buf[32];
        std::snprintf(
            buf, sizeof buf, "0x%llx",
            static_cast<unsigned long long>(f.module.empty() ? f.address : f.module_offset));
        name = f.module.empty() ? std::string(buf) : f.module + "+" + buf;
    }
    const std::int64_t name_id = string_id(name);
    const std::int64_t file_id = string_id(f.file.empty() ? f.module : f.file);
    auto [fit, fnew] = function_ids_.try_emplace({name_id, file_id}, functions_.size() + 1);
    if (fnew) functions_.push_back({name_id, file_id});
    const auto key = std::make_tuple(f.address, fit->second, static_cast<std::int64_t>(f.line));
    auto [lit, lnew] = location_ids_.try_emplace(key, locations_.size() + 1);
    if (lnew) locations_.push_back({f.address, fit->second, static_cast<std::int64_t>(f.line)});
    return lit->second;
}

void PprofProfile::add_sample(const std::vector<StackFrame>& stack,
                              const std::vector<std::int64_t>& values,
                              const std::vector<std::pair<std::string, std::string>>& labels) {
    Sample s;
    for (const StackFrame& f : stack)
        s.locations.push_back(location_id(f));
    s.values = values;
    s.values.resize(sample_types_.size(), 0);
    for (const auto& [k, v] : labels)
        s.labels.emplace_back(string_id(k), string_id(v));
    samples_.push_back(std::move(s));
}

std::string PprofProfile::serialize() const {
    Writer p;
    for (const auto& t : sample_types_)
        p.message(field::kSampleType, value_type(t));
    for (const Sample& s : samples_) {
        Writer w;
        w.packed(field::kLocationId, s.locations);
        w.packed(field::kValue, s.values);
        for (const auto& [k, v] : s.labels) {
            Writer l;
            l.integer(field::kKey, k);
            l.integer(field::kStr, v);
            w.message(field::kLabel, l);
        }
        p.message(field::kSample, w);
    }
    // One mapping that covers every address and says the frames are symbolized already, so that
    // pprof does not look for the binaries to symbolize them again.
    {
        Writer m;
        m.integer(field::kMappingId, 1);
        m.integer(field::kMemoryLimit, -1);
        m.integer(field::kFilename, 0);
        m.integer(field::kHasFunctions, 1);
        m.integer(field::kHasFilenames, 1);
        m.integer(field::kHasLineNumbers, 1);
        p.message(field::kMapping, m);
    }
    for (std::size_t i = 0; i < locations_.size(); ++i) {
        const Location& loc = locations_[i];
        Writer w;
        w.integer(field::kLocId, static_cast<std::int64_t>(i + 1));
        w.integer(field::kLocMappingId, 1);
        w.integer(field::kAddress, static_cast<std::int64_t>(loc.address));
        Writer line;
        line.integer(field::kFunctionId, static_cast<std::int64_t>(loc.function));
        line.integer(field::kLineNumber, loc.line);
        w.message(field::kLine, line);
        p.message(field::kLocation, w);
    }
    for (std::size_t i = 0; i < functions_.size(); ++i) {
        Writer w;
        w.integer(field::kFnId, static_cast<std::int64_t>(i + 1));
        w.integer(field::kName, functions_[i].name);
        w.integer(field::kSystemName, functions_[i].name);
        w.integer(field::kFnFilename, functions_[i].file);
        p.message(field::kFunction, w);
    }
    for (const std::string& s : strings_)
        p.bytes(field::kStringTable, s);
    p.integer(field::kTimeNanos, time_nanos_);
    p.integer(field::kDurationNanos, duration_nanos_);
    if (period_type_.first) p.message(field::kPeriodType, value_type(period_type_));
    p.integer(field::kPeriod, period_);
    for (std::int64_t c : comments_)
        p.integer(field::kComment, c);
    p.integer(field::kDefaultSampleType, default_type_);
    return p.take();
}

std::string PprofProfile::gzipped() const {
    return gzip(serialize());
}

std::string gzip(std::string_view data) {
    z_stream z{};
    // 15 window bits + 16: a gzip header and trailer rather than zlib's.
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        throw std::runtime_error("gzip: deflateInit2 failed");
    std::string out(deflateBound(&z, static_cast<uLong>(data.size())) + 32, '\0');
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    z.avail_in = static_cast<uInt>(data.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    const int rc = deflate(&z, Z_FINISH);
    const auto written = z.total_out;
    deflateEnd(&z);
    if (rc != Z_STREAM_END) throw std::runtime_error("gzip: deflate failed");
    out.resize(written);
    return out;
}

}  // namespace weft::monitor

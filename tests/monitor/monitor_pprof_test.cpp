// The pprof writer against a small protobuf reader of the test's own: the gzip wrapper, the
// string table, sample types and values, labels, and that frames share locations and functions.
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "weft/monitor/pprof.hpp"

namespace {

using weft::monitor::PprofProfile;
using weft::monitor::StackFrame;

std::string gunzip(const std::string& gz) {
    z_stream z{};
    EXPECT_EQ(inflateInit2(&z, 15 + 16), Z_OK);
    std::string out(1 << 20, '\0');
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(gz.data()));
    z.avail_in = static_cast<uInt>(gz.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    EXPECT_EQ(inflate(&z, Z_FINISH), Z_STREAM_END);
    out.resize(z.total_out);
    inflateEnd(&z);
    return out;
}

// One field of a message: its number, and either an integer or bytes.
struct Field {
    int number = 0;
    std::uint64_t integer = 0;
    std::string bytes;
};

std::uint64_t varint(const std::string& b, std::size_t& i) {
    std::uint64_t v = 0;
    for (int shift = 0; i < b.size(); shift += 7) {
        const auto c = static_cast<unsigned char>(b[i++]);
        v |= static_cast<std::uint64_t>(c & 0x7f) << shift;
        if (!(c & 0x80)) break;
    }
    return v;
}

std::vector<Field> fields(const std::string& msg) {
    std::vector<Field> out;
    for (std::size_t i = 0; i < msg.size();) {
        const std::uint64_t key = varint(msg, i);
        Field f;
        f.number = static_cast<int>(key >> 3);
        if ((key & 7) == 0) {
            f.integer = varint(msg, i);
        } else {
            EXPECT_EQ(key & 7, 2u);
            const auto n = static_cast<std::size_t>(varint(msg, i));
            f.bytes = msg.substr(i, n);
            i += n;
        }
        out.push_back(std::move(f));
    }
    return out;
}

std::vector<std::uint64_t> packed(const std::string& b) {
    std::vector<std::uint64_t> v;
    for (std::size_t i = 0; i < b.size();)
        v.push_back(varint(b, i));
    return v;
}

StackFrame frame(std::string fn, std::uint64_t addr) {
    StackFrame f;
    f.function = std::move(fn);
    f.address = addr;
    f.file = "demo.cpp";
    f.line = 7;
    return f;
}

TEST(Pprof, ProfileProtoRoundTrips) {
    PprofProfile p({{"blockages", "count"}, {"blocked", "nanoseconds"}}, "blocked");
    p.set_time(1'700'000'000'000'000'000, 5'000'000'000);
    const std::vector<StackFrame> stack = {frame("raw_sleep", 0x10), frame("handler", 0x20)};
    p.add_sample(stack, {2, 300'000'000}, {{"route", "/block"}, {"kind", "syscall"}});
    p.add_sample({frame("spin", 0x30), frame("handler", 0x20)}, {1, 150'000'000},
                 {{"route", "/spin"}});
    const std::string gz = p.gzipped();
    ASSERT_GE(gz.size(), 2u);
    EXPECT_EQ(static_cast<unsigned char>(gz[0]), 0x1f);
    EXPECT_EQ(static_cast<unsigned char>(gz[1]), 0x8b);
    const std::string msg = gunzip(gz);
    EXPECT_EQ(msg, p.serialize());

    std::vector<std::string> strings;
    std::vector<std::string> samples, locations, functions, types;
    std::map<int, std::uint64_t> scalars;
    for (const Field& f : fields(msg)) {
        switch (f.number) {
            case 1:
                types.push_back(f.bytes);
                break;
            case 2:
                samples.push_back(f.bytes);
                break;
            case 4:
                locations.push_back(f.bytes);
                break;
            case 5:
                functions.push_back(f.bytes);
                break;
            case 6:
                strings.push_back(f.bytes);
                break;
            default:
                scalars[f.number] = f.integer;
        }
    }
    ASSERT_FALSE(strings.empty());
    EXPECT_EQ(strings[0], "");  // pprof requires it
    auto str = [&](std::uint64_t id) { return id < strings.size() ? strings[id] : "?"; };
    ASSERT_EQ(types.size(), 2u);
    EXPECT_EQ(str(fields(types[1])[0].integer), "blocked");
    EXPECT_EQ(str(fields(types[1])[1].integer), "nanoseconds");
    EXPECT_EQ(str(scalars[14]), "blocked");  // default_sample_type
    EXPECT_EQ(scalars[9], 1'700'000'000'000'000'000u);
    EXPECT_EQ(scalars[10], 5'000'000'000u);
    // "handler" at one address is one location and one function for both samples.
    EXPECT_EQ(locations.size(), 3u);
    EXPECT_EQ(functions.size(), 3u);

    ASSERT_EQ(samples.size(), 2u);
    std::vector<std::uint64_t> locs, values;
    std::map<std::string, std::string> labels;
    for (const Field& f : fields(samples[0])) {
        if (f.number == 1) locs = packed(f.bytes);
        if (f.number == 2) values = packed(f.bytes);
        if (f.number == 3) {
            auto l = fields(f.bytes);
            labels[str(l[0].integer)] = str(l[1].integer);
        }
    }
    EXPECT_EQ(locs, (std::vector<std::uint64_t>{1, 2}));
    EXPECT_EQ(values, (std::vector<std::uint64_t>{2, 300'000'000}));
    EXPECT_EQ(labels["route"], "/block");
    EXPECT_EQ(labels["kind"], "syscall");
    // The innermost frame's function is named.
    std::uint64_t fn_id = 0;
    for (const Field& f : fields(locations[0]))
        if (f.number == 4) fn_id = fields(f.bytes)[0].integer;
    for (const auto& fn : functions) {
        auto ff = fields(fn);
        if (ff[0].integer == fn_id) {
            EXPECT_EQ(str(ff[1].integer), "raw_sleep");
        }
    }
}

TEST(Pprof, AFrameWithoutAFunctionIsNamedByItsModule) {
    PprofProfile p({{"samples", "count"}}, "samples");
    StackFrame f;
    f.address = 0x7f0000000abc;  // where it was loaded this time: not in the name
    f.module = "libfoo.so";
    f.module_offset = 0xabc;
    p.add_sample({f}, {1});
    const std::string out = p.serialize();
    EXPECT_NE(out.find("libfoo.so+0xabc"), std::string::npos);
    EXPECT_EQ(out.find("0x7f0000000abc"), std::string::npos);
    // With no module, the address.
    PprofProfile q({{"samples", "count"}}, "samples");
    StackFrame g;
    g.address = 0x1234;
    q.add_sample({g}, {1});
    EXPECT_NE(q.serialize().find("0x1234"), std::string::npos);
}

}  // namespace

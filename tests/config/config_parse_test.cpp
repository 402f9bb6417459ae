// White-box tests of config/src/parse.hpp: the formatting that render_effective relies on to
// round-trip, the quoting that keeps TOML and JSON valid, and the typo suggestions.
#include <gtest/gtest.h>

#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include "weft/config/parse.hpp"

namespace weft::config {
namespace {

using namespace std::chrono_literals;

TEST(ConfigParse, FormatDuration) {
    EXPECT_EQ(format_duration(0s), "0s");
    EXPECT_EQ(format_duration(100ms), "100ms");
    EXPECT_EQ(format_duration(60s), "60s");
    EXPECT_EQ(format_duration(90s), "90s");
    EXPECT_EQ(format_duration(3600s), "1h");
    EXPECT_EQ(format_duration(1500ms), "1500ms");
    EXPECT_EQ(format_duration(250us), "250us");
    EXPECT_EQ(format_duration(7ns), "7ns");
    for (Duration d :
         {Duration(1), Duration(999), Duration(1'000'001), Duration(5'400'000'000'000)}) {
        EXPECT_EQ(duration_from_text(format_duration(d)), d) << format_duration(d);
    }
}

TEST(ConfigParse, FormatSize) {
    EXPECT_EQ(format_size(0), "0");
    EXPECT_EQ(format_size(65536), "64KiB");
    EXPECT_EQ(format_size(kMiB), "1MiB");
    EXPECT_EQ(format_size(3 * kGiB), "3GiB");
    EXPECT_EQ(format_size(1536), "1536");
    EXPECT_EQ(format_size(1000), "1000");
    EXPECT_EQ(size_from_text("64KiB"), 65536u);
    EXPECT_EQ(size_from_text("1.5 kb"), 1536u);
    EXPECT_FALSE(size_from_text("1.5 kbit"));
    EXPECT_FALSE(size_from_text(""));
}

TEST(ConfigParse, FormatDoubleReadsBackExactly) {
    for (double v : {0.1, 1.0, -2.0, 1e300, 5e-324, 123456789.125, 1e21}) {
        const std::string s = format_double(v);
        EXPECT_NE(s.find_first_of(".e"), std::string::npos) << s;  // TOML must see a float
        EXPECT_EQ(std::strtod(s.c_str(), nullptr), v) << s;
    }
    EXPECT_EQ(format_double(std::numeric_limits<double>::infinity()), "inf");
}

TEST(ConfigParse, TomlQuote) {
    EXPECT_EQ(toml_quote("plain"), "\"plain\"");
    EXPECT_EQ(toml_quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
    EXPECT_EQ(toml_quote("\n\t\r\b\f"), "\"\\n\\t\\r\\b\\f\"");
    EXPECT_EQ(toml_quote(std::string("\x01\x7f", 2)), "\"\\u0001\\u007F\"");
    EXPECT_EQ(toml_quote("é"), "\"é\"");
    EXPECT_EQ(toml_quote("\xff"), "\"\\uFFFD\"");
    EXPECT_EQ(toml_key("bare_key-1"), "bare_key-1");
    EXPECT_EQ(toml_key("with space"), "\"with space\"");
    EXPECT_EQ(toml_key(""), "\"\"");
}

TEST(ConfigParse, JsonQuote) {
    EXPECT_EQ(json_quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
    EXPECT_EQ(json_quote(std::string("\x00\x1f", 2)), "\"\\u0000\\u001F\"");
    EXPECT_EQ(json_quote("\x7f"), "\"\x7f\"");
    EXPECT_EQ(json_quote("é"), "\"é\"");
    EXPECT_EQ(json_quote("a\xffz"), "\"a\\uFFFDz\"");
    EXPECT_EQ(json_quote("\xc3"), "\"\\uFFFD\"");  // truncated sequence
}

TEST(ConfigParse, Utf8Validation) {
    EXPECT_TRUE(valid_utf8("plain é 日本 \xf0\x9f\x98\x80"));
    EXPECT_FALSE(valid_utf8("\xc0\xaf"));          // overlong '/'
    EXPECT_FALSE(valid_utf8("\xed\xa0\x80"));      // a surrogate
    EXPECT_FALSE(valid_utf8("\xf4\x90\x80\x80"));  // past U+10FFFF
    EXPECT_FALSE(valid_utf8("\x80"));
}

TEST(ConfigParse, HeaderPhrase) {
    EXPECT_TRUE(weft::valid_header_phrase(""));
    EXPECT_TRUE(weft::valid_header_phrase("weft"));
    EXPECT_TRUE(weft::valid_header_phrase("acme/2.1 (edge; \"x\") y"));
    EXPECT_TRUE(weft::valid_header_phrase(std::string(128, 'a')));
    EXPECT_FALSE(weft::valid_header_phrase(std::string(129, 'a')));
    EXPECT_FALSE(weft::valid_header_phrase(" weft"));
    EXPECT_FALSE(weft::valid_header_phrase("weft "));
    EXPECT_FALSE(weft::valid_header_phrase("weft\r\nX-Forged: 1"));
    EXPECT_FALSE(weft::valid_header_phrase("a\tb"));
    EXPECT_FALSE(weft::valid_header_phrase("a\x7f"));
    EXPECT_FALSE(
        weft::valid_header_phrase("w\xc3\xa9"
                                  "ft"));  // UTF-8 is not ASCII
}

TEST(ConfigParse, EditDistanceAndSuggestions) {
    EXPECT_EQ(edit_distance("listen", "listen"), 0u);
    EXPECT_EQ(edit_distance("lisen", "listen"), 1u);
    EXPECT_EQ(edit_distance("lsiten", "listen"), 1u);  // a swap costs one
    EXPECT_EQ(edit_distance("", "abc"), 3u);
    const std::vector<std::string> keys = {"listen", "hubs", "backend"};
    EXPECT_EQ(suggest("lisen", keys), "listen");
    EXPECT_EQ(suggest("HUBS", keys), "hubs");
    EXPECT_EQ(suggest("hub", keys), "hubs");
    EXPECT_FALSE(suggest("colour", keys));
    EXPECT_EQ(suggest("back", keys), "backend");           // cut short
    EXPECT_EQ(suggest("listen_address", keys), "listen");  // run on
    EXPECT_FALSE(suggest("max", {{"max_a", "max_b"}}));    // ambiguous
    EXPECT_FALSE(suggest("x", keys));
}

TEST(ConfigParse, DurationGrammar) {
    EXPECT_EQ(duration_from_text("1m30s"), 90s);
    EXPECT_EQ(duration_from_text(" 2h "), 7200s);
    EXPECT_EQ(duration_from_text(".5s"), 500ms);
    EXPECT_EQ(duration_from_text("3\xC2\xB5s"), 3us);
    EXPECT_EQ(duration_from_text("-1s"), -1s);
    for (const char* bad : {"", "s", "1x", "1.2.3s", "1 s", "1s-2s", "--1s", "1S"}) {
        EXPECT_FALSE(duration_from_text(bad)) << bad;
    }
}

TEST(ConfigParse, ADurationBeyondWhatOneHoldsSaysSo) {
    // Without a bound of the key's own, "3000000h" used to be refused as negative.
    auto r = parse_duration(Input::from_text("3000000h"), Duration::zero(), Duration::max());
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().message, "is too long: at most 292 years");
    auto n = parse_duration(Input::from_text("-1s"), Duration::zero(), Duration::max());
    ASSERT_FALSE(n.ok());
    EXPECT_EQ(n.error().message, "must not be negative");
}

TEST(ConfigParse, RoundedDurationMustStayAboveZero) {
    // 0.1 ns rounds to 0: "> 0" must still refuse it.
    auto r = parse_duration(Input::from_text("0.0000000001"), Duration::zero(), 1s, true);
    EXPECT_FALSE(r.ok());
    EXPECT_NE(r.error().message.find("must be greater than 0"), std::string::npos)
        << r.error().message;
}

TEST(ConfigParse, SizesAreWholeBytesCheckedAfterRounding) {
    // 0.4 rounds to 0, which often means "no limit": refused, not taken.
    auto r = parse_size(Input::from_text("0.4"), 0, 1024);
    EXPECT_FALSE(r.ok());
    if (!r.ok()) {
        EXPECT_NE(r.error().message.find("less than one byte"), std::string::npos);
    }
    EXPECT_FALSE(parse_size(Input::from_text("-0.4"), 0, 1024).ok());  // not -0: 0 either
    EXPECT_EQ(parse_size(Input::from_text("1.5KiB"), 0, 1u << 20).value(), 1536u);
    EXPECT_EQ(parse_size(Input::from_text("1023.6"), 0, 1024).value(), 1024u);
    EXPECT_FALSE(parse_size(Input::from_text("1024.6"), 0, 1024).ok());  // 1025 after rounding
    // Above 2^63 (where a signed conversion overflowed) and past 64 bits.
    const auto max = std::numeric_limits<std::uint64_t>::max();
    EXPECT_EQ(parse_size(Input::from_text("16777215TiB"), 0, max).value(), 16777215ull << 40);
    // Too large for 64 bits is not "negative": the message names the limit.
    for (const char* big : {"16777216TiB", "18446744073709551616", "17179869184GiB"}) {
        auto too_big = parse_size(Input::from_text(big), 0, max);
        ASSERT_FALSE(too_big.ok()) << big;
        EXPECT_NE(too_big.error().message.find("must be less than 16EiB"), std::string::npos)
            << too_big.error().message;
    }
    auto fraction = parse_size(Input::from_text("0.1b"), 0, max);
    ASSERT_FALSE(fraction.ok());
    EXPECT_NE(fraction.error().message.find("must be 0 or at least 1 byte"), std::string::npos)
        << fraction.error().message;
    EXPECT_NE(parse_size(Input::from_text("-1"), 0, max).error().message.find("negative"),
              std::string::npos);
}

}  // namespace
}  // namespace weft::config

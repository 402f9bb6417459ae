// Prometheus text 0.0.4 and OpenMetrics 1.0 rendering, number formatting, and Accept
// negotiation. The two formats differ in metadata (counter family names lose "_total" in
// OpenMetrics, which also has # UNIT, the info type and the closing # EOF) and in HELP escaping.
#include "weft/monitor/exposition.hpp"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "weft/core/text.hpp"

namespace weft::monitor {

// ---------------------------------------------------------------------------------------------
// Numbers.

std::string format_value(double v) {
    if (std::isnan(v)) return "NaN";
    if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    if (v == std::trunc(v) && std::fabs(v) < 1e15) {
        return std::to_string(static_cast<std::int64_t>(v));
    }
    // Shortest digits that read back exactly, then laid out like Go's %g (what Prometheus
    // itself writes): exponent form below 1e-4 and from 1e6 up, with a two-digit exponent.
    char sci[64];
    auto res = std::to_chars(sci, sci + sizeof sci, v, std::chars_format::scientific);
    std::string_view s(sci, static_cast<std::size_t>(res.ptr - sci));
    bool neg = !s.empty() && s[0] == '-';
    if (neg) s.remove_prefix(1);
    std::size_t epos = s.find('e');
    std::string digits;
    for (char c : s.substr(0, epos))
        if (c != '.') digits += c;
    int exp = std::atoi(std::string(s.substr(epos + 1)).c_str());
    std::string out = neg ? "-" : "";
    if (exp < -4 || exp >= 6) {
        out += digits[0];
        if (digits.size() > 1) {
            out += '.';
            out.append(digits, 1, std::string::npos);
        }
        out += exp < 0 ? "e-" : "e+";
        int a = exp < 0 ? -exp : exp;
        if (a < 10) out += '0';
        out += std::to_string(a);
    } else if (exp < 0) {
        out += "0.";
        out.append(static_cast<std::size_t>(-exp - 1), '0');
        out += digits;
    } else {
        std::size_t int_len = static_cast<std::size_t>(exp) + 1;
        if (digits.size() <= int_len) {
            out += digits;
            out.append(int_len - digits.size(), '0');
        } else {
            out.append(digits, 0, int_len);
            out += '.';
            out.append(digits, int_len, std::string::npos);
        }
    }
    return out;
}

// ---------------------------------------------------------------------------------------------
// Accept negotiation.

namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
        s.remove_suffix(1);
    return s;
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
        if (x != y) return false;
    }
    return true;
}

}  // namespace

ExpositionFormat negotiate_format(std::string_view accept) {
    double om_q = 0, text_q = 0;
    while (!accept.empty()) {
        std::size_t comma = accept.find(',');
        std::string_view range = accept.substr(0, comma);
        accept = comma == std::string_view::npos ? std::string_view() : accept.substr(comma + 1);
        std::size_t semi = range.find(';');
        std::string_view type = trim(range.substr(0, semi));
        double q = 1;
        while (semi != std::string_view::npos) {
            range = range.substr(semi + 1);
            semi = range.find(';');
            std::string_view param = trim(range.substr(0, semi));
            if (param.size() > 2 && (param[0] == 'q' || param[0] == 'Q') && param[1] == '=') {
                std::string val(param.substr(2));
                char* end = nullptr;
                double parsed = std::strtod(val.c_str(), &end);
                q = (end && *end == '\0' && parsed >= 0 && parsed <= 1) ? parsed : 0;
            }
        }
        if (iequals(type, "application/openmetrics-text")) {
            om_q = std::max(om_q, q);
        } else if (iequals(type, "text/plain") || iequals(type, "text/*") || type == "*/*") {
            text_q = std::max(text_q, q);
        }
    }
    return om_q > 0 && om_q >= text_q ? ExpositionFormat::openmetrics
                                      : ExpositionFormat::prometheus_text;
}

std::string_view content_type(ExpositionFormat f) noexcept {
    return f == ExpositionFormat::openmetrics
               ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
               : "text/plain; version=0.0.4; charset=utf-8";
}

// ---------------------------------------------------------------------------------------------
// Rendering.

namespace {

/// True when `s` ends with `suffix` and has more before it (a name is never only a suffix).
bool has_proper_suffix(std::string_view s, std::string_view suffix) {
    return s.size() > suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::string derive_unit(std::string_view family) {
    static constexpr std::string_view kUnits[] = {"seconds", "bytes", "ratio",   "celsius",
                                                  "meters",  "volts", "amperes", "joules",
                                                  "grams",   "hertz"};
    for (auto u : kUnits) {
        if (family.size() > u.size() + 1 && has_proper_suffix(family, u) &&
            family[family.size() - u.size() - 1] == '_')
            return std::string(u);
    }
    return "";
}

// Bytes that are not well-formed UTF-8 (a label value a plugin took from a request, say) become
// U+FFFD: Prometheus refuses a whole scrape for one invalid label value.
void escape_into(std::string& out, std::string_view s, bool quote) {
    for (std::size_t i = 0; i < s.size();) {
        const char c = s[i];
        if (static_cast<unsigned char>(c) >= 0x80) {
            std::uint32_t code = 0;
            const std::size_t n = utf8_sequence(s, i, &code);
            if (n == 0) {
                out += "\xEF\xBF\xBD";
                ++i;
            } else {
                out.append(s, i, n);
                i += n;
            }
            continue;
        }
        if (c == '\\')
            out += "\\\\";
        else if (c == '\n')
            out += "\\n";
        else if (c == '"' && quote)
            out += "\\\"";
        else
            out += c;
        ++i;
    }
}

void labels_into(std::string& out, const LabelSet& labels, std::string_view le = {}) {
    if (labels.empty() && le.empty()) return;
    out += '{';
    bool first = true;
    for (const auto& l : labels) {
        if (!first) out += ',';
        first = false;
        out += l.name;
        out += "=\"";
        escape_into(out, l.value, true);
        out += '"';
    }
    if (!le.empty()) {
        if (!first) out += ',';
        out += "le=\"";
        out += le;
        out += '"';
    }
    out += '}';
}

void sample_into(std::string& out, std::string_view name, std::string_view suffix,
                 const LabelSet& labels, std::string_view value, std::string_view le = {}) {
    out += name;
    out += suffix;
    labels_into(out, labels, le);
    out += ' ';
    out += value;
    out += '\n';
}

void render_family(std::string& out, const MetricFamily& f, bool om) {
    if (f.samples.empty() && f.histograms.empty()) return;
    // Family name in the metadata, and the name samples are built from.
    std::string base = f.name;
    std::string sample_name = f.name;
    std::string_view type = "gauge";
    switch (f.type) {
        case MetricType::counter:
            if (has_proper_suffix(base, "_total")) base.resize(base.size() - 6);
            sample_name = base + "_total";
            type = "counter";
            break;
        case MetricType::gauge:
            type = "gauge";
            break;
        case MetricType::histogram:
            type = "histogram";
            break;
        case MetricType::info:
            if (has_proper_suffix(base, "_info")) base.resize(base.size() - 5);
            sample_name = base + "_info";
            type = om ? "info" : "gauge";
            break;
        case MetricType::unknown:
            type = om ? "unknown" : "untyped";
            break;
    }
    std::string meta = om ? base : sample_name;
    if (f.type == MetricType::histogram) meta = base;

    out += "# TYPE ";
    out += meta;
    out += ' ';
    out += type;
    out += '\n';
    if (om) {
        std::string unit = f.unit.empty() ? derive_unit(base) : f.unit;
        if (!unit.empty() && has_proper_suffix(base, "_" + unit)) {
            out += "# UNIT ";
            out += base;
            out += ' ';
            out += unit;
            out += '\n';
        }
    }
    if (!f.help.empty()) {
        out += "# HELP ";
        out += meta;
        out += ' ';
        escape_into(out, f.help, om);
        out += '\n';
    }
    if (f.type == MetricType::histogram) {
        for (const auto& h : f.histograms) {
            std::uint64_t cum = 0;
            for (std::size_t i = 0; i < h.bounds.size(); ++i) {
                cum += i < h.counts.size() ? h.counts[i] : 0;
                sample_into(out, base, "_bucket", h.labels, std::to_string(cum),
                            format_value(h.bounds[i]));
            }
            if (h.counts.size() > h.bounds.size()) cum += h.counts[h.bounds.size()];
            sample_into(out, base, "_bucket", h.labels, std::to_string(cum), "+Inf");
            if (om) {
                sample_into(out, base, "_count", h.labels, std::to_string(cum));
                sample_into(out, base, "_sum", h.labels, format_value(h.sum));
            } else {
                sample_into(out, base, "_sum", h.labels, format_value(h.sum));
                sample_into(out, base, "_count", h.labels, std::to_string(cum));
            }
        }
        return;
    }
    for (const auto& s : f.samples)
        sample_into(out, sample_name, "", s.labels, format_value(s.value));
}

}  // namespace

std::string render(const std::vector<MetricFamily>& families, ExpositionFormat f) {
    std::string out;
    out.reserve(16 * 1024);
    bool om = f == ExpositionFormat::openmetrics;
    for (const auto& fam : families)
        render_family(out, fam, om);
    if (om) out += "# EOF\n";
    return out;
}

Scrape scrape(const Registry& registry, std::string_view accept_header) {
    ExpositionFormat f = negotiate_format(accept_header);
    return {std::string(content_type(f)), render(registry.collect(), f)};
}

}  // namespace weft::monitor

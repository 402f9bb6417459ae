// The kinds of values keys take (their parsers, limits and printers), what sources and errors
// read like, and the schema's lookups. Listen addresses are parsed here with messages that say
// what is wrong, then handed to weft::SocketAddress.
#include "weft/config/schema.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>

#include "weft/config/error.hpp"

namespace weft::config {

std::string Source::to_string() const {
    switch (kind) {
        case Kind::built_in:
            return "built-in default";
        case Kind::embedded_default:
            return "embedded " + where;
        case Kind::file:
            return where;
        case Kind::environment:
            return "environment " + where;
        case Kind::flag:
            return "flag " + where;
    }
    return where;
}

std::string ConfigError::to_string() const {
    std::string s;
    if (!key.empty()) s += key + ": ";
    s += message;
    if (!value.empty()) s += ", got " + value;
    s += " (" + source.to_string() + ")";
    return s;
}

std::string ConfigErrors::to_string() const {
    std::string text;
    for (const auto& e : list)
        text += e.to_string() + "\n";
    return text;
}

namespace {

std::string toml_bool(const bool& v) {
    return v ? "true" : "false";
}
template <class T>
std::string plain_number(const T& v) {
    return std::to_string(v);
}
std::string toml_size(const std::uint64_t& v) {
    const std::string s = format_size(v);
    return s == std::to_string(v) ? s : toml_quote(s);
}
std::string toml_duration(const Duration& d) {
    return toml_quote(format_duration(d));
}
std::string json_duration(const Duration& d) {
    return format_double(static_cast<double>(d.count()) / 1e9);
}
std::string quoted(const std::string& s) {
    return toml_quote(s);
}
std::string json_string(const std::string& s) {
    return json_quote(s);
}

// "ADDR:PORT", "[V6]:PORT", "*:PORT" or ":PORT", said precisely when wrong.
Parsed<SocketAddress> parse_listen_text(std::string_view text) {
    std::string_view host;
    std::string_view port;
    std::string numeric;  // what SocketAddress::parse is given
    if (!text.empty() && text.front() == '[') {
        const auto close = text.find(']');
        if (close == std::string_view::npos) return Problem{"missing ']' after the IPv6 address"};
        host = text.substr(1, close - 1);
        const std::string_view rest = text.substr(close + 1);
        if (rest.empty() || rest.front() != ':') return Problem{"missing ':PORT' after ']'"};
        port = rest.substr(1);
        const std::string h(host);
        if (h.find('%') != std::string::npos)
            return Problem{"a zone index (\"%" + h.substr(h.find('%') + 1) +
                           "\") is not supported: listen on [::] or on a global address"};
        in6_addr tmp{};
        if (inet_pton(AF_INET6, h.c_str(), &tmp) != 1) return Problem{"not an IPv6 address"};
    } else {
        const auto colon = text.rfind(':');
        if (colon == std::string_view::npos) return Problem{"missing ':PORT'"};
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
        if (host.find(':') != std::string_view::npos) {
            return Problem{"an IPv6 address needs brackets"};
        }
        if (!host.empty() && host != "*") {
            const std::string h(host);
            in_addr tmp{};
            if (inet_pton(AF_INET, h.c_str(), &tmp) != 1) {
                return Problem{"not a numeric IPv4 address (host names are not resolved)"};
            }
        }
    }
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (port.empty() || end != port.data() + port.size() || ec != std::errc() || value > 65535) {
        return Problem{"the port must be a number 0..65535"};
    }
    auto a = SocketAddress::parse(text);
    if (!a) return Problem{"not a usable address"};
    return *a;
}

}  // namespace

Kind<bool> boolean() {
    return {parse_bool, toml_bool, toml_bool};
}

Kind<std::int64_t> integer(std::int64_t min, std::int64_t max) {
    return {[min, max](const Input& in) { return parse_integer(in, min, max); },
            plain_number<std::int64_t>, plain_number<std::int64_t>};
}

Kind<std::int64_t> count_or_auto(std::int64_t max) {
    return {[max](const Input& in) { return parse_count_or_auto(in, max); },
            plain_number<std::int64_t>, plain_number<std::int64_t>};
}

Kind<std::uint64_t> size(std::uint64_t min, std::uint64_t max) {
    return {[min, max](const Input& in) { return parse_size(in, min, max); }, toml_size,
            plain_number<std::uint64_t>};
}

Kind<std::uint64_t> size_or_auto(std::uint64_t min, std::uint64_t max) {
    auto parse = [min, max](const Input& in) -> Parsed<std::uint64_t> {
        if (in.is_textual() && to_lower(trim(in.text)) == "auto") return std::uint64_t{0};
        if (in.kind == Input::Kind::integer && in.integer == 0) return std::uint64_t{0};
        auto r = parse_size(in, min, max);
        if (!r) return Problem{r.error().message + " (or \"auto\")"};
        return r;
    };
    auto toml = [](const std::uint64_t& v) { return v == 0 ? toml_quote("auto") : toml_size(v); };
    return {parse, toml, plain_number<std::uint64_t>};
}

Kind<Duration> duration(Duration min, Duration max, bool min_exclusive) {
    return {[=](const Input& in) { return parse_duration(in, min, max, min_exclusive); },
            toml_duration, json_duration};
}

Kind<std::string> text(std::function<bool(std::string_view)> valid, std::string allowed) {
    auto parse = [valid = std::move(valid),
                  allowed = std::move(allowed)](const Input& in) -> Parsed<std::string> {
        if (!in.is_textual() || !valid(in.text)) return Problem{allowed};
        return in.text;
    };
    return {parse, quoted, json_string};
}

Kind<std::string> path() {
    auto parse = [](const Input& in) -> Parsed<std::string> {
        if (!in.is_textual()) return Problem{"expected a file path (a string; \"\" for none)"};
        if (in.text.find('\0') != std::string::npos) {
            return Problem{"a path must not contain a NUL character"};
        }
        return in.text;
    };
    return {parse, quoted, json_string};
}

Kind<SocketAddress> listen_address() {
    constexpr std::string_view kAllowed =
        "expected ADDR:PORT with a numeric IPv4 address (\"127.0.0.1:8080\"), [IPv6]:PORT "
        "(\"[::1]:8080\") or *:PORT for every address; port 0..65535";
    auto parse = [kAllowed](const Input& in) -> Parsed<SocketAddress> {
        if (!in.is_textual()) return Problem{std::string(kAllowed)};
        auto a = parse_listen_text(trim(in.text));  // blanks around, as every kind allows
        if (!a) return Problem{a.error().message + "; " + std::string(kAllowed)};
        return a;
    };
    return {parse, [](const SocketAddress& a) { return toml_quote(a.to_string()); },
            [](const SocketAddress& a) { return json_quote(a.to_string()); }};
}

std::string Key::display() const {
    return "[" + section + "] " + name;
}

std::string Key::dotted() const {
    return section + "." + name;
}

std::string Key::env_name() const {
    return "WEFT_" + to_upper(section) + "_" + to_upper(name);
}

std::vector<std::string> SchemaBase::sections() const {
    std::vector<std::string> out;
    for (const auto& k : keys_) {
        if (std::find(out.begin(), out.end(), k.section) == out.end()) out.push_back(k.section);
    }
    return out;
}

const Key* SchemaBase::find(std::string_view section, std::string_view name) const noexcept {
    for (const auto& k : keys_) {
        if (k.section == section && k.name == name) return &k;
    }
    return nullptr;
}

const Key* SchemaBase::find_old(std::string_view dotted) const noexcept {
    for (const auto& k : keys_) {
        for (const auto& old : k.old_names) {
            if (old == dotted) return &k;
        }
    }
    return nullptr;
}

void SchemaBase::run_checks(const void* root, CheckContext& ctx) const {
    for (const auto& c : checks_)
        c(root, ctx);
}

}  // namespace weft::config

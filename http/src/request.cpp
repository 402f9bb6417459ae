// Request accessors that do work: lazy query decoding, parameter lookup, moving the body out.
#include "weft/http/request.hpp"

#include "uri.hpp"

namespace weft::http {

bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        char x = a[i], y = b[i];
        if (x == y) continue;
        if (x >= 'A' && x <= 'Z') x = static_cast<char>(x + 32);
        if (y >= 'A' && y <= 'Z') y = static_cast<char>(y + 32);
        if (x != y) return false;
    }
    return true;
}

std::string Request::take_body() noexcept {
    std::string out = std::move(body_);
    body_.clear();
    return out;
}

std::optional<std::string_view> Request::param(std::string_view name) const noexcept {
    for (const Param& p : params_)
        if (p.name == name) return p.value;
    return std::nullopt;
}

void Request::parse_query() const {
    query_parsed_ = true;
    query_.clear();
    query_storage_.clear();
    if (raw_query_.empty()) return;
    // Decode every pair into one buffer first (offsets), then make the views: the buffer must
    // not move under views already handed out.
    struct Span {
        std::size_t name_off, name_len, value_off, value_len;
    };
    Span local[16];
    std::vector<Span> many;
    std::size_t n = 0;
    query_storage_.reserve(raw_query_.size());
    std::string_view rest = raw_query_;
    while (!rest.empty()) {
        std::size_t amp = rest.find('&');
        std::string_view pair = rest.substr(0, amp);
        rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
        if (pair.empty()) continue;
        std::size_t eq = pair.find('=');
        std::string_view name = pair.substr(0, eq);
        std::string_view value =
            eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
        Span s;
        auto decode = [&](std::string_view in, std::size_t& off, std::size_t& len) {
            off = query_storage_.size();
            if (!detail::percent_decode(in, query_storage_, true)) {
                query_storage_.resize(off);
                query_storage_.append(in);  // an invalid escape: keep the text as sent
            }
            len = query_storage_.size() - off;
        };
        decode(name, s.name_off, s.name_len);
        decode(value, s.value_off, s.value_len);
        if (n < 16)
            local[n] = s;
        else
            many.push_back(s);
        ++n;
    }
    query_.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        const Span& s = i < 16 ? local[i] : many[i - 16];
        query_.push_back({std::string_view(query_storage_.data() + s.name_off, s.name_len),
                          std::string_view(query_storage_.data() + s.value_off, s.value_len)});
    }
}

std::optional<std::string_view> Request::query(std::string_view name) const {
    if (!query_parsed_) parse_query();
    for (const Param& p : query_)
        if (p.name == name) return p.value;
    return std::nullopt;
}

std::span<const Param> Request::query_params() const {
    if (!query_parsed_) parse_query();
    return query_;
}

}  // namespace weft::http

// Headers of a request: name/value views in arrival order, looked up case-insensitively.
// Repeated fields stay separate entries (get_all / for_each_value see every one).
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>
#include <vector>

namespace weft::http {

namespace detail {
struct RequestAccess;
}

/// ASCII case-insensitive equality (header names, tokens).
bool iequals(std::string_view a, std::string_view b) noexcept;

struct Header {
    std::string_view name;
    std::string_view value;
};

/// The views point into the owning Request; they stay valid as long as it does.
class Headers {
  public:
    /// The first value of `name`, if present.
    std::optional<std::string_view> get(std::string_view name) const noexcept {
        for (const Header& h : list_)
            if (iequals(h.name, name)) return h.value;
        return std::nullopt;
    }
    bool contains(std::string_view name) const noexcept { return get(name).has_value(); }
    /// How many fields are named `name`.
    std::size_t count(std::string_view name) const noexcept {
        std::size_t n = 0;
        for (const Header& h : list_)
            n += iequals(h.name, name) ? 1 : 0;
        return n;
    }
    /// Calls fn(value) for every field named `name`, in arrival order.
    template <class F>
    void for_each_value(std::string_view name, F&& fn) const {
        for (const Header& h : list_)
            if (iequals(h.name, name)) fn(h.value);
    }
    /// Every value of `name`, in arrival order.
    std::vector<std::string_view> get_all(std::string_view name) const {
        std::vector<std::string_view> out;
        for_each_value(name, [&](std::string_view v) { out.push_back(v); });
        return out;
    }

    std::size_t size() const noexcept { return list_.size(); }
    bool empty() const noexcept { return list_.empty(); }
    auto begin() const noexcept { return list_.begin(); }
    auto end() const noexcept { return list_.end(); }
    const Header& operator[](std::size_t i) const noexcept { return list_[i]; }

  private:
    friend class Request;
    friend struct detail::RequestAccess;
    std::vector<Header> list_;
};

}  // namespace weft::http

// Schema: the table of configuration keys of one program, each bound straight to the member of
// the options struct that owns the setting (h2o's configurators, Seastar's option structs). A key
// names its section and name, its variable (WEFT_SECTION_NAME plus aliases), an optional flag,
// its kind (parser with limits, TOML and JSON printers) and a one-line doc. The type, default and
// limits of a setting live in its owner's struct; the schema only says how users spell it.
//
//     config::Schema<Settings> s;
//     s.bind("server", "max_headers", [](auto& o) -> auto& { return o.http.max_headers; },
//            config::integer(1, 10'000), "header fields per request (431 beyond)");
//
// The loader (load.hpp) and the printers (render.hpp) walk a schema; nothing else knows the keys.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "weft/config/parse.hpp"
#include "weft/config/source.hpp"
#include "weft/core/socket_address.hpp"

namespace weft::config {

/// How values of one type are read and printed: the parser (with its limits) and the TOML and
/// JSON printers (TOML that the parser reads back to the same value).
template <class V>
struct Kind {
    using value_type = V;
    std::function<Parsed<V>(const Input&)> parse;
    std::function<std::string(const V&)> toml;
    std::function<std::string(const V&)> json;
};

/// true / false (from text also 1/0, on/off, yes/no).
Kind<bool> boolean();
/// An integer in [min, max].
Kind<std::int64_t> integer(std::int64_t min, std::int64_t max);
/// An integer in [0, max]; 0 or "auto" lets the owner choose.
Kind<std::int64_t> count_or_auto(std::int64_t max);
/// A size in bytes in [min, max] (512, "64KiB", "1mb").
Kind<std::uint64_t> size(std::uint64_t min, std::uint64_t max);
/// A size in [min, max], or 0 / "auto" for the owner's automatic choice.
Kind<std::uint64_t> size_or_auto(std::uint64_t min, std::uint64_t max);
/// A duration in [min, max] (0.5 is seconds; "100ms", "2m"); `min_exclusive`: above min.
Kind<Duration> duration(Duration min, Duration max, bool min_exclusive = false);
/// A string that `valid` accepts; `allowed` says what is allowed when it does not.
Kind<std::string> text(std::function<bool(std::string_view)> valid, std::string allowed);
/// A file path; "" for none.
Kind<std::string> path();
/// A numeric listen address: "127.0.0.1:8080", "[::1]:8080", "*:8080" (every IPv4 address).
Kind<SocketAddress> listen_address();
/// One of `names`, stored as the enum whose value is the name's index.
template <class Enum, std::size_t N>
Kind<Enum> choice(const std::string_view (&names)[N]) {
    Kind<Enum> k;
    k.parse = [&names](const Input& in) -> Parsed<Enum> {
        auto r = parse_choice(in, names);
        if (!r) return r.error();
        return static_cast<Enum>(*r);
    };
    k.toml = [&names](const Enum& v) { return toml_quote(names[static_cast<std::size_t>(v)]); };
    k.json = [&names](const Enum& v) { return json_quote(names[static_cast<std::size_t>(v)]); };
    return k;
}

namespace detail {
// A parsed value into the owner's member, and back: durations convert between units (the kind's
// limits keep them representable), numbers between widths, everything else is copied.
template <class M, class V>
void assign(M& member, V&& v) {
    using U = std::remove_cvref_t<V>;
    if constexpr (requires { std::chrono::duration_cast<M>(v); } && !std::is_arithmetic_v<M>) {
        member = std::chrono::duration_cast<M>(v);
    } else if constexpr (std::is_arithmetic_v<M> && std::is_arithmetic_v<U>) {
        member = static_cast<M>(v);
    } else {
        member = M(std::forward<V>(v));
    }
}
template <class V, class M>
V read(const M& member) {
    if constexpr (requires { std::chrono::duration_cast<V>(member); } && !std::is_arithmetic_v<V>) {
        return std::chrono::duration_cast<V>(member);
    } else if constexpr (std::is_arithmetic_v<M> && std::is_arithmetic_v<V>) {
        return static_cast<V>(member);
    } else {
        return V(member);
    }
}
}  // namespace detail

/// One key and the member it sets, reached through an erased pointer to the schema's root.
class Key {
  public:
    std::string section;     ///< "server"
    std::string name;        ///< "listen"
    std::string doc;         ///< one line: what it does (for --help and the docs)
    std::string flag;        ///< "--listen": a flag of its own besides --set; empty: none
    std::string value_name;  ///< "ADDR:PORT", for --help
    /// "WEFT_HUBS": more variables that set the key. Those outside WEFT_* ("HTTP_PROXY", a
    /// convention other programs share) are the machine's defaults: one counts only when it is
    /// not empty, the first set in the order given wins (a later one that differs is a
    /// warning), and the file, WEFT_* variables and flags override it (a value it cannot take
    /// is an error only when nothing overrides it).
    std::vector<std::string> env_aliases;
    std::vector<std::string> old_names;  ///< "server.hubs": a former spelling, with a warning

    /// Parses `in` into the member of `root`; returns the problem and leaves it alone on failure.
    std::function<std::optional<std::string>(void* root, const Input& in)> apply;
    std::function<std::string(const void* root)> toml;  ///< the member as a TOML literal
    std::function<std::string(const void* root)> json;  ///< the member as a JSON literal
    /// An input as errors show it ("got ..."); empty: Input::display(). A key whose values
    /// hold secrets (a proxy URL's password) hides them here (see shown_as()).
    std::function<std::string(const Input& in)> shown;

    /// "[server] listen"
    std::string display() const;
    /// "server.listen"
    std::string dotted() const;
    /// "WEFT_SERVER_LISTEN"
    std::string env_name() const;

    Key& with_flag(std::string f, std::string value) {
        flag = std::move(f);
        value_name = std::move(value);
        return *this;
    }
    Key& with_env_alias(std::string v) {
        env_aliases.push_back(std::move(v));
        return *this;
    }
    Key& shown_as(std::function<std::string(const Input& in)> f) {
        shown = std::move(f);
        return *this;
    }
    Key& formerly(std::string dotted_name) {
        old_names.push_back(std::move(dotted_name));
        return *this;
    }
};

/// What a cross-key check may ask and say (see Schema::check).
class CheckContext {
  public:
    virtual ~CheckContext() = default;
    /// The key ("server.listen") already has an error: do not judge it again.
    virtual bool failed(std::string_view dotted) const = 0;
    virtual const Source& source(std::string_view dotted) const = 0;
    /// An error about `dotted`, whose value reads `value`.
    virtual void error(std::string_view dotted, std::string value, std::string message) = 0;
};

/// The keys of one program, in the order they are printed.
class SchemaBase {
  public:
    const std::vector<Key>& keys() const noexcept { return keys_; }
    /// Section names in the order of their first key.
    std::vector<std::string> sections() const;
    const Key* find(std::string_view section, std::string_view name) const noexcept;
    /// The key a former "section.name" spelling stands for, or nullptr.
    const Key* find_old(std::string_view dotted) const noexcept;
    /// Runs the cross-key checks on a loaded root.
    void run_checks(const void* root, CheckContext& ctx) const;

  protected:
    std::vector<Key> keys_;
    std::vector<std::function<void(const void*, CheckContext&)>> checks_;
};

/// A schema for the options aggregate `Root`.
template <class Root>
class Schema : public SchemaBase {
  public:
    /// Binds `section.name` to the member `access(root)` returns (a generic lambda returning a
    /// reference, so it serves a const and a mutable root). Returns the key for further
    /// settings (flag, aliases); the reference is valid until the next bind().
    template <class Access, class V>
    Key& bind(std::string_view section, std::string_view name, Access access, Kind<V> kind,
              std::string_view doc) {
        Key k;
        k.section = std::string(section);
        k.name = std::string(name);
        k.doc = std::string(doc);
        k.apply = [access, parse = kind.parse](void* root,
                                               const Input& in) -> std::optional<std::string> {
            auto parsed = parse(in);
            if (!parsed) return std::move(parsed).error().message;
            detail::assign(access(*static_cast<Root*>(root)), std::move(parsed).value());
            return std::nullopt;
        };
        k.toml = [access, print = kind.toml](const void* root) {
            return print(detail::read<V>(access(*static_cast<const Root*>(root))));
        };
        k.json = [access, print = kind.json](const void* root) {
            return print(detail::read<V>(access(*static_cast<const Root*>(root))));
        };
        keys_.push_back(std::move(k));
        return keys_.back();
    }

    /// A check across keys, run after every source was applied (e.g. "the admin port differs
    /// from the server's").
    void check(std::function<void(const Root&, CheckContext&)> fn) {
        checks_.push_back([fn = std::move(fn)](const void* root, CheckContext& ctx) {
            fn(*static_cast<const Root*>(root), ctx);
        });
    }
};

}  // namespace weft::config

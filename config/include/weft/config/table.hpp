// Value and Table: a small read-only tree of configuration values (string, integer, float,
// boolean, array, table) that remembers where each value was written. A plugin's `config`
// sub-table reaches the plugin as a Table; its typed getters explain a bad value the same way
// the server's own settings do.
#pragma once

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "weft/config/error.hpp"
#include "weft/config/source.hpp"

namespace weft::config {

class Table;

/// One value with its source. Immutable; copies are cheap (arrays and tables are shared).
class Value {
  public:
    enum class Type : std::uint8_t { string, integer, floating, boolean, array, table };

    static Value make_string(std::string v, Source source);
    static Value make_integer(std::int64_t v, Source source);
    static Value make_floating(double v, Source source);
    static Value make_boolean(bool v, Source source);
    static Value make_array(std::vector<Value> elements, Source source);
    static Value make_table(Table table);  ///< the table's own source

    Type type() const noexcept { return type_; }
    const Source& source() const noexcept { return source_; }

    /// Each returns nullptr (or nullopt) when the value has another type; as_floating() does
    /// not convert integers (Table::get_double does).
    const std::string* as_string() const noexcept;
    std::optional<std::int64_t> as_integer() const noexcept;
    std::optional<double> as_floating() const noexcept;
    std::optional<bool> as_boolean() const noexcept;
    const std::vector<Value>* as_array() const noexcept;
    const Table* as_table() const noexcept;

    /// The value as a message shows it: "\"text\"", "42", "0.5", "true", "[1, 2]", "a table".
    std::string describe() const;

    /// Same type and content (recursively); sources are not compared.
    bool same_content(const Value& other) const;

  private:
    Value() = default;

    Type type_ = Type::boolean;
    Source source_;
    std::variant<std::string, std::int64_t, double, bool, std::shared_ptr<const std::vector<Value>>,
                 std::shared_ptr<const Table>>
        data_;
};

/// A read-only mapping from keys to values, in the order they were written.
///
/// Errors from the getters name the key within its context, the value and its source:
/// `plugin 'demo' config key 'greeting': expected a string, got 42 (weft.toml:20)`.
/// A getter without a fallback reports a missing key as an error; one with a fallback returns
/// the fallback. Durations and sizes accept the same forms as Weft's own keys (0.5, "100ms",
/// "2m"; 1048576, "512KiB", "1mb").
class Table {
  public:
    using Entry = std::pair<std::string, Value>;

    Table() = default;
    /// `context` names the table in messages ("plugin 'demo' config"); `source` is where it
    /// was opened.
    Table(std::string context, Source source)
        : context_(std::move(context)), source_(std::move(source)) {}

    const std::string& context() const noexcept { return context_; }
    const Source& source() const noexcept { return source_; }
    /// The same entries under another name in messages (nested tables follow).
    Table with_context(std::string context) const;

    bool empty() const noexcept { return entries_.empty(); }
    std::size_t size() const noexcept { return entries_.size(); }
    std::vector<Entry>::const_iterator begin() const noexcept { return entries_.begin(); }
    std::vector<Entry>::const_iterator end() const noexcept { return entries_.end(); }
    bool contains(std::string_view key) const noexcept { return find(key) != nullptr; }
    const Value* find(std::string_view key) const noexcept;

    Expected<std::string> get_string(std::string_view key) const;
    Expected<std::string> get_string(std::string_view key, std::string fallback) const;
    Expected<std::int64_t> get_int(std::string_view key) const;
    Expected<std::int64_t> get_int(std::string_view key, std::int64_t fallback) const;
    /// Integers are accepted and converted.
    Expected<double> get_double(std::string_view key) const;
    Expected<double> get_double(std::string_view key, double fallback) const;
    Expected<bool> get_bool(std::string_view key) const;
    Expected<bool> get_bool(std::string_view key, bool fallback) const;
    Expected<std::chrono::nanoseconds> get_duration(std::string_view key) const;
    Expected<std::chrono::nanoseconds> get_duration(std::string_view key,
                                                    std::chrono::nanoseconds fallback) const;
    Expected<std::uint64_t> get_size(std::string_view key) const;
    Expected<std::uint64_t> get_size(std::string_view key, std::uint64_t fallback) const;
    Expected<std::vector<std::string>> get_string_array(std::string_view key) const;
    Expected<std::vector<std::string>> get_string_array(std::string_view key,
                                                        std::vector<std::string> fallback) const;
    /// A nested table; its messages name keys as 'outer.inner'.
    Expected<Table> get_table(std::string_view key) const;

    /// An error about `key` in this table's words (for a plugin's own checks, such as ranges);
    /// the value and source are the key's when it is present, the table's otherwise.
    ConfigError error(std::string_view key, std::string message) const;
    /// One "unknown key" error (with a "did you mean" suggestion) per key not in `known`.
    std::vector<ConfigError> check_keys(std::initializer_list<std::string_view> known) const;

    /// Building (used by the loader and by tests): adds or replaces an entry.
    void set(std::string key, Value value);

  private:
    std::string key_name(std::string_view key) const;
    ConfigError missing(std::string_view key) const;
    template <class T, class Parse>
    Expected<T> get(std::string_view key, std::optional<T> fallback, Parse parse) const;

    std::string context_;
    std::string prefix_;  // "outer." for a nested table
    Source source_;
    std::vector<Entry> entries_;
};

}  // namespace weft::config

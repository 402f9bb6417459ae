// Value and Table: the generic configuration tree and its typed getters, whose errors read like
// the loader's own ("plugin 'demo' config key 'greeting': expected a string, got 42 (...)").
#include "weft/config/table.hpp"

#include <algorithm>
#include <limits>

#include "weft/config/parse.hpp"

namespace weft::config {

Value Value::make_string(std::string v, Source source) {
    Value x;
    x.type_ = Type::string;
    x.source_ = std::move(source);
    x.data_ = std::move(v);
    return x;
}

Value Value::make_integer(std::int64_t v, Source source) {
    Value x;
    x.type_ = Type::integer;
    x.source_ = std::move(source);
    x.data_ = v;
    return x;
}

Value Value::make_floating(double v, Source source) {
    Value x;
    x.type_ = Type::floating;
    x.source_ = std::move(source);
    x.data_ = v;
    return x;
}

Value Value::make_boolean(bool v, Source source) {
    Value x;
    x.type_ = Type::boolean;
    x.source_ = std::move(source);
    x.data_ = v;
    return x;
}

Value Value::make_array(std::vector<Value> elements, Source source) {
    Value x;
    x.type_ = Type::array;
    x.source_ = std::move(source);
    x.data_ = std::make_shared<const std::vector<Value>>(std::move(elements));
    return x;
}

Value Value::make_table(Table table) {
    Value x;
    x.type_ = Type::table;
    x.source_ = table.source();
    x.data_ = std::make_shared<const Table>(std::move(table));
    return x;
}

const std::string* Value::as_string() const noexcept {
    return std::get_if<std::string>(&data_);
}

std::optional<std::int64_t> Value::as_integer() const noexcept {
    if (const auto* v = std::get_if<std::int64_t>(&data_)) return *v;
    return std::nullopt;
}

std::optional<double> Value::as_floating() const noexcept {
    if (const auto* v = std::get_if<double>(&data_)) return *v;
    return std::nullopt;
}

std::optional<bool> Value::as_boolean() const noexcept {
    if (const auto* v = std::get_if<bool>(&data_)) return *v;
    return std::nullopt;
}

const std::vector<Value>* Value::as_array() const noexcept {
    if (const auto* v = std::get_if<std::shared_ptr<const std::vector<Value>>>(&data_)) {
        return v->get();
    }
    return nullptr;
}

const Table* Value::as_table() const noexcept {
    if (const auto* v = std::get_if<std::shared_ptr<const Table>>(&data_)) return v->get();
    return nullptr;
}

std::string Value::describe() const {
    switch (type_) {
        case Type::string:
            return toml_quote(*as_string());
        case Type::integer:
            return std::to_string(*as_integer());
        case Type::floating:
            return format_double(*as_floating());
        case Type::boolean:
            return *as_boolean() ? "true" : "false";
        case Type::table:
            return "a table";
        case Type::array: {
            constexpr std::size_t kMaxShown = 60;
            std::string s = "[";
            for (const auto& e : *as_array()) {
                if (s.size() > 1) s += ", ";
                s += e.describe();
                if (s.size() > kMaxShown) return s + ", ...]";
            }
            return s + "]";
        }
    }
    return {};
}

bool Value::same_content(const Value& other) const {
    if (type_ != other.type_) return false;
    switch (type_) {
        case Type::string:
            return *as_string() == *other.as_string();
        case Type::integer:
            return *as_integer() == *other.as_integer();
        case Type::floating: {
            const double a = *as_floating();
            const double b = *other.as_floating();
            return a == b || (a != a && b != b);  // NaN reads back as NaN
        }
        case Type::boolean:
            return *as_boolean() == *other.as_boolean();
        case Type::array: {
            const auto& a = *as_array();
            const auto& b = *other.as_array();
            return a.size() == b.size() &&
                   std::equal(a.begin(), a.end(), b.begin(),
                              [](const Value& x, const Value& y) { return x.same_content(y); });
        }
        case Type::table: {
            const Table& a = *as_table();
            const Table& b = *other.as_table();
            if (a.size() != b.size()) return false;
            for (const auto& [k, v] : a) {
                const Value* w = b.find(k);
                if (!w || !v.same_content(*w)) return false;
            }
            return true;
        }
    }
    return false;
}

Table Table::with_context(std::string context) const {
    Table t = *this;
    t.context_ = std::move(context);
    return t;
}

const Value* Table::find(std::string_view key) const noexcept {
    for (const auto& [k, v] : entries_) {
        if (k == key) return &v;
    }
    return nullptr;
}

void Table::set(std::string key, Value value) {
    for (auto& [k, v] : entries_) {
        if (k == key) {
            v = std::move(value);
            return;
        }
    }
    entries_.emplace_back(std::move(key), std::move(value));
}

std::string Table::key_name(std::string_view key) const {
    std::string name = context_;
    if (!name.empty()) name += ' ';
    name += "key '" + prefix_ + std::string(key) + "'";
    return name;
}

ConfigError Table::missing(std::string_view key) const {
    ConfigError e;
    e.key = key_name(key);
    e.source = source_;
    e.message = "is required but missing";
    return e;
}

namespace {

// Value::describe() with what looks like a secret hidden (see secret_key()).
std::string describe_hidden(const Value& v, bool secret) {
    if (const std::string* s = v.as_string())
        return toml_quote(secret ? std::string(kHiddenSecret) : hide_secrets(*s));
    if (const auto* a = v.as_array()) {
        constexpr std::size_t kMaxShown = 60;
        std::string s = "[";
        for (const auto& e : *a) {
            if (s.size() > 1) s += ", ";
            s += describe_hidden(e, secret);
            if (s.size() > kMaxShown) return s + ", ...]";
        }
        return s + "]";
    }
    return v.describe();
}

}  // namespace

ConfigError Table::error(std::string_view key, std::string message) const {
    ConfigError e;
    e.key = key_name(key);
    e.message = std::move(message);
    if (const Value* v = find(key)) {
        e.source = v->source();
        // A plugin's setting: what looks like a secret is not shown (see secret_key()).
        e.value = describe_hidden(*v, secret_key(e.key));
    } else {
        e.source = source_;
    }
    return e;
}

std::vector<ConfigError> Table::check_keys(std::initializer_list<std::string_view> known) const {
    std::vector<ConfigError> errors;
    const std::vector<std::string> candidates(known.begin(), known.end());
    for (const auto& [k, v] : entries_) {
        if (std::find(known.begin(), known.end(), k) != known.end()) continue;
        std::string message = "unknown key";
        if (auto s = suggest(k, candidates)) {
            message += "; did you mean '" + *s + "'?";
        } else if (!candidates.empty()) {
            message += "; known:";
            for (std::size_t i = 0; i < candidates.size(); ++i) {
                message += (i ? ", " : " ") + candidates[i];
            }
        }
        ConfigError e;
        e.key = key_name(k);
        e.source = v.source();
        e.message = std::move(message);
        errors.push_back(std::move(e));
    }
    return errors;
}

template <class T, class Parse>
Expected<T> Table::get(std::string_view key, std::optional<T> fallback, Parse parse) const {
    const Value* v = find(key);
    if (!v) {
        if (fallback) return std::move(*fallback);
        return missing(key);
    }
    auto parsed = parse(*v);
    if (!parsed) return error(key, parsed.error().message);
    return std::move(parsed).value();
}

namespace {

Parsed<std::string> string_of(const Value& v) {
    if (const auto* s = v.as_string()) return *s;
    return Problem{"expected a string"};
}

Parsed<std::int64_t> int_of(const Value& v) {
    if (auto i = v.as_integer()) return *i;
    return Problem{"expected an integer"};
}

Parsed<double> double_of(const Value& v) {
    return parse_number(Input::from_value(v));
}

Parsed<bool> bool_of(const Value& v) {
    if (auto b = v.as_boolean()) return *b;
    return Problem{"expected a boolean (true or false)"};
}

Parsed<Duration> duration_of(const Value& v) {
    return parse_duration(Input::from_value(v), Duration::zero(), Duration::max());
}

Parsed<std::uint64_t> size_of(const Value& v) {
    return parse_size(Input::from_value(v), 0, std::numeric_limits<std::uint64_t>::max());
}

}  // namespace

Expected<std::string> Table::get_string(std::string_view key) const {
    return get<std::string>(key, std::nullopt, string_of);
}
Expected<std::string> Table::get_string(std::string_view key, std::string fallback) const {
    return get<std::string>(key, std::move(fallback), string_of);
}
Expected<std::int64_t> Table::get_int(std::string_view key) const {
    return get<std::int64_t>(key, std::nullopt, int_of);
}
Expected<std::int64_t> Table::get_int(std::string_view key, std::int64_t fallback) const {
    return get<std::int64_t>(key, fallback, int_of);
}
Expected<double> Table::get_double(std::string_view key) const {
    return get<double>(key, std::nullopt, double_of);
}
Expected<double> Table::get_double(std::string_view key, double fallback) const {
    return get<double>(key, fallback, double_of);
}
Expected<bool> Table::get_bool(std::string_view key) const {
    return get<bool>(key, std::nullopt, bool_of);
}
Expected<bool> Table::get_bool(std::string_view key, bool fallback) const {
    return get<bool>(key, fallback, bool_of);
}
Expected<std::chrono::nanoseconds> Table::get_duration(std::string_view key) const {
    return get<Duration>(key, std::nullopt, duration_of);
}
Expected<std::chrono::nanoseconds> Table::get_duration(std::string_view key,
                                                       std::chrono::nanoseconds fallback) const {
    return get<Duration>(key, fallback, duration_of);
}
Expected<std::uint64_t> Table::get_size(std::string_view key) const {
    return get<std::uint64_t>(key, std::nullopt, size_of);
}
Expected<std::uint64_t> Table::get_size(std::string_view key, std::uint64_t fallback) const {
    return get<std::uint64_t>(key, fallback, size_of);
}

Expected<std::vector<std::string>> Table::get_string_array(std::string_view key) const {
    if (!contains(key)) return missing(key);
    return get_string_array(key, {});
}

Expected<std::vector<std::string>> Table::get_string_array(
    std::string_view key, std::vector<std::string> fallback) const {
    const Value* v = find(key);
    if (!v) return fallback;
    const auto* elements = v->as_array();
    if (!elements) return error(key, "expected an array of strings");
    std::vector<std::string> out;
    for (std::size_t i = 0; i < elements->size(); ++i) {
        const Value& e = (*elements)[i];
        const auto* s = e.as_string();
        if (!s) {
            ConfigError err;
            err.key = key_name(std::string(key) + "[" + std::to_string(i) + "]");
            err.source = e.source();
            err.value = e.describe();
            err.message = "expected a string";
            return err;
        }
        out.push_back(*s);
    }
    return out;
}

Expected<Table> Table::get_table(std::string_view key) const {
    const Value* v = find(key);
    if (!v) return missing(key);
    const Table* t = v->as_table();
    if (!t) return error(key, "expected a table");
    Table nested = *t;
    nested.context_ = context_;
    nested.prefix_ = prefix_ + std::string(key) + ".";
    return nested;
}

}  // namespace weft::config

// toml++ glue: parse, then copy toml++'s node tree into Table/Value with "file:line" sources,
// so that the rest of the loader (and plugins) never see a toml++ type.
#include "toml_document.hpp"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include <toml++/toml.h>

namespace weft::config::detail {
namespace {

class Converter {
  public:
    Converter(std::string_view name, Source::Kind kind) : name_(name), kind_(kind) {}

    Source source_of(const toml::source_region& region) const {
        if (region.begin.line == 0) return Source{kind_, name_};  // the root has no line
        return Source{kind_, name_ + ":" + std::to_string(region.begin.line)};
    }

    Table table(const toml::table& t, const std::string& path) {
        // toml++ keeps keys sorted; Table keeps them in the order they were written.
        std::vector<std::pair<const toml::key*, const toml::node*>> entries;
        for (auto&& [key, node] : t)
            entries.emplace_back(&key, &node);
        std::stable_sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
            const auto& x = a.first->source().begin;
            const auto& y = b.first->source().begin;
            return x.line != y.line ? x.line < y.line : x.column < y.column;
        });
        Table out({}, source_of(t.source()));
        for (const auto& [key, node] : entries) {
            const std::string name(key->str());
            const std::string child = path.empty() ? name : path + "." + name;
            if (auto v = value(*node, child)) out.set(name, std::move(*v));
        }
        return out;
    }

    std::optional<Value> value(const toml::node& node, const std::string& path) {
        const Source source = source_of(node.source());
        switch (node.type()) {
            case toml::node_type::table:
                return Value::make_table(table(*node.as_table(), path));
            case toml::node_type::array: {
                std::vector<Value> elements;
                const auto& array = *node.as_array();
                for (std::size_t i = 0; i < array.size(); ++i) {
                    auto v = value(array[i], path + "[" + std::to_string(i) + "]");
                    if (v) elements.push_back(std::move(*v));
                }
                return Value::make_array(std::move(elements), source);
            }
            case toml::node_type::string:
                return Value::make_string(std::string(node.as_string()->get()), source);
            case toml::node_type::integer:
                return Value::make_integer(node.as_integer()->get(), source);
            case toml::node_type::floating_point:
                return Value::make_floating(node.as_floating_point()->get(), source);
            case toml::node_type::boolean:
                return Value::make_boolean(node.as_boolean()->get(), source);
            case toml::node_type::date:
            case toml::node_type::time:
            case toml::node_type::date_time:
            case toml::node_type::none:
                break;
        }
        ConfigError e;
        e.key = path;
        e.source = source;
        e.message = "TOML dates and times are not supported; write the value as a string";
        errors_.push_back(std::move(e));
        return std::nullopt;
    }

    std::vector<ConfigError> take_errors() { return std::move(errors_); }

  private:
    std::string name_;
    Source::Kind kind_;
    std::vector<ConfigError> errors_;
};

}  // namespace

Document parse_toml(std::string_view text, std::string_view name, Source::Kind kind) {
    Document doc;
    toml::table parsed;
    try {
        parsed = toml::parse(text, std::string_view(name));
    } catch (const toml::parse_error& e) {
        const auto& begin = e.source().begin;
        ConfigError err;
        err.source = Source{kind, std::string(name) + ":" + std::to_string(begin.line) + ":" +
                                      std::to_string(begin.column)};
        err.message = "TOML syntax error: " + std::string(e.description());
        doc.errors.push_back(std::move(err));
        return doc;
    }
    Converter converter(name, kind);
    doc.root = converter.table(parsed, "");
    doc.errors = converter.take_errors();
    return doc;
}

}  // namespace weft::config::detail

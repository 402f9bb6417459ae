// render_effective (TOML with a source comment per value, read back by the loader) and to_json
// (for /debug/config). Both walk the schema, so every key appears in both.
#include "weft/config/render.hpp"

#include <cmath>

#include "weft/config/parse.hpp"

namespace weft::config {
namespace {

constexpr std::size_t kCommentColumn = 48;

// A comment must stay one line of valid UTF-8 without control characters.
std::string comment_text(const Source& source) {
    std::string in = source.to_string();
    std::string out;
    if (!valid_utf8(in)) {
        for (char c : in)
            out += (static_cast<unsigned char>(c) < 0x80) ? c : '?';
        in = out;
        out.clear();
    }
    for (char c : in) {
        const auto u = static_cast<unsigned char>(c);
        out += (u < 0x20 && c != '\t') || u == 0x7F ? '?' : c;
    }
    return out;
}

void line(std::string& out, const std::string& text, const Source& source,
          std::string_view note = {}) {
    out += text;
    out.append(text.size() < kCommentColumn ? kCommentColumn - text.size() : 1, ' ');
    out += "# " + comment_text(source);
    out += note;
    out += "\n";
}

// A key's printer hides a URL's user information (a proxy's password) as "***": printed so,
// the value does not read back to what is in use.
bool hides_user_info(std::string_view toml) {
    return toml.find("***@") != std::string_view::npos;
}

// A plugin setting's text as it is shown; `secret`: under a key named like a secret. (Numbers
// and booleans are shown: "max_tokens = 5" is no secret, and the rendering keeps its type.)
std::string shown_string(const std::string& v, bool secret) {
    return secret ? std::string(kHiddenSecret) : hide_secrets(v);
}

std::string toml_inline(const Value& v, bool secret = false) {
    switch (v.type()) {
        case Value::Type::string:
            return toml_quote(shown_string(*v.as_string(), secret));
        case Value::Type::integer:
            return std::to_string(*v.as_integer());
        case Value::Type::floating:
            return format_double(*v.as_floating());
        case Value::Type::boolean:
            return *v.as_boolean() ? "true" : "false";
        case Value::Type::array: {
            std::string s = "[";
            for (const auto& e : *v.as_array()) {
                if (s.size() > 1) s += ", ";
                s += toml_inline(e, secret);
            }
            return s + "]";
        }
        case Value::Type::table: {
            std::string s = "{";
            for (const auto& [k, e] : *v.as_table()) {
                s += (s.size() > 1 ? ", " : " ") + toml_key(k) + " = " +
                     toml_inline(e, secret || secret_key(k));
            }
            return s + (s.size() > 1 ? " }" : "}");
        }
    }
    return {};
}

// Values first, then sub-tables under their own headers, as TOML requires.
void render_table(std::string& out, const Table& table, const std::string& path,
                  bool secret = false) {
    for (const auto& [k, v] : table) {
        if (v.type() != Value::Type::table) {
            const std::string value = toml_inline(v, secret || secret_key(k));
            line(out, toml_key(k) + " = " + value, v.source(),
                 value.find(kHiddenSecret) != std::string::npos ? "; hidden: write it in again"
                                                                : "");
        }
    }
    for (const auto& [k, v] : table) {
        if (v.type() != Value::Type::table) continue;
        const std::string sub = path + "." + toml_key(k);
        line(out, "[" + sub + "]", v.source());
        render_table(out, *v.as_table(), sub, secret || secret_key(k));
    }
}

std::string json_number(double v) {
    return std::isfinite(v) ? format_double(v) : "null";
}

std::string json_table(const Table& t, bool secret = false);

std::string json_value(const Value& v, bool secret = false) {
    switch (v.type()) {
        case Value::Type::string:
            return json_quote(shown_string(*v.as_string(), secret));
        case Value::Type::integer:
            return std::to_string(*v.as_integer());
        case Value::Type::floating:
            return json_number(*v.as_floating());
        case Value::Type::boolean:
            return *v.as_boolean() ? "true" : "false";
        case Value::Type::array: {
            std::string s = "[";
            for (const auto& e : *v.as_array()) {
                if (s.size() > 1) s += ", ";
                s += json_value(e, secret);
            }
            return s + "]";
        }
        case Value::Type::table:
            return json_table(*v.as_table(), secret);
    }
    return "null";
}

std::string json_table(const Table& t, bool secret) {
    std::string s = "{";
    for (const auto& [k, e] : t) {
        if (s.size() > 1) s += ", ";
        s += json_quote(k) + ": " + json_value(e, secret || secret_key(k));
    }
    return s + "}";
}

void json_sources(std::vector<std::pair<std::string, std::string>>& out, const Table& t,
                  const std::string& path) {
    for (const auto& [k, v] : t) {
        const std::string key = path + "." + k;
        out.emplace_back(key, v.source().to_string());
        if (const Table* sub = v.as_table()) json_sources(out, *sub, key);
    }
}

}  // namespace

std::string render_effective(const SchemaBase& schema, const void* root, const Loaded& loaded) {
    std::string out =
        "# Effective Weft configuration: every key, each followed by where its value came from.\n"
        "# It is valid TOML: `weft --config FILE` reads it back to the same values (but for\n"
        "# user information hidden as ***, which must be written in again).\n";
    for (const auto& section : schema.sections()) {
        out += "\n[" + section + "]\n";
        for (const auto& k : schema.keys()) {
            if (k.section != section) continue;
            const std::string value = k.toml(root);
            line(out, k.name + " = " + value, loaded.sources.of(k.dotted()),
                 hides_user_info(value) ? "; user information hidden: write it in again" : "");
        }
    }
    for (const auto& p : loaded.plugins) {
        out += "\n[[plugin]]\n";
        line(out, "path = " + toml_quote(p.path), p.source);
        if (p.stall_budget)
            line(out, "stall_budget = " + toml_quote(format_duration(*p.stall_budget)),
                 p.stall_budget_source);
        if (p.config.empty()) continue;
        line(out, "[plugin.config]", p.config.source());
        render_table(out, p.config, "plugin.config");
    }
    return out;
}

std::string to_json(const SchemaBase& schema, const void* root, const Loaded& loaded,
                    bool with_sources) {
    std::vector<std::pair<std::string, std::string>> sources;
    std::vector<std::pair<std::string, std::string>> shown;  // as --print-config writes them
    std::string out = "{\n";
    bool first_section = true;
    for (const auto& section : schema.sections()) {
        out += first_section ? "" : "\n  },\n";
        first_section = false;
        out += "  \"" + section + "\": {\n";
        bool first = true;
        for (const auto& k : schema.keys()) {
            if (k.section != section) continue;
            out += first ? "" : ",\n";
            first = false;
            out += "    \"" + k.name + "\": " + k.json(root);
            sources.emplace_back(k.dotted(), loaded.sources.of(k.dotted()).to_string());
            if (with_sources) shown.emplace_back(k.dotted(), k.toml(root));
        }
    }
    out += first_section ? "  \"plugins\": [" : "\n  },\n  \"plugins\": [";
    for (std::size_t i = 0; i < loaded.plugins.size(); ++i) {
        const auto& p = loaded.plugins[i];
        const std::string prefix = "plugins[" + std::to_string(i) + "]";
        out += i ? ",\n    " : "\n    ";
        out += "{\"path\": " + json_quote(p.path);
        if (p.stall_budget) {
            out += ", \"stall_budget\": " + json_quote(format_duration(*p.stall_budget));
            sources.emplace_back(prefix + ".stall_budget", p.stall_budget_source.to_string());
        }
        out += ", \"config\": " + json_table(p.config) + "}";
        sources.emplace_back(prefix + ".path", p.source.to_string());
        json_sources(sources, p.config, prefix + ".config");
    }
    out += loaded.plugins.empty() ? "]" : "\n  ]";
    if (with_sources) {
        out += ",\n  \"sources\": {";
        for (std::size_t i = 0; i < sources.size(); ++i) {
            out += i ? ",\n    " : "\n    ";
            out += json_quote(sources[i].first) + ": " + json_quote(sources[i].second);
        }
        out += "\n  }";
        // The values as TOML writes them ("10s", "64KiB", "auto"), for people: the numbers
        // above (seconds, bytes, 0 for automatic) are for programs.
        out += ",\n  \"shown\": {";
        for (std::size_t i = 0; i < shown.size(); ++i) {
            out += i ? ",\n    " : "\n    ";
            out += json_quote(shown[i].first) + ": " + json_quote(shown[i].second);
        }
        out += "\n  }";
    }
    out += "\n}\n";
    return out;
}

}  // namespace weft::config

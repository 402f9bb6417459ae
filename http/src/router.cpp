// Router: a tree of path segments. Matching walks it depth-first — literal, then `{name}`, then
// `{name...}` — and takes the first route that has the request's method; when routes exist
// for the path but none for the method, 405 answers, its Allow listing the methods of every
// route that matches the path.
#include "weft/http/router.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <stdexcept>

#include "uri.hpp"

namespace weft::http {

struct Router::Node {
    std::vector<std::pair<std::string, std::unique_ptr<Node>>> literals;
    std::unique_ptr<Node> param;  // `{name}`
    std::unique_ptr<Node> rest;   // `{name...}`, always a leaf
    std::vector<const Endpoint*> endpoints;
    std::string route;  // the first template registered here (labels 405 answers)
    unsigned route_id = 0;
};

Router::Router() : root_(std::make_unique<Node>()) {}
Router::~Router() = default;
Router::Router(Router&&) noexcept = default;
Router& Router::operator=(Router&&) noexcept = default;

namespace {

enum class SegKind { literal, param, rest };
struct Seg {
    SegKind kind;
    std::string_view text;  // literal text or parameter name
};

bool valid_name(std::string_view n) noexcept {
    if (n.empty()) return false;
    for (char c : n)
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    return true;
}

std::vector<Seg> parse_template(std::string_view t) {
    auto bad = [&](const std::string& why) {
        return std::invalid_argument("route template '" + std::string(t) + "': " + why);
    };
    if (t.empty() || t.front() != '/') throw bad("must start with '/'");
    std::vector<Seg> segs;
    std::string_view rest = t.substr(1);
    for (;;) {
        std::size_t slash = rest.find('/');
        std::string_view seg = rest.substr(0, slash);
        bool last = slash == std::string_view::npos;
        if (seg.find_first_of("{}") == std::string_view::npos) {
            segs.push_back({SegKind::literal, seg});
        } else {
            if (seg.size() < 3 || seg.front() != '{' || seg.back() != '}')
                throw bad("a parameter must be a whole segment: {name} or {name...}");
            std::string_view name = seg.substr(1, seg.size() - 2);
            SegKind kind = SegKind::param;
            if (name.size() > 3 && name.substr(name.size() - 3) == "...") {
                name.remove_suffix(3);
                kind = SegKind::rest;
                if (!last) throw bad("{" + std::string(name) + "...} must be the last segment");
            }
            if (!valid_name(name))
                throw bad("parameter name '" + std::string(name) +
                          "' must be letters, digits, '_' or '-'");
            for (const Seg& s : segs)
                if (s.kind != SegKind::literal && s.text == name)
                    throw bad("parameter '" + std::string(name) + "' appears twice");
            segs.push_back({kind, name});
        }
        if (last) break;
        rest = rest.substr(slash + 1);
    }
    return segs;
}

/// Equal short strings (a method, a path), compared in place: a library call costs more.
bool same_bytes(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (a[i] != b[i]) return false;
    return true;
}

/// A hash of a path for the exact-route table: eight bytes at a time (paths are short; a byte
/// at a time would cost a multiply each).
std::uint64_t path_hash(std::string_view s) noexcept {
    std::uint64_t h = s.size() * 0x9e3779b97f4a7c15ULL;
    const char* p = s.data();
    std::size_t n = s.size();
    for (; n >= 8; p += 8, n -= 8) {
        std::uint64_t w;
        std::memcpy(&w, p, 8);
        h = (h ^ w) * 0xbf58476d1ce4e5b9ULL;
        h ^= h >> 31;
    }
    std::uint64_t w = 0;
    for (std::size_t i = 0; i < n; ++i)
        w |= static_cast<std::uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
    h = (h ^ w) * 0x94d049bb133111ebULL;
    return h ^ (h >> 29);
}

bool has_method(const std::vector<const Endpoint*>& eps, std::string_view method) noexcept {
    for (const Endpoint* e : eps)
        if (e->method == method) return true;
    return false;
}

}  // namespace

Router& Router::add(std::string_view method, std::string_view path_template, Handler handler,
                    RouteOptions options) {
    if (!handler) throw std::invalid_argument("route handler is empty");
    return insert(method, path_template, std::move(handler), nullptr, options);
}

Router& Router::add_stream(std::string_view method, std::string_view path_template,
                           StreamHandler handler, RouteOptions options) {
    if (!handler) throw std::invalid_argument("route handler is empty");
    return insert(method, path_template, nullptr, std::move(handler), options);
}

Router& Router::websocket(std::string_view path_template, WebSocketHandler handler,
                          WebSocketOptions options, RouteOptions route) {
    if (!handler) throw std::invalid_argument("route handler is empty");
    for (const std::string& p : options.subprotocols)
        if (p.empty() || p.find_first_of(" \t,;\"()<>@:/[]?={}\\") != std::string::npos)
            throw std::invalid_argument("route " + std::string(path_template) + ": subprotocol '" +
                                        p + "' is not a token");
    return insert("GET", path_template, nullptr, nullptr, route, std::move(handler),
                  std::move(options));
}

Router& Router::insert(std::string_view method, std::string_view path_template, Handler handler,
                       StreamHandler stream, RouteOptions options, WebSocketHandler ws,
                       WebSocketOptions ws_options) {
    if (options.timeout && options.timeout->count() < 0)
        throw std::invalid_argument("route " + std::string(path_template) +
                                    ": a timeout must not be negative");
    if (method.empty() || method.size() > 24)
        throw std::invalid_argument("route method '" + std::string(method) + "' is not a method");
    for (char c : method)
        if (!(c >= 'A' && c <= 'Z') && c != '-' && c != '_')
            throw std::invalid_argument("route method '" + std::string(method) +
                                        "' must be upper-case letters (GET, POST...)");
    std::vector<Seg> segs = parse_template(path_template);
    const auto param_count = static_cast<std::size_t>(std::count_if(
        segs.begin(), segs.end(), [](const Seg& s) { return s.kind != SegKind::literal; }));
    if (param_count > RawParams::kMax)
        throw std::invalid_argument("route " + std::string(path_template) + " has " +
                                    std::to_string(param_count) + " parameters; at most " +
                                    std::to_string(RawParams::kMax) + " are allowed");
    Node* n = root_.get();
    std::vector<std::string> names;
    for (const Seg& s : segs) {
        if (s.kind == SegKind::literal) {
            Node* next = nullptr;
            for (auto& [lit, child] : n->literals)
                if (lit == s.text) next = child.get();
            if (!next) {
                n->literals.emplace_back(std::string(s.text), std::make_unique<Node>());
                next = n->literals.back().second.get();
            }
            n = next;
        } else {
            auto& child = s.kind == SegKind::param ? n->param : n->rest;
            if (!child) child = std::make_unique<Node>();
            n = child.get();
            names.emplace_back(s.text);
        }
    }
    if (has_method(n->endpoints, method))
        throw std::invalid_argument("route " + std::string(method) + " " +
                                    std::string(path_template) + " is already registered" +
                                    (n->route != path_template ? " (as " + n->route + ")" : ""));
    if (n->route_id == 0) {
        n->route_id = next_route_id_++;
        n->route = std::string(path_template);
        if (names.empty() && path_template.find('%') == std::string_view::npos) {
            // A template of literals only: matched by its exact path. The table grows (and is
            // rebuilt) to stay at most half full.
            if ((exact_count_ + 1) * 2 > exact_.size()) {
                std::vector<Exact> bigger(exact_.empty() ? 16 : exact_.size() * 2);
                for (Exact& e : exact_) {
                    if (!e.node) continue;
                    std::size_t i = path_hash(e.path) & (bigger.size() - 1);
                    while (bigger[i].node)
                        i = (i + 1) & (bigger.size() - 1);
                    bigger[i] = std::move(e);
                }
                exact_.swap(bigger);
            }
            std::size_t i = path_hash(path_template) & (exact_.size() - 1);
            while (exact_[i].node)
                i = (i + 1) & (exact_.size() - 1);
            exact_[i] = {std::string(path_template), n};
            ++exact_count_;
        }
    }
    auto ep = std::make_unique<Endpoint>();
    ep->method = std::string(method);
    ep->method_id = parse_method(method);
    ep->route = std::string(path_template);
    ep->route_id = n->route_id;
    ep->handler = std::move(handler);
    ep->stream = std::move(stream);
    ep->websocket = std::move(ws);
    ep->websocket_options = std::move(ws_options);
    ep->param_names = std::move(names);
    ep->options = options;
    ep->owner = owner_;
    n->endpoints.push_back(ep.get());
    endpoints_.push_back(std::move(ep));
    return *this;
}

std::string Router::shape(std::string_view path_template) {
    std::string out;
    for (const Seg& s : parse_template(path_template)) {
        out += '/';
        if (s.kind == SegKind::literal)
            out.append(s.text);
        else
            out += s.kind == SegKind::param ? "{}" : "{...}";
    }
    return out;
}

bool Router::contains(std::string_view method, std::string_view path_template) const {
    std::vector<Seg> segs;
    try {
        segs = parse_template(path_template);
    } catch (const std::invalid_argument&) {
        return false;
    }
    const Node* n = root_.get();
    for (const Seg& s : segs) {
        const Node* next = nullptr;
        if (s.kind == SegKind::literal) {
            for (auto& [lit, child] : n->literals)
                if (lit == s.text) next = child.get();
        } else {
            next = s.kind == SegKind::param ? n->param.get() : n->rest.get();
        }
        if (!next) return false;
        n = next;
    }
    return has_method(n->endpoints, method);
}

std::vector<const Endpoint*> Router::endpoints() const {
    std::vector<const Endpoint*> out;
    for (auto& e : endpoints_)
        out.push_back(e.get());
    return out;
}

const Router::Node* Router::find_exact(std::string_view path) const noexcept {
    if (exact_.empty()) return nullptr;
    for (std::size_t i = path_hash(path) & (exact_.size() - 1);;
         i = (i + 1) & (exact_.size() - 1)) {
        const Exact& e = exact_[i];
        if (!e.node) return nullptr;
        if (same_bytes(e.path, path)) return e.node;
    }
}

Router::Match Router::match(std::string_view method_name, std::string_view path,
                            RawParams& params) const {
    return match(parse_method(method_name), method_name, path, params);
}

Router::Match Router::match(Method method_id, std::string_view method, std::string_view path,
                            RawParams& params) const {
    Match m;
    params.count = 0;
    if (path.empty() || path.front() != '/') return m;
    const bool head = method_id == Method::head;
    // The nodes with routes the walk reached without one for the method: a 405's Allow lists
    // the methods of them all (GET /users/{id} and POST /users/me both serve /users/me).
    struct Terminals {
        const Node* nodes[16];
        std::size_t count = 0;
        void add(const Node* n) noexcept {
            for (std::size_t i = 0; i < count; ++i)
                if (nodes[i] == n) return;
            if (count < std::size(nodes)) nodes[count++] = n;
        }
    } terminals;

    // Depth-first over the tree; returns the endpoint for the method, remembering the nodes
    // that have routes but none for it (for 405).
    struct Walker {
        Method method_id;
        std::string_view method;
        bool head;
        RawParams& params;
        Terminals& terminals;

        const Endpoint* pick(const Node* n) const {
            if (n->endpoints.empty()) return nullptr;
            // A known method compares as a number; another token by its text.
            for (const Endpoint* e : n->endpoints)
                if (method_id != Method::other ? e->method_id == method_id
                                               : same_bytes(e->method, method))
                    return e;
            if (head)
                for (const Endpoint* e : n->endpoints)
                    if (e->method_id == Method::get) return e;
            terminals.add(n);
            return nullptr;
        }
        bool push(std::string_view v) const {
            if (params.count >= RawParams::kMax) return false;
            params.items[params.count++] = {{}, v};
            return true;
        }
        const Endpoint* walk(const Node* n, std::string_view s) const {
            std::size_t slash = s.find('/');
            bool last = slash == std::string_view::npos;
            std::string_view seg = s.substr(0, slash);
            std::string_view next = last ? std::string_view() : s.substr(slash + 1);
            // Literals compare decoded bytes when the segment is escaped ("/%75sers" is
            // "/users"); a segment whose escapes are invalid equals none.
            std::string decoded;
            std::string_view key = seg;
            bool comparable = true;
            if (seg.find('%') != std::string_view::npos) {
                comparable = detail::percent_decode(seg, decoded, false);
                key = decoded;
            }
            for (auto& [lit, child] : n->literals) {
                if (!comparable || key != lit) continue;
                if (const Endpoint* e = last ? pick(child.get()) : walk(child.get(), next))
                    return e;
            }
            if (n->param && !seg.empty()) {
                std::size_t save = params.count;
                if (push(seg)) {
                    if (const Endpoint* e =
                            last ? pick(n->param.get()) : walk(n->param.get(), next))
                        return e;
                }
                params.count = save;
            }
            if (n->rest) {
                std::size_t save = params.count;
                if (push(s)) {
                    if (const Endpoint* e = pick(n->rest.get())) return e;
                }
                params.count = save;
            }
            return nullptr;
        }
    };
    Walker w{method_id, method, head, params, terminals};
    // A path that is a parameterless template is the node the walk would reach first: it tries
    // literals before parameters at every level. (Templates with a '%' are not in the table: the
    // walk compares decoded segments with them.) When that node has no route for the method,
    // the walk decides (a parameter route, or 405).
    const Endpoint* e = nullptr;
    if (const Node* n = find_exact(path)) {
        e = w.pick(n);
        terminals.count = 0;  // the walk reaches it again
    }
    if (!e) e = w.walk(root_.get(), path.substr(1));
    if (e) {
        for (std::size_t i = 0; i < params.count && i < e->param_names.size(); ++i)
            params.items[i].name = e->param_names[i];
        m.endpoint = e;
        m.status = 200;
        m.route = e->route;
        m.route_id = e->route_id;
        return m;
    }
    params.count = 0;
    if (terminals.count > 0) {
        const Node* first = terminals.nodes[0];
        m.status = 405;
        m.route = first->route;
        m.route_id = first->route_id;
        bool get = false, head_listed = false;
        std::vector<std::string_view> listed;
        for (std::size_t t = 0; t < terminals.count; ++t) {
            for (const Endpoint* e : terminals.nodes[t]->endpoints) {
                if (std::find(listed.begin(), listed.end(), e->method) != listed.end()) continue;
                listed.push_back(e->method);
                if (!m.allow.empty()) m.allow += ", ";
                m.allow += e->method;
                get = get || e->method == "GET";
                head_listed = head_listed || e->method == "HEAD";
            }
        }
        if (get && !head_listed) m.allow += ", HEAD";
    }
    return m;
}

}  // namespace weft::http

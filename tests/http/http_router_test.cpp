// Router: templates, parameters, precedence, 404/405 with Allow, HEAD -> GET, bad templates.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "weft/http/router.hpp"

using namespace weft::http;

namespace {

Handler named(std::string name) {
    return [name](Request&) { return Response(200, name); };
}

struct Found {
    int status;
    std::string route;
    std::string allow;
    std::vector<std::pair<std::string, std::string>> params;
    const Endpoint* ep;
};

Found find(const Router& r, std::string_view method, std::string_view path) {
    RawParams raw;
    auto m = r.match(method, path, raw);
    Found f{m.status, std::string(m.route), m.allow, {}, m.endpoint};
    for (std::size_t i = 0; i < raw.count; ++i)
        f.params.emplace_back(std::string(raw.items[i].name), std::string(raw.items[i].value));
    return f;
}

}  // namespace

TEST(HttpRouter, LiteralAndParams) {
    Router r;
    r.get("/", named("root"));
    r.get("/users", named("users"));
    r.get("/users/{id}", named("user"));
    r.get("/users/{id}/posts/{post}", named("post"));
    r.get("/files/{path...}", named("files"));

    EXPECT_EQ(find(r, "GET", "/").route, "/");
    EXPECT_EQ(find(r, "GET", "/users").route, "/users");
    auto u = find(r, "GET", "/users/42");
    EXPECT_EQ(u.status, 200);
    EXPECT_EQ(u.route, "/users/{id}");
    ASSERT_EQ(u.params.size(), 1u);
    EXPECT_EQ(u.params[0], (std::pair<std::string, std::string>{"id", "42"}));
    auto p = find(r, "GET", "/users/7/posts/x%20y");
    EXPECT_EQ(p.route, "/users/{id}/posts/{post}");
    ASSERT_EQ(p.params.size(), 2u);
    EXPECT_EQ(p.params[1].second, "x%20y") << "raw: the session decodes";
    auto f = find(r, "GET", "/files/a/b/c.txt");
    EXPECT_EQ(f.route, "/files/{path...}");
    EXPECT_EQ(f.params.at(0).second, "a/b/c.txt");
    EXPECT_EQ(find(r, "GET", "/files/").params.at(0).second, "") << "rest may be empty";
    EXPECT_EQ(find(r, "GET", "/files").status, 404);
    EXPECT_EQ(find(r, "GET", "/users/").status, 404) << "{id} needs a non-empty segment";
    EXPECT_EQ(find(r, "GET", "/nope").status, 404);
    EXPECT_EQ(find(r, "GET", "/users/1/2").status, 404);
    EXPECT_EQ(find(r, "GET", "").status, 404);
    EXPECT_EQ(find(r, "GET", "*").status, 404);
}

TEST(HttpRouter, LiteralBeatsParamBeatsRest) {
    Router r;
    r.get("/a/{x...}", named("rest"));
    r.get("/a/{x}", named("param"));
    r.get("/a/me", named("literal"));
    EXPECT_EQ(find(r, "GET", "/a/me").route, "/a/me");
    EXPECT_EQ(find(r, "GET", "/a/you").route, "/a/{x}");
    EXPECT_EQ(find(r, "GET", "/a/you/and/more").route, "/a/{x...}");
    // Escaped literal segments match their decoded form.
    EXPECT_EQ(find(r, "GET", "/a/%6De").route, "/a/me");
}

// Templates without parameters are found by their exact path (a table match() looks in
// before walking the tree); it must answer as the walk would, past the table's regrowth.
TEST(HttpRouter, StaticRoutesAnswerAsTheWalkWould) {
    Router r;
    for (int i = 0; i < 100; ++i) {
        r.get("/s/" + std::to_string(i), named("s"));
        r.add("PUT", "/t/" + std::to_string(i) + "/x", named("t"));
    }
    r.get("/a/b", named("b"));
    r.get("/a/%62", named("escaped template"));
    r.get("/", named("root"));
    for (int i = 0; i < 100; ++i) {
        EXPECT_EQ(find(r, "GET", "/s/" + std::to_string(i)).route, "/s/" + std::to_string(i));
        EXPECT_EQ(find(r, "PUT", "/t/" + std::to_string(i) + "/x").route,
                  "/t/" + std::to_string(i) + "/x");
    }
    EXPECT_EQ(find(r, "GET", "/").route, "/");
    EXPECT_EQ(find(r, "GET", "/s/100").status, 404);
    EXPECT_EQ(find(r, "GET", "/s/1/").status, 404);
    EXPECT_EQ(find(r, "GET", "/t/1/x").allow, "PUT");
    // Methods outside the known set match by their text, the known ones by number.
    r.add("PURGE", "/s/1", named("purge"));
    EXPECT_EQ(find(r, "PURGE", "/s/1").ep->method, "PURGE");
    EXPECT_EQ(find(r, "PURGEX", "/s/1").allow, "GET, PURGE, HEAD");
    EXPECT_EQ(find(r, "HEAD", "/s/1").ep->method, "GET");
    // A path is decoded segment by segment before it meets a literal: "/a/%62" is "/a/b", and
    // a template written with an escape is never met by the same bytes.
    EXPECT_EQ(find(r, "GET", "/a/%62").route, "/a/b");
    EXPECT_EQ(find(r, "GET", "/a/b").route, "/a/b");
}

TEST(HttpRouter, MethodFallbackToOtherBranch) {
    Router r;
    r.get("/users/me", named("me"));
    r.post("/users/{id}", named("update"));
    EXPECT_EQ(find(r, "POST", "/users/me").route, "/users/{id}");
    EXPECT_EQ(find(r, "GET", "/users/me").route, "/users/me");
    auto m = find(r, "GET", "/users/9");
    EXPECT_EQ(m.status, 405);
    EXPECT_EQ(m.allow, "POST");
}

// Every route that matches the path lends its methods to the 405's Allow (RFC 9110 15.5.6),
// not only the first one the walk met.
TEST(HttpRouter, AllowListsTheMethodsOfEveryMatchingRoute) {
    Router r;
    r.get("/users/{id}", named("get"));
    r.post("/users/me", named("post"));
    auto m = find(r, "DELETE", "/users/me");
    EXPECT_EQ(m.status, 405);
    EXPECT_EQ(m.allow, "POST, GET, HEAD");
    EXPECT_EQ(m.route, "/users/me");
    EXPECT_EQ(find(r, "DELETE", "/users/7").allow, "GET, HEAD");
    Router deep;
    deep.get("/x/{a}/lit", named("a"));
    deep.put("/x/y/{b}", named("b"));
    deep.put("/x/{a}/{c}", named("c"));  // PUT again, listed once
    EXPECT_EQ(find(deep, "DELETE", "/x/y/lit").allow, "PUT, GET, HEAD");
}

TEST(HttpRouter, MethodNotAllowedAndHead) {
    Router r;
    r.get("/thing", named("get"));
    r.put("/thing", named("put"));
    r.add("DELETE", "/thing", named("del"));
    auto m = find(r, "POST", "/thing");
    EXPECT_EQ(m.status, 405);
    EXPECT_EQ(m.allow, "GET, PUT, DELETE, HEAD");
    EXPECT_EQ(m.route, "/thing");
    auto h = find(r, "HEAD", "/thing");
    EXPECT_EQ(h.status, 200);
    EXPECT_EQ(h.ep->method, "GET") << "HEAD falls back to GET";
    r.add("HEAD", "/thing", named("head"));
    EXPECT_EQ(find(r, "HEAD", "/thing").ep->method, "HEAD");
    EXPECT_EQ(find(r, "POST", "/thing").allow, "GET, PUT, DELETE, HEAD");
    Router only_post;
    only_post.post("/p", named("p"));
    EXPECT_EQ(find(only_post, "HEAD", "/p").status, 405);
    EXPECT_EQ(find(only_post, "HEAD", "/p").allow, "POST");
}

TEST(HttpRouter, BadTemplatesAndDuplicates) {
    Router r;
    EXPECT_THROW(r.get("nope", named("x")), std::invalid_argument);
    EXPECT_THROW(r.get("/a{x}", named("x")), std::invalid_argument);
    EXPECT_THROW(r.get("/{x...}/b", named("x")), std::invalid_argument);
    EXPECT_THROW(r.get("/{x}/{x}", named("x")), std::invalid_argument);
    EXPECT_THROW(r.get("/{}", named("x")), std::invalid_argument);
    EXPECT_THROW(r.get("/{a b}", named("x")), std::invalid_argument);
    EXPECT_THROW(r.add("get", "/x", named("x")), std::invalid_argument);
    EXPECT_THROW(r.add("GET", "/x", Handler()), std::invalid_argument);
    // More parameters than a match can hold would make a route no path reaches.
    std::string many, sixteen;
    for (int i = 1; i <= 17; ++i) {
        many += "/{p" + std::to_string(i) + "}";
        if (i <= 16) sixteen += "/{p" + std::to_string(i) + "}";
    }
    try {
        r.get(many, named("x"));
        FAIL() << "17 parameters accepted";
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("17 parameters; at most 16"), std::string::npos)
            << e.what();
    }
    Router sixteen_ok;
    sixteen_ok.get(sixteen, named("m"));
    std::string path;
    for (int i = 1; i <= 16; ++i)
        path += "/" + std::to_string(i);
    EXPECT_EQ(find(sixteen_ok, "GET", path).status, 200);
    r.get("/u/{id}", named("a"));
    try {
        r.get("/u/{name}", named("b"));
        FAIL() << "same shape registered twice";
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("already registered"), std::string::npos) << e.what();
    }
    r.post("/u/{name}", named("c"));  // another method on the same shape is fine
    EXPECT_TRUE(r.contains("GET", "/u/{zzz}"));
    EXPECT_TRUE(r.contains("POST", "/u/{id}"));
    EXPECT_FALSE(r.contains("PUT", "/u/{id}"));
    EXPECT_FALSE(r.contains("GET", "/u"));
    EXPECT_EQ(r.endpoints().size(), 2u);
    // The POST route keeps its own parameter names.
    auto p = find(r, "POST", "/u/7");
    EXPECT_EQ(p.params.at(0).first, "name");
    EXPECT_EQ(p.route, "/u/{name}");
}

TEST(HttpRouter, RouteIdsPerTemplate) {
    Router r;
    r.get("/a", named("a"));
    r.post("/a", named("a2"));
    r.get("/b/{x}", named("b"));
    RawParams raw;
    auto a1 = r.match("GET", "/a", raw);
    auto a2 = r.match("POST", "/a", raw);
    auto b = r.match("GET", "/b/1", raw);
    EXPECT_NE(a1.route_id, 0u);
    EXPECT_EQ(a1.route_id, a2.route_id);
    EXPECT_NE(a1.route_id, b.route_id);
    EXPECT_EQ(r.match("GET", "/zzz", raw).route_id, 0u);
}

// gtest main for Weft tests: quiet logs unless WEFT_TEST_LOG is set, and the io_uring variant of
// a test program skips as a whole (exit 77, CTest's SKIP_RETURN_CODE) where io_uring is hidden:
// container runtimes' default seccomp profiles refuse it, and the epoll variant still runs.
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>

#include "weft/core/runtime.hpp"

namespace {

constexpr int kSkipped = 77;

// WEFT_BACKEND=io_uring makes a runtime insist on io_uring: it throws where it is unusable.
bool io_uring_hidden(std::string& why) {
    const char* backend = std::getenv("WEFT_BACKEND");
    if (!backend || std::strcmp(backend, "io_uring") != 0) return false;
    try {
        weft::RuntimeOptions o;
        o.name = "probe";
        o.hubs = 1;
        weft::Runtime probe(o);
        return false;
    } catch (const std::exception& e) {
        why = e.what();
        return true;
    }
}

}  // namespace

int main(int argc, char** argv) {
    ::testing::InitGoogleTest(&argc, argv);
    if (!std::getenv("WEFT_TEST_LOG")) spdlog::set_level(spdlog::level::warn);
    if (std::string why; io_uring_hidden(why)) {
        std::printf(
            "SKIPPED: WEFT_BACKEND=io_uring, but io_uring is not available here (%s). The io_uring "
            "variant of this test program cannot run; its epoll variant does.\n",
            why.c_str());
        return kSkipped;
    }
    return RUN_ALL_TESTS();
}

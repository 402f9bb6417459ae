// Test plugin: a background fiber that, once cancelled at shutdown, blocks its hub in a
// system call for an hour instead of returning (think of a blocking flush that hangs). The
// server must still exit, bounded, and say why. A raw system call: patched calls do not wait
// once their fiber is cancelled. With [plugin.config] init_sleep_ms, its init takes that long
// first (a database that does not answer): the server must still stop at SIGTERM.
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <ctime>

#include "weft/core/fiber.hpp"
#include "weft/plugin.hpp"

namespace {

void init(weft::plugin::Context& ctx) {
    if (const auto ms = ctx.config().get_int("init_sleep_ms", 0).value(); ms > 0) {
        timespec left{static_cast<time_t>(ms / 1000), static_cast<long>(ms % 1000) * 1'000'000};
        while (::syscall(SYS_nanosleep, &left, &left) != 0 && errno == EINTR) {
        }
    }
    ctx.spawn("stubborn", [] {
        while (weft::sleep_for(std::chrono::milliseconds(20))) {
        }
        timespec left{3600, 0};
        while (::syscall(SYS_nanosleep, &left, &left) != 0 && errno == EINTR) {
        }
    });
}

}  // namespace

WEFT_PLUGIN("stubborn", "1.0", init)

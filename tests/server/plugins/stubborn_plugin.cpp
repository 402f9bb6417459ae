// Test plugin: a background fiber that, once cancelled at shutdown, blocks its hub in a
// system call for an hour instead of returning (think of a blocking flush that hangs). The
// server must still exit, bounded, and say why.
#include <chrono>
#include <thread>

#include "weft/core/fiber.hpp"
#include "weft/plugin.hpp"

namespace {

void init(weft::plugin::Context& ctx) {
    ctx.spawn("stubborn", [] {
        while (weft::sleep_for(std::chrono::milliseconds(20))) {
        }
        std::this_thread::sleep_for(std::chrono::hours(1));
    });
}

}  // namespace

WEFT_PLUGIN("stubborn", "1.0", init)

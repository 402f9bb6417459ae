// Test plugin: a descriptor from a future plugin ABI (WEFT_PLUGIN_ABI_VERSION + 1), written out
// by hand instead of with WEFT_PLUGIN. The loader must refuse it before reading further fields.
#include "weft/plugin.hpp"

namespace {
void init(weft::plugin::Context&) {}
}  // namespace

extern "C" __attribute__((visibility("default"))) const weft::plugin::Descriptor*
weft_plugin_descriptor() noexcept {
    static const weft::plugin::Descriptor descriptor{WEFT_PLUGIN_ABI_VERSION + 1,
                                                     sizeof(weft::plugin::Descriptor),
                                                     "wrong_abi",
                                                     "1.0",
                                                     WEFT_BUILD_SIGNATURE,
                                                     &init};
    return &descriptor;
}

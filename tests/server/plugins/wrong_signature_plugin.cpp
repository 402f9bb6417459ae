// Test plugin: the right ABI version but the build signature of another toolchain and Weft
// release, as if built against a different SDK. The loader must refuse it and show both.
#include "weft/plugin.hpp"

namespace {
void init(weft::plugin::Context&) {}
}  // namespace

extern "C" __attribute__((visibility("default"))) const weft::plugin::Descriptor*
weft_plugin_descriptor() noexcept {
    static const weft::plugin::Descriptor descriptor{
        WEFT_PLUGIN_ABI_VERSION,
        sizeof(weft::plugin::Descriptor),
        "wrong_signature",
        "1.0",
        "weft=0.0.1;compiler=clang 99.0.0;stdlib=libc++-990000;sanitizers=none",
        &init};
    return &descriptor;
}

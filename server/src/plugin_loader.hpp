// Finding and opening plugin files: resolve a configured path ("demo" or a file), dlopen it
// (RTLD_NOW | RTLD_LOCAL, never unloaded), and check its descriptor against this server's ABI
// version and build signature. Every refusal says which file and why.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

#include "weft/plugin.hpp"

namespace weft::server {

/// A refusal, with a complete message naming the file.
class PluginError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

struct OpenedPlugin {
    std::string configured;  ///< as written in the configuration
    std::string file;        ///< the file actually loaded
    const plugin::Descriptor* descriptor = nullptr;
    void* handle = nullptr;
};

/// Directory of the bundled plugins: <dir of the running executable>/<relative plugin dir>.
std::string bundled_plugin_dir();

/// A bare name ("demo") means the bundled plugin lib<weft_NAME>.so; anything with a '/' or a
/// ".so" suffix is a file path, taken as given.
std::string resolve_plugin_path(std::string_view configured);

/// Opens and checks a plugin; throws PluginError. Does not call its init.
OpenedPlugin open_plugin(std::string_view configured);

}  // namespace weft::server

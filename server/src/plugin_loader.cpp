// Plugin files: resolve, dlopen, check the descriptor.
#include "plugin_loader.hpp"

#include <dirent.h>
#include <dlfcn.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>
#include <vector>

#include "weft/core/text.hpp"

#ifndef WEFT_PLUGIN_DIR_REL
#define WEFT_PLUGIN_DIR_REL "../lib/weft/plugins"
#endif

namespace weft::server {

namespace {
std::string exe_dir() {
    char buf[PATH_MAX];
    ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0) return ".";
    std::string p(buf, static_cast<std::size_t>(n));
    auto slash = p.rfind('/');
    return slash == std::string::npos ? "." : p.substr(0, slash);
}

bool ends_with(std::string_view s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// "demo, ..." from the lib<weft_NAME>.so files of the bundled plugin directory.
std::string bundled_names() {
    std::vector<std::string> names;
    if (DIR* d = ::opendir(bundled_plugin_dir().c_str())) {
        constexpr std::string_view prefix = "libweft_", suffix = ".so";
        while (const dirent* e = ::readdir(d)) {
            std::string_view f = e->d_name;
            if (f.size() > prefix.size() + suffix.size() && f.substr(0, prefix.size()) == prefix &&
                ends_with(f, suffix))
                names.emplace_back(
                    f.substr(prefix.size(), f.size() - prefix.size() - suffix.size()));
        }
        ::closedir(d);
    }
    if (names.empty()) return "none (" + bundled_plugin_dir() + " has no libweft_*.so)";
    std::sort(names.begin(), names.end());
    std::string out;
    for (const auto& n : names)
        out += (out.empty() ? "" : ", ") + n;
    return out;
}
}  // namespace

std::string bundled_plugin_dir() {
    return std::filesystem::path(exe_dir() + "/" + WEFT_PLUGIN_DIR_REL).lexically_normal();
}

std::string resolve_plugin_path(std::string_view configured) {
    if (configured.find('/') != std::string_view::npos || ends_with(configured, ".so"))
        return std::string(configured);
    return bundled_plugin_dir() + "/libweft_" + std::string(configured) + ".so";
}

OpenedPlugin open_plugin(std::string_view configured) {
    OpenedPlugin p;
    p.configured = std::string(configured);
    p.file = resolve_plugin_path(configured);
    const bool bundled = p.file != p.configured;
    std::string who = "plugin '" + p.configured + "'" + (bundled ? " (" + p.file + ")" : "");

    struct stat st {};
    if (::stat(p.file.c_str(), &st) != 0) {
        int e = errno;
        std::string where;
        if (bundled) {
            where = "; bundled plugins are: " + bundled_names();
        } else if (!p.file.starts_with('/')) {
            // Relative to where weft was started, not to the configuration file.
            const std::string cwd = std::filesystem::current_path().string();
            where = " (a relative path is resolved against the working directory, " + cwd + ": " +
                    (std::filesystem::path(cwd) / p.file).lexically_normal().string() + ")";
        }
        throw PluginError(who + ": cannot open: " + std::strerror(e) + where);
    }
    if (!S_ISREG(st.st_mode)) throw PluginError(who + ": not a regular file");

    ::dlerror();
    // The file checked above, and not a namesake: dlopen() searches the library path for a
    // name without a slash ("libhello.so"), where stat() looked in the working directory.
    const std::string load = p.file.find('/') == std::string::npos ? "./" + p.file : p.file;
    p.handle = ::dlopen(load.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!p.handle) {
        const char* err = ::dlerror();
        throw PluginError(who + ": not a loadable shared object: " + (err ? err : "dlopen failed"));
    }
    // Never dlclose(): handlers, loggers and metrics of a plugin live as long as the process.
    using EntryFn = const plugin::Descriptor* (*)();
    auto entry = reinterpret_cast<EntryFn>(::dlsym(p.handle, plugin::kEntryPoint));
    if (!entry)
        throw PluginError(who + ": not a Weft plugin: it does not export '" + plugin::kEntryPoint +
                          "' (define one with WEFT_PLUGIN)");
    p.descriptor = entry();
    const plugin::Descriptor* d = p.descriptor;
    if (!d) throw PluginError(who + ": its entry point returned no descriptor");
    if (d->abi_version != WEFT_PLUGIN_ABI_VERSION)
        throw PluginError(who + ": built for plugin ABI " + std::to_string(d->abi_version) +
                          ", this weft speaks ABI " + std::to_string(WEFT_PLUGIN_ABI_VERSION) +
                          "; rebuild it against this Weft's SDK");
    if (d->descriptor_size < sizeof(plugin::Descriptor))
        throw PluginError(who + ": descriptor too small for ABI " +
                          std::to_string(WEFT_PLUGIN_ABI_VERSION));
    const char* sig = d->build_signature ? d->build_signature : "(none)";
    if (std::strcmp(sig, WEFT_BUILD_SIGNATURE) != 0)
        throw PluginError(who + ": build signature mismatch: the plugin was built with '" + sig +
                          "', this weft with '" WEFT_BUILD_SIGNATURE
                          "'; rebuild the plugin with the same compiler and Weft SDK");
    if (!d->name || !*d->name) throw PluginError(who + ": its descriptor has no name");
    // The name names its logger ("plugin.NAME"), its metrics' label, its log lines and its
    // [[plugin]] settings: a word, not text.
    const std::string_view name = d->name;
    if (name.size() > 64 || !std::all_of(name.begin(), name.end(), [](char c) {
            return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   c == '_' || c == '-' || c == '.';
        })) {
        std::string buf;
        throw PluginError(who + ": its name '" + std::string(weft::escaped_ascii(name, buf)) +
                          "' is not allowed: up to 64 letters, digits, '_', '-' or '.'");
    }
    if (!d->init) throw PluginError(who + ": its descriptor has no init function");
    return p;
}

}  // namespace weft::server

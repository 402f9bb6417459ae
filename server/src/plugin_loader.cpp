// Plugin files: resolve, dlopen, check the descriptor.
#include "plugin_loader.hpp"

#include <dirent.h>
#include <dlfcn.h>
#include <elf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>
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
// What weft checks in a plugin's file before dlopen() maps it, read from the file: the
// libraries it names in its DT_NEEDED entries, and how many bytes its loadable segments need
// (a file cut short by a copy makes dlopen() fault: SIGBUS as it clears the segment's tail).
// Nothing when it is not a 64-bit ELF file of this machine's byte order or is malformed:
// dlopen() then says what is wrong.
struct ElfFacts {
    std::vector<std::string> needed;
    std::uint64_t segments_end = 0;
};

ElfFacts inspect_elf(const std::string& file) {
    ElfFacts facts;
    std::vector<std::string>& out = facts.needed;
    std::ifstream in(file, std::ios::binary);
    auto read_at = [&in](std::uint64_t off, void* to, std::size_t n) {
        in.clear();
        in.seekg(static_cast<std::streamoff>(off));
        return static_cast<bool>(in.read(static_cast<char*>(to), static_cast<std::streamsize>(n)));
    };
    Elf64_Ehdr eh{};
    if (!read_at(0, &eh, sizeof eh) || std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
        eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB)
        return facts;
    if (eh.e_phentsize == sizeof(Elf64_Phdr) && eh.e_phnum > 0 && eh.e_phnum <= 4096) {
        std::vector<Elf64_Phdr> segments(eh.e_phnum);
        if (read_at(eh.e_phoff, segments.data(), segments.size() * sizeof(Elf64_Phdr)))
            for (const Elf64_Phdr& ph : segments)
                if (ph.p_type == PT_LOAD && ph.p_offset <= UINT64_MAX - ph.p_filesz)
                    facts.segments_end = std::max(facts.segments_end, ph.p_offset + ph.p_filesz);
    }
    if (eh.e_shentsize != sizeof(Elf64_Shdr) || eh.e_shnum == 0 || eh.e_shnum > 4096)
        return facts;  // no section headers (stripped): no DT_NEEDED read
    std::vector<Elf64_Shdr> sections(eh.e_shnum);
    if (!read_at(eh.e_shoff, sections.data(), sections.size() * sizeof(Elf64_Shdr))) return facts;
    constexpr std::uint64_t kMaxSection = 16 * 1024 * 1024;
    for (const Elf64_Shdr& dyn : sections) {
        if (dyn.sh_type != SHT_DYNAMIC || dyn.sh_link >= sections.size()) continue;
        const Elf64_Shdr& str = sections[dyn.sh_link];
        if (dyn.sh_size > kMaxSection || str.sh_size > kMaxSection || str.sh_size == 0) continue;
        std::vector<Elf64_Dyn> entries(dyn.sh_size / sizeof(Elf64_Dyn));
        std::string names(str.sh_size, '\0');
        if (!read_at(dyn.sh_offset, entries.data(), entries.size() * sizeof(Elf64_Dyn)) ||
            !read_at(str.sh_offset, names.data(), names.size()))
            continue;
        for (const Elf64_Dyn& e : entries) {
            if (e.d_tag == DT_NULL) break;
            if (e.d_tag != DT_NEEDED || e.d_un.d_val >= names.size()) continue;
            out.emplace_back(names.c_str() + e.d_un.d_val);
        }
    }
    return facts;
}

// A plugin built with ASan or TSan needs its runtime, which must be the first library of the
// process: loaded by a weft built without it, the runtime aborts the process with its own
// message before weft could compare build signatures. Refused first, in weft's words.
void refuse_foreign_sanitizer(const std::string& who, const std::vector<std::string>& needed) {
    static constexpr std::pair<std::string_view, std::string_view> kRuntimes[] = {
        {"libasan.so", "AddressSanitizer"},
        {"libtsan.so", "ThreadSanitizer"},
        {"libhwasan.so", "HWAddressSanitizer"},
    };  // (UBSan's and LSan's runtimes load late without harm: the build signatures decide)
    for (const std::string& lib : needed) {
        for (const auto& [prefix, sanitizer] : kRuntimes) {
            if (!lib.starts_with(prefix)) continue;
            if (void* h = ::dlopen(lib.c_str(), RTLD_NOW | RTLD_NOLOAD)) {
                ::dlclose(h);  // this weft runs with that runtime: the signatures decide
                continue;
            }
            throw PluginError(who + ": built with " + std::string(sanitizer) + " (it needs " + lib +
                              "), which this weft was not built with; rebuild the plugin "
                              "without -fsanitize, or run a weft built with the same sanitizers "
                              "(weft --version names them)");
        }
    }
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
    const ElfFacts elf = inspect_elf(p.file);
    if (elf.segments_end > static_cast<std::uint64_t>(st.st_size))
        throw PluginError(who + ": truncated or damaged: its loadable segments end at byte " +
                          std::to_string(elf.segments_end) + ", the file has " +
                          std::to_string(st.st_size) + " bytes (a copy cut short?)");
    refuse_foreign_sanitizer(who, elf.needed);

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

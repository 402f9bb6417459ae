// The watchdog's symbolizer (an internal part of monitor/): names for functions, modules and
// lines, and a name for frames in PLT stubs, which have no symbol of their own. A thread sampled
// while passing through a stub must not make the same call path look like a different stack.
// And the paths reports show for source files.
#include <gtest/gtest.h>

#include <elf.h>
#include <link.h>
#include <sys/auxv.h>

#include <cstdint>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "display.hpp"
#include "symbolizer.hpp"

using weft::monitor::detail::kPltStub;
using weft::monitor::detail::Symbolizer;

namespace {

__attribute__((noinline)) int marker_function(int x) {
    asm volatile("" ::: "memory");
    return x + 1;
}

// The process address range of this executable's first non-empty PLT section, read from the
// section headers of /proc/self/exe; {0, 0} when it has none (a -z now build may drop .plt).
std::pair<std::uint64_t, std::uint64_t> own_plt() {
    std::ifstream in("/proc/self/exe", std::ios::binary);
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (bytes.size() < sizeof(Elf64_Ehdr)) return {0, 0};
    auto* eh = reinterpret_cast<const Elf64_Ehdr*>(bytes.data());
    if (eh->e_shoff == 0 ||
        eh->e_shoff + std::uint64_t{eh->e_shnum} * sizeof(Elf64_Shdr) > bytes.size())
        return {0, 0};
    auto* sh = reinterpret_cast<const Elf64_Shdr*>(bytes.data() + eh->e_shoff);
    const char* names = bytes.data() + sh[eh->e_shstrndx].sh_offset;
    std::uint64_t bias = 0;
    dl_iterate_phdr(
        [](dl_phdr_info* info, std::size_t, void* out) {
            *static_cast<std::uint64_t*>(out) = info->dlpi_addr;  // the first entry is the program
            return 1;
        },
        &bias);
    for (int i = 0; i < eh->e_shnum; ++i) {
        std::string name = names + sh[i].sh_name;
        if (name.rfind(".plt", 0) == 0 && sh[i].sh_size > 0)
            return {bias + sh[i].sh_addr, bias + sh[i].sh_addr + sh[i].sh_size};
    }
    return {0, 0};
}

TEST(Symbolizer, NamesAFunctionItsModuleAndLine) {
    Symbolizer s;
    auto pc = reinterpret_cast<std::uint64_t>(&marker_function) + 1;
    auto f = s.describe(pc, /*is_pc=*/true);
    EXPECT_NE(f.function.find("marker_function"), std::string::npos) << f.function;
    EXPECT_EQ(f.module, "monitor_symbolizer_test");
    EXPECT_EQ(f.offset, 1u);
    EXPECT_NE(f.file.find("monitor_symbolizer_test.cpp"), std::string::npos) << f.file;
    EXPECT_GT(f.line, 0u);
    EXPECT_EQ(marker_function(1), 2);
    // Its place in the module is the ELF symbol's value (what addr2line -e takes), not where
    // the program was loaded this time.
    std::uint64_t bias = 0;
    dl_iterate_phdr(
        [](dl_phdr_info* info, std::size_t, void* out) {
            *static_cast<std::uint64_t*>(out) = info->dlpi_addr;  // the first entry is the program
            return 1;
        },
        &bias);
    EXPECT_EQ(f.module_offset, pc - bias);
}

TEST(Symbolizer, NamesAFrameInAPltStub) {
    auto [begin, end] = own_plt();
    if (begin == 0) GTEST_SKIP() << "this executable has no PLT section";
    Symbolizer s;
    auto f = s.describe(begin + (end - begin) / 2, /*is_pc=*/true);
    EXPECT_EQ(f.function, kPltStub);
    EXPECT_EQ(f.module, "monitor_symbolizer_test");
}

// The vDSO's module name carries no process id ("[vdso: 1234]" from elfutils), so that its
// frames read alike in every process's reports and profiles.
TEST(Symbolizer, TheVdsoIsNamedWithoutAProcessId) {
    const auto base = static_cast<std::uint64_t>(getauxval(AT_SYSINFO_EHDR));
    if (base == 0) GTEST_SKIP() << "no vDSO in this process";
    const auto* eh = reinterpret_cast<const ElfW(Ehdr)*>(base);
    const auto* ph = reinterpret_cast<const ElfW(Phdr)*>(base + eh->e_phoff);
    std::uint64_t text = 0;  // an address inside its executable segment
    for (int i = 0; i < eh->e_phnum; ++i)
        if (ph[i].p_type == PT_LOAD && (ph[i].p_flags & PF_X))
            text = base + ph[i].p_offset + ph[i].p_filesz / 2;
    ASSERT_NE(text, 0u);
    Symbolizer s;
    auto f = s.describe(text, /*is_pc=*/true);
    EXPECT_EQ(f.module, "[vdso]");
}

TEST(Symbolizer, AnAddressOutsideEveryModuleStaysUnknown) {
    Symbolizer s;
    auto f = s.describe(0x10, /*is_pc=*/true);
    EXPECT_TRUE(f.function.empty());
    EXPECT_TRUE(f.module.empty());
}

// Source paths compiled relative to a build folder (ccache's base_dir rewrites them so) are
// shown from the tree, as the absolute ones inside it are: "../tests/x.cpp" is "tests/x.cpp".
TEST(DisplayPath, RelativePathsLoseTheirWayOutOfTheBuildFolder) {
    using weft::monitor::detail::display_path;
    EXPECT_EQ(display_path("../tests/monitor/monitor_test_util.hpp"),
              "tests/monitor/monitor_test_util.hpp");
    EXPECT_EQ(display_path("../../src/handler.cpp"), "src/handler.cpp");
    EXPECT_EQ(display_path("./.././core/src/hub.cpp"), "core/src/hub.cpp");
    EXPECT_EQ(display_path("core/src/hub.cpp"), "core/src/hub.cpp");
    EXPECT_EQ(display_path("..hidden/x.cpp"), "..hidden/x.cpp");
    // This file, however the build spelled its path (absolute, or relative through ccache).
    EXPECT_EQ(display_path(__FILE__), "tests/monitor/monitor_symbolizer_test.cpp") << __FILE__;
    // Outside the tree, an absolute path stays whole.
    EXPECT_EQ(display_path("/usr/include/c++/12/bits/shared_ptr.h"),
              "/usr/include/c++/12/bits/shared_ptr.h");
}

}  // namespace

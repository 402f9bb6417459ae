// libdw glue (the only file that includes elfutils): a Dwfl over this process's modules with a
// thread-state attached whose "thread" is the captured register set and stack copy.
#include "symbolizer.hpp"

#include <cxxabi.h>
#include <elfutils/libdwfl.h>
#include <gelf.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string_view>

#include "display.hpp"

namespace weft::monitor::detail {

namespace {

constexpr std::size_t kMaxFrames = 64;

std::string demangle(const char* name) {
    if (!name) return {};
    int status = 0;
    char* d = abi::__cxa_demangle(name, nullptr, nullptr, &status);
    if (status == 0 && d) {
        std::string out(d);
        std::free(d);
        return out;
    }
    std::free(d);
    return name;
}

std::string base_name(const char* path) {
    if (!path) return {};
    std::string_view p(path);
    // elfutils names the vDSO "[vdso: PID]": without the PID, profiles and stack hashes of
    // different processes (or of a restarted one) name it alike.
    if (p.starts_with("[vdso")) return "[vdso]";
    auto slash = p.rfind('/');
    return std::string(slash == std::string_view::npos ? p : p.substr(slash + 1));
}

// Whether `addr` (a process address) lies in one of the module's PLT sections (.plt, .plt.got,
// .plt.sec): the lazy-binding stubs have no symbol, and a thread interrupted in one is only on
// its way into a library call.
bool in_plt(Dwfl_Module* m, Dwarf_Addr addr) {
    Dwarf_Addr bias = 0;
    Elf* elf = dwfl_module_getelf(m, &bias);
    std::size_t shstrndx = 0;
    if (!elf || elf_getshdrstrndx(elf, &shstrndx) != 0) return false;
    Dwarf_Addr rel = addr - bias;
    for (Elf_Scn* scn = elf_nextscn(elf, nullptr); scn; scn = elf_nextscn(elf, scn)) {
        GElf_Shdr sh;
        if (!gelf_getshdr(scn, &sh) || rel < sh.sh_addr || rel >= sh.sh_addr + sh.sh_size) continue;
        const char* name = elf_strptr(elf, shstrndx, sh.sh_name);
        return name && std::string_view(name).substr(0, 4) == ".plt";
    }
    return false;
}

}  // namespace

struct Symbolizer::Impl {
    Dwfl* dwfl = nullptr;
    bool attached = false;
    char* debuginfo_path = nullptr;
    Dwfl_Callbacks callbacks{};
    Dwfl_Thread_Callbacks thread_callbacks{};

    // The stack being unwound (set around dwfl_getthread_frames).
    const RawStack* slot = nullptr;
    int tid = 0;

    Impl() {
        callbacks.find_elf = dwfl_linux_proc_find_elf;
        callbacks.find_debuginfo = dwfl_standard_find_debuginfo;
        callbacks.debuginfo_path = &debuginfo_path;
        thread_callbacks.next_thread = &next_thread;
        thread_callbacks.get_thread = &get_thread;
        thread_callbacks.memory_read = &memory_read;
        thread_callbacks.set_initial_registers = &set_initial_registers;
    }
    ~Impl() { close(); }

    void close() {
        if (dwfl) dwfl_end(dwfl);
        dwfl = nullptr;
        attached = false;
    }

    bool open() {
        close();
        dwfl = dwfl_begin(&callbacks);
        if (!dwfl) return false;
        dwfl_report_begin(dwfl);
        if (dwfl_linux_proc_report(dwfl, ::getpid()) != 0) {
            close();
            return false;
        }
        dwfl_report_end(dwfl, nullptr, nullptr);
        attached = dwfl_attach_state(dwfl, nullptr, ::getpid(), &thread_callbacks, this);
        return true;
    }

    bool ensure() { return dwfl || open(); }

    static pid_t next_thread(Dwfl*, void* arg, void** thread_argp) {
        if (*thread_argp) return 0;
        *thread_argp = arg;
        return static_cast<Impl*>(arg)->tid;
    }
    static bool get_thread(Dwfl*, pid_t, void* arg, void** thread_argp) {
        *thread_argp = arg;
        return true;
    }
    // Stack memory comes from the copy only: nothing else of the stopped thread is trusted.
    static bool memory_read(Dwfl*, Dwarf_Addr addr, Dwarf_Word* result, void* arg) {
        const RawStack* s = static_cast<Impl*>(arg)->slot;
        if (!s || s->bytes.size() < sizeof(Dwarf_Word) || addr < s->stack_addr ||
            addr - s->stack_addr > s->bytes.size() - sizeof(Dwarf_Word))
            return false;
        std::memcpy(result, s->bytes.data() + (addr - s->stack_addr), sizeof(Dwarf_Word));
        return true;
    }
    static bool set_initial_registers(Dwfl_Thread* thread, void* arg) {
        const RawStack* s = static_cast<Impl*>(arg)->slot;
        Dwarf_Word regs[kDwarfRegs];
        for (int i = 0; i < kDwarfRegs; ++i)
            regs[i] = s->regs[i];
        if (!dwfl_thread_state_registers(thread, 0, kDwarfRegs, regs)) return false;
        dwfl_thread_state_register_pc(thread, s->regs[16]);
        return true;
    }

    struct Unwound {
        std::vector<std::uint64_t> pcs;
        std::vector<bool> is_pc;
    };
    static int on_frame(Dwfl_Frame* frame, void* arg) {
        auto* u = static_cast<Unwound*>(arg);
        Dwarf_Addr pc = 0;
        bool activation = false;
        if (!dwfl_frame_pc(frame, &pc, &activation) || pc == 0) return DWARF_CB_ABORT;
        u->pcs.push_back(pc);
        u->is_pc.push_back(activation);
        return u->pcs.size() >= kMaxFrames ? DWARF_CB_ABORT : DWARF_CB_OK;
    }

    Unwound unwind_cfi(const RawStack& s, int t) {
        Unwound u;
        if (!ensure() || !attached || s.bytes.empty()) return u;
        slot = &s;
        tid = t;
        dwfl_getthread_frames(dwfl, t, &on_frame, &u);  // ends with an error at the outermost
        slot = nullptr;
        return u;
    }
};

Symbolizer::Symbolizer() : impl_(std::make_unique<Impl>()) {}
Symbolizer::~Symbolizer() = default;

void Symbolizer::warm() {
    impl_->ensure();
}

StackFrame Symbolizer::describe(std::uint64_t address, bool is_pc) {
    StackFrame f;
    f.address = address;
    if (!impl_->ensure()) return f;
    // A return address points after the call; look up the call itself.
    Dwarf_Addr lookup = is_pc ? address : address - 1;
    Dwfl_Module* m = dwfl_addrmodule(impl_->dwfl, lookup);
    if (!m) return f;
    Dwarf_Addr start = 0;
    const char* modname =
        dwfl_module_info(m, nullptr, &start, nullptr, nullptr, nullptr, nullptr, nullptr);
    f.module = base_name(modname);
    // The ELF address; without the file (deleted or replaced since it was loaded), the offset
    // from where the module starts in memory, which differs from it only by the first
    // segment's address (0 for libraries and position-independent programs).
    Dwarf_Addr bias = 0;
    f.module_offset = dwfl_module_getelf(m, &bias) ? address - bias : address - start;
    GElf_Off off = 0;
    GElf_Sym sym;
    const char* name = dwfl_module_addrinfo(m, lookup, &off, &sym, nullptr, nullptr, nullptr);
    if (name) {
        f.function = demangle(name);
        f.offset = off + (is_pc ? 0 : 1);
    } else if (in_plt(m, lookup)) {
        f.function = std::string(kPltStub);
    }
    if (Dwfl_Line* line = dwfl_module_getsrc(m, lookup)) {
        int lineno = 0;
        const char* file = dwfl_lineinfo(line, nullptr, &lineno, nullptr, nullptr, nullptr);
        if (file && lineno > 0) {
            f.file = display_path(file);
            f.line = static_cast<unsigned>(lineno);
        }
    }
    return f;
}

std::vector<StackFrame> Symbolizer::stack(const RawStack& slot, int tid, std::string& note) {
    Impl::Unwound cfi = impl_->unwind_cfi(slot, tid);
    // A module loaded since the list was made (a plugin) leaves frames without a module:
    // reload the list once and try again.
    bool unknown = false;
    for (auto pc : cfi.pcs)
        if (impl_->dwfl && !dwfl_addrmodule(impl_->dwfl, pc)) unknown = true;
    if (unknown && impl_->open()) cfi = impl_->unwind_cfi(slot, tid);

    std::vector<std::uint64_t> pcs;
    std::vector<bool> is_pc;
    std::size_t fp_n = slot.fp_frames.size();
    if (!cfi.pcs.empty() && cfi.pcs.size() + 1 >= fp_n) {
        pcs = std::move(cfi.pcs);
        is_pc = std::move(cfi.is_pc);
        note = "unwound with CFI from " + std::to_string(slot.bytes.size()) + " copied stack bytes";
    } else {
        for (std::size_t i = 0; i < fp_n && i < kMaxFrames; ++i) {
            pcs.push_back(slot.fp_frames[i]);
            is_pc.push_back(i == 0);
        }
        note = "walked the frame-pointer chain";
    }
    std::size_t skip = 0;
    if (slot.from_handler && !pcs.empty()) {
        skip = 1;  // the capture handler's own frame
        note += "; the signal was handled late (TSan), so this is the stack at delivery";
    }
    std::vector<StackFrame> out;
    out.reserve(pcs.size());
    for (std::size_t i = skip; i < pcs.size(); ++i)
        out.push_back(describe(pcs[i], is_pc[i]));
    return out;
}

}  // namespace weft::monitor::detail

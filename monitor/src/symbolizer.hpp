// Unwinding and symbolization of a captured stack, on the watchdog thread, with elfutils libdw:
// a CFI (.eh_frame) unwind of the copied stack bytes from the captured registers, which walks
// through code built without frame pointers (libc, libstdc++, libgcc's unwinder), with the
// frame-pointer chain from the handler as the fallback; then function names (static ones too,
// demangled), module and file:line where line tables exist.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "stack_capture.hpp"
#include "weft/monitor/blocking_report.hpp"

namespace weft::monitor::detail {

/// The function name given to a frame in a PLT stub (which has no symbol of its own).
inline constexpr std::string_view kPltStub = "<PLT stub>";

class Symbolizer {
  public:
    Symbolizer();
    ~Symbolizer();
    Symbolizer(const Symbolizer&) = delete;
    Symbolizer& operator=(const Symbolizer&) = delete;

    /// Loads the module list of the process now, so that the first report is quick.
    void warm();

    /// Unwinds and symbolizes a captured stack. `note` says how it was unwound.
    std::vector<StackFrame> stack(const RawStack& raw, int tid, std::string& note);

    /// Symbolizes one address (a return address unless `is_pc`).
    StackFrame describe(std::uint64_t address, bool is_pc);

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace weft::monitor::detail

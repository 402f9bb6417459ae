// Native stack capture of a hub thread, by signal. The watchdog fills in a CaptureSlot's buffer
// and sends a realtime signal to the thread; the handler, running on that thread's alternate
// signal stack, copies registers, the frame-pointer chain, the raw stack bytes above the
// interrupted stack pointer and the running fiber's identity and labels into the slot. It calls
// nothing but async-signal-safe code (no unwinder, no allocation, no locks), so it is safe
// wherever the thread was stopped, including inside malloc or while an exception unwinds.
// The watchdog unwinds and symbolizes the copy afterwards (symbolizer.hpp).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace weft::monitor::detail {

inline constexpr int kMaxFpFrames = 128;
inline constexpr int kMaxLabels = 6;
inline constexpr std::size_t kLabelKeyMax = 32;
inline constexpr std::size_t kLabelValueMax = 256;
/// x86_64 DWARF registers 0..16: rax rdx rcx rbx rsi rdi rbp rsp r8..r15, and 16 = rip.
inline constexpr int kDwarfRegs = 17;

enum class CaptureStatus : int {
    ok = 0,
    in_switch,  ///< the thread was between two stacks: nothing consistent to read
    not_a_hub,  ///< the signalled thread runs no hub (it exited, or the tid was reused)
    no_stack,   ///< the interrupted stack pointer is outside the known stack bounds
};

struct CapturedLabel {
    char key[kLabelKeyMax];
    char value[kLabelValueMax];
    std::uint16_t key_len;
    std::uint16_t value_len;
    bool truncated;
};

/// Shared between the watchdog and the handler. Slots live in a process-wide pool and are never
/// freed, so a late signal (after the watchdog gave up waiting) never touches freed memory.
struct CaptureSlot {
    /// idle -> requested (watchdog) -> writing (handler) -> ready (handler) -> idle (watchdog).
    std::atomic<int> state{0};

    // Set by the watchdog before the signal.
    std::atomic<int> target_tid{0};  ///< a late signal that lands on another thread is ignored
    char* stack_buf = nullptr;
    std::size_t stack_cap = 0;

    // Written by the handler.
    CaptureStatus status = CaptureStatus::ok;
    std::uint64_t regs[kDwarfRegs] = {};
    std::uintptr_t fp_frames[kMaxFpFrames] = {};
    int fp_count = 0;
    std::uintptr_t stack_addr = 0;  ///< address of the first copied byte (the red zone's)
    std::size_t stack_len = 0;
    std::uintptr_t stack_lo = 0;
    std::uintptr_t stack_hi = 0;
    std::uint64_t fiber_id = 0;
    char fiber_name[48] = {};
    int hub_index = -1;
    CapturedLabel labels[kMaxLabels] = {};
    int label_count = 0;
    /// Set when the registers are the handler's own rather than the interrupted ones (TSan runs
    /// handlers late, see on_capture_signal): the unwind then starts with the handler's frame,
    /// which the symbolizer drops.
    bool from_handler = false;
};

/// A captured stack taken out of its slot, for the symbolizer.
struct RawStack {
    std::uint64_t regs[kDwarfRegs] = {};
    std::vector<std::uintptr_t> fp_frames;
    std::uintptr_t stack_addr = 0;
    std::vector<char> bytes;
    bool from_handler = false;  ///< see CaptureSlot::from_handler
};
/// Copies the registers, the frame-pointer chain and the stack bytes out of a ready slot.
RawStack copy_out(const CaptureSlot& slot);

enum SlotState : int { kIdle = 0, kRequested = 1, kWriting = 2, kReady = 3 };

/// Installs the capture handler once per process (SA_SIGINFO | SA_ONSTACK | SA_RESTART) on the
/// first realtime signal from SIGRTMIN+3 up that nobody else handles. Returns the signal, or -1
/// if none is free (capture is then unavailable).
int install_capture_handler() noexcept;

/// A slot from the pool, or nullptr when all are taken.
CaptureSlot* acquire_slot() noexcept;
void release_slot(CaptureSlot* s) noexcept;

enum class CaptureResult { ok, timed_out, send_failed, unavailable };

/// Signals thread `tid` (of this process) and waits up to `timeout` for the handler to fill
/// `slot`. On ok the slot is in state ready; call finish() once its contents were read.
CaptureResult capture(CaptureSlot& slot, int tid, std::chrono::nanoseconds timeout) noexcept;
inline void finish(CaptureSlot& slot) noexcept {
    slot.state.store(kIdle, std::memory_order_release);
}

/// The signal install_capture_handler() chose, or -1.
int capture_signal() noexcept;

}  // namespace weft::monitor::detail

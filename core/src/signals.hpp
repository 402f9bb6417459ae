// Per-hub-thread signal setup: an alternate signal stack, and the handler that turns a fault on a
// fiber's guard page into a report naming the fiber before the process aborts, and leaves a
// line for any other fatal fault (SIGSEGV, SIGBUS, SIGFPE, SIGILL) before the handler that was
// there before (the default: death) takes it.
#pragma once

namespace weft::detail {

/// On each hub thread at start: alternate stack + (once per process) the fault handler.
void install_thread_signal_stack();
void remove_thread_signal_stack() noexcept;

}  // namespace weft::detail

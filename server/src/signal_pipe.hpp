// The server's process signals: SIGINT, SIGTERM, SIGUSR1 and SIGHUP reach a handler that writes
// their number into a pipe, which the main loop (and then the shutdown guard) reads.
//
// Nothing blocks them. A blocked mask is what a thread passes on to the processes it starts
// (popen, system, fork and exec in a plugin), and a child with SIGTERM blocked cannot be stopped
// the usual way. Until the main loop takes over (plugins' init may take long, or hang), SIGINT
// and SIGTERM do what they do by default: they end the process.
#pragma once

#include <chrono>

namespace weft::server::signals {

/// Installs the handlers (once, before any thread starts). Throws std::system_error.
void install();
/// From now on SIGINT and SIGTERM are the main loop's to read (a drain), instead of ending the
/// process.
void serving() noexcept;
/// The shutdown is over (what remains is the process's exit: static destructors, plugins'
/// unloading): SIGINT and SIGTERM end the process again, as by default.
void done_serving() noexcept;
/// The next signal that came, waiting up to `timeout`; 0 if none came.
int next(std::chrono::milliseconds timeout) noexcept;

}  // namespace weft::server::signals

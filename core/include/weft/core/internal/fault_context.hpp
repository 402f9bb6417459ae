// What the calling thread is doing, for the line a fatal fault leaves (core/src/signals.cpp):
// the server names the plugin it is loading or initializing, so that a crash in a plugin's
// init says whose it was. Not for handler authors.
#pragma once

namespace weft::internal {

/// Sets (or with nullptr clears) the calling thread's activity, e.g. "initializing plugin
/// 'hello' (build/libhello.so)": a fatal signal on this thread adds ", while ACTIVITY" to its
/// report. The text must outlive the setting.
void set_thread_activity(const char* activity) noexcept;

/// Sets the activity for a scope, then clears it.
class ScopedThreadActivity {
  public:
    explicit ScopedThreadActivity(const char* activity) noexcept { set_thread_activity(activity); }
    ~ScopedThreadActivity() { set_thread_activity(nullptr); }
    ScopedThreadActivity(const ScopedThreadActivity&) = delete;
    ScopedThreadActivity& operator=(const ScopedThreadActivity&) = delete;
};

}  // namespace weft::internal

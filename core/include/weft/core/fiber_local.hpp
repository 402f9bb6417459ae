// FiberLocal<T>: a value per fiber (gevent's `local`, userver's task-local variables), inherited
// by the fibers a fiber spawns. The HTTP server keeps the current request's context in one, so
// library code can find "the request I am serving" without it being passed down.
#pragma once

#include <cstddef>
#include <memory>
#include <utility>

namespace weft {

namespace detail {
std::size_t fiber_local_slot() noexcept;
void* fiber_local_get(std::size_t slot) noexcept;
void fiber_local_set(std::size_t slot, std::shared_ptr<void> value);
}  // namespace detail

/// A variable with one value per fiber.
///
/// A fiber sees the value it set last, or else the value its parent had when it spawned it
/// (the same object, shared: a FiberLocal holds things like a request context, which the
/// request's helper fibers should see and may update). set() in a child replaces the child's
/// value only; its parent and siblings keep theirs. Values are destroyed once no fiber refers
/// to them (fibers drop theirs when they finish: on that fiber, last made first, while its
/// other values are still there; a set() from such a destructor has no effect).
///
/// Threads: a fiber's values are touched only by that fiber's hub (fibers spawn on their own
/// hub). Outside a fiber, get() returns nullptr and set() throws std::logic_error.
/// Define FiberLocal objects as globals or statics: each takes a slot for the process's life.
template <class T>
class FiberLocal {
  public:
    FiberLocal() noexcept : slot_(detail::fiber_local_slot()) {}
    FiberLocal(const FiberLocal&) = delete;
    FiberLocal& operator=(const FiberLocal&) = delete;

    /// The calling fiber's value, or nullptr when it has none.
    T* get() const noexcept { return static_cast<T*>(detail::fiber_local_get(slot_)); }
    /// Gives the calling fiber (and the fibers it spawns from now on) `value`.
    void set(T value) { detail::fiber_local_set(slot_, std::make_shared<T>(std::move(value))); }
    /// Shares an existing object instead of making one.
    void set_shared(std::shared_ptr<T> value) {
        detail::fiber_local_set(slot_, std::static_pointer_cast<void>(std::move(value)));
    }
    /// Removes the calling fiber's value (its children keep what they inherited).
    void reset() { detail::fiber_local_set(slot_, nullptr); }

  private:
    std::size_t slot_;
};

}  // namespace weft

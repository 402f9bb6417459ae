// For a program that resolves WEFT_HUBS and WEFT_BACKEND itself, as the weft server's settings
// do (with their precedence: file < environment < flag). Not for handler authors.
#pragma once

namespace weft::internal {

/// From now on Runtime takes RuntimeOptions as they are and no longer reads WEFT_HUBS and
/// WEFT_BACKEND: hubs = 0 means the CPUs available, backend = automatic io_uring when usable.
void runtime_environment_resolved() noexcept;

}  // namespace weft::internal

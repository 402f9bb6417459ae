// RuntimeState: what a Runtime owns, shared by its hubs (options, the offload and resolver
// pools).
#pragma once

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "thread_pool.hpp"
#include "weft/core/runtime.hpp"

namespace weft::detail {

class HubImpl;

struct RuntimeState {
    explicit RuntimeState(RuntimeOptions o) : options(std::move(o)) {}
    RuntimeOptions options;
    Runtime* owner = nullptr;
    Backend backend = Backend::io_uring;
    std::string backend_reason;
    std::vector<std::unique_ptr<HubImpl>> hubs;
    std::vector<std::thread> threads;
    std::unique_ptr<ThreadPool> pool;
    std::unique_ptr<ThreadPool> resolver;  // name lookups only
    bool inline_hub0 = false;
    bool joined = false;
};

}  // namespace weft::detail

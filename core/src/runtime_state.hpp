// RuntimeState: what a Runtime owns, shared by its hubs (options, the offload and resolver
// pools).
#pragma once

#include <condition_variable>
#include <memory>
#include <mutex>
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
    // How many hub threads have left their loop (Runtime::join_for waits on it).
    std::mutex exit_mu;
    std::condition_variable exit_cv;
    unsigned threads_exited = 0;
    // Helper threads of patched joins still running (they post to a hub): ~Runtime waits for
    // them before the hubs go.
    std::mutex helpers_mu;
    std::condition_variable helpers_cv;
    unsigned helpers = 0;
};

}  // namespace weft::detail

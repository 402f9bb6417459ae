// Test plugin: a plugin that never blocks (GET /calm answers at once, GET /calm/nap sleeps
// cooperatively), served beside the demo plugin whose /block keeps blocking: the stall budget
// must quarantine the demo plugin and leave this one in full service. GET /calm/child-status
// answers the status lines of a process the handler starts (posix_spawn, as popen and system
// do, but without a shell, which would reset the signal mask): what a child inherits. With
// [plugin.config] exit_sleep_ms, the process's exit (after the server's shutdown) hangs that long
// in a handler registered with atexit (a library's static destructor that waits on something);
// with hook_sleep_ms, its shutdown hook takes that long (a flush that hangs). With
// background_block_ms, a background fiber (ctx.spawn) and a fiber it spawns each hold their hub
// that long, once, a moment after the start: the watchdog's reports must name the plugin.
// GET /calm/owned?ms=N leaves work of N ms running on a pool thread at its 200 ms deadline.
// With background_wind_down_ms, a background fiber waits for its cancellation, then takes that
// long to end (a flush), and a shutdown hook logs that it ran: the hook must come after the
// fiber's end. With background_throw, a background fiber throws at once: the log must name the
// plugin.
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <stdexcept>
#include <string>

#include "weft/core/fiber.hpp"
#include "weft/core/offload.hpp"
#include "weft/plugin.hpp"

namespace {

long g_exit_sleep_ms = 0;

void init(weft::plugin::Context& ctx) {
    g_exit_sleep_ms = static_cast<long>(ctx.config().get_int("exit_sleep_ms", 0).value());
    if (const long hook_ms = static_cast<long>(ctx.config().get_int("hook_sleep_ms", 0).value());
        hook_ms > 0) {
        ctx.on_shutdown([hook_ms] {
            timespec left{hook_ms / 1000, (hook_ms % 1000) * 1'000'000};
            while (::syscall(SYS_nanosleep, &left, &left) != 0 && errno == EINTR) {
            }
        });
    }
    if (g_exit_sleep_ms > 0) {
        std::atexit([] {
            timespec left{g_exit_sleep_ms / 1000, (g_exit_sleep_ms % 1000) * 1'000'000};
            while (::syscall(SYS_nanosleep, &left, &left) != 0 && errno == EINTR) {
            }
        });
    }
    if (const long block_ms =
            static_cast<long>(ctx.config().get_int("background_block_ms", 0).value());
        block_ms > 0) {
        ctx.spawn("calm-background", [block_ms] {
            auto hold = [block_ms] {
                timespec left{block_ms / 1000, (block_ms % 1000) * 1'000'000};
                while (::syscall(SYS_nanosleep, &left, &left) != 0 && errno == EINTR) {
                }
            };
            (void)weft::sleep_for(std::chrono::milliseconds(200));
            hold();
            weft::spawn("calm-helper", hold).join();
        });
    }
    if (const long wind_down_ms =
            static_cast<long>(ctx.config().get_int("background_wind_down_ms", 0).value());
        wind_down_ms > 0) {
        auto log = ctx.logger();
        ctx.spawn("calm-worker", [wind_down_ms, log] {
            while (weft::sleep_for(std::chrono::milliseconds(10))) {
            }
            timespec left{wind_down_ms / 1000, (wind_down_ms % 1000) * 1'000'000};
            while (::syscall(SYS_nanosleep, &left, &left) != 0 && errno == EINTR) {
            }
            log->info("calm worker ended");
        });
        ctx.on_shutdown([log] { log->info("calm shutdown hook ran"); });
    }
    if (ctx.config().get_bool("background_throw", false).value())
        ctx.spawn("calm-thrower", [] { throw std::runtime_error("calm thrower failed"); });
    ctx.route("GET", "/calm",
              [](weft::http::Request&) { return weft::http::Response::text("calm\n"); });
    // Work on a pool thread of ?ms that the handler may leave at its deadline (offload_owned):
    // it runs on after the answer, and the shutdown waits for it.
    ctx.route(
        "GET", "/calm/owned",
        [](weft::http::Request& req) {
            long ms = 10;
            if (auto v = req.query("ms")) std::from_chars(v->data(), v->data() + v->size(), ms);
            weft::offload_owned([ms] {
                timespec left{ms / 1000, (ms % 1000) * 1'000'000};
                while (::syscall(SYS_nanosleep, &left, &left) != 0 && errno == EINTR) {
                }
            });
            return weft::http::Response::text("done\n");
        },
        weft::http::RouteOptions{.timeout = std::chrono::milliseconds(200)});
    // A handler that fails: its error line names the plugin.
    ctx.route("GET", "/calm/throw", [](weft::http::Request&) -> weft::http::Response {
        throw std::runtime_error("calm handler failed");
    });
    ctx.route("GET", "/calm/nap", [](weft::http::Request& req) {
        long ms = 10;
        if (auto v = req.query("ms")) std::from_chars(v->data(), v->data() + v->size(), ms);
        (void)weft::sleep_for(std::chrono::milliseconds(ms));
        return weft::http::Response::text("napped " + std::to_string(ms) + " ms\n");
    });
    // A child forked without exec sends itself SIGTERM: it must end by it (its handlers are
    // the defaults), not write into the server's signal pipe and drain the server.
    ctx.route("GET", "/calm/fork-term", [](weft::http::Request&) {
        const pid_t pid = ::fork();
        if (pid == 0) {
            ::raise(SIGTERM);
            ::_exit(0);  // still alive: the signal was handled instead
        }
        int st = 0;
        ::waitpid(pid, &st, 0);
        return weft::http::Response::text(
            WIFSIGNALED(st) ? "signaled " + std::to_string(WTERMSIG(st)) + "\n" : "exited\n");
    });
    // A child forked without exec that exits as programs do (exit(), static destructors): it
    // must end, whatever threads the server had (the access log's writer).
    ctx.route("GET", "/calm/fork-exit", [](weft::http::Request&) {
        const pid_t pid = ::fork();
        if (pid == 0) std::exit(0);
        int st = 0;
        // 15 s, cooperatively: an exit that never comes is reported as "hung".
        for (int i = 0; i < 1500; ++i) {
            if (::waitpid(pid, &st, WNOHANG) == pid)
                return weft::http::Response::text(
                    WIFEXITED(st) ? "exited\n" : "signaled " + std::to_string(WTERMSIG(st)) + "\n");
            (void)weft::sleep_for(std::chrono::milliseconds(10));
        }
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &st, 0);
        return weft::http::Response::text("hung\n");
    });
    ctx.route("GET", "/calm/child-status", [](weft::http::Request&) {
        int fds[2];
        if (::pipe(fds) != 0) return weft::http::Response::text("pipe failed\n", 500);
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
        posix_spawn_file_actions_addclose(&fa, fds[0]);
        char cat[] = "cat", file[] = "/proc/self/status";
        char* argv[] = {cat, file, nullptr};
        pid_t pid = 0;
        const int rc = ::posix_spawnp(&pid, "cat", &fa, nullptr, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        ::close(fds[1]);
        std::string out;
        char buf[4096];
        ssize_t n;
        while ((n = ::read(fds[0], buf, sizeof buf)) > 0)
            out.append(buf, static_cast<std::size_t>(n));
        ::close(fds[0]);
        if (rc != 0) return weft::http::Response::text("posix_spawnp failed\n", 500);
        int st = 0;
        ::waitpid(pid, &st, 0);
        return weft::http::Response::text(out);
    });
}

}  // namespace

WEFT_PLUGIN("calm", "1.0", init)

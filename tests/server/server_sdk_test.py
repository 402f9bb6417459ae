"""The installed SDK end to end: `cmake --install` this build into a staging prefix in a temp
dir, build a copy of examples/plugin-template there with find_package(weft) and nothing of
this source tree, load it into the *staged* weft with --plugin, request its routes, find its
counters in /metrics and its shutdown hook's line in the log at exit."""

import os
import re
import shutil
import subprocess
import tempfile
import unittest

import server_test_util as u
from server_test_util import Weft, get, write


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                       stdin=subprocess.DEVNULL, **kw)
    if r.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s\n%s" % (" ".join(cmd), r.returncode,
                                                          r.stdout[-4000:], r.stderr[-4000:]))
    return r


class Sdk(unittest.TestCase):
    def test_out_of_tree_plugin_against_the_staged_sdk(self):
        a = u.ARGS
        with tempfile.TemporaryDirectory(prefix="weft-sdk-test-") as tmp:
            stage = os.path.join(tmp, "stage")
            run([a.cmake, "--install", a.build_dir, "--prefix", stage])
            for f in ["bin/weft", "include/weft/plugin.hpp", "include/weft/version.hpp",
                      "include/weft/http/router.hpp", "lib/cmake/weft/weftConfig.cmake",
                      "lib/cmake/weft/weftConfigVersion.cmake", "lib/cmake/weft/WeftPlugin.cmake",
                      "lib/weft/plugins/libweft_demo.so", "lib/libweft_core.so"]:
                self.assertTrue(os.path.exists(os.path.join(stage, f)), f)

            # The template, copied away from the source tree so nothing relative to it works.
            src = os.path.join(tmp, "hello-plugin")
            shutil.copytree(os.path.join(a.source_dir, "examples", "plugin-template"), src)
            build = os.path.join(tmp, "build")
            configure = [a.cmake, "-S", src, "-B", build, "-DCMAKE_PREFIX_PATH=" + stage,
                         "-DCMAKE_FIND_PACKAGE_NO_PACKAGE_REGISTRY=ON"]
            if a.generator:
                configure += ["-G", a.generator]
            if a.cxx:
                configure += ["-DCMAKE_CXX_COMPILER=" + a.cxx]
            run(configure)
            with open(os.path.join(build, "CMakeCache.txt")) as f:
                cache = f.read()
            self.assertIn("weft_DIR:PATH=" + os.path.join(stage, "lib", "cmake", "weft"), cache)
            run([a.cmake, "--build", build, "--parallel", "2"])
            plugin = os.path.join(build, "libhello.so")
            self.assertTrue(os.path.isfile(plugin))
            # Built with line tables by default, for the watchdog's stacks.
            self.assertIn("CMAKE_BUILD_TYPE:STRING=RelWithDebInfo", cache)
            with open(plugin, "rb") as f:
                self.assertIn(b".debug_line", f.read())

            # The staged server, with the template's table from a file, the plugin by --plugin.
            weft = os.path.join(stage, "bin", "weft")
            cfg = write(os.path.join(tmp, "weft.toml"),
                        '[[plugin]]\npath = "%s"\n[plugin.config]\ngreeting = "Bonjour"\n'
                        'tick_interval = "20ms"\n' % plugin)
            check = subprocess.run([weft, "--check-config", "--config", cfg, "--plugin", plugin],
                                   capture_output=True, text=True, timeout=30,
                                   env=u.clean_env())
            self.assertEqual(check.returncode, 0, check.stderr)
            with Weft(["--config", cfg, "--plugin", "demo", "--plugin", plugin, "--hubs", "2"],
                      exe=weft, workdir=tmp) as w:
                w.wait_ready()
                # Libraries come from the stage, not from this build tree.
                with open("/proc/%d/maps" % w.pid) as f:
                    maps = f.read()
                core = set(re.findall(r"(/\S*libweft_core\.so[.\d]*)", maps))
                self.assertTrue(core and all(p.startswith(stage) for p in core), core)
                self.assertIn(plugin, maps)

                self.assertEqual(get(w.http, "/hello/sdk")[2], b"Bonjour, sdk!\n")
                self.assertEqual(get(w.http, "/hello")[2], b"Bonjour, World!\n")
                self.assertEqual(get(w.http, "/")[2], b"Hello, World!")  # the staged demo
                metrics = get(w.admin, "/metrics")[2].decode()
                self.assertRegex(metrics, r"(?m)^hello_greetings_total 2$")
                u.poll(lambda: re.search(r"(?m)^hello_ticks_total [1-9]",
                                         get(w.admin, "/metrics")[2].decode()), 10,
                       what="the plugin's background fiber ticking")
                self.assertEqual(w.stop(), 0)
                log = w.stderr()
            self.assertIn("hello plugin ready: greeting 'Bonjour'", log)
            self.assertIn("[plugin.hello] [info] hello plugin shutting down after 2 greetings",
                          log)
            self.assertLess(log.index("drained"), log.index("shutting down after"))

    def test_the_readme_shows_a_first_plugin_and_its_commands_work(self):
        # A newcomer found the template only by listing folders: the README's first screen
        # shows how to write, build and load a plugin, and its commands work as written (with
        # HOME in a temp dir, and this build as the tree's `build`).
        a = u.ARGS
        with open(os.path.join(a.source_dir, "README.md")) as f:
            first_screen = "".join(f.readlines()[:40])
        m = re.search(r"## Your first plugin\n.*?```sh\n(.*?)```", first_screen, re.S)
        self.assertIsNotNone(m, "no plugin walkthrough in the README's first 40 lines")
        self.assertIn("examples/plugin-template", first_screen)
        lines = [line.split("  #")[0].strip() for line in m.group(1).splitlines() if line.strip()]
        *build, serve = lines
        with tempfile.TemporaryDirectory(prefix="weft-readme-test-") as tmp:
            tree, home = os.path.join(tmp, "tree"), os.path.join(tmp, "home")
            os.makedirs(tree)
            os.makedirs(home)
            os.symlink(os.path.join(a.source_dir, "examples"), os.path.join(tree, "examples"))
            os.symlink(a.build_dir, os.path.join(tree, "build"))
            script = "set -e\n" + "\n".join(build) + "\nexec " + serve + \
                " --listen 127.0.0.1:0 --admin 127.0.0.1:0 --hubs 1\n"
            with Weft(["-c", script], exe="/bin/bash", listen=False, cwd=tree, workdir=tmp,
                      env={"HOME": home}) as w:
                w.wait_ready(timeout=600)
                self.assertEqual(get(w.http, "/hello/you")[2], b"Hello, you!\n")
                self.assertEqual(get(w.http, "/")[2], b"Hello, World!")
                self.assertEqual(w.stop(), 0)

    def test_the_sdk_says_in_one_sentence_what_cannot_work(self):
        a = u.ARGS
        with tempfile.TemporaryDirectory(prefix="weft-sdk-test-") as tmp:
            stage = os.path.join(tmp, "stage")
            run([a.cmake, "--install", a.build_dir, "--prefix", stage])
            src = os.path.join(tmp, "hello-plugin")
            shutil.copytree(os.path.join(a.source_dir, "examples", "plugin-template"), src)
            gen = ["-G", a.generator] if a.generator else []

            # Another compiler than Weft's (Debian's clang 14 cannot even compile the headers):
            # find_package(weft) refuses it, naming the one to use, before any compile.
            mine = os.path.realpath(shutil.which(a.cxx) or a.cxx)
            others = [c for c in (shutil.which("clang++"), shutil.which("g++"))
                      if c and os.path.realpath(c) != mine]
            if not others:
                self.skipTest("no C++ compiler here other than Weft's own")
            r = subprocess.run([a.cmake, "-S", src, "-B", os.path.join(tmp, "b-other"),
                                "-DCMAKE_PREFIX_PATH=" + stage, "-DCMAKE_CXX_COMPILER=" + others[0]]
                               + gen, capture_output=True, text=True, timeout=300)
            out = " ".join((r.stdout + r.stderr).split())
            self.assertNotEqual(r.returncode, 0, out)
            self.assertIn("weft: plugins must be built with the compiler Weft was built with", out)
            self.assertIn("-DCMAKE_CXX_COMPILER=" + a.cxx, out)

            # A target of its own at C++17 that links weft::plugin_api is compiled as C++20.
            with open(os.path.join(src, "CMakeLists.txt"), "w") as f:
                f.write("cmake_minimum_required(VERSION 3.25)\nproject(p17 LANGUAGES CXX)\n"
                        "set(CMAKE_CXX_STANDARD 17)\nfind_package(weft REQUIRED)\n"
                        "add_library(hello MODULE hello_plugin.cpp)\n"
                        "target_link_libraries(hello PRIVATE weft::plugin_api)\n")
            build = os.path.join(tmp, "b17")
            run([a.cmake, "-S", src, "-B", build, "-DCMAKE_PREFIX_PATH=" + stage,
                 "-DCMAKE_CXX_COMPILER=" + a.cxx] + gen)
            run([a.cmake, "--build", build])
            # Below C++20 by hand: one error, in one sentence, instead of pages of them.
            tu = write(os.path.join(tmp, "tu.cpp"), '#include "weft/plugin.hpp"\n')
            r = subprocess.run([a.cxx, "-std=c++17", "-fsyntax-only", "-I",
                                os.path.join(stage, "include"), tu],
                               capture_output=True, text=True, timeout=120)
            self.assertNotEqual(r.returncode, 0)
            errors = [line for line in r.stderr.splitlines() if "error:" in line]
            self.assertEqual(len(errors), 1, r.stderr)
            self.assertIn("Weft's headers need C++20", errors[0])


if __name__ == "__main__":
    u.main()

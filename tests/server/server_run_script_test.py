"""The README's run command: `scripts/run.sh` builds weft and serves the embedded default, so
`curl 127.0.0.1:8080/` answers "Hello, World!" and the admin listener answers on 9090.

run.sh configures and builds in <tree>/build. This tree is shared, and reconfiguring its build
folder (run.sh turns the tests off) would disturb whoever uses it, so the script runs in a
mirror of the working tree kept in this test's build folder; only changed files are rewritten,
so after the first run its build is incremental. The fixed ports are locked (RESOURCE_LOCK)."""

import filecmp
import fnmatch
import os
import shutil
import signal
import subprocess
import time
import unittest

import server_test_util as u


def same_file(a, b):
    """Whether b holds a's content (and kind): cheap checks first, bytes when in doubt."""
    if os.path.islink(a) or os.path.islink(b):
        return (os.path.islink(a) and os.path.islink(b) and
                os.readlink(a) == os.readlink(b))
    sa, sb = os.stat(a), os.stat(b)
    if sa.st_size != sb.st_size or sa.st_mode != sb.st_mode:
        return False
    return sa.st_mtime == sb.st_mtime or filecmp.cmp(a, b, shallow=False)


def ignore_rules(src):
    """The root .gitignore's patterns as (pattern, directories only, root only) triples."""
    rules = []
    path = os.path.join(src, ".gitignore")
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line and not line.startswith("#"):
                    rules.append((line.strip("/"), line.endswith("/"), line.startswith("/")))
    return rules


def source_files(src):
    """The working tree's files as git lists them (tracked, and untracked but not ignored by the
    root .gitignore, which is the only one), without git: a tree from a tarball or a bare
    machine has none."""
    rules = ignore_rules(src)

    def ignored(rel, is_dir):
        name = rel.rsplit("/", 1)[-1]
        if name == ".git":
            return True
        for pattern, dir_only, root_only in rules:
            if (dir_only and not is_dir) or (root_only and "/" in rel):
                continue
            if fnmatch.fnmatch(name, pattern):
                return True
        return False

    for root, dirs, files in os.walk(src):
        base = os.path.relpath(root, src)
        rel = (lambda n: n) if base == "." else (lambda n: base + "/" + n)
        dirs[:] = [d for d in dirs if not ignored(rel(d), True)]
        for f in files:
            if not ignored(rel(f), False):
                yield rel(f)


def mirror(src, dst):
    """Makes dst hold the working tree's files (see source_files); removes files that are gone;
    leaves dst/build alone. A changed file is written anew, so its time is now and the build in
    dst sees it; an unchanged one is not touched."""
    wanted = set()
    for rel in source_files(src):
        s = os.path.join(src, rel)
        if not os.path.lexists(s):
            continue  # deleted in the working tree
        wanted.add(rel)
        d = os.path.join(dst, rel)
        if os.path.lexists(d) and same_file(s, d):
            continue
        os.makedirs(os.path.dirname(d), exist_ok=True)
        if os.path.lexists(d):
            os.remove(d)
        if os.path.islink(s):
            os.symlink(os.readlink(s), d)
        else:
            shutil.copyfile(s, d)
            shutil.copymode(s, d)
    for root, dirs, files in os.walk(dst):
        if root == dst and "build" in dirs:
            dirs.remove("build")
        for f in files:
            rel = os.path.relpath(os.path.join(root, f), dst)
            if rel not in wanted:
                os.remove(os.path.join(root, f))


class RunScript(unittest.TestCase):
    def test_run_sh_serves_hello_world_on_8080(self):
        for addr in ("127.0.0.1:8080", "127.0.0.1:9090"):
            if not u.connect_refused(addr):
                self.fail("%s is already in use by another process; this test needs it" % addr)
        tree = os.path.join(u.ARGS.build_dir, "tests", "server", "run_sh_tree")
        mirror(u.ARGS.source_dir, tree)
        log_path = os.path.join(tree, "run.sh.log")
        env = u.clean_env({"CMAKE_BUILD_PARALLEL_LEVEL": "2"})  # shared machine: 2 jobs
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(["scripts/run.sh"], cwd=tree, env=env,
                                    stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                    start_new_session=True)
        try:
            # Building is most of the wait on a first run.
            deadline = time.monotonic() + 3000
            while True:
                with open(log_path, "rb") as f:
                    text = f.read().decode("utf-8", "replace")
                if "ready in" in text:
                    break
                if proc.poll() is not None:
                    self.fail("scripts/run.sh exited %d before serving:\n%s" %
                              (proc.returncode, text[-6000:]))
                if time.monotonic() > deadline:
                    self.fail("scripts/run.sh did not serve in time:\n" + text[-6000:])
                time.sleep(0.2)
            self.assertIn("serving http://127.0.0.1:8080", text)
            self.assertIn("admin http://127.0.0.1:9090", text)

            curl = shutil.which("curl")
            if curl:
                r = subprocess.run([curl, "-sS", "--max-time", "10", "127.0.0.1:8080/"],
                                   capture_output=True, text=True, timeout=20)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(r.stdout, "Hello, World!")
            else:
                self.assertEqual(u.get("127.0.0.1:8080", "/")[2], b"Hello, World!")
            self.assertEqual(u.get("127.0.0.1:9090", "/readyz")[0], 200)

            # run.sh exec's weft, so its PID is the server's: SIGTERM drains and exits 0.
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(20), 0)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
            else:
                try:  # anything the script left in its process group
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        with open(log_path, "rb") as f:
            self.assertIn(b"weft stopped", f.read())


if __name__ == "__main__":
    u.main()

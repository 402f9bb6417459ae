"""Where io_uring is hidden (container runtimes' default seccomp profiles refuse io_uring_setup),
the io_uring variant of a test program skips as a whole with exit 77 and says why, and the epoll
variant runs, skipping only the io_uring half of the test that needs both. The filter is
installed here with prctl, so this runs on any Linux host.

Usage: core_io_uring_hidden_test.py TEST_PROGRAM (a weft_add_test program, e.g. core_runtime_test)"""

import ctypes
import os
import platform
import struct
import subprocess
import sys

SKIP = 77
PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO, EPERM = 0x7FFF0000, 0x00050000, 1
NR_IO_URING_SETUP = 425  # the same on every architecture (a syscall added after 5.0)
AUDIT_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}


def hide_io_uring():
    """A seccomp filter for this process and its children: io_uring_setup fails with EPERM."""
    arch = AUDIT_ARCH[platform.machine()]

    def insn(code, jt, jf, k):
        return struct.pack("HBBI", code, jt, jf, k)
    ld_w_abs, jeq_k, ret_k = 0x20, 0x15, 0x06
    prog = b"".join([
        insn(ld_w_abs, 0, 0, 4),                     # seccomp_data.arch
        insn(jeq_k, 1, 0, arch),
        insn(ret_k, 0, 0, SECCOMP_RET_ALLOW),
        insn(ld_w_abs, 0, 0, 0),                     # seccomp_data.nr
        insn(jeq_k, 0, 1, NR_IO_URING_SETUP),
        insn(ret_k, 0, 0, SECCOMP_RET_ERRNO | EPERM),
        insn(ret_k, 0, 0, SECCOMP_RET_ALLOW),
    ])
    buf = ctypes.create_string_buffer(prog)
    fprog = struct.pack("HxxxxxxP", len(prog) // 8, ctypes.addressof(buf))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int] + [ctypes.c_ulong] * 4
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS")
    fbuf = ctypes.create_string_buffer(fprog)
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(fbuf), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "PR_SET_SECCOMP")


def run(program, backend):
    env = dict(os.environ, WEFT_BACKEND=backend)
    return subprocess.run([program], env=env, capture_output=True, text=True, timeout=240,
                          preexec_fn=hide_io_uring)


def main():
    program = sys.argv[1]
    if platform.machine() not in AUDIT_ARCH:
        print("SKIPPED: no seccomp filter written for %s" % platform.machine())
        return SKIP
    problems = []
    r = run(program, "io_uring")
    if r.returncode != SKIP or "SKIPPED: WEFT_BACKEND=io_uring, but io_uring is not available" \
            not in r.stdout:
        problems.append("io_uring variant: exit %d, expected 77 with a message:\n%s%s" %
                        (r.returncode, r.stdout[-3000:], r.stderr[-3000:]))
    r = run(program, "epoll")
    if r.returncode != 0 or "io_uring is not available here, so only epoll was checked" \
            not in r.stdout:
        problems.append("epoll variant: exit %d, expected 0 and one skipped half:\n%s%s" %
                        (r.returncode, r.stdout[-3000:], r.stderr[-3000:]))
    for p in problems:
        print("FAIL", p)
    if not problems:
        print("ok: with io_uring hidden, the io_uring variant skips and says why; epoll runs")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

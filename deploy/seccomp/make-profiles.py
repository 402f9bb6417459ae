#!/usr/bin/env python3
"""Derives Weft's two seccomp profiles from the container runtime's default profile.

weft-io-uring.json   the default plus io_uring_setup, io_uring_enter and io_uring_register, so Weft
                     runs its io_uring backend in a container;
block-io-uring.json  the default with those three refused with EPERM, as Docker's default profile
                     does, so the fallback to epoll can be tested.

The source is the default profile of Debian's containers-common package. Run with --check to verify
that the committed files are what the script makes from the installed default.
"""

import argparse
import copy
import difflib
import json
import pathlib
import sys

IO_URING = ["io_uring_setup", "io_uring_enter", "io_uring_register"]
DEFAULT_SOURCE = "/usr/share/containers/seccomp.json"
HERE = pathlib.Path(__file__).resolve().parent
EPERM = 1


def without_io_uring(profile):
    """A copy of the profile in which no rule names an io_uring call, whatever its action."""
    out = copy.deepcopy(profile)
    rules = []
    for rule in out.get("syscalls") or []:
        names = [n for n in rule.get("names", []) if n not in IO_URING]
        if not names:
            continue
        rule["names"] = names
        rules.append(rule)
    out["syscalls"] = rules
    return out


def allowing_io_uring(default):
    profile = without_io_uring(default)
    profile["syscalls"].append({
        "names": IO_URING,
        "action": "SCMP_ACT_ALLOW",
        "comment": "Weft: io_uring is the default I/O backend",
    })
    return profile


def blocking_io_uring(default):
    profile = without_io_uring(default)
    profile["syscalls"].append({
        "names": IO_URING,
        "action": "SCMP_ACT_ERRNO",
        "errnoRet": EPERM,
        "comment": "Weft tests: refuse io_uring with EPERM, as Docker's default profile does",
    })
    return profile


def render(profile):
    return json.dumps(profile, indent=2) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", default=DEFAULT_SOURCE,
                    help=f"the default profile to start from (default: {DEFAULT_SOURCE})")
    ap.add_argument("--out", default=str(HERE), help="folder for the profiles (default: beside this script)")
    ap.add_argument("--check", action="store_true",
                    help="compare with the files in --out instead of writing them; exit 1 on a difference")
    args = ap.parse_args()

    try:
        default = json.loads(pathlib.Path(args.source).read_text())
    except OSError as e:
        sys.exit(f"make-profiles: cannot read {args.source}: {e.strerror} "
                 "(install Debian's containers-common, which podman depends on)")
    if default.get("defaultAction") == "SCMP_ACT_ALLOW":
        sys.exit(f"make-profiles: {args.source} allows every call by default; expected an allow list")

    wanted = {
        "weft-io-uring.json": render(allowing_io_uring(default)),
        "block-io-uring.json": render(blocking_io_uring(default)),
    }
    out = pathlib.Path(args.out)
    stale = 0
    for name, text in wanted.items():
        path = out / name
        if args.check:
            have = path.read_text() if path.exists() else ""
            if have != text:
                stale += 1
                sys.stdout.writelines(difflib.unified_diff(
                    have.splitlines(True), text.splitlines(True), str(path), f"{name} from {args.source}", n=2))
        else:
            path.write_text(text)
            print(f"make-profiles: wrote {path}")
    if stale:
        print(f"make-profiles: {stale} profile(s) differ from what {args.source} gives; "
              "rerun deploy/seccomp/make-profiles.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

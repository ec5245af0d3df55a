"""Build the C programs of ``benchmarks/c/`` once and cache the binaries in the clone.

Each program is one file, ``benchmarks/c/<name>.c``, built with the system's C
compiler into ``.cache/c-bin/<name>-<key>`` (git-ignored), where ``key`` hashes the
source and the compiler's version: a binary is rebuilt only when either changes.
The programs are load generators, written in C so that on this 2-core machine the
load costs as little CPU as a client can (one ``epoll`` thread, one ``read`` and one
``write`` per ready connection), leaving the other core's time to the servers under
test. When ``cc`` is missing and this runs as root (CI), ``apt-get install -y gcc``
installs it.

    python benchmarks/c_build.py      # build them, say where they are
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from go_build import apt_install

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "benchmarks" / "c"
CACHE = ROOT / ".cache" / "c-bin"
BUILD_TIMEOUT = 600.0  # seconds: apt-get may run first
FLAGS = ("-O2", "-Wall", "-Wextra", "-Werror", "-std=gnu11")


class BuildError(RuntimeError):
    """A C program could not be built (no compiler, or the compiler refused it)."""


def find_cc(install: bool = True) -> str | None:
    """The C compiler (``$CC``, ``cc``, ``gcc`` or ``clang``), installed with apt-get when root.

    Returns None when there is none and it cannot be installed; never raises.
    """
    for candidate in (os.environ.get("CC"), "cc", "gcc", "clang"):
        found = shutil.which(candidate) if candidate else None
        if found:
            return found
    if not install or not apt_install(["gcc", "libc6-dev"], BUILD_TIMEOUT):
        return None
    return shutil.which("cc") or shutil.which("gcc")


def _key(source: Path, cc: str) -> str:
    try:
        version = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        version = "unknown"
    h = hashlib.sha256(version.encode() + b"\0" + " ".join(FLAGS).encode() + b"\0")
    h.update(source.read_bytes())
    return h.hexdigest()[:16]


def build(name: str) -> Path:
    """Build ``benchmarks/c/<name>.c`` unless its cached binary is current; return the binary's path.

    Raises ValueError for a program that does not exist, BuildError when there is no
    C compiler or the compiler fails (its last lines are in the message).
    """
    source = SOURCES / f"{name}.c"
    if not source.is_file():
        raise ValueError(f"unknown C program {name!r}: no {source.relative_to(ROOT)}")
    cc = find_cc()
    if cc is None:
        raise BuildError("no C compiler (install gcc)")
    CACHE.mkdir(parents=True, exist_ok=True)
    binary = CACHE / f"{name}-{_key(source, cc)}"
    if binary.exists():
        return binary
    tmp = CACHE / f".{binary.name}.{os.getpid()}"
    try:
        done = subprocess.run(
            [cc, *FLAGS, "-o", str(tmp), str(source), "-lm"],
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        raise BuildError(f"{cc} took over {BUILD_TIMEOUT:.0f} s on {source.name}") from e
    if done.returncode != 0:
        tmp.unlink(missing_ok=True)
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise BuildError(f"{cc} failed on {source.name}:\n{tail}")
    for old in CACHE.glob(f"{name}-*"):  # older versions of this program
        old.unlink(missing_ok=True)
    os.replace(tmp, binary)  # atomic: a concurrent run sees the whole binary or none
    return binary


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.parse_args()
    status = 0
    for source in sorted(SOURCES.glob("*.c")):
        try:
            print(f"{source.stem:14s} {build(source.stem).relative_to(ROOT)}")
        except BuildError as e:
            print(f"{source.stem:14s} not built: {e}")
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())

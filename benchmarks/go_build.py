"""Build the Go programs of ``benchmarks/go/`` once and cache the binaries in the clone.

Each program (``benchmarks/go/<name>/``, its own ``go.mod``) is built into
``.cache/go-bin/<name>-<key>`` (git-ignored), where ``key`` hashes the program's
files and the Go version: a binary is rebuilt only when its sources or the
toolchain change. A failed build is remembered the same way (``<name>-<key>.failed``
holds the reason), so it is tried once per source version, not on every run
(``--retry`` tries again). Modules come from the Go module proxy
(``GOFLAGS=-mod=mod``); no repository is fetched to build from. When ``go`` is
missing and this runs as root (CI), ``apt-get install -y golang-go`` installs it.

    python benchmarks/go_build.py            # build what can be built, say what cannot
    python benchmarks/go_build.py --retry    # try the failed ones again
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "benchmarks" / "go"
CACHE = ROOT / ".cache" / "go-bin"
PROGRAMS = ("loadclient", "gorilla_echo", "ergo_echo", "ergo_local", "ergo_net")
BUILD_TIMEOUT = 600.0  # seconds: a first build downloads modules through the proxy
PROXY_REFUSED = "not available: the Go module proxy refuses ergo.services/* (403)"


@dataclass(frozen=True, slots=True)
class Built:
    """One program's build result: ``path`` to the binary, or None and ``note`` saying why not."""

    name: str
    path: Path | None
    note: str

    @property
    def ok(self) -> bool:
        """True when the binary exists."""
        return self.path is not None


def apt_install(packages: list[str], timeout: float = BUILD_TIMEOUT) -> bool:
    """``apt-get install -y`` the Debian ``packages`` (``apt-get update`` first only if that fails);
    True when installed. Only as root with apt-get (CI); never raises."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("apt-get") is None:
        return False
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", *packages]
    for cmd in (install, ["apt-get", "update"], install):  # update only if the first install fails
        try:
            done = subprocess.run(cmd, env=env, capture_output=True, timeout=timeout, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return False
        if cmd[1] == "install" and done.returncode == 0:
            return True
    return False


def find_go(install: bool = True) -> str | None:
    """The ``go`` command: on PATH, in /usr/local/go, or installed with apt-get when root.

    Returns None when there is no Go and it cannot be installed; never raises.
    """
    for candidate in (shutil.which("go"), "/usr/local/go/bin/go", "/usr/lib/go/bin/go"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    if not install or not apt_install(["golang-go"]):
        return None
    found = shutil.which("go")
    return found if found and os.access(found, os.X_OK) else None


def _go_version(go: str) -> str:
    try:
        return subprocess.run([go, "version"], capture_output=True, text=True, timeout=30, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _key(name: str, go_version: str) -> str:
    h = hashlib.sha256(go_version.encode())
    src = SOURCES / name
    for f in sorted(p for p in src.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(src)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def _failure_note(stderr: str) -> str:
    if "ergo.services" in stderr and "403" in stderr:
        return PROXY_REFUSED
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return "not available: go build failed: " + (lines[-1].strip()[:300] if lines else "no message")


def build(name: str, retry: bool = False) -> Built:
    """Build ``benchmarks/go/<name>`` unless its cached binary (or cached failure) is current.

    Returns a ``Built``; a failure is reported in ``Built.note``, never raised.
    Raises ValueError for a name that is not one of ``PROGRAMS``.
    """
    if name not in PROGRAMS:
        raise ValueError(f"unknown Go program {name!r}: one of {', '.join(PROGRAMS)}")
    go = find_go()
    if go is None:
        return Built(name, None, "not available: no Go toolchain (install golang-go)")
    key = _key(name, _go_version(go))
    CACHE.mkdir(parents=True, exist_ok=True)
    binary = CACHE / f"{name}-{key}"
    failed = CACHE / f"{name}-{key}.failed"
    if binary.exists():
        return Built(name, binary, "cached")
    if failed.exists() and not retry:
        return Built(name, None, failed.read_text().strip())
    tmp = CACHE / f".{name}-{key}.{os.getpid()}"
    work = Path(tempfile.mkdtemp(prefix=f"go-{name}-"))  # a copy: -mod=mod may rewrite go.mod and go.sum
    shutil.copytree(SOURCES / name, work / name)
    env = {
        **os.environ,
        "GOFLAGS": "-mod=mod",  # go.sum may be completed from the module proxy
        "GOTOOLCHAIN": "local",  # never download another toolchain
        "CGO_ENABLED": "0",
    }
    try:
        done = subprocess.run(
            [go, "build", "-trimpath", "-o", str(tmp), "."],
            cwd=work / name,
            env=env,
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return Built(name, None, f"not available: go build took over {BUILD_TIMEOUT:.0f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if done.returncode != 0:
        note = _failure_note(done.stderr)
        for old in CACHE.glob(f"{name}-*.failed"):  # what older sources of this program did
            old.unlink(missing_ok=True)
        failed.write_text(note + "\n")
        tmp.unlink(missing_ok=True)
        return Built(name, None, note)
    for old in CACHE.glob(f"{name}-*"):  # older versions of this program
        old.unlink(missing_ok=True)
    os.replace(tmp, binary)  # atomic: a concurrent run sees the whole binary or none
    return Built(name, binary, "built")


def build_all(retry: bool = False) -> dict[str, Built]:
    """Build every program of ``PROGRAMS``; never raises (failures are in the notes)."""
    return {name: build(name, retry) for name in PROGRAMS}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--retry", action="store_true", help="try again the builds that failed before")
    args = ap.parse_args()
    results = build_all(args.retry)
    for b in results.values():
        where = b.path.relative_to(ROOT) if b.path else ""
        print(f"{b.name:14s} {b.note} {where}")
    return 0 if results["loadclient"].ok else 1


if __name__ == "__main__":
    sys.exit(main())

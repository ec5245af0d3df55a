#!/usr/bin/env python3
"""Installs Autobahn|Testsuite's ``wstest`` under a prefix inside the clone.

    python tests/conformance/wstest_install.py [PREFIX]      (default: .cache/autobahn)

``wstest`` is a Python 2.7 program. Nothing is installed system-wide:

1. Python 2.7 comes from Debian bullseye packages (the last release that has it),
   fetched with ``apt-get download`` against a private apt state under PREFIX/apt, using
   the mirror this machine already uses, and unpacked with ``dpkg-deb -x`` into
   PREFIX/python27.
2. A Python 3 venv (PREFIX/bootstrap) holds ``virtualenv`` 20.21, the last one that still
   creates 2.7 environments; it makes PREFIX/py27env with the unpacked interpreter.
3. The suite and its dependencies, pinned to versions that still support 2.7, come from
   PyPI into PREFIX/py27env.
4. PREFIX/wstest is a launcher that sets the library path and runs the suite with its
   fuzzing server bound to 127.0.0.1 only (stock wstest listens on every interface).

Idempotent: returns at once when PREFIX/wstest already answers ``--autobahnversion``.
Exits non-zero with one line saying which step failed.
"""

from __future__ import annotations

import os
import platform
import pwd
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT_PREFIX = REPO / ".cache" / "autobahn"

# Debian bullseye packages that make a working python2.7 with ssl and ctypes (cffi needs libffi7).
DEBS = [
    "python2.7",
    "python2.7-minimal",
    "libpython2.7",
    "libpython2.7-minimal",
    "libpython2.7-stdlib",
    "libpython2.7-dev",
    "python2.7-dev",
    "libssl1.1",
    "libffi7",
]

# The newest releases that still run on Python 2.7 and work with autobahntestsuite 25.10.1
# (installed without its own dependency pins, which ask for versions that no longer build).
PY27_REQUIREMENTS = [
    "setuptools==44.0.0",
    "six==1.16.0",
    "zope.interface==4.6.0",
    "incremental==16.10.1",
    "Twisted==19.10.0",
    "cryptography==3.3.2",
    "pyOpenSSL==19.1.0",
    "service_identity==18.1.0",
    "txaio==2.1.0",
    "markupsafe==1.1.1",
    "jinja2==2.11.3",
    "Werkzeug==1.0.1",
    "klein==17.10.0",
    "unittest2==1.1.0",
    "autobahn[twisted,accelerate]==0.10.9",
]
SUITE = "autobahntestsuite==25.10.1"
VIRTUALENV = "virtualenv==20.21.1"

# Run by the 2.7 interpreter: wstest with its fuzzing server's listen address forced to loopback.
LOOPBACK_RUNNER = """\
import sys
from autobahntestsuite import fuzzing

_listen = fuzzing.listenWS


def _listen_loopback(factory, contextFactory=None, backlog=50, interface="127.0.0.1"):
    return _listen(factory, contextFactory, backlog, "127.0.0.1")


fuzzing.listenWS = _listen_loopback
from autobahntestsuite.wstest import run  # noqa: E402

sys.argv[0] = "wstest"
sys.exit(run())
"""


class InstallError(Exception):
    """A step of the installation failed; the message names it."""


def _run(step: str, cmd: list[str], **kw: object) -> None:
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)  # type: ignore[call-overload]
    if r.returncode:
        tail = (r.stderr or r.stdout).strip().splitlines()[-5:]
        raise InstallError(f"{step}: {' '.join(cmd[:3])}... exited {r.returncode}: " + " | ".join(tail))


def ready(prefix: Path) -> bool:
    """True when ``prefix/wstest`` exists and runs."""
    wstest = prefix / "wstest"
    if not wstest.exists():
        return False
    return subprocess.run([str(wstest), "--autobahnversion"], capture_output=True).returncode == 0


def _bullseye_sources() -> str:
    """The machine's Debian sources, rewritten from its release to bullseye (deb822 format)."""
    deb822 = Path("/etc/apt/sources.list.d/debian.sources")
    if deb822.exists():
        text = deb822.read_text()
        suites = re.findall(r"^Suites:(.*)$", text, re.M)
        releases = {s.split("-")[0] for line in suites for s in line.split()}
        for release in releases:
            text = re.sub(rf"\b{re.escape(release)}\b", "bullseye", text)
        return text
    # a one-line sources.list machine: the standard mirrors
    keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"
    return (
        f"Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bullseye\nComponents: main\nSigned-By: {keyring}\n\n"
        f"Types: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bullseye-security\n"
        f"Components: main\nSigned-By: {keyring}\n"
    )


def _fetch_python27(prefix: Path) -> Path:
    if not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
        raise InstallError("python 2.7: apt-get and dpkg-deb are needed (a Debian or Ubuntu machine)")
    apt = prefix / "apt"
    for d in ("etc/sources.list.d", "state/lists/partial", "cache/archives/partial"):
        (apt / d).mkdir(parents=True, exist_ok=True)
    (apt / "etc" / "sources.list").write_text("")
    (apt / "etc" / "sources.list.d" / "bullseye.sources").write_text(_bullseye_sources())
    opts = [
        f"-oDir::Etc::SourceList={apt / 'etc' / 'sources.list'}",
        f"-oDir::Etc::SourceParts={apt / 'etc' / 'sources.list.d'}",
        f"-oDir::State={apt / 'state'}",
        "-oDir::State::status=/var/lib/dpkg/status",
        f"-oDir::Cache={apt / 'cache'}",
        f"-oAPT::Sandbox::User={pwd.getpwuid(os.geteuid()).pw_name}",  # no switch to _apt: the dirs are ours
        "-oDebug::NoLocking=1",
    ]
    _run("python 2.7: apt-get update (bullseye)", ["apt-get", *opts, "-qq", "update"])
    debs = prefix / "debs"
    debs.mkdir(exist_ok=True)
    _run("python 2.7: apt-get download", ["apt-get", *opts, "-qq", "download", *DEBS], cwd=debs)
    root = prefix / "python27"
    for deb in sorted(debs.glob("*.deb")):
        _run("python 2.7: dpkg-deb -x", ["dpkg-deb", "-x", str(deb), str(root)])
    return root


def install(prefix: Path = DEFAULT_PREFIX) -> Path:
    """Installs wstest under ``prefix`` and returns the launcher's path.

    Raises InstallError naming the step that failed (no network, no apt-get, a build error).
    """
    prefix = prefix.resolve()
    if ready(prefix):
        return prefix / "wstest"
    if platform.machine() != "x86_64":
        raise InstallError(f"python 2.7: only x86_64 is supported here, not {platform.machine()}")
    prefix.mkdir(parents=True, exist_ok=True)
    py27 = _fetch_python27(prefix)
    libdir = py27 / "usr" / "lib" / "x86_64-linux-gnu"
    env = {**os.environ, "LD_LIBRARY_PATH": str(libdir)}
    interpreter = py27 / "usr" / "bin" / "python2.7"
    _run("python 2.7: smoke test", [str(interpreter), "-c", "import ssl, ctypes"], env=env)

    bootstrap = prefix / "bootstrap"
    _run("virtualenv: venv", [sys.executable, "-m", "venv", str(bootstrap)])
    _run("virtualenv: pip install", [str(bootstrap / "bin" / "pip"), "install", "-q", VIRTUALENV])
    venv27 = prefix / "py27env"
    shutil.rmtree(venv27, ignore_errors=True)
    _run(
        "virtualenv: python 2.7 env",
        [str(bootstrap / "bin" / "virtualenv"), "-q", "--no-periodic-update", "-p", str(interpreter), str(venv27)],
        env=env,
    )

    pip27 = [str(venv27 / "bin" / "pip"), "install", "-q", "--no-python-version-warning", "--no-cache-dir"]
    # wsaccel compiles a C extension: point it at the unpacked headers
    include = py27 / "usr" / "include"
    build_env = {**env, "CFLAGS": f"-I{include / 'python2.7'} -I{include}"}
    _run("wstest: dependencies", [*pip27, *PY27_REQUIREMENTS], env=build_env)
    _run("wstest: autobahntestsuite", [*pip27, "--no-deps", SUITE], env=build_env)

    (prefix / "wstest_loopback.py").write_text(LOOPBACK_RUNNER)
    launcher = prefix / "wstest"
    launcher.write_text(
        "#!/bin/sh\n"
        "# Autobahn|Testsuite's wstest (Python 2.7); its fuzzing server binds 127.0.0.1 only\n"
        f'export LD_LIBRARY_PATH="{libdir}"\n'
        f'exec "{venv27 / "bin" / "python"}" "{prefix / "wstest_loopback.py"}" "$@"\n'
    )
    launcher.chmod(0o755)
    if not ready(prefix):
        raise InstallError(f"wstest: {launcher} --autobahnversion fails after installation")
    return launcher


def main() -> int:
    prefix = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_PREFIX
    try:
        path = install(prefix)
    except InstallError as e:
        print(f"wstest_install: {e}", file=sys.stderr)
        return 1
    print(f"wstest ready: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The repository's own commands: ``scripts/chat``'s help and its start-up errors, the
conformance judge, and that nothing the repository runs or links lives outside it."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CHAT = [str(REPO / "scripts" / "chat")]
TIMEOUT = 60.0

pytestmark = pytest.mark.timeout(120)


def run(cmd: list[str], *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*cmd, *extra], cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT)


def test_chat_help_is_plain_text() -> None:
    r = run(CHAT, "--help")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("usage: ")
    assert "--port PORT" in r.stdout and "--workers WORKERS" in r.stdout
    assert "``" not in r.stdout and "`" not in r.stdout, "no reStructuredText markup in the help"
    assert "Ctrl-C" in r.stdout


def test_chat_help_offers_several_nodes_and_names_the_cookie_variable() -> None:
    r = run(CHAT, "--help")
    assert r.returncode == 0, r.stderr
    for flag in ("--nodes NODES", "--node NAME", "--peers", "--registrar-port"):
        assert flag in r.stdout, flag
    assert "ERGOPY_COOKIE" in r.stdout and "--cookie" not in r.stdout, "the cookie is never a flag"


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (
            ["--node", "chat1@127.0.0.1"],
            {},
            "--node needs the service's cookie in the environment variable ERGOPY_COOKIE",
        ),
        (["--peers", "chat2@127.0.0.1"], {}, "--peers needs --node"),
        (["--node", "chat1@127.0.0.1", "--nodes", "2"], {"ERGOPY_COOKIE": "x"}, "not with --nodes"),
        (["--node", "chat1@h", "--peers", "chat2@h=h"], {"ERGOPY_COOKIE": "x"}, "a peer's address is HOST:PORT"),
        (["--nodes", "0"], {}, "--nodes must be at least 1"),
        (["--nodes", "2", "--registrar-port", "0"], {}, "a port the nodes can share"),
    ],
)
def test_chat_refuses_inconsistent_node_flags_in_one_line(args: list[str], env: dict[str, str], message: str) -> None:
    environ = {k: v for k, v in os.environ.items() if k != "ERGOPY_COOKIE"} | env
    r = subprocess.run(
        [sys.executable, "-m", "ergopy.examples.chat", *args],
        cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT, env=environ,
    )  # fmt: skip
    assert r.returncode == 2
    assert message in r.stderr.splitlines()[-1], r.stderr


def test_chat_with_several_nodes_on_a_port_in_use_says_so_in_one_line() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = run([sys.executable, "-m", "ergopy.examples.chat"], "--nodes", "2", "--port", str(port))
    assert r.returncode == 1
    assert r.stderr.splitlines() == [
        f"chat: cannot start on 127.0.0.1:{port}: the port is in use (another program listens there: "
        "pick another with --port)"
    ], "refused by the launcher before any node starts"


def test_chat_on_a_port_in_use_says_so_in_one_line() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = run(CHAT, "--port", str(port))
    assert r.returncode == 1
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1, f"one line, not reports of the tree's exits first: {r.stderr}"
    assert lines[0] == (
        f"chat: cannot start on 127.0.0.1:{port}: the port is in use (another program listens there: "
        "pick another with --port)"
    )


def test_chat_on_an_unknown_host_says_so_in_one_line() -> None:
    r = run([sys.executable, "-m", "ergopy.examples.chat"], "--host", "no-such-host.invalid", "--port", "8080")
    assert r.returncode == 1
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("chat: cannot start on no-such-host.invalid:8080: "), r.stderr


def _tracked_files() -> list[Path]:
    r = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True)
    return [REPO / name for name in r.stdout.splitlines()]


def test_nothing_in_the_repository_points_outside_it() -> None:
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout: the tracked files are unknown")
    sibling = re.escape(str(REPO.parent / "shared"))  # the shared folder beside this clone
    # and the shared folder's own files under any absolute path (a clone elsewhere has another sibling)
    contents = r"/[\w.-]+/shared/(?:DESIGN|STYLE|websocket-seed|reference|tools)"
    outside = re.compile(rf"\.\./shared|{sibling}|{contents}|ERGOPY_SHARED")
    found = []
    for path in _tracked_files():
        if not path.is_file() or path == Path(__file__).resolve():
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        found += [
            f"{path.relative_to(REPO)}:{n}" for n, line in enumerate(text.splitlines(), 1) if outside.search(line)
        ]
    assert not found, f"paths outside the repository: {found}"


def test_readme_links_stay_inside_the_repository_or_go_to_the_web() -> None:
    readme = (REPO / "README.md").read_text()
    for target in re.findall(r"\]\(([^)]+)\)", readme):
        if re.match(r"https?://", target):
            continue
        resolved = (REPO / target.split("#")[0]).resolve()
        assert resolved.is_relative_to(REPO) and resolved.exists(), f"README links to {target}"


def _index(tmp_path: Path, verdicts: dict[str, tuple[str, str]]) -> Path:
    data = {
        "ergopy": {
            cid: {"behavior": b, "behaviorClose": c, "remoteCloseCode": 1000, "duration": 1}
            for cid, (b, c) in verdicts.items()
        }
    }
    path = tmp_path / "index.json"
    path.write_text(json.dumps(data))
    return path


def _judge(index: Path) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, str(REPO / "tests" / "conformance" / "verdicts.py"), str(index)])


def test_conformance_verdicts_allow_ok_non_strict_and_informational(tmp_path: Path) -> None:
    index = _index(
        tmp_path,
        {"1.1.1": ("OK", "OK"), "4.1.5": ("NON-STRICT", "OK"), "7.13.2": ("INFORMATIONAL", "INFORMATIONAL")},
    )
    r = _judge(index)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.splitlines()[-1] == "0 failed"
    assert "4.1.5: NON-STRICT" in r.stdout


@pytest.mark.parametrize("verdict", [("FAILED", "OK"), ("OK", "FAILED")])
def test_conformance_verdicts_fail_on_a_failed_behaviour_or_close(tmp_path: Path, verdict: tuple[str, str]) -> None:
    r = _judge(_index(tmp_path, {"1.1.1": ("OK", "OK"), "12.1.10": verdict, "2.1": ("OK", "OK")}))
    assert r.returncode == 1
    assert r.stdout.splitlines()[-1] == "1 failed: 12.1.10"
    # groups in numeric order, not text order
    groups = [line.split()[0] for line in r.stdout.splitlines() if line.startswith("  ") and ".*" in line]
    assert groups == ["1.*", "2.*", "12.*"]


def test_conformance_verdicts_refuse_an_unreadable_report(tmp_path: Path) -> None:
    bad = tmp_path / "index.json"
    bad.write_text("{not json")
    r = _judge(bad)
    assert r.returncode == 2 and "cannot read" in r.stderr


@pytest.mark.skipif(not os.environ.get("ERGOPY_TEST_WSTEST"), reason="set ERGOPY_TEST_WSTEST=1 to install wstest")
def test_the_conformance_installer_makes_a_working_wstest(tmp_path: Path) -> None:
    r = run([sys.executable, str(REPO / "tests" / "conformance" / "wstest_install.py"), str(tmp_path / "ab")])
    assert r.returncode == 0, r.stderr
    version = run([str(tmp_path / "ab" / "wstest"), "--autobahnversion"])
    assert version.returncode == 0 and version.stdout.strip()

"""The README's code, run as a user runs it: every ``python`` block saved to a file and
started with the interpreter, the service talked to by real clients and stopped with
Ctrl-C; and every block type-checked with ``mypy --strict``.

The only change made to the printed code is its port: 9898 becomes a free port, so the
test does not depend on what else runs on this machine.
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

README = Path(__file__).resolve().parent.parent / "README.md"
README_PORT = 9898
TIMEOUT = 20.0

pytestmark = pytest.mark.timeout(120)


def python_blocks() -> list[str]:
    """Every fenced ``python`` block of README.md, in order."""
    return re.findall(r"^```python\n(.*?)^```", README.read_text(), re.S | re.M)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def on_port(code: str, port: int) -> str:
    """The block with its one mention of the README's port replaced by ``port``."""
    assert code.count(str(README_PORT)) == 1, "each README block names the port once"
    return code.replace(str(README_PORT), str(port))


def wait_listening(port: int, proc: subprocess.Popen[str]) -> None:
    """Returns once 127.0.0.1:port accepts; fails if the process ends or TIMEOUT passes."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:  # bounded: a connect attempt every 50 ms
        if proc.poll() is not None:
            pytest.fail(f"echo.py exited with {proc.returncode} before listening: {proc.communicate()}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    pytest.fail(f"echo.py is not listening on {port} after {TIMEOUT} s")


def test_the_readme_has_the_service_the_client_and_the_cluster_blocks() -> None:
    blocks = python_blocks()
    assert len(blocks) == 4, (
        "the README's python blocks: the service (echo.py), its client, two nodes (cluster.py), one service on "
        "every core (site.py)"
    )
    service, client, cluster, site = blocks
    assert "ergopy.run(main)" in service and "await node.wait()" in service
    assert "ergopy.run(main)" in client and "create_connection" in client
    assert "ergopy.run(main)" in cluster and "gen.NetworkOptions" in cluster
    assert "ergopy.run(main, nodes=2)" in site and "reuse_port=True" in site


def test_the_readme_service_echoes_text_and_binary_to_its_client_then_stops_on_ctrl_c(tmp_path: Path) -> None:
    service, client, *_ = python_blocks()
    port = free_port()
    (tmp_path / "echo.py").write_text(on_port(service, port))
    (tmp_path / "client.py").write_text(on_port(client, port))
    server = subprocess.Popen(
        [sys.executable, "echo.py"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_listening(port, server)
        # the README's client, as a second program
        run = subprocess.run(
            [sys.executable, "client.py"], cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT
        )
        assert run.returncode == 0, run.stderr
        assert run.stdout == "echo: hello\n"
        # an independent client: text stays text, binary stays binary
        with connect(f"ws://localhost:{port}/ws", open_timeout=TIMEOUT) as ws:
            ws.send("hi")
            assert ws.recv(timeout=TIMEOUT) == "echo: hi"
            ws.send(b"\x00\xff")
            assert ws.recv(timeout=TIMEOUT) == b"echo: \x00\xff"
            server.send_signal(signal.SIGINT)  # Ctrl-C
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=TIMEOUT)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
        _, err = server.communicate(timeout=TIMEOUT)
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()
    assert server.returncode == 0, err
    assert "Traceback" not in err and "[error]" not in err, err
    assert "closed with 1001" in err  # the worker's MessageDisconnect arrived before the node stopped


def test_every_readme_block_type_checks_under_mypy_strict(tmp_path: Path) -> None:
    files = []
    for i, code in enumerate(python_blocks()):
        path = tmp_path / f"readme_block{i}.py"
        path.write_text(code)
        files.append(str(path))
    r = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / ".mypy_cache"), *files],
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_readme_cluster_runs_as_two_nodes_that_find_each_other(tmp_path: Path) -> None:
    """``python cluster.py a`` then ``python cluster.py b``, exactly as the README says: b
    finds a through the embedded registrar (whichever of them serves it) and calls a's
    greeter over Ergo's protocol; a stops on Ctrl-C."""
    cluster = python_blocks()[2]
    (tmp_path / "cluster.py").write_text(cluster)
    a = subprocess.Popen(
        [sys.executable, "cluster.py", "a"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert a.stdout is not None
        line = a.stdout.readline()  # a prints once its acceptor and greeter are up (bounded by the test timeout)
        assert line.startswith("a@localhost is up on port"), (line, a.poll())
        b = subprocess.run(
            [sys.executable, "cluster.py", "b"], cwd=tmp_path, capture_output=True, text=True, timeout=TIMEOUT
        )
        assert b.returncode == 0, b.stderr
        assert re.fullmatch(r"hello b, from a@localhost \(you are <[0-9A-F]{8}\.0\.\d+>\)\n", b.stdout), b.stdout
        assert "Traceback" not in b.stderr, b.stderr
        a.send_signal(signal.SIGINT)  # Ctrl-C
        _, err = a.communicate(timeout=TIMEOUT)
    finally:
        if a.poll() is None:
            a.kill()
            a.communicate()
    assert a.returncode == 0, err
    assert "Traceback" not in err and "[error]" not in err, err


def wait_listeners(port: int, count: int, proc: subprocess.Popen[str]) -> None:
    """Returns once ``count`` sockets listen on 127.0.0.1:port (SO_REUSEPORT: one per node,
    each its own line in /proc/net/tcp); fails if the process ends or TIMEOUT passes."""
    local = f"0100007F:{port:04X}"
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:  # bounded: a look every 50 ms
        if proc.poll() is not None:
            pytest.fail(f"the service exited with {proc.returncode} before listening: {proc.communicate()}")
        rows = [line.split() for line in Path("/proc/net/tcp").read_text().splitlines()[1:]]
        if sum(1 for r in rows if r[1] == local and r[3] == "0A") >= count:  # 0A: LISTEN
            return
        time.sleep(0.05)
    pytest.fail(f"fewer than {count} sockets listen on {port} after {TIMEOUT} s")


def _children(pid: int) -> set[int]:
    """The PIDs of ``pid``'s child processes (from /proc)."""
    kids: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        kids.update(int(k) for k in (task / "children").read_text().split())
    return kids


def test_the_readme_site_runs_on_two_nodes_that_share_its_port_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    """``python site.py``: two node processes answer on the one port (new connections
    until each node has answered, bounded), Ctrl-C stops both and the launcher exits 0
    with no node left running."""
    port = free_port()
    (tmp_path / "site.py").write_text(on_port(python_blocks()[3], port))
    proc = subprocess.Popen(
        [sys.executable, "site.py"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_listeners(port, 2, proc)  # both nodes: node 1 may listen a second before node 2
        seen: set[str] = set()
        for _ in range(400):  # each a new connection: the kernel picks a node by its address hash
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=TIMEOUT) as r:
                seen.add(r.read().decode())
            if len(seen) == 2:
                break
        assert seen == {"served by node 1 of 2\n", "served by node 2 of 2\n"}, seen
        nodes = _children(proc.pid)
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        _, err = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "[error]" not in err, err
    # multiprocessing's resource tracker (a child too) ends when it reads the launcher's end
    deadline = time.monotonic() + TIMEOUT
    while (left := [pid for pid in nodes if _state(pid) != "Z"]) and time.monotonic() < deadline:
        time.sleep(0.05)  # polling /proc for the exits, bounded by the deadline
    assert not left, f"processes of the service left running: {left}"


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"

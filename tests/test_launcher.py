"""``ergopy.run(main, nodes=N)`` and ``python -m ergopy.examples.chat --nodes N``: real node
processes, real sockets. Each test runs the launcher in its own process group with its
own registrar port, waits for the lines it expects (with a timeout), and ends by checking
that the launcher reaped every child it started (by PID)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import websockets

REPO = Path(__file__).resolve().parent.parent
APP = str(REPO / "tests" / "launcher_app.py")
TIMEOUT = 30.0

pytestmark = pytest.mark.timeout(180)

STARTED = re.compile(r"ergopy\.launch: started node (\d+) of (\d+) \(pid (\d+)\)")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the test's own registrar port)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Launcher:
    """A launcher process; its stdout and stderr lines are collected as they come."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.proc = subprocess.Popen(
            [sys.executable, *args],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own process group: a "terminal" of its own
        )
        self.lines: list[tuple[str, str]] = []  # (stream, line), in arrival order
        self._new: queue.Queue[tuple[str, str] | None] = queue.Queue()
        self._readers = [
            threading.Thread(target=self._read, args=(name, pipe), daemon=True)
            for name, pipe in (("out", self.proc.stdout), ("err", self.proc.stderr))
        ]
        for r in self._readers:
            r.start()

    def _read(self, name: str, pipe: Any) -> None:
        for line in pipe:
            self._new.put((name, line.rstrip("\n")))
        self._new.put(None)

    def _pump(self, timeout: float) -> bool:
        try:
            item = self._new.get(timeout=timeout)
        except queue.Empty:
            return False
        if item is not None:
            self.lines.append(item)
        return True

    def _wait(self, find: Any, what: str, timeout: float) -> Any:
        """``find()`` once it returns something other than None, as lines come; fails the
        test when it has not within ``timeout``."""
        deadline = time.monotonic() + timeout
        while (found := find()) is None:
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"no {what} within {timeout} s:\n{self.text()}")
            self._pump(left)
        return found

    def wait_for(self, pattern: str, stream: str = "", count: int = 1, timeout: float = TIMEOUT) -> list[re.Match[str]]:
        """The first ``count`` lines matching ``pattern`` (on ``stream`` "out"/"err", or either)."""
        regex = re.compile(pattern)

        def find() -> list[re.Match[str]] | None:
            found = [m for s, line in self.lines if not stream or s == stream for m in [regex.search(line)] if m]
            return found[:count] if len(found) >= count else None

        result: list[re.Match[str]] = self._wait(find, f"{count} line(s) matching {pattern!r}", timeout)
        return result

    def events(self, kind: str, count: int, timeout: float = TIMEOUT, **fields: Any) -> list[dict[str, Any]]:
        """The first ``count`` JSON lines of ``tests/launcher_app.py`` of this kind with these fields."""

        def find() -> list[dict[str, Any]] | None:
            found = []
            for s, line in self.lines:
                if s == "out" and line.startswith("{"):
                    e = json.loads(line)
                    if e["event"] == kind and all(e.get(k) == v for k, v in fields.items()):
                        found.append(e)
            return found[:count] if len(found) >= count else None

        result: list[dict[str, Any]] = self._wait(find, f"{count} {kind} event(s) with {fields}", timeout)
        return result

    def child_pids(self) -> list[int]:
        return [int(m.group(3)) for _, line in self.lines for m in [STARTED.search(line)] if m]

    def exit(self, timeout: float = TIMEOUT) -> int:
        """Wait for the launcher to exit and for its pipes to close; its exit status."""
        code = self.proc.wait(timeout)
        for r in self._readers:
            r.join(timeout)
        while self._pump(0):
            pass
        return code

    def text(self, stream: str = "") -> str:
        return "\n".join(line for s, line in self.lines if not stream or s == stream)

    def kill(self) -> None:
        """The end of every test: SIGKILL the launcher's whole process group if it still
        runs (after a failed test), then close its pipes once their readers are done."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(TIMEOUT)
        for r in self._readers:
            r.join(TIMEOUT)  # they end at the pipes' EOF: the process group is gone
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


def gone(pid: int) -> bool:
    """True if no process ``pid`` exists any more (a zombie would still count as left behind)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def assert_all_gone(launcher: Launcher, expected: int) -> None:
    pids = launcher.child_pids()
    assert len(pids) == expected, f"{expected} child starts expected, saw {pids}:\n{launcher.text()}"
    left = [p for p in pids if not gone(p)]
    assert not left, f"children left behind: {left}"


@pytest.fixture
def launch() -> Any:
    started: list[Launcher] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Launcher:
        launcher = Launcher(*args, env=env)
        started.append(launcher)
        return launcher

    yield start
    for launcher in started:
        launcher.kill()


def test_run_with_nodes_starts_n_children_with_indexes_1_to_n_and_one_cookie(launch: Any) -> None:
    """(a) ``ergopy.run(main, nodes=3)``: three children, indexes 1..3, count 3, one cookie
    that is on no command line and in no environment; SIGINT stops them all, exit 0."""
    launcher = launch(APP, "3", str(free_port()))
    up = launcher.events("up", 3)
    assert sorted(e["index"] for e in up) == [1, 2, 3]
    assert {e["count"] for e in up} == {3}
    assert len({e["cookie"] for e in up}) == 1, "every child has the same cookie"
    assert not any(e["exposed"] for e in up), "the cookie is on a command line or in the environment"
    launcher.events("ready", 3)
    assert sorted(e["pid"] for e in up) == sorted(launcher.child_pids())
    launcher.proc.send_signal(signal.SIGINT)
    assert launcher.exit() == 0, launcher.text()
    assert "Traceback" not in launcher.text("err"), launcher.text("err")
    assert_all_gone(launcher, 3)


def test_each_run_of_a_service_has_a_cookie_of_its_own(launch: Any) -> None:
    first = launch(APP, "2", str(free_port()))
    second = launch(APP, "2", str(free_port()))
    cookies = [{e["cookie"] for e in launcher.events("up", 2)} for launcher in (first, second)]
    assert len(cookies[0]) == len(cookies[1]) == 1 and cookies[0] != cookies[1]
    for launcher in (first, second):
        launcher.events("ready", 2)
        launcher.proc.send_signal(signal.SIGTERM)
        assert launcher.exit() == 0, launcher.text()
        assert_all_gone(launcher, 2)


def chat(launch: Any, nodes: int) -> tuple[Launcher, int]:
    """``python -m ergopy.examples.chat --nodes N --port 0`` with every node serving; its port."""
    launcher = launch(
        "-m", "ergopy.examples.chat", "--nodes", str(nodes), "--port", "0", "--workers", "1",
        "--registrar-port", str(free_port()),
    )  # fmt: skip
    url = launcher.wait_for(r"^open http://127\.0\.0\.1:(\d+)/  \(Ctrl-C stops\)$", "out")[0]
    port = int(url.group(1))
    launcher.wait_for(rf"chat: serving http://127\.0\.0\.1:{port}/", "err", count=nodes)
    return launcher, port


async def connect_all(port: int, count: int) -> list[Any]:
    async with asyncio.timeout(TIMEOUT):
        return list(await asyncio.gather(*(websockets.connect(f"ws://127.0.0.1:{port}/ws") for _ in range(count))))


async def close_code(ws: Any) -> int | None:
    """The close code the server sent; fails if the connection does not close in time."""
    try:
        async with asyncio.timeout(TIMEOUT):
            while True:
                await ws.recv()
    except websockets.ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None
    except TimeoutError:
        pytest.fail(f"the connection was not closed within {TIMEOUT} s")


@pytest.mark.parametrize(
    ("sig", "to"), [(signal.SIGINT, "launcher"), (signal.SIGINT, "process group"), (signal.SIGTERM, "launcher")]
)
def test_a_signal_stops_every_chat_node_clients_see_1001_and_the_launcher_exits_0(
    launch: Any, sig: signal.Signals, to: str
) -> None:
    """(b) Ctrl-C to the launcher alone, or as a terminal sends it (the whole process group),
    or SIGTERM to the launcher: every node stops gracefully (each client sees 1001), one
    "chat: stopped", exit 0, no traceback, no restart."""
    launcher, port = chat(launch, 2)

    async def clients() -> list[int | None]:
        conns = await connect_all(port, 8)
        try:
            if to == "launcher":
                launcher.proc.send_signal(sig)
            else:
                os.killpg(launcher.proc.pid, sig)
            return list(await asyncio.gather(*(close_code(ws) for ws in conns)))
        finally:
            for ws in conns:
                await ws.close()

    assert asyncio.run(clients()) == [1001] * 8
    assert launcher.exit() == 0, launcher.text()
    assert launcher.text("out").count("chat: stopped") == 1, launcher.text("out")
    err = launcher.text("err")
    assert "Traceback" not in err and "restarting" not in err and "[error]" not in err, err
    assert_all_gone(launcher, 2)


def test_a_killed_child_is_restarted_under_its_name_and_the_other_node_reaches_it_again(launch: Any) -> None:
    """(c) ``kill -9`` of node 2: the launcher says so in one line and starts node 2 again;
    node 1's calls to ``echo`` on n2@localhost get answered by the new process."""
    launcher = launch(APP, "2", str(free_port()), "--probe")
    old = launcher.events("ready", 1, index=2)[0]["pid"]
    launcher.events("reached", 1, pid=old)
    os.kill(old, signal.SIGKILL)
    launcher.wait_for(rf"node 2 \(pid {old}\) was killed by SIGKILL; restarting it in 0\.5 s", "err")
    new = launcher.wait_for(r"started node 2 of 2 \(pid (\d+)\)", "err", count=2)[1].group(1)
    assert launcher.events("ready", 1, index=2, pid=int(new))
    launcher.events("reached", 1, pid=int(new))  # node 1 reached the node named n2@localhost again
    launcher.proc.send_signal(signal.SIGINT)
    assert launcher.exit() == 0, launcher.text()
    assert_all_gone(launcher, 3)


def test_a_child_that_crashes_too_often_stops_the_service_with_a_clear_line(launch: Any) -> None:
    """(d) node 2 raises at every start: restarted 5 times, the 6th failure within 30 s stops
    every node and the launcher exits non-zero saying why."""
    launcher = launch(APP, "2", str(free_port()), "--crash", "2")
    assert launcher.exit(timeout=120) != 0
    err = launcher.text("err")
    line = "node 2 failed 6 times within 30 s (more than 5; it exited with 1 last): stopping the service"
    assert f"[error] ergopy.launch: {line}" in err, err
    assert f"LaunchError: {line}" in err, "run() raised it"
    assert err.count("restarting it in") == 5
    assert [m.group(1) for _, s in launcher.lines for m in [STARTED.search(s)] if m] == ["1"] + ["2"] * 6
    assert_all_gone(launcher, 7)


def established_on(pid: int, port: int) -> int:
    """How many ESTABLISHED TCP sockets with local port ``port`` process ``pid`` holds (from
    the kernel's tables: /proc/PID/fd and /proc/PID/net/tcp)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for row in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
        fields = row.split()
        local, state, inode = fields[1], fields[3], fields[9]
        if int(local.split(":")[1], 16) == port and state == "01" and inode in inodes:
            count += 1
    return count


def test_two_chat_nodes_share_one_port_and_the_kernel_gives_each_some_connections(launch: Any) -> None:
    """(e) 40 WebSocket connections to the one port: the kernel spread them over both node
    processes (counted from each process's own sockets: together exactly the 40)."""
    launcher, port = chat(launch, 2)
    pids = launcher.child_pids()
    assert len(pids) == 2

    async def spread() -> list[int]:
        conns = await connect_all(port, 40)
        try:
            return [established_on(pid, port) for pid in pids]
        finally:
            for ws in conns:
                await ws.close()

    counts = asyncio.run(spread())
    assert sum(counts) == 40, counts
    assert all(c > 0 for c in counts), f"one node got every connection: {counts}"
    launcher.proc.send_signal(signal.SIGINT)
    assert launcher.exit() == 0, launcher.text()
    assert_all_gone(launcher, 2)


def test_a_child_that_exits_0_by_itself_is_not_restarted(launch: Any) -> None:
    launcher = launch(APP, "2", str(free_port()), "--exit", "2")
    launcher.events("ready", 1, index=1)
    launcher.wait_for(r"node 2 \(pid \d+\) exited by itself; not restarting it", "err")
    launcher.proc.send_signal(signal.SIGINT)
    assert launcher.exit() == 0, launcher.text()
    assert "restarting it in" not in launcher.text("err")
    assert_all_gone(launcher, 2)


def test_a_child_that_ignores_sigterm_is_killed_after_the_grace_and_the_launcher_fails(launch: Any) -> None:
    launcher = launch(APP, "2", str(free_port()), "--stubborn", "2", "--grace", "1")
    launcher.events("ready", 1, index=1)
    stubborn = launcher.events("stubborn", 1)[0]["pid"]
    launcher.proc.send_signal(signal.SIGTERM)
    assert launcher.exit() != 0
    err = launcher.text("err")
    line = f"node 2 (pid {stubborn}) did not stop within 1 s: killed"
    assert f"[error] ergopy.launch: {line}" in err, err
    assert f"LaunchError: the service did not stop cleanly: {line}" in err, err
    assert "n1@localhost" in err and "signal received, stopping node" in err, "node 1 stopped gracefully"
    assert_all_gone(launcher, 2)


def exited(pid: int) -> bool:
    """True once ``pid`` has exited: gone, or a zombie nobody reaped yet (an orphan's fate
    depends on this machine's init, not on the launcher)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_sigkilled_launcher_leaves_no_child_running(launch: Any) -> None:
    """The launcher cannot clean up after SIGKILL: the kernel sends each child SIGTERM
    (PR_SET_PDEATHSIG) and its node stops gracefully."""
    launcher = launch(APP, "2", str(free_port()))
    pids = [e["pid"] for e in launcher.events("ready", 2)]
    os.kill(launcher.proc.pid, signal.SIGKILL)
    launcher.exit()  # the launcher is gone; its pipes close once both children have exited too
    assert all(exited(pid) for pid in pids), [p for p in pids if not exited(p)]
    err = launcher.text("err")
    assert err.count("signal received, stopping node") == 2, err


def test_run_alone_runs_main_in_this_process_and_member_is_1_of_1_with_a_cookie_of_its_own() -> None:
    import ergopy

    async def main() -> tuple[ergopy.Member, int]:
        return ergopy.member(), os.getpid()

    me, pid = ergopy.run(main)
    assert pid == os.getpid(), "no child process"
    assert (me.index, me.count) == (1, 1)
    assert len(me.cookie) >= 32, "a random cookie, 192 bits"
    assert ergopy.member() == me, "made once per process"


@pytest.mark.parametrize("nodes", [0, -1])
def test_run_refuses_fewer_than_one_node(nodes: int) -> None:
    import ergopy

    async def main() -> None:
        pytest.fail("main must not run")

    with pytest.raises(ValueError, match="nodes must be an int of at least 1"):
        ergopy.run(main, nodes=nodes)


def test_run_with_a_main_that_cannot_be_pickled_raises_before_any_child_starts() -> None:
    import ergopy

    before = _my_children()
    handler = signal.getsignal(signal.SIGINT)  # SIG_IGN when this runs in a background job
    with pytest.raises(Exception, match=r"pickle|local object"):
        ergopy.run(lambda: asyncio.sleep(0), nodes=2)
    assert signal.getsignal(signal.SIGINT) is handler, "the launcher put the handler it found back"
    assert _my_children() - before == set(), "a child was started"


def _my_children() -> set[int]:
    """This process's children, but multiprocessing's resource tracker (it lives as long as
    this process, and exits with it)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes()
        except (OSError, ValueError):
            continue
        if parent == os.getpid() and b"resource_tracker" not in cmdline:
            found.add(int(entry.name))
    return found


def test_chat_node_flags_make_a_node_that_peers_reach_with_the_cookie_from_the_environment(launch: Any) -> None:
    """``--node NAME --node-port P --peers ...`` with ``ERGOPY_COOKIE``: each node's acceptor
    listens on ``--host`` port P, and a node holding the cookie (static routes only, no
    registrar) calls the chat's ``web`` process on both."""
    import ergopy
    from ergopy import gen

    cookie = "launcher-test-" + os.urandom(8).hex()
    ports = {"chatA@127.0.0.1": free_port(), "chatB@127.0.0.1": free_port()}
    web_ports = {}
    for name, node_port in ports.items():
        (other,) = (f"{n}=127.0.0.1:{p}" for n, p in ports.items() if n != name)
        launcher = launch(
            "-m", "ergopy.examples.chat", "--node", name, "--node-port", str(node_port), "--peers", other,
            "--port", "0", "--workers", "1", "--registrar-port", str(free_port()),
            env={"ERGOPY_COOKIE": cookie},
        )  # fmt: skip
        web_ports[name] = int(launcher.wait_for(r"^open http://127\.0\.0\.1:(\d+)/", "out")[0].group(1))

    async def probe(with_cookie: str) -> dict[str, Any]:
        routes = {name: gen.NetworkRoute(host="127.0.0.1", port=port) for name, port in ports.items()}
        network = gen.NetworkOptions(cookie=with_cookie, acceptors=[], registrar=False, routes=routes)
        node = await ergopy.start_node("probe@127.0.0.1", gen.NodeOptions(network=network))
        try:
            return {name: await node.call(gen.ProcessID("web", name), "address", timeout=10) for name in ports}
        finally:
            await node.stop()

    addresses = asyncio.run(probe(cookie))
    assert addresses == {name: ["127.0.0.1", port] for name, port in web_ports.items()}  # a tuple crosses as a list
    with pytest.raises(gen.Error):
        asyncio.run(probe("not-the-cookie"))


def test_chat_peers_with_an_address_become_static_routes(monkeypatch: pytest.MonkeyPatch) -> None:
    from ergopy import gen
    from ergopy.examples.chat.__main__ import _node_options, _parse

    monkeypatch.setenv("ERGOPY_COOKIE", "s3cret")
    peers = "chat2@10.0.0.2=10.0.0.2:11150,chat3@h3"
    settings = _parse(["--host", "10.0.0.1", "--node", "chat1@10.0.0.1", "--peers", peers])
    name, options, cluster = _node_options(settings)
    assert name == "chat1@10.0.0.1"
    assert cluster == ("chat1@10.0.0.1", "chat2@10.0.0.2", "chat3@h3")
    assert options is not None and options.network is not None
    assert options.network.cookie == "s3cret"
    assert options.network.routes == {"chat2@10.0.0.2": gen.NetworkRoute(host="10.0.0.2", port=11150)}
    assert options.network.acceptors == [gen.AcceptorOptions(host="10.0.0.1", port=11144, port_range=11144)]


def test_a_launcher_that_fails_to_start_a_child_stops_those_it_started(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import functools

    from launcher_app import main

    import ergopy
    from ergopy import _launch

    start = _launch._Launcher._start

    def start_one_then_fail(self: Any, child: Any) -> None:
        if child.index == 2:
            raise OSError("no more processes")
        start(self, child)

    monkeypatch.setattr(_launch._Launcher, "_start", start_one_then_fail)
    caplog.set_level(logging.INFO, "ergopy.launch")
    with pytest.raises(OSError, match="no more processes"):
        ergopy.run(functools.partial(main, free_port(), 0, 0, 0, False), nodes=2)
    (pid,) = [
        int(m.group(3)) for r in caplog.records for m in [STARTED.search("ergopy.launch: " + r.getMessage())] if m
    ]
    assert gone(pid), "the child the launcher started was stopped and reaped"

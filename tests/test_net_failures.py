"""Failures of the network layer: simultaneous connects that must converge, peers
killed with ``kill -9`` (real OS processes, ``tests/net_node_proc.py``), many
connect/kill cycles, and the wire shape of answers Go checks strictly."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
import typing
from asyncio.subprocess import PIPE
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import Runner, receive, run_in
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from netns_helpers import hear, say, sh
from test_net_connection import HOST, Seam, options
from test_net_enp import ATOMS_OF_SENDER, DECODE, ENCODE, FRAMES
from test_net_handshake import handshake_messages

import ergopy
from ergopy import act, gen
from ergopy.net import edf, enp, handshake, proto_types
from ergopy.net.connection import Endpoint


async def _dial_while_accepting() -> None:
    a_seam, b_seam = Seam(), Seam()
    a = Endpoint(options("a@localhost", pool_size=1), a_seam)
    b = Endpoint(options("b@localhost", pool_size=1), b_seam)
    links_to_b = 0
    new_link = b._new_link

    def counted() -> Any:
        nonlocal links_to_b
        links_to_b += 1
        return new_link()

    b._new_link = counted  # type: ignore[method-assign]
    crossing: list[asyncio.Task[Any]] = []
    checked = a._taken
    try:
        port_a = await a.listen(HOST, 0)
        port_b = await b.listen(HOST, 0)

        def taken(peer: str) -> bool:
            refused = checked(peer)
            if not crossing:  # b's link is past the check: now a dials b
                crossing.append(asyncio.get_running_loop().create_task(a.connect(HOST, port_b, "b@localhost")))
            return refused

        a._taken = taken  # type: ignore[method-assign]
        conn_b = await b.connect(HOST, port_a, "a@localhost")
        async with asyncio.timeout(5):
            while not crossing:
                await a.changes.wait()
            conn_a = await crossing[0]
        assert conn_a.id == conn_b.id
        assert a.connections == {"b@localhost": conn_a} and b.connections == {"a@localhost": conn_b}
        assert a_seam.lost.empty() and b_seam.lost.empty()
        assert links_to_b == 0  # a never dialled: no second connection was started
    finally:
        for task in crossing:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        await b.close()
        await a.close()


async def test_a_dial_started_while_the_peers_link_is_being_accepted_waits_for_it() -> None:
    """a (the smaller name) accepts b's first link past its check *before* it starts
    dialling b itself: a must not open a second connection (each side could keep a
    different one, or a's dial be refused and a left with none) but use b's."""
    for _ in range(20):
        await _dial_while_accepting()


# ---- the answer to an event link/monitor: Go's own bytes ------------------------------------


class _Ticker(act.Actor):
    """Registers the event "ticks" with no buffer (no history to send)."""

    def init(self) -> None:
        self.register_event("ticks", gen.EventOptions())


@pytest.mark.parametrize("relation", ["link", "monitor"])
async def test_an_event_without_history_is_answered_with_gos_typed_nil_slice(
    net_pair: tuple[ergopy.Node, ergopy.Node], relation: str
) -> None:
    """Go checks ``MessageResult.Result.([]gen.MessageEvent)`` and answers ErrMalformed
    to a bare nil: b's answer must be the typed nil slice Go itself sent (transcript
    step 21, F55), byte for byte once encoded with alpha's tables and F55's ref."""
    a, b = net_pair
    await b.spawn_register("ticker", _Ticker)
    answers: asyncio.Queue[Any] = asyncio.Queue()
    send_any = b.network._send_any

    def spy(conn: Any, value: Any, order: int, key: int) -> None:
        if isinstance(value, proto_types.MessageResult):
            answers.put_nowait(value)
        send_any(conn, value, order, key)

    b.network._send_any = spy  # type: ignore[method-assign]
    q: asyncio.Queue[Any] = asyncio.Queue()
    pid = await a.spawn(Runner, None, q, True)
    event = gen.Event("ticks", b.name)
    await run_in(a, q, pid, lambda p: (p.link_event if relation == "link" else p.monitor_event)(event))
    ours = await receive(answers)
    f55 = next(f for s, f in FRAMES if s == "alpha" and f[13:21] == b"\x82\x00\x04\x9d\x83\x10\x2a\xff")
    go = edf.decode(enp.decode_frame(f55, ATOMS_OF_SENDER["alpha"]).payload, DECODE["alpha"])
    same = proto_types.MessageResult(error=ours.error, result=ours.result, ref=go.ref)
    assert edf.encode(same, ENCODE["alpha"]) == enp.decode_frame(f55, ATOMS_OF_SENDER["alpha"]).payload


# ---- kill -9 of a peer node (a real OS process) ---------------------------------------------

PROC = Path(__file__).with_name("net_node_proc.py")
PEER = "peer@localhost"


@contextlib.asynccontextmanager
async def peer_process(name: str, *args: str) -> AsyncIterator[tuple[asyncio.subprocess.Process, dict[str, Any]]]:
    """A node in its own process (tests/net_node_proc.py) and what it printed; killed
    (SIGKILL) and reaped at the end if it is still there."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(PROC), name, "secret", "0", *args, stdin=PIPE, stdout=PIPE
    )
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(30):
            line = await proc.stdout.readline()
        assert line, "the peer process ended before it was ready"
        yield proc, json.loads(line)
    finally:
        if proc.returncode is None:
            proc.kill()
        async with asyncio.timeout(10):
            await proc.wait()


async def main_node(name: str = "main@localhost", **kw: Any) -> ergopy.Node:
    options = gen.NetworkOptions(
        cookie="secret", acceptors=[gen.AcceptorOptions(host="127.0.0.1", port=0)], registrar=False, **kw
    )
    return await ergopy.start_node(name, gen.NodeOptions(network=options))


async def connected(node: ergopy.Node, peer: str, timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while peer not in node.network.nodes():
            await node.network._endpoint.changes.wait()


def _watch(relation: str, target: Any) -> Callable[[Any], Any]:
    if isinstance(target, gen.Event):
        return lambda p: (p.link_event if relation == "link" else p.monitor_event)(target)
    if isinstance(target, str):  # a node name
        return lambda p: (p.link_node if relation == "link" else p.monitor_node)(target)
    return lambda p: (p.link if relation == "link" else p.monitor)(target)


_EXPECTED = {
    ("link", gen.PID): gen.MessageExitPID,
    ("link", gen.ProcessID): gen.MessageExitProcessID,
    ("link", gen.Alias): gen.MessageExitAlias,
    ("link", gen.Event): gen.MessageExitEvent,
    ("link", str): gen.MessageExitNode,
    ("monitor", gen.PID): gen.MessageDownPID,
    ("monitor", gen.ProcessID): gen.MessageDownProcessID,
    ("monitor", gen.Alias): gen.MessageDownAlias,
    ("monitor", gen.Event): gen.MessageDownEvent,
    ("monitor", str): gen.MessageDownNode,
}


@pytest.mark.parametrize("dialer", ["we dial", "the killed node dials"])
async def test_kill_9_of_the_peer_tells_every_watcher_once_within_1s_and_fails_pending_calls(dialer: str) -> None:
    """Watchers of a PID, a name, an alias, an event (link and monitor each) and of the
    node itself, plus two pending calls: ``kill -9`` of the peer's process must tell each
    watcher exactly once, with NoConnectionError, and fail the calls, all within 1 s."""
    node = await main_node()
    try:
        our_port = node.network.acceptors()[0].port
        args = ("--dial", node.name, str(our_port)) if dialer != "we dial" else ()
        async with peer_process(PEER, *args) as (proc, info):
            if dialer == "we dial":
                node.network.add_route(PEER, gen.NetworkRoute(host="127.0.0.1", port=info["port"]))
                await node.network.get_node(PEER)
            await connected(node, PEER)
            assert node.network.node(PEER)._conn.peer_creation == info["creation"]
            targets: list[Any] = [
                gen.PID(PEER, info["echo"], info["creation"]),
                gen.ProcessID("echo", PEER),
                gen.Alias(PEER, info["creation"], tuple(info["alias"])),
                gen.Event("ev", PEER),
                PEER,
            ]
            assert await node.call(targets[1], "ping") == "ping"
            assert await node.call(targets[2], "ping") == "ping"
            watchers: list[tuple[type, gen.PID, asyncio.Queue[Any]]] = []
            for relation in ("link", "monitor"):
                for target in targets:
                    q: asyncio.Queue[Any] = asyncio.Queue()
                    w = await node.spawn(Runner, None, q, True)
                    await run_in(node, q, w, _watch(relation, target))
                    kind = str if isinstance(target, str) else type(target)
                    watchers.append((_EXPECTED[relation, kind], w, q))
            calls = [asyncio.create_task(node.call(gen.ProcessID("sink", PEER), "hang", timeout=30)) for _ in range(2)]
            try:
                assert await node.call(targets[0], "ping") == "ping"  # the requests before it went out
                loop = asyncio.get_running_loop()
                start = loop.time()
                proc.kill()
                for expected, _w, q in watchers:
                    msg = await receive(q, timeout=max(0.0, start + 1.0 - loop.time()))
                    assert type(msg) is expected, (expected, msg)
                    if expected in (gen.MessageExitNode, gen.MessageDownNode):
                        assert msg.name == PEER, msg  # Go's node messages carry no reason
                    else:
                        assert isinstance(msg.reason, gen.NoConnectionError), msg
                async with asyncio.timeout(max(0.0, start + 1.0 - loop.time())):
                    for call in calls:
                        with pytest.raises(gen.NoConnectionError):
                            await call
                elapsed = loop.time() - start
            finally:
                for call in calls:
                    call.cancel()
                await asyncio.gather(*calls, return_exceptions=True)
            assert elapsed < 1.0
            for _expected, w, q in watchers:  # exactly once: the next thing each one sees is this
                assert await run_in(node, q, w, lambda p: "after") == "after"
            assert PEER not in node.network.nodes()
    finally:
        await node.stop()


# ---- many connect/kill cycles leave nothing behind ------------------------------------------


class _Sink(act.Actor):
    """Takes calls and never answers them."""

    def handle_call(self, from_: gen.PID, ref: gen.Ref, request: Any) -> Any:
        return None


async def _gone(node: ergopy.Node, peer: str) -> None:
    async with asyncio.timeout(5):
        while peer in node.network.nodes():
            await node.network._endpoint.changes.wait()


async def test_1000_connection_kills_leave_stats_as_they_were(net_cluster: Callable[..., Any]) -> None:
    """1,000 cycles of: connect, monitor a remote name, link a remote PID, start a call
    that will never be answered, then the peer's links are aborted (no goodbye, as a
    killed process's kernel does it: the sockets just go). Each cycle the watcher hears
    one Down with NoConnectionError and the call fails; at the end ``stats()`` of both
    nodes is what it was before the first cycle (nothing left in any table).
    (In-process peer: 1,000 real process kills do not fit the time budget; the test
    above and the one below kill real processes.)"""
    a = await net_cluster("a@localhost")
    b = await net_cluster("b@localhost")
    sink = await b.spawn_register("sink", _Sink)
    q: asyncio.Queue[Any] = asyncio.Queue()
    w = await a.spawn(Runner, None, q, True)
    before_a, before_b = a.stats(), b.stats()
    for cycle in range(1000):
        await a.network.get_node("b@localhost")
        await run_in(a, q, w, lambda p: (p.monitor(gen.ProcessID("sink", "b@localhost")), p.link(sink)))
        call = asyncio.create_task(a.call(gen.ProcessID("sink", "b@localhost"), cycle, timeout=30))
        try:
            await asyncio.sleep(0)  # the call's request is queued: not a synchronisation, the order of sends
            (b if cycle % 2 else a).network.node("a@localhost" if cycle % 2 else "b@localhost")._conn.abort()
            got = {type(m): m for m in (await receive(q), await receive(q))}
            assert set(got) == {gen.MessageDownProcessID, gen.MessageExitPID}, (cycle, got)
            assert all(isinstance(m.reason, gen.NoConnectionError) for m in got.values())
            with pytest.raises(gen.NoConnectionError):
                async with asyncio.timeout(5):
                    await call
        finally:
            call.cancel()
            await asyncio.gather(call, return_exceptions=True)
        await _gone(a, "b@localhost")
        await _gone(b, "a@localhost")
    assert a.stats() == before_a and b.stats() == before_b


async def test_20_real_process_kills_leave_stats_as_they_were() -> None:
    """The same with real processes killed with SIGKILL (20, each dial direction in
    turn; a new process each time, so a new creation): our node's ``stats()`` ends as
    it began."""
    node = await main_node()
    try:
        q: asyncio.Queue[Any] = asyncio.Queue()
        w = await node.spawn(Runner, None, q, True)
        before = node.stats()
        our_port = node.network.acceptors()[0].port
        for cycle in range(20):
            args = ("--dial", node.name, str(our_port)) if cycle % 2 else ()
            async with peer_process(PEER, *args) as (proc, info):
                if not cycle % 2:
                    if PEER in node.network.routes():
                        node.network.remove_route(PEER)  # the new process listens elsewhere
                    node.network.add_route(PEER, gen.NetworkRoute(host="127.0.0.1", port=info["port"]))
                    await node.network.get_node(PEER)
                await connected(node, PEER)
                echo = gen.PID(PEER, info["echo"], info["creation"])
                await run_in(node, q, w, lambda p, echo=echo: (p.monitor(echo), p.link_node(PEER)))
                call = asyncio.create_task(node.call(gen.ProcessID("sink", PEER), cycle, timeout=30))
                try:
                    assert await node.call(echo, "ping") == "ping"
                    proc.kill()
                    got = {type(m) for m in (await receive(q, 2), await receive(q, 2))}
                    assert got == {gen.MessageDownPID, gen.MessageExitNode}, (cycle, got)
                    with pytest.raises(gen.NoConnectionError):
                        async with asyncio.timeout(2):
                            await call
                finally:
                    call.cancel()
                    await asyncio.gather(call, return_exceptions=True)
                await _gone(node, PEER)
        assert node.stats() == before
    finally:
        await node.stop()


# ---- a silent partition between two node processes (network namespaces) -------------------


def _netns_available() -> bool:
    if os.geteuid() != 0 or not all(shutil.which(t) for t in ("unshare", "nsenter", "ip")):
        return False
    return subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _netns_available(), reason="needs root and network namespaces (unshare, nsenter, ip)")
def test_a_silent_partition_between_two_nodes_tells_every_watcher_within_the_liveness_bound() -> None:
    """Two node processes, each in a network namespace of its own joined by a veth pair
    (10.200.1.1 and 10.200.1.2: our own test hosts, nothing else is reachable). The
    watcher node links to and monitors the peer's PID, name, alias, event and the node
    itself, and has a call pending there. The peer's end of the veth goes down: no FIN,
    no RST. With ``liveness=4`` every watcher must hear NoConnection (MessageDownNode /
    MessageExitNode for the node) and the call fail within the bound (plus scheduling
    slack), once each."""
    bound = 4.0

    def node(*args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            ["unshare", "-n", sys.executable, str(PROC), *args, "--liveness", str(bound), "--wait-go"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    peer = node(PEER, "secret", "11144", "--host", "10.200.1.2")
    watcher = node(
        "watcher@localhost", "secret", "0", "--host", "10.200.1.1",
        "--dial", PEER, "11144", "--peer-host", "10.200.1.2", "--watch",
    )  # fmt: skip
    try:
        for p in (peer, watcher):  # never touch the host's namespace: wait until each is in its own
            assert hear(p) == "ready"
            assert os.readlink(f"/proc/{p.pid}/ns/net") != os.readlink("/proc/self/ns/net")
        sh(
            "ip",
            "link",
            "add",
            "vw",
            "netns",
            str(watcher.pid),
            "type",
            "veth",
            "peer",
            "name",
            "vp",
            "netns",
            str(peer.pid),
        )
        for pid, dev, addr in ((watcher.pid, "vw", "10.200.1.1/24"), (peer.pid, "vp", "10.200.1.2/24")):
            sh("nsenter", "-t", str(pid), "-n", "ip", "addr", "add", addr, "dev", dev)
            sh("nsenter", "-t", str(pid), "-n", "ip", "link", "set", dev, "up")
            sh("nsenter", "-t", str(pid), "-n", "ip", "link", "set", "lo", "up")
        say(peer, "go")
        assert json.loads(hear(peer))["port"] == 11144
        say(watcher, "go")
        hear(watcher)  # its own start line
        assert json.loads(hear(watcher)) == {"watching": 10}
        sh("nsenter", "-t", str(peer.pid), "-n", "ip", "link", "set", "vp", "down")
        start = time.monotonic()
        say(watcher, "cut")
        report = json.loads(hear(watcher))
        print("partition report:", report)  # the measured detection times (pytest -s shows them)
        assert time.monotonic() - start < bound + 3
        told = report["told"]
        kinds = sorted(kind for kind, _, _ in told)
        assert kinds == sorted(
            f"Message{r}{t}" for r in ("Exit", "Down") for t in ("PID", "ProcessID", "Alias", "Event", "Node")
        ), told
        for kind, reason, seconds in told:
            assert reason == ("NoneType" if kind.endswith("Node") else "NoConnectionError"), (kind, reason)
            assert seconds <= bound + 0.5, (kind, seconds)  # the half second: process scheduling
        error, seconds = report["call"]
        assert error == "NoConnectionError" and seconds <= bound + 0.5
    finally:
        for p in (peer, watcher):
            if p.stdin is not None:
                with contextlib.suppress(BrokenPipeError):
                    p.stdin.close()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
            if p.stdout is not None:
                p.stdout.close()


# ---- fuzzed handshakes against a dialling node ----------------------------------------------


async def _fuzzed_acceptor(stage: str, data: bytes) -> None:
    """A fake node on 127.0.0.1 answers our node's dial with ``data``: at once
    ("hello"), or after a correct Hello reply ("accept", where the Accept and
    Introduce are expected). The dial must fail with NoConnectionError within the
    handshake timeout, the socket be closed, and the node still dial a real peer."""
    closed = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if stage == "accept":
                got = handshake.split_message(await _one(reader))
                assert got is not None
                hello = got[0]
                salt = "fuzz-salt"
                reply = handshake.MessageHello(salt=salt, digest=handshake.digest(salt, hello.digest, "secret"))
                writer.write(handshake.encode_message(reply))
            writer.write(data)
            await writer.drain()
            await reader.read()  # until the dialler gives up and closes
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            closed.set()
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    node = await main_node("fuzzed@localhost")
    try:
        ep = node.network._endpoint
        ep.options = dataclasses.replace(ep.options, read_timeout=0.2, timeout=1.0)  # a fast test, same code
        node.network.add_route(PEER, gen.NetworkRoute(host="127.0.0.1", port=server.sockets[0].getsockname()[1]))
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(gen.NoConnectionError):
            await node.network.get_node(PEER)
        assert loop.time() - start < 1.5
        async with asyncio.timeout(2):
            await closed.wait()
        assert node.stats()["connecting"] == 0 and node.network.nodes() == []
    finally:
        await node.stop()
        server.close()
        await server.wait_closed()


async def _one(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readexactly(6)
    return head + await reader.readexactly(int.from_bytes(head[2:], "big"))


_ALPHA = handshake_messages("link-1-alpha-to-beta.hex")  # Go acceptor: Hello, Accept, Introduce


def _mutated(raw: bytes) -> st.SearchStrategy[bytes]:
    return st.tuples(st.integers(0, len(raw) - 1), st.binary(min_size=1, max_size=4), st.integers(0, len(raw))).map(
        lambda t: (raw[: t[0]] + t[1] + raw[t[0] + len(t[1]) :])[: max(t[2], 1)]
    )


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.tuples(st.just("hello"), st.binary(max_size=300)),
        st.tuples(st.just("hello"), st.binary(max_size=200).map(lambda b: b"\x57\x01" + b)),
        st.tuples(st.just("hello"), _mutated(_ALPHA[0])),
        st.tuples(st.just("accept"), st.binary(max_size=300)),
        st.tuples(st.just("accept"), _mutated(_ALPHA[1] + _ALPHA[2])),
    )
)
def test_fuzzed_handshake_answers_never_crash_or_hang_a_dialling_node(case: tuple[str, bytes]) -> None:
    asyncio.run(_fuzzed_acceptor(*case))


# ---- well-formed requests with fuzzed fields ------------------------------------------------

_NODES = st.sampled_from(["a@localhost", "b@localhost", "c@localhost", "", "x" * 255])
_IDS3 = st.tuples(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1))
_CREATIONS = st.one_of(st.integers(0, 2**63 - 1), st.just(-1))
_FIELD: dict[Any, st.SearchStrategy[Any]] = {
    gen.PID: st.builds(gen.PID, _NODES, st.one_of(st.integers(1000, 1010), st.integers(0, 2**64 - 1)), _CREATIONS),
    gen.ProcessID: st.builds(gen.ProcessID, st.sampled_from(["echo", "sink", "nobody", ""]), _NODES),
    gen.Alias: st.builds(gen.Alias, _NODES, _CREATIONS, _IDS3),
    gen.Ref: st.builds(gen.Ref, _NODES, _CREATIONS, _IDS3),
    gen.Event: st.builds(gen.Event, st.sampled_from(["ev", "ticks", "nobody", ""]), _NODES),
    gen.Atom: st.sampled_from(["echo", "worker", "", "nobody"]).map(gen.Atom),
}


def _request(cls: type[Any]) -> st.SearchStrategy[Any]:
    hints = typing.get_type_hints(cls)
    fields = {f.name: _FIELD[hints[f.name]] for f in dataclasses.fields(cls) if hints[f.name] in _FIELD}
    return st.builds(cls, **fields)


_REQUESTS = st.one_of(
    *[_request(cls) for cls in proto_types.REQUESTS],
    st.builds(
        proto_types.MessageResult,
        error=st.one_of(st.none(), st.sampled_from([gen.ProcessUnknownError("x"), RuntimeError("boom")])),
        result=st.one_of(st.none(), st.integers(), st.text(max_size=8), _FIELD[gen.PID]),
        ref=_FIELD[gen.Ref],
    ),
)


async def test_well_formed_requests_with_fuzzed_fields_never_break_the_node(
    net_pair: tuple[ergopy.Node, ergopy.Node],
) -> None:
    """Link/unlink/monitor/demonitor requests of every kind, spawns and results, each a
    valid EDF value as a peer would send it, with any PID, name, alias, event, ref or
    creation: every one is answered or dropped, none raises, and the node still serves
    calls afterwards."""
    a, b = net_pair
    await b.spawn_register("echo", _Echo)
    conn_b = b.network.node("a@localhost")._conn
    conn_a = a.network.node("b@localhost")._conn
    seen: list[Any] = []

    @settings(max_examples=300, deadline=None, database=None)
    @given(request=_REQUESTS, order=st.integers(0, 255))
    def feed(request: Any, order: int) -> None:
        seen.append(request)
        frame = enp.Frame(enp.FrameType.ANY, order, payload=conn_a.encode(request))  # as a would send it
        b.network.frame_received(conn_b, frame)

    feed()
    assert len(seen) >= 100
    assert len({type(r) for r in seen} & set(proto_types.REQUESTS)) >= len(proto_types.REQUESTS) // 2  # a mix
    await b.spawn_register("echo2", _Echo)  # a fuzzed link may have ended "echo": that is allowed
    assert await a.call(gen.ProcessID("echo2", "b@localhost"), "still here") == "still here"


class _Echo(act.Actor):
    def handle_call(self, from_: gen.PID, ref: gen.Ref, request: Any) -> Any:
        return request

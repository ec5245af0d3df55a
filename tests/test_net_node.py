"""Two ergopy nodes in one process talk over 127.0.0.1: acceptors, registrar, routes,
and remote targets (send, call, exit) through the same API as local ones."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import time
import types
from collections.abc import Callable
from typing import Annotated, Any

import hypothesis
import pytest
import websockets
from conftest import Runner, receive, run_in, until_links
from hypothesis import strategies as st
from ws_helpers import expect, serve

import ergopy
from ergopy import act, gen, net
from ergopy.meta import websocket
from ergopy.net import enp
from ergopy.net.connection import MessageTooLargeError

A, B, C = "a@localhost", "b@localhost", "c@localhost"


@net.register("#ergopy.test/netnode/Inner")
@dataclasses.dataclass
class Inner:
    seq: Annotated[int, net.Int64]
    tags: list[str]


@net.register("#ergopy.test/netnode/Outer")
@dataclasses.dataclass
class Outer:
    room: str
    inner: Inner
    history: list[Inner]
    when: gen.PID


class Echo(act.Actor):
    """Sends every message back to its sender as ("echo", message); answers calls."""

    def handle_message(self, from_: gen.PID, message: Any) -> None:
        self.send(from_, ("echo", message))

    def handle_call(self, from_: gen.PID, ref: gen.Ref, request: Any) -> Any:
        if request == "fail":
            self.send_response_error(from_, ref, gen.NotAllowedError("no, thanks"))
            return None
        if request == "silent":
            return None
        return ("reply", request)


# ---- acceptors, registrar, routes -------------------------------------------------------------


async def test_acceptor_on_port_zero_reports_the_bound_port(net_cluster: Callable[..., Any]) -> None:
    a = await net_cluster(A)
    [acc] = a.network.acceptors()
    assert acc.port != 0 and acc.host == "127.0.0.1" and not acc.tls
    with socket.create_connection(("127.0.0.1", acc.port), timeout=2):
        pass  # it really listens there


async def test_a_port_in_use_makes_the_acceptor_take_the_next_free_one(net_cluster: Callable[..., Any]) -> None:
    from conftest import free_port

    port = free_port()
    acc = gen.AcceptorOptions(host="127.0.0.1", port=port, port_range=65535)  # a free port may be > 50000
    a = await net_cluster(A, acceptors=[acc])
    b = await net_cluster(B, acceptors=[acc])
    assert a.network.acceptors()[0].port == port
    assert b.network.acceptors()[0].port > port  # Go's rule: the next free port
    with pytest.raises(OSError):
        await net_cluster(C, acceptors=[gen.AcceptorOptions(host="127.0.0.1", port=port, port_range=port)])
    assert (await a.network.get_node(B)).name == B


async def test_an_acceptor_without_host_listens_on_the_host_of_the_node_name(net_cluster: Callable[..., Any]) -> None:
    a = await net_cluster(A, acceptors=[gen.AcceptorOptions(port=0)])
    assert a.network.acceptors()[0].host == "localhost"


async def test_get_node_through_the_registrar_connects_both_sides(net_cluster: Callable[..., Any]) -> None:
    a = await net_cluster(A)
    b = await net_cluster(B)
    remote = await a.network.get_node(B)
    assert remote.name == B and remote.creation == b.creation
    assert a.network.nodes() == [B]
    assert b.network.nodes() == [A]
    assert (await a.network.get_node(B)).name == B  # the same connection, no second dial
    assert a.stats()["connections"] == 1


async def test_get_node_through_a_static_route_without_registrar(net_cluster: Callable[..., Any]) -> None:
    a = await net_cluster(A, registrar=False)
    b = await net_cluster(B, registrar=False)
    with pytest.raises(gen.NoConnectionError, match="no route to node b@localhost"):
        await a.network.get_node(B)
    a.network.add_route(B, gen.NetworkRoute(host="127.0.0.1", port=b.network.acceptors()[0].port))
    assert (await a.network.get_node(B)).name == B
    assert b.network.nodes() == [A]


async def test_get_node_of_an_unknown_node_raises_no_connection(net_cluster: Callable[..., Any]) -> None:
    a = await net_cluster(A)
    with pytest.raises(gen.NoConnectionError, match="knows no node 'nobody@localhost'"):
        await a.network.get_node("nobody@localhost")


async def test_a_wrong_cookie_is_refused(net_cluster: Callable[..., Any]) -> None:
    a = await net_cluster(A)
    await net_cluster(B, cookie="other")
    with pytest.raises(gen.NoConnectionError, match="handshake"):  # the acceptor closes, says nothing
        await a.network.get_node(B)
    assert a.network.nodes() == []


async def test_a_name_taken_in_the_registrar_is_refused_at_start(net_cluster: Callable[..., Any]) -> None:
    await net_cluster(A)
    with pytest.raises(gen.TakenError):
        await net_cluster(A)


async def test_node_without_network_has_none() -> None:
    n = await ergopy.start_node("alone@localhost")
    try:
        with pytest.raises(gen.NotAllowedError, match="has no network"):
            n.network  # noqa: B018
        with pytest.raises(gen.NoConnectionError, match="has no network"):
            n.send(gen.ProcessID("x", B), "hi")
    finally:
        await n.stop()


# ---- send ---------------------------------------------------------------------------------


async def test_send_to_remote_pid_name_and_alias_with_nested_structs(net_pair: tuple[ergopy.Node, ergopy.Node]) -> None:
    a, b = net_pair
    qb: asyncio.Queue[Any] = asyncio.Queue()
    pid_b = await b.spawn_register("runner", Runner, None, qb)
    alias_b = await run_in(b, qb, pid_b, lambda p: p.create_alias())
    value = Outer("lobby", Inner(7, ["x", "y"]), [Inner(1, []), Inner(2, ["z"])], pid_b)
    a.send(pid_b, value)
    assert await receive(qb) == value
    a.send(gen.ProcessID("runner", B), ("by name", 1))
    assert await receive(qb) == ["by name", 1]  # a tuple travels as Go's []any
    a.send_alias(alias_b, b"by alias")
    assert await receive(qb) == b"by alias"


async def test_remote_from_is_the_sender_pid_on_its_node(net_pair: tuple[ergopy.Node, ergopy.Node]) -> None:
    a, b = net_pair
    qa: asyncio.Queue[Any] = asyncio.Queue()
    pid_a = await a.spawn(Runner, None, qa)
    await b.spawn_register("echo", Echo)
    await run_in(a, qa, pid_a, lambda p: p.send(gen.ProcessID("echo", B), "ping"))
    assert await receive(qa) == ["echo", "ping"]  # came back to pid_a: from_ was pid_a


async def test_send_to_a_node_not_connected_raises_no_connection(net_cluster: Callable[..., Any]) -> None:
    a = await net_cluster(A)
    with pytest.raises(gen.NoConnectionError, match="get_node"):
        a.send(gen.PID(B, 1001, 1), "hi")


async def test_send_to_a_gone_remote_pid_is_a_dead_letter_there(net_pair: tuple[ergopy.Node, ergopy.Node]) -> None:
    a, b = net_pair
    qb: asyncio.Queue[Any] = asyncio.Queue()
    pid = await b.spawn(Runner, None, qb)
    await b.spawn_register("echo", Echo)
    b.kill(pid)
    assert await receive(qb) == ("terminated", gen.TERMINATE_REASON_KILL)
    a.send(pid, "lost")  # no exception on the sender
    a.send(gen.PID(B, pid.id, b.creation - 1), "previous incarnation")  # dropped here
    assert a.dead_letters()["dead_letters_incarnation"] == 1
    # a later message on the same path arrives, so the first one was handled (and dropped) there
    qa: asyncio.Queue[Any] = asyncio.Queue()
    pid_a = await a.spawn(Runner, None, qa)
    await run_in(a, qa, pid_a, lambda p: p.send(gen.ProcessID("echo", B), "after"))
    assert await receive(qa) == ["echo", "after"]
    assert b.dead_letters()["dead_letters_pid_unknown"] == 1


async def test_a_message_over_the_peer_limit_is_refused_at_send(net_cluster: Callable[..., Any]) -> None:
    a = await net_cluster(A)
    b = await net_cluster(B, max_message_size=4096)
    await a.network.get_node(B)
    qb: asyncio.Queue[Any] = asyncio.Queue()
    pid = await b.spawn(Runner, None, qb)
    with pytest.raises(MessageTooLargeError, match="limit of 4096 bytes"):
        a.send(pid, b"x" * 5000)
    a.send(pid, b"x" * 1000)
    assert await receive(qb) == b"x" * 1000


async def test_a_value_the_peer_cannot_decode_fails_at_send(net_pair: tuple[ergopy.Node, ergopy.Node]) -> None:
    a, b = net_pair
    pid = await b.spawn_register("echo", Echo)
    with pytest.raises(net.EncodeError):
        a.send(pid, object())


# ---- call and exit --------------------------------------------------------------------------


async def test_call_a_remote_process_value_error_and_timeout(net_pair: tuple[ergopy.Node, ergopy.Node]) -> None:
    a, b = net_pair
    pid = await b.spawn_register("echo", Echo)
    assert await a.call(pid, Inner(3, ["t"])) == ["reply", Inner(3, ["t"])]
    assert await a.call(gen.ProcessID("echo", B), 5) == ["reply", 5]
    with pytest.raises(gen.NotAllowedError):  # a registered error travels as its Go identity
        await a.call(pid, "fail")
    with pytest.raises(gen.TimeoutError):
        await a.call(pid, "silent", timeout=0.3)
    with pytest.raises(gen.ProcessUnknownError):
        await a.call(gen.ProcessID("nobody", B), 1)  # answered at once (Go would time out)


async def test_call_connects_on_demand(net_cluster: Callable[..., Any]) -> None:
    a = await net_cluster(A)
    b = await net_cluster(B)
    await b.spawn_register("echo", Echo)
    assert a.network.nodes() == []
    assert await a.call(gen.ProcessID("echo", B), "hi") == ["reply", "hi"]
    assert a.network.nodes() == [B]


async def test_a_pending_call_fails_at_once_when_the_connection_is_lost(
    net_pair: tuple[ergopy.Node, ergopy.Node],
) -> None:
    a, b = net_pair
    pid = await b.spawn_register("echo", Echo)
    call = asyncio.ensure_future(a.call(pid, "silent", timeout=30))
    await asyncio.sleep(0)  # let the call go out
    assert a.stats()["remote_calls"] == 1
    b.network.node(A).disconnect()
    async with asyncio.timeout(2):
        with pytest.raises(gen.NoConnectionError):
            await call
    assert a.stats()["remote_calls"] == 0


async def test_send_exit_to_a_remote_pid(net_pair: tuple[ergopy.Node, ergopy.Node]) -> None:
    a, b = net_pair
    qb: asyncio.Queue[Any] = asyncio.Queue()
    pid = await b.spawn(Runner, None, qb, True)  # traps exits
    a.send_exit(pid, gen.NotAllowedError("go away"))
    msg = await receive(qb)
    assert type(msg) is gen.MessageExitPID and msg.pid == a.pid
    assert isinstance(msg.reason, gen.NotAllowedError)


# ---- compression ------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["gzip", "zlib"])
async def test_compression_both_ways(net_pair: tuple[ergopy.Node, ergopy.Node], method: str) -> None:
    a, b = net_pair
    compress = gen.ProcessOptions(compression=gen.Compression(enable=True, type=method))
    qa: asyncio.Queue[Any] = asyncio.Queue()
    qb: asyncio.Queue[Any] = asyncio.Queue()
    pa = await a.spawn(Runner, compress, qa)
    pb = await b.spawn(Runner, compress, qb)
    big = b"ergo " * 20_000  # 100,000 bytes that compress well
    for src, node, q, dst, peer in ((pa, a, qa, pb, B), (pb, b, qb, pa, A)):
        conn = node.network.node(peer)
        before = conn.stats()["bytes_out"]
        await run_in(node, q, src, lambda p, dst=dst: p.send(dst, big))
        other_q = qb if q is qa else qa
        assert await receive(other_q) == big
        assert conn.stats()["bytes_out"] - before < 2_000  # went compressed


async def test_small_messages_are_not_compressed(net_pair: tuple[ergopy.Node, ergopy.Node]) -> None:
    a, b = net_pair
    qa: asyncio.Queue[Any] = asyncio.Queue()
    qb: asyncio.Queue[Any] = asyncio.Queue()
    pa = await a.spawn(Runner, gen.ProcessOptions(compression=gen.Compression(enable=True)), qa)
    pb = await b.spawn(Runner, None, qb)
    conn = a.network.node(B)
    before = conn.stats()["bytes_out"]
    await run_in(a, qa, pa, lambda p: p.send(pb, "x" * 500))
    assert await receive(qb) == "x" * 500
    assert conn.stats()["bytes_out"] - before > 500  # under the 1024-byte threshold: as is


# ---- a WebSocket connection held by another node ---------------------------------------------


async def test_a_process_on_b_writes_to_a_websocket_connection_held_by_a(
    net_pair: tuple[ergopy.Node, ergopy.Node],
) -> None:
    a, b = net_pair
    served = await serve(a, pool=("w1",), echo=False)
    qb: asyncio.Queue[Any] = asyncio.Queue()
    pb = await b.spawn(Runner, None, qb)
    async with websockets.connect(served.url()) as client:
        connect = await expect(served.queue, websocket.MessageConnect)
        alias = connect.id
        await run_in(b, qb, pb, lambda p: p.send_alias(alias, websocket.Message(body=b"from node b")))
        async with asyncio.timeout(5):
            assert await client.recv() == "from node b"
        binary = websocket.Message(type=websocket.MessageType.BINARY, body=b"\x00\x01")
        await run_in(b, qb, pb, lambda p: p.send(alias, binary))
        async with asyncio.timeout(5):
            assert await client.recv() == b"\x00\x01"
        await run_in(b, qb, pb, lambda p: p.monitor(alias))  # the connection, watched from node b
        await run_in(b, qb, pb, lambda p: p.send(alias, websocket.Message(body=b"sync")))
        async with asyncio.timeout(5):
            assert await client.recv() == "sync"  # the monitor request went before it, on the same link
    down = await receive(qb)  # the client closed: the connection's meta-process ended on node a
    assert type(down) is gen.MessageDownAlias and down.alias == alias
    assert b.stats()["monitors"] == 0 and a.stats()["remote_watched"] == 0


# ---- handshake: TLS, a taken name --------------------------------------------------------------


def tls_contexts(tmp_path: Any) -> tuple[Any, Any, bytes]:
    import ssl

    from test_net_handshake import self_signed

    pem, key_pem, der = self_signed()
    (tmp_path / "c.pem").write_bytes(pem)
    (tmp_path / "k.pem").write_bytes(key_pem)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
    client = ssl.create_default_context(cafile=str(tmp_path / "c.pem"))
    client.check_hostname = False
    return server, client, der


async def test_tls_acceptor_reached_through_the_registrar(net_cluster: Callable[..., Any], tmp_path: Any) -> None:
    server, _, der = tls_contexts(tmp_path)
    acc = gen.AcceptorOptions(host="127.0.0.1", port=0, tls=server, cert_der=der)
    a = await net_cluster(A, insecure_skip_verify=True)
    b = await net_cluster(B, acceptors=[acc])
    assert b.network.acceptors()[0].tls
    await b.spawn_register("echo", Echo)
    assert await a.call(gen.ProcessID("echo", B), "over tls") == ["reply", "over tls"]
    assert a.network.node(B).stats()["links"] == 3  # the pool joined over TLS too


async def test_tls_through_a_static_route_with_a_verifying_context(
    net_cluster: Callable[..., Any], tmp_path: Any
) -> None:
    server, client, der = tls_contexts(tmp_path)
    a = await net_cluster(A, registrar=False)
    b = await net_cluster(B, registrar=False, acceptors=[gen.AcceptorOptions("127.0.0.1", 0, server, der)])
    port = b.network.acceptors()[0].port
    a.network.add_route(B, gen.NetworkRoute(host="127.0.0.1", port=port, tls=client))
    await b.spawn_register("echo", Echo)
    assert await a.call(gen.ProcessID("echo", B), 1) == ["reply", 1]


def same_creation(monkeypatch: pytest.MonkeyPatch, creation: float) -> None:
    """Nodes started from now on get ``creation`` (the node's start second)."""
    from ergopy.node import node as node_module

    fake = types.SimpleNamespace(time=lambda: creation, time_ns=time.time_ns)
    monkeypatch.setattr(node_module, "time", fake)


async def test_a_name_already_connected_is_refused(
    net_cluster: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    a = await net_cluster(A, registrar=False)
    b = await net_cluster(B, registrar=False)
    same_creation(monkeypatch, b.creation)  # not a restart of b: another node of that name
    impostor = await net_cluster(B, registrar=False)
    monkeypatch.undo()
    port = a.network.acceptors()[0].port
    for n in (b, impostor):
        n.network.add_route(A, gen.NetworkRoute(host="127.0.0.1", port=port))
    await b.network.get_node(A)
    with pytest.raises(gen.NoConnectionError, match="handshake"):
        await impostor.network.get_node(A)
    assert a.network.nodes() == [B] and impostor.network.nodes() == []


# ---- connection life ----------------------------------------------------------------------------


async def test_simultaneous_get_node_from_both_sides_gives_both_one_connection(
    net_cluster: Callable[..., Any],
) -> None:
    a = await net_cluster(A)
    b = await net_cluster(B)
    ra, rb = await asyncio.gather(a.network.get_node(B), b.network.get_node(A))
    assert ra.name == B and rb.name == A
    assert a.network.nodes() == [B] and b.network.nodes() == [A]


async def gone(node: ergopy.Node, peer: str) -> None:
    """Wait (2 s at most) until ``node`` has seen its connection to ``peer`` go."""
    async with asyncio.timeout(2):
        while peer in node.network.nodes():
            await node.network._endpoint.changes.wait()


async def test_100_simultaneous_connects_converge_on_one_connection_and_lose_nothing(
    net_cluster: Callable[..., Any],
) -> None:
    a = await net_cluster(A)
    b = await net_cluster(B)
    qa: asyncio.Queue[Any] = asyncio.Queue()
    qb: asyncio.Queue[Any] = asyncio.Queue()
    pa = await a.spawn(Runner, None, qa)
    pb = await b.spawn(Runner, None, qb)
    for trial in range(100):
        ra, rb = await asyncio.gather(a.network.get_node(B), b.network.get_node(A))
        assert ra._conn.id == rb._conn.id, trial  # the same connection seen from both sides
        for k in range(5):
            a.send(pb, [trial, k])
            b.send(pa, [trial, k])
        for q in (qa, qb):
            assert [await receive(q) for _ in range(5)] == [[trial, k] for k in range(5)]
        ra.disconnect()
        await gone(a, B)
        await gone(b, A)


async def test_connect_and_disconnect_cycles_leave_stats_as_they_were(net_cluster: Callable[..., Any]) -> None:
    a = await net_cluster(A)
    b = await net_cluster(B)
    await b.spawn_register("echo", Echo)
    qa: asyncio.Queue[Any] = asyncio.Queue()
    w = await a.spawn(Runner, None, qa, True)
    before_a, before_b = a.stats(), b.stats()
    for _ in range(20):
        await a.network.get_node(B)
        await run_in(a, qa, w, lambda p: p.monitor(gen.ProcessID("echo", B)))
        a.network.node(B).disconnect()
        msg = await receive(qa)
        assert type(msg) is gen.MessageDownProcessID and isinstance(msg.reason, gen.NoConnectionError)
        await gone(b, A)
    assert a.stats() == before_a and b.stats() == before_b


async def test_links_get_the_liveness_bound(net_cluster: Callable[..., Any]) -> None:
    a = await net_cluster(A, liveness=8.0)
    await net_cluster(B)
    await a.network.get_node(B)
    opt = getattr(socket, "TCP_USER_TIMEOUT", None)
    if opt is None:
        pytest.skip("no TCP_USER_TIMEOUT here")
    for link in a.network.node(B)._conn.links:
        sock = link.transport.get_extra_info("socket")
        assert sock.getsockopt(socket.IPPROTO_TCP, opt) == 8000 - 1000  # bound - step (8/5 s -> 1 s)


# ---- fuzzed frames --------------------------------------------------------------------------------


_frames = st.builds(
    enp.Frame,
    type=st.sampled_from([t for t in enp.FrameType if t is not enp.FrameType.Z]),
    order=st.integers(0, 255),
    from_id=st.integers(0, 2**64 - 1),
    to_id=st.one_of(st.integers(1000, 1010), st.integers(0, 2**64 - 1)),
    flags=st.integers(0, 255),
    timestamp=st.integers(-(2**63), 2**63 - 1),
    ref_id=st.tuples(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1)),
    alias_id=st.tuples(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1)),
    name=st.sampled_from(["echo", "nobody", "", "ev"]),
    code=st.integers(0, 255),
    payload=st.one_of(st.binary(max_size=64), st.sampled_from([b"\x8d\x00\x02hi", b"\x9c\x00\x04boom", b"\xff"])),
)


async def test_fuzzed_frames_from_a_peer_never_break_the_node(net_pair: tuple[ergopy.Node, ergopy.Node]) -> None:
    a, b = net_pair
    await b.spawn_register("echo", Echo)
    conn = b.network.node(A)._conn
    seen: list[enp.Frame] = []

    @hypothesis.settings(max_examples=300, deadline=None, database=None)
    @hypothesis.given(frame=_frames)
    def feed(frame: enp.Frame) -> None:
        seen.append(frame)
        b.network.frame_received(conn, frame)  # dropped, answered or delivered; never raises

    feed()
    assert len(seen) >= 100
    await b.spawn_register("echo2", Echo)  # fuzzed exits may have ended "echo": that is allowed
    assert await a.call(gen.ProcessID("echo2", B), "still here") == ["reply", "still here"]


async def test_stop_ends_a_dial_in_progress(net_cluster: Callable[..., Any]) -> None:
    accepted = asyncio.Event()
    writers: list[asyncio.StreamWriter] = []

    def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        accepted.set()  # and never answer the handshake

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    try:
        a = await net_cluster(A, registrar=False)
        a.network.add_route(B, gen.NetworkRoute(host="127.0.0.1", port=server.sockets[0].getsockname()[1]))
        dial = asyncio.ensure_future(a.network.get_node(B))
        async with asyncio.timeout(2):
            await accepted.wait()
            assert a.stats()["connecting"] == 1
            await a.stop()
            with pytest.raises(gen.NoConnectionError, match="the network stopped"):
                await dial
    finally:
        for w in writers:
            w.close()
        server.close()
        await server.wait_closed()


async def test_a_pending_call_fails_at_once_when_the_peer_node_stops(
    net_pair: tuple[ergopy.Node, ergopy.Node],
) -> None:
    a, b = net_pair
    got: asyncio.Queue[Any] = asyncio.Queue()

    class Holder(act.Actor):
        def handle_call(self, from_: gen.PID, ref: gen.Ref, request: Any) -> None:
            got.put_nowait(request)  # and never answer

    pid = await b.spawn(Holder)
    call = asyncio.ensure_future(a.call(pid, "hold", timeout=30))
    assert await receive(got) == "hold"
    await b.stop()
    async with asyncio.timeout(2):
        with pytest.raises(gen.NoConnectionError):
            await call


async def test_an_important_send_is_acknowledged(
    net_pair: tuple[ergopy.Node, ergopy.Node], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = net_pair
    acks: asyncio.Queue[enp.Frame] = asyncio.Queue()
    original = a.network.frame_received

    def spy(conn: Any, frame: enp.Frame) -> None:
        if frame.type == enp.FrameType.RESPONSE_ERROR:
            acks.put_nowait(frame)
        original(conn, frame)

    monkeypatch.setattr(a.network, "frame_received", spy)
    qb: asyncio.Queue[Any] = asyncio.Queue()
    pid = await b.spawn(Runner, None, qb)
    conn = b.network.node(A)._conn
    payload = conn.encode("important")
    for to_id, message_id in ((pid.id, 77), (99999, 78)):
        frame = enp.Frame(
            enp.FrameType.PID, 0, 1001, to_id=to_id, flags=enp.IMPORTANT, message_id=message_id, payload=payload
        )
        b.network.frame_received(conn, frame)  # as if a sent it with the important bit
    assert await receive(qb) == "important"
    first, second = await receive(acks), await receive(acks)
    assert (first.ref_id, first.code, first.to_id) == ((77, 0, 0), enp.ResponseCode.OK, 1001)
    assert (second.ref_id, second.code) == ((78, 0, 0), enp.ResponseCode.PROCESS_UNKNOWN)


async def test_a_restarted_peer_replaces_the_connection_of_its_previous_incarnation(
    net_cluster: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    a = await net_cluster(A, registrar=False)
    b1 = await net_cluster(B, registrar=False)
    route = gen.NetworkRoute(host="127.0.0.1", port=a.network.acceptors()[0].port)
    b1.network.add_route(A, route)
    await b1.network.get_node(A)
    pid = await b1.spawn(Echo)
    qa: asyncio.Queue[Any] = asyncio.Queue()
    w = await a.spawn(Runner, None, qa)
    await run_in(a, qa, w, lambda p: p.monitor(pid))
    assert await a.make_call(w, pid, "in", 5) == ["reply", "in"]  # the monitor request is in
    # b1 "crashed" without its connection being seen to go: b2 takes its name, a later creation
    same_creation(monkeypatch, b1.creation + 10)
    b2 = await net_cluster(B, registrar=False)
    monkeypatch.undo()
    b2.network.add_route(A, route)
    assert (await b2.network.get_node(A)).creation == a.creation
    msg = await receive(qa)
    assert type(msg) is gen.MessageDownPID and msg.pid == pid and isinstance(msg.reason, gen.NoConnectionError)
    assert a.network.node(B).creation == b2.creation
    await b2.spawn_register("echo", Echo)
    assert await a.call(gen.ProcessID("echo", B), 1) == ["reply", 1]
    assert a.network.nodes() == [B]


async def test_inspect_of_a_remote_process_is_not_allowed_as_in_go(net_pair: tuple[ergopy.Node, ergopy.Node]) -> None:
    a, b = net_pair
    pid = await b.spawn(Echo)
    with pytest.raises(gen.NotAllowedError, match="local processes only"):
        await a.inspect(pid)
    with pytest.raises(gen.NotAllowedError):
        a.kill(pid)


async def test_a_node_without_acceptors_dials_through_the_registrar(net_cluster: Callable[..., Any]) -> None:
    a = await net_cluster(A, acceptors=[])
    b = await net_cluster(B)
    assert a.network.acceptors() == []
    await b.spawn_register("echo", Echo)
    assert await a.call(gen.ProcessID("echo", B), "dial only") == ["reply", "dial only"]
    assert b.network.nodes() == [A]


async def test_pool_size_is_the_number_of_links_a_dialler_opens(net_cluster: Callable[..., Any]) -> None:
    a = await net_cluster(A)
    b = await net_cluster(B, pool_size=1)
    c = await net_cluster(C, pool_size=5)
    await a.network.get_node(B)
    assert a.network.node(B).stats()["links"] == 1
    await a.network.get_node(C)
    assert a.network.node(C).stats()["links"] == 5
    assert c.network.node(A).stats()["links"] == 5
    assert b.network.nodes() == [A]


async def test_frames_taken_from_bytes_are_routed_as_their_decoded_frames(
    net_pair: tuple[ergopy.Node, ergopy.Node], caplog: pytest.LogCaptureFixture
) -> None:
    """The receive hot path (plain sends by name or PID routed from their bytes) gives
    what decoding the frame gives: good ones delivered in order, from the right PID;
    a name that is not UTF-8 or runs past the frame dropped with the general path's
    warning; an important send taken by the general path, in its place."""
    _, b = net_pair
    q: asyncio.Queue[Any] = asyncio.Queue()
    pid = await b.spawn_register("probe", Runner, None, q)
    conn = b.network.node(A)._conn
    payload = conn.encode

    def name_frame(name: bytes, value: Any, from_id: int = 1001) -> bytes:
        body = from_id.to_bytes(8, "big") + bytes(9) + bytes([len(name)]) + name + payload(value)
        return bytes([78, 1]) + (8 + len(body)).to_bytes(4, "big") + bytes([from_id % 255, 102]) + body

    def pid_frame(value: Any, flags: int = 0) -> bytes:
        order, value_bytes = pid.id % 255, payload(value)
        f = enp.Frame(enp.FrameType.PID, order, 1002, to_id=pid.id, flags=flags, message_id=9, payload=value_bytes)
        return enp.encode_frame(f)

    past_end = bytearray(name_frame(b"probe", "lost"))
    past_end[25] = 200  # the name's length byte runs past the frame
    frames = [
        name_frame(b"probe", "one"),
        name_frame(b"\xff\xfeprobe", "lost"),
        bytes(past_end),
        pid_frame("two"),
        pid_frame("three", flags=enp.IMPORTANT),
        name_frame(b"probe", "four", from_id=1003),
    ]
    with caplog.at_level("WARNING", logger="ergopy.net"):
        b.network.frames_received(conn, frames)
        assert [await receive(q) for _ in range(4)] == ["one", "two", "three", "four"]
    assert "name is not UTF-8" in caplog.text and "name runs past the frame end" in caplog.text
    senders = b.network._senders[conn]
    assert {1001, 1002, 1003} <= set(senders) and senders[1003] == gen.PID(A, 1003, conn.peer_creation)
    assert q.empty()


async def test_call_frames_taken_from_bytes_are_answered_as_their_decoded_frames(
    net_pair: tuple[ergopy.Node, ergopy.Node], caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Call requests routed from their bytes are answered as decoding them would have
    them answered: by name and by PID, an undecodable value or an unknown name with
    the error, a name that is not UTF-8 dropped with the general path's warning; and a
    real call's answer comes back through the same path."""
    a, b = net_pair
    echo = await b.spawn_register("echo", Echo)
    assert await a.call(gen.ProcessID("echo", B), "through") == ["reply", "through"]
    conn = b.network.node(A)._conn
    answered: asyncio.Queue[tuple[int, Any, Any]] = asyncio.Queue()

    def response(to: gen.PID, ref: gen.Ref, value: Any, error: BaseException | None) -> None:
        answered.put_nowait((ref.id[0], value, error))

    monkeypatch.setattr(b.network, "response", response)

    def request(ref: int, name: bytes | None, value: bytes) -> bytes:
        if name is None:
            t, field = enp.FrameType.REQUEST_PID, echo.id.to_bytes(8, "big")
        else:
            t, field = enp.FrameType.REQUEST_NAME, bytes([len(name)]) + name
        return enp.encode_request(t, 1001 % 255, 1001, 0, (ref, 0, 0), field, value)

    frames = [
        request(1, b"echo", conn.encode("by name")),
        request(2, b"\xffecho", conn.encode("lost")),
        request(3, None, conn.encode("by pid")),
        request(4, b"echo", b"\x8d\x00\x09short"),
        request(5, b"nobody", conn.encode("unknown")),
    ]
    with caplog.at_level("WARNING", logger="ergopy.net"):
        b.network.frames_received(conn, frames)
        got = sorted([await receive(answered) for _ in range(4)], key=lambda r: r[0])
    assert [(r, v) for r, v, _ in got] == [(1, ("reply", "by name")), (3, ("reply", "by pid")), (4, None), (5, None)]
    assert isinstance(got[2][2], gen.Error) and isinstance(got[3][2], gen.ProcessUnknownError)
    assert got[0][2] is None and got[1][2] is None
    assert "name is not UTF-8" in caplog.text and answered.empty()


async def test_a_dial_all_its_callers_gave_up_on_leaves_no_unread_exception(
    net_cluster: Callable[..., Any],
) -> None:
    """``get_node`` callers share one dial task; when every caller is cancelled (a
    timeout of its own) and the dial then fails, its exception must still be read,
    or asyncio reports "Task exception was never retrieved" when the task is dropped."""
    import gc
    import logging

    accepted: asyncio.Queue[asyncio.BaseTransport] = asyncio.Queue()

    class Silent(asyncio.Protocol):  # accepts, then says nothing until the test closes it
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            accepted.put_nowait(transport)

    server = await asyncio.get_running_loop().create_server(Silent, "127.0.0.1", 0)
    reports: list[str] = []
    handler = logging.Handler(logging.ERROR)
    handler.emit = lambda record: reports.append(record.getMessage())  # type: ignore[method-assign]
    logging.getLogger("asyncio").addHandler(handler)
    try:
        port = server.sockets[0].getsockname()[1]
        a = await net_cluster("a@localhost", routes={"x@localhost": gen.NetworkRoute(host="127.0.0.1", port=port)})
        caller = asyncio.get_running_loop().create_task(a.network.get_node("x@localhost"))
        transport = await receive(accepted)  # type: ignore[arg-type]
        caller.cancel()
        await asyncio.gather(caller, return_exceptions=True)
        dial = a.network._connecting["x@localhost"]
        transport.close()  # the handshake fails now, with nobody waiting for it
        await asyncio.wait([dial])
        assert dial.done() and not dial.cancelled()  # it failed (not read here: that is the point)
        del dial, caller
        gc.collect()
        assert a.network.stats()["connecting"] == 0
    finally:
        logging.getLogger("asyncio").removeHandler(handler)
        server.close()
    assert not [r for r in reports if "never retrieved" in r]


def _raw(t: int, body: bytes) -> bytes:
    return bytes([78, 1]) + (8 + len(body)).to_bytes(4, "big") + bytes([t % 255, t]) + body


_raw_frames = st.one_of(
    st.builds(
        _raw, st.sampled_from([101, 102, 103, 121, 122, 129, 130, 199]), st.binary(max_size=90)
    ),  # any body under a hot type's header
    st.builds(  # a well-formed head, a name field of any length byte, any tail
        lambda t, head, n, name, tail: _raw(t, head + bytes([n]) + name + tail),
        st.sampled_from([102, 122]),
        st.sampled_from([bytes(17), bytes(33)]),
        st.integers(0, 255),
        st.sampled_from([b"echo", b"\xffecho", b"", b"nobody"]),
        st.one_of(st.binary(max_size=40), st.sampled_from([b"\x8d\x00\x02hi", b"\x96" + bytes(8)])),
    ),
)


async def test_fuzzed_frame_bytes_never_break_the_receive_path(
    net_pair: tuple[ergopy.Node, ergopy.Node], caplog: pytest.LogCaptureFixture
) -> None:
    """Frames from a peer as bytes (the path every received frame takes), well-formed
    or not under the hot types' headers: each is routed, answered or dropped with a
    reason; none makes the node fail to take it, and the node still serves calls."""
    a, b = net_pair
    await b.spawn_register("echo", Echo)
    conn = b.network.node(A)._conn
    seen: list[bytes] = []

    @hypothesis.settings(max_examples=300, deadline=None, database=None)
    @hypothesis.given(raws=st.lists(_raw_frames, min_size=1, max_size=4))
    def feed(raws: list[bytes]) -> None:
        seen.extend(raws)
        b.network.frames_received(conn, raws)

    with caplog.at_level("ERROR", logger="ergopy.net"):
        feed()
    assert len(seen) >= 300
    assert "failed to take" not in caplog.text
    await b.spawn_register("echo2", Echo)
    assert await a.call(gen.ProcessID("echo2", B), "still") == ["reply", "still"]


async def test_a_lost_pool_link_under_two_nodes_is_redialled_and_no_message_is_lost_or_reordered(
    net_pair: tuple[ergopy.Node, ergopy.Node], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole stack: one of the three links between two nodes dies (its socket shut
    down); three processes (one per link) keep sending by name while the dialling node
    re-dials it (its Join held at the acceptor until they have sent) and after; the
    pool is whole again within the bound and the receiver gets every message, in order
    per sender."""
    import os

    a, b = net_pair
    qb: asyncio.Queue[Any] = asyncio.Queue()
    await b.spawn_register("probe", Runner, None, qb)
    qa: asyncio.Queue[Any] = asyncio.Queue()
    senders = [await a.spawn(Runner, None, qa) for _ in range(3)]
    near, far = a.network.node(B)._conn, b.network.node(A)._conn
    assert {p.id % 255 % 3 for p in senders} == {0, 1, 2}  # one sender per link
    probe = gen.ProcessID("probe", B)
    sent = [0, 0, 0]
    gate = asyncio.Event()
    can_join = b.network._endpoint._can_join

    async def gated(peer: str, connection_id: str) -> bool:
        await gate.wait()  # the re-dial is on its way: hold it while the senders send
        return await can_join(peer, connection_id)

    monkeypatch.setattr(b.network._endpoint, "_can_join", gated)

    async def burst() -> None:
        for i, pid in enumerate(senders):

            def send(actor: Any, i: int = i) -> None:
                for _ in range(10):
                    actor.send(probe, (i, sent[i]))
                    sent[i] += 1

            await run_in(a, qa, pid, send)

    await burst()
    endpoints = (a.network._endpoint, b.network._endpoint)
    victim = near.links[1]
    fd = victim.transport.get_extra_info("socket").fileno()
    with socket.socket(fileno=os.dup(fd)) as dup:
        dup.shutdown(socket.SHUT_RDWR)
    # frames handed to the dying socket before its loss is seen are lost (as in Go): wait for both sides to see it
    await until_links(lambda: victim not in near.links and far.stats()["links_lost"] == 1, *endpoints)
    base = list(sent)
    for _ in range(3):
        await burst()
    assert len(near.links) == len(far.links) == 2  # all three bursts went while the link was away
    gate.set()
    await until_links(lambda: len(near.links) == len(far.links) == 3, *endpoints)
    await burst()
    got: dict[int, list[int]] = {0: [], 1: [], 2: []}
    while any(not got[i] or got[i][-1] < sent[i] - 1 for i in range(3)):  # until each sender's last
        i, n = await receive(qb)
        got[i].append(n)
    for i in range(3):
        assert got[i] == sorted(got[i]), i  # in order
        assert [n for n in got[i] if n >= base[i]] == list(range(base[i], sent[i])), i  # none lost since
    assert near.stats()["links_redialled"] == 1

"""A connection = a pool of links, ergopy<->ergopy on 127.0.0.1: the dialer joins the
pool the acceptor offers, frames flow both ways in per-sender order, compression and
size limits hold, a lost peer is reported exactly once, and each link's socket gets
the liveness bound."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from conftest import until_links
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from netns_helpers import hear, say, sh

from ergopy import gen
from ergopy.net import connection, enp, handshake
from ergopy.net.connection import Connection, Endpoint
from ergopy.net.enp import Frame, FrameType
from ergopy.net.types import NetworkFlags

HOST = "127.0.0.1"


class Seam:
    """The node side of the seam: collects frames and losses."""

    def __init__(self) -> None:
        self.frames: asyncio.Queue[tuple[Connection, Frame]] = asyncio.Queue()
        self.lost: asyncio.Queue[tuple[Connection, BaseException | None]] = asyncio.Queue()

    def frame_received(self, conn: Connection, frame: Frame) -> None:
        self.frames.put_nowait((conn, frame))

    def connection_lost(self, conn: Connection, reason: BaseException | None) -> None:
        self.lost.put_nowait((conn, reason))

    async def frame(self, timeout: float = 5.0) -> Frame:
        async with asyncio.timeout(timeout):
            return (await self.frames.get())[1]


def options(name: str, **kw: Any) -> handshake.Options:
    return handshake.Options(name=name, cookie="secret", creation=1, flags=NetworkFlags.default(), **kw)


@contextlib.asynccontextmanager
async def pair(
    accept_kw: dict[str, Any] | None = None, dial_kw: dict[str, Any] | None = None
) -> AsyncIterator[tuple[Endpoint, Seam, Endpoint, Seam, Connection]]:
    """(acceptor endpoint, its seam, dialer endpoint, its seam, the dialer's connection)."""
    a_seam, b_seam = Seam(), Seam()
    a = Endpoint(options("a@localhost", **(accept_kw or {})), a_seam)
    b = Endpoint(options("b@localhost", **(dial_kw or {})), b_seam)
    try:
        port = await a.listen(HOST, 0)
        conn = await b.connect(HOST, port, "a@localhost")
        yield a, a_seam, b, b_seam, conn
    finally:
        await b.close()
        await a.close()


async def joined(endpoint: Endpoint, peer: str, links: int) -> Connection:
    """The endpoint's connection to ``peer`` once it has ``links`` links (the acceptor
    side adds them as their Joins arrive)."""
    async with asyncio.timeout(5):
        while True:
            conn = endpoint.connections.get(peer)
            if conn is not None and len(conn.links) == links:
                return conn
            await endpoint.changes.wait()


def pid_frame(from_id: int, to_id: int, payload: bytes = b"\x8d\x00\x02hi") -> Frame:
    f = Frame(FrameType.PID, from_id=from_id, to_id=to_id, payload=payload)
    f.order = enp.default_order(f)
    return f


async def test_dialer_joins_the_offered_pool() -> None:
    async with pair() as (a, _, b, _, conn):
        assert len(conn.links) == handshake.DEFAULT_POOL_SIZE
        far = await joined(a, "b@localhost", handshake.DEFAULT_POOL_SIZE)
        assert far.id == conn.id
        assert set(a.connections) == {"b@localhost"} and set(b.connections) == {"a@localhost"}


async def test_pool_size_one_means_a_single_link() -> None:
    async with pair(accept_kw={"pool_size": 1}) as (_, _, _, _, conn):
        assert len(conn.links) == 1


async def test_frames_flow_both_ways_in_per_sender_order() -> None:
    async with pair() as (a, a_seam, _, b_seam, conn):
        far = await joined(a, "b@localhost", 3)
        for i in range(300):
            sender = 1000 + i % 3  # three senders, three links
            conn.send(pid_frame(sender, 2000, b"\x95" + i.to_bytes(8, "big")), key=sender)
        got: dict[int, list[int]] = {}
        for _ in range(300):
            f = await a_seam.frame()
            got.setdefault(f.from_id, []).append(int.from_bytes(f.payload[1:], "big"))
        assert {k: v == sorted(v) for k, v in got.items()} == {1000: True, 1001: True, 1002: True}
        assert sum(len(v) for v in got.values()) == 300
        assert all(link.bytes_in > 0 for link in far.links)  # every link carried frames
        far.send(pid_frame(2000, 1000), key=2000)
        back = await b_seam.frame()
        assert (back.from_id, back.to_id, back.payload) == (2000, 1000, b"\x8d\x00\x02hi")


async def test_a_burst_is_written_in_one_batch_per_link() -> None:
    async with pair(accept_kw={"pool_size": 1}) as (_, a_seam, _, _, conn):
        writes: list[int] = []
        link = conn.links[0]

        class Counting:
            def __init__(self, real: Any) -> None:
                self.real = real

            def write(self, data: bytes) -> None:
                writes.append(len(data))
                self.real.write(data)

            def __getattr__(self, name: str) -> Any:
                return getattr(self.real, name)

        link.transport = Counting(link.transport)  # type: ignore[assignment]
        for _ in range(100):
            conn.send(pid_frame(7, 8), key=7)
        for _ in range(100):
            await a_seam.frame()
        assert len(writes) == 1 and writes[0] == 100 * len(enp.encode_frame(pid_frame(7, 8)))


async def test_name_frames_use_our_atom_table_when_we_sent_one() -> None:
    from ergopy.net import edf

    caches = edf.EncodeCaches(atoms=["b@localhost", "echo"])
    async with pair(dial_kw={"caches": caches}) as (_, a_seam, _, _, conn):
        conn.send(Frame(FrameType.NAME, order=7, from_id=7, name="echo", payload=b"\x8d\x00\x00"), key=7)
        f = await a_seam.frame()
        assert (f.type, f.name) == (FrameType.NAME_CACHE, "echo")  # 103, decoded with our table


async def test_compressed_frames_arrive_inflated() -> None:
    async with pair() as (_, a_seam, _, _, conn):
        big = b"\x8d" + (4000).to_bytes(2, "big") + b"ergo " * 800
        conn.send(pid_frame(5, 6, big), key=5, compression=enp.Compression.ZLIB)
        f = await a_seam.frame()
        assert f.type == FrameType.PID and f.payload == big
        assert conn.links[5 % 3].bytes_out < 500


async def test_frame_over_the_peers_limit_is_refused_at_send() -> None:
    async with pair(accept_kw={"max_message_size": 100}) as (_, _, _, _, conn):
        assert conn.peer_max_message_size == 100
        with pytest.raises(connection.MessageTooLargeError, match="limit of 100"):
            conn.send(pid_frame(1, 2, b"\x8d\x00\x64" + b"x" * 100))
        conn.send(pid_frame(1, 2))  # a small one still goes


async def test_receiver_closes_a_link_that_announces_more_than_its_limit() -> None:
    async with pair(accept_kw={"max_message_size": 100, "pool_size": 1}) as (_, a_seam, _, b_seam, conn):
        conn.peer_max_message_size = 0  # a sender that ignores the limit
        conn.send(pid_frame(1, 2, b"\x8d\x00\x64" + b"x" * 100))
        async with asyncio.timeout(5):
            lost_conn, reason = await b_seam.lost.get()
        assert lost_conn is conn and isinstance(reason, gen.NoConnectionError)
        assert a_seam.frames.empty()


async def test_good_frames_before_garbage_are_delivered_then_the_link_closes() -> None:
    async with pair(accept_kw={"pool_size": 1}) as (_, a_seam, _, b_seam, conn):
        good = enp.encode_frame(pid_frame(1, 42))
        conn.links[0].transport.write(good + b"GET / HTTP/1.1\r\n\r\n")
        assert (await a_seam.frame()).to_id == 42
        async with asyncio.timeout(5):
            lost, _ = await b_seam.lost.get()
        assert lost is conn


async def test_a_peer_that_stops_reading_costs_bounded_memory() -> None:
    async with pair(accept_kw={"pool_size": 1}) as (a, _, _, b_seam, conn):
        far = await joined(a, "b@localhost", 1)
        far.links[0].transport.pause_reading()  # the peer's node is stuck
        conn.max_pending = 1 << 20
        big = pid_frame(1, 2, b"\x8e" + (65536).to_bytes(4, "big") + bytes(65536))
        for _ in range(2000):  # at most 128 MiB if nothing stopped it
            try:
                conn.send(big, key=1)
            except gen.NoConnectionError:
                break
            await asyncio.sleep(0)  # let the flushes run, as a live node would
        async with asyncio.timeout(5):
            lost, reason = await b_seam.lost.get()
        assert lost is conn and isinstance(reason, gen.NoConnectionError)
        assert conn.stats()["links"] == 0


async def test_lost_peer_is_reported_once_on_each_side() -> None:
    async with pair() as (a, a_seam, b, b_seam, conn):
        far = await joined(a, "b@localhost", 3)
        far.abort()
        async with asyncio.timeout(5):
            got, reason = await b_seam.lost.get()
            far_got, _ = await a_seam.lost.get()
        assert got is conn and isinstance(reason, gen.NoConnectionError) and "a@localhost" in str(reason)
        assert far_got is far
        assert b.connections == {} and a.connections == {}
        with pytest.raises(gen.NoConnectionError):
            conn.send(pid_frame(1, 2))
        assert b_seam.lost.empty() and a_seam.lost.empty()


async def test_one_lost_link_is_not_a_lost_connection() -> None:
    async with pair() as (a, a_seam, _, b_seam, conn):
        far = await joined(a, "b@localhost", 3)
        conn.links[1].transport.abort()
        await until_links(lambda: far.stats()["links_lost"] == 1, a)
        conn.send(pid_frame(9, 9), key=9)
        assert (await a_seam.frame()).to_id == 9
        assert b_seam.lost.empty() and a_seam.lost.empty()


def shut_down(link: Any) -> None:
    """Kill a link's socket under its transport (as a network failure would): shutdown()
    on a duplicate of its descriptor (uvloop hands out a pseudo-socket)."""
    fd = link.transport.get_extra_info("socket").fileno()
    with socket.socket(fileno=os.dup(fd)) as dup:
        dup.shutdown(socket.SHUT_RDWR)


async def test_a_lost_pool_link_is_redialled_and_frames_sent_meanwhile_arrive_in_order() -> None:
    """One link of three dies under both nodes (its socket shut down): the dialler
    re-dials it and the pool is whole again on both sides within the bound; every frame
    sent once the loss was seen, before, during and after the re-dial, in both
    directions, arrives, in order per sender (twelve senders: every slot, four each)."""
    async with pair() as (a, a_seam, b, b_seam, conn):
        far = await joined(a, "b@localhost", 3)
        senders = range(1000, 1012)
        sent = {"ab": dict.fromkeys(senders, 0), "ba": dict.fromkeys(senders, 0)}

        def burst() -> None:
            for s in senders:
                for way, c in (("ab", conn), ("ba", far)):
                    c.send(pid_frame(s, 1, b"\x95" + sent[way][s].to_bytes(8, "big")), key=s)
                    sent[way][s] += 1

        async def received(seam: Seam, way: str, got: dict[int, list[int]]) -> None:
            while sum(len(v) for v in got.values()) < sum(sent[way].values()):
                f = await seam.frame()
                got.setdefault(f.from_id, []).append(int.from_bytes(f.payload[1:], "big"))

        at_a: dict[int, list[int]] = {}
        at_b: dict[int, list[int]] = {}
        burst()
        await received(a_seam, "ab", at_a)
        await received(b_seam, "ba", at_b)
        victim = conn.links[1]
        shut_down(victim)
        # frames handed to the dying socket before its loss is seen are lost (as in Go): wait for both sides to see it
        await until_links(lambda: victim not in conn.links and far.stats()["links_lost"] == 1, a, b)
        for _ in range(200):  # while the link is re-dialled (bounded)
            burst()
            if len(conn.links) == len(far.links) == 3:
                break
            await asyncio.sleep(0)  # let the loop run the re-dial between bursts
        await until_links(lambda: len(conn.links) == len(far.links) == 3, a, b)
        for _ in range(20):
            burst()
            await asyncio.sleep(0)
        await received(a_seam, "ab", at_a)
        await received(b_seam, "ba", at_b)
        for way, got in (("ab", at_a), ("ba", at_b)):
            assert got == {s: list(range(n)) for s, n in sent[way].items()}, way
        assert conn.stats()["links_redialled"] == 1 and conn.stats()["links_lost"] == 1
        assert b_seam.lost.empty() and a_seam.lost.empty()


async def test_second_connect_to_a_connected_peer_reuses_the_connection() -> None:
    async with pair() as (a, _, b, _, conn):
        port = a._servers[0].sockets[0].getsockname()[1]
        assert await b.connect(HOST, port, "a@localhost") is conn


async def test_a_second_node_with_a_taken_name_is_refused() -> None:
    async with pair() as (a, _, _, _, _):
        other = Endpoint(options("b@localhost"), Seam())
        port = a._servers[0].sockets[0].getsockname()[1]
        try:
            with pytest.raises(handshake.HandshakeError):
                await other.connect(HOST, port, "a@localhost")
        finally:
            await other.close()


async def test_links_get_the_liveness_bound() -> None:
    async with pair() as (_, _, _, _, conn):
        sock = conn.links[0].transport.get_extra_info("socket")
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        if hasattr(socket, "TCP_USER_TIMEOUT"):
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 16_000
        if hasattr(socket, "TCP_KEEPIDLE"):
            idle = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE)
            intvl = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL)
            cnt = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT)
            assert (idle, intvl, cnt) == (4, 4, 3)


def test_liveness_bound_below_four_seconds_is_refused() -> None:
    with socket.socket() as s, pytest.raises(ValueError, match="at least 4"):
        connection.tune_liveness(s, 3)


async def test_close_ends_handshakes_in_progress() -> None:
    seam = Seam()
    a = Endpoint(options("a@localhost"), seam)
    port = await a.listen(HOST, 0)
    reader, writer = await asyncio.open_connection(HOST, port)  # connects, never says Hello
    await a.close()  # returns although the handshake was waiting for bytes
    async with asyncio.timeout(3):
        assert await reader.read() == b""
    writer.close()


async def test_tls_connection_joins_its_pool_with_fingerprints(tmp_path: Any) -> None:
    import ssl

    from test_net_handshake import self_signed

    pem, key_pem, der = self_signed()
    (tmp_path / "c.pem").write_bytes(pem)
    (tmp_path / "k.pem").write_bytes(key_pem)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
    client = ssl.create_default_context()
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE
    a_seam, b_seam = Seam(), Seam()
    a = Endpoint(options("a@localhost", cert_der=der), a_seam, server_ssl=server)
    b = Endpoint(options("b@localhost"), b_seam, client_ssl=client)
    try:
        port = await a.listen(HOST, 0)
        conn = await b.connect(HOST, port, "a@localhost")
        assert len(conn.links) == 3  # each Join's Accept carried a DigestCert that matched
        far = await joined(a, "b@localhost", 3)
        far.send(pid_frame(3, 4), key=3)
        assert (await b_seam.frame()).to_id == 4
        victim = conn.links[2]
        shut_down(victim)  # a lost TLS link is re-dialled over TLS, its Join fingerprinted again
        await until_links(lambda: conn.stats()["links_redialled"] == 1 and len(far.links) == 3, a, b)
        assert victim not in conn.links and len(conn.links) == 3
        conn.send(pid_frame(5, 6), key=5)
        assert (await a_seam.frame()).to_id == 6
    finally:
        await b.close()
        await a.close()


# ---- garbage on an established link ---------------------------------------------------


async def _garbage_on_a_link(data: bytes) -> None:
    async with pair(accept_kw={"pool_size": 1, "max_message_size": 1 << 16}) as (a, a_seam, _, b_seam, conn):
        far = await joined(a, "b@localhost", 1)
        conn.links[0].transport.write(data)
        conn.send(pid_frame(1, 99), key=1)
        async with asyncio.timeout(3):
            # either the link survives (bad frames dropped, the good one arrives) or it is
            # closed and both sides are told; never a crash, never a hang
            frame_wait = asyncio.ensure_future(a_seam.frames.get())
            lost_wait = asyncio.ensure_future(b_seam.lost.get())
            done, pending = await asyncio.wait({frame_wait, lost_wait}, return_when=asyncio.FIRST_COMPLETED)
            for p in pending:
                p.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if lost_wait in done:
            await asyncio.wait_for(asyncio.shield(far.closed), 3)  # the acceptor side let go too
        else:
            assert isinstance(frame_wait.result()[1], Frame)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.binary(max_size=200),
        st.binary(max_size=8).map(lambda b: b"\x4e\x01\xff\xff\xff\xff\x00\x65" + b),  # over the limit
        st.binary(max_size=120).map(lambda b: b"\x4e\x01" + (len(b) + 2).to_bytes(4, "big") + b),
        st.tuples(st.sampled_from(sorted(int(t) for t in FrameType)), st.binary(max_size=80)).map(
            lambda t: b"\x4e\x01" + (len(t[1]) + 8).to_bytes(4, "big") + bytes([0, t[0]]) + t[1]
        ),
    )
)
def test_fuzzed_frames_on_a_link_never_crash_or_hang(data: bytes) -> None:
    asyncio.run(_garbage_on_a_link(data))


# ---- a silent partition, for real: two network namespaces joined by a veth pair ----------------

_PARTITION_NODE = r"""
import asyncio, sys, time
from ergopy.net import connection, handshake
from ergopy.net.types import NetworkFlags

role, bound = sys.argv[1], float(sys.argv[2])


class Seam:
    def __init__(self):
        self.lost = asyncio.get_running_loop().create_future()

    def frame_received(self, conn, frame):
        pass

    def connection_lost(self, conn, reason):
        if not self.lost.done():
            self.lost.set_result(time.monotonic())


async def line():
    return (await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)).strip()


async def main():
    print("ready", flush=True)  # running inside the new namespace
    await line()  # the veth is up
    seam = Seam()
    opts = handshake.Options(name=role + "@h", cookie="c", creation=1, flags=NetworkFlags.default())
    endpoint = connection.Endpoint(opts, seam, liveness=bound)
    if role == "a":
        await endpoint.listen("10.200.0.2", 11144)
        print("listening", flush=True)
        await line()  # until the test is done
        return
    conn = await endpoint.connect("10.200.0.2", 11144, "a@h")
    print("connected", len(conn.links), flush=True)
    what = await line()  # the link is about to be cut
    cut = time.monotonic()
    if what == "cut-send":  # data in flight: the retransmission timer must give up in time too
        from ergopy.net import enp
        frame = enp.Frame(enp.FrameType.PID, order=1, from_id=1, to_id=2, payload=b"\x8d\x00\x00")
        for key in (1, 2, 3):
            conn.send(frame, key=key)
    lost = await asyncio.wait_for(seam.lost, 30)
    print("lost", round(lost - cut, 3), flush=True)


asyncio.run(main())
"""


def _netns_available() -> bool:
    if os.geteuid() != 0 or not all(shutil.which(t) for t in ("unshare", "nsenter", "ip")):
        return False
    return subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _netns_available(), reason="needs root and network namespaces (unshare, nsenter, ip)")
@pytest.mark.parametrize("traffic", ["idle", "sending"])
def test_silent_partition_is_detected_within_the_liveness_bound(traffic: str) -> None:
    """Each node runs in its own network namespace (no route to anything else); the
    acceptor's end of the veth goes down, so the dialer's packets vanish silently: no
    FIN, no RST, no ICMP. With a 4 s bound the dialer must report the loss within 4 s
    (Go's keepalive alone would take minutes)."""
    bound = 4.0

    def node(role: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            ["unshare", "-n", sys.executable, "-c", _PARTITION_NODE, role, str(bound)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    a, d = node("a"), node("d")
    try:
        for p in (a, d):  # never touch the host's namespace: wait until each node is in its own
            assert hear(p) == "ready"
            assert os.readlink(f"/proc/{p.pid}/ns/net") != os.readlink("/proc/self/ns/net")
        sh("ip", "link", "add", "vd", "netns", str(d.pid), "type", "veth", "peer", "name", "va", "netns", str(a.pid))
        for pid, dev, addr in ((d.pid, "vd", "10.200.0.1/24"), (a.pid, "va", "10.200.0.2/24")):
            sh("nsenter", "-t", str(pid), "-n", "ip", "addr", "add", addr, "dev", dev)
            sh("nsenter", "-t", str(pid), "-n", "ip", "link", "set", dev, "up")
            sh("nsenter", "-t", str(pid), "-n", "ip", "link", "set", "lo", "up")
        say(a, "go")
        assert hear(a) == "listening"
        say(d, "go")
        assert hear(d) == "connected 3"
        start = time.monotonic()
        sh("nsenter", "-t", str(a.pid), "-n", "ip", "link", "set", "va", "down")
        say(d, "cut" if traffic == "idle" else "cut-send")
        verdict = hear(d)
        assert verdict.startswith("lost "), verdict
        detected = float(verdict.split()[1])
        assert bound - 2 <= detected <= bound + 0.5, detected  # the half second: process scheduling
        assert time.monotonic() - start < bound + 2
    finally:
        for p in (a, d):
            if p.stdin is not None:
                p.stdin.close()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
            if p.stdout is not None:
                p.stdout.close()


# ---- Go's recorded dialer against an ergopy Endpoint ---------------------------------------


async def test_gos_recorded_dialer_streams_reach_the_node_through_an_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    """Replays beta (Go) on link 1 and link 3 against an ergopy acceptor whose salt and
    connection ID are fixed to alpha's: the handshake and the Join pass, and every ENP
    frame Go sent on link 3 reaches the node, in order, decodable with beta's tables."""
    from test_net_enp import read_hex, split_stream
    from test_net_handshake import ALPHA, BETA, read_ehs, salt_of

    from ergopy.net import edf

    monkeypatch.setattr(handshake, "random_salt", lambda: salt_of(ALPHA[0]))
    monkeypatch.setattr(handshake.secrets, "token_hex", lambda n: "dd090e947faab7c4b8415b592f55d4fb")
    seam = Seam()
    alpha = Endpoint(handshake.Options(name="alpha@localhost", cookie="wire-cookie-2025", creation=1795951324), seam)
    try:
        port = await alpha.listen(HOST, 0)
        r1, w1 = await asyncio.open_connection(HOST, port)
        w1.write(BETA[0])
        await read_ehs(r1)
        w1.write(BETA[1])
        await read_ehs(r1)
        await read_ehs(r1)
        w1.write(BETA[2])
        join_hs, frames = split_stream(read_hex("link-3-beta-to-alpha.hex"))
        r3, w3 = await asyncio.open_connection(HOST, port)
        w3.write(join_hs[0])
        await read_ehs(r3)  # the Join's Accept
        w3.write(b"".join(frames))
        got = [await seam.frame() for _ in frames]
        conn = alpha.connections["beta@localhost"]
        assert len(conn.links) == 2
        assert [enp.encode_frame(f, {"echo": 256, "beta@localhost": 257}) for f in got if f.type != FrameType.PID] == [
            raw for raw in frames if raw[7] not in (FrameType.PID, FrameType.Z)
        ]
        for f in got:
            if f.payload:
                conn.decode(f.payload)  # beta's tables came with its Introduce
        assert isinstance(conn.caches, edf.DecodeCaches)
        w1.close()
        w3.close()
    finally:
        await alpha.close()


# ---- a Join that overtakes its first link's final Accept -------------------------------


async def test_a_join_overtaking_the_first_links_final_accept_is_admitted(monkeypatch: pytest.MonkeyPatch) -> None:
    """The dialer's final Accept (on the first link) reaches the acceptor only after the
    pool's first Join: a segment delayed on the network, or a Go dialer that dials its
    pool at once. The Join waits for that first link's handshake instead of being
    refused, so the pool is whole (five trials, pool of 3: two Joins each)."""
    held: list[tuple[asyncio.Transport, bytes]] = []
    write, read = handshake.EHSProtocol.write_message, handshake.EHSProtocol.read_message

    def write_message(self: handshake.EHSProtocol, message: Any) -> None:
        if message == handshake.MessageAccept() and self.transport is not None:  # the dialer's final Accept
            held.append((self.transport, handshake.encode_message(message)))
            return
        write(self, message)

    async def read_message(self: handshake.EHSProtocol, timeout: float = handshake.READ_TIMEOUT) -> Any:
        message = await read(self, timeout)
        if type(message) is handshake.MessageJoin:  # the acceptor has the Join: let the Accept go now
            while held:
                transport, data = held.pop()
                transport.write(data)
        return message

    monkeypatch.setattr(handshake.EHSProtocol, "write_message", write_message)
    monkeypatch.setattr(handshake.EHSProtocol, "read_message", read_message)
    for _ in range(5):
        async with pair() as (a, _, _, _, conn):
            assert len(conn.links) == 3  # no Join was refused
            far = await joined(a, "b@localhost", 3)
            assert far.id == conn.id


async def test_a_vacancy_not_refilled_hands_its_frames_to_a_surviving_link(monkeypatch: pytest.MonkeyPatch) -> None:
    """A dialler that does not re-dial (no DSN left): after the hold bound each side's
    frames for the lost link's slot go out, in order, on a surviving link."""
    monkeypatch.setattr(connection, "_HOLD", 0.2)
    async with pair() as (a, a_seam, b, _, conn):
        far = await joined(a, "b@localhost", 3)
        conn.pool_dsn = []  # nowhere to re-dial
        victim = conn.links[1]
        shut_down(victim)
        await until_links(lambda: victim not in conn.links and far.stats()["links_lost"] == 1, a, b)
        for i in range(30):
            conn.send(pid_frame(1000 + i % 3, 1, b"\x95" + i.to_bytes(8, "big")), key=1000 + i % 3)
        got: dict[int, list[int]] = {}
        for _ in range(30):
            f = await a_seam.frame()
            got.setdefault(f.from_id, []).append(int.from_bytes(f.payload[1:], "big"))
        assert got == {1000 + k: list(range(k, 30, 3)) for k in range(3)}
        assert len(conn.links) == 2 and conn.stats()["links_redialled"] == 0


async def test_links_lost_again_and_again_on_either_side_lose_and_reorder_nothing() -> None:
    """Six rounds: one or two links die (shut down under the dialler or under the
    acceptor, once what was sent has arrived: a socket shut down loses what it holds);
    frames go both ways while they are re-dialled and after; every round ends with the
    pool whole on both sides, and every frame arrives, in order per sender (twelve
    senders both ways)."""
    async with pair() as (a, a_seam, b, b_seam, conn):
        far = await joined(a, "b@localhost", 3)
        senders = range(1000, 1012)
        sent = {"ab": dict.fromkeys(senders, 0), "ba": dict.fromkeys(senders, 0)}
        got: dict[str, dict[int, list[int]]] = {"ab": {}, "ba": {}}

        def burst() -> None:
            for s in senders:
                for way, c in (("ab", conn), ("ba", far)):
                    c.send(pid_frame(s, 1, b"\x95" + sent[way][s].to_bytes(8, "big")), key=s)
                    sent[way][s] += 1

        async def drain() -> None:
            for way, seam in (("ab", a_seam), ("ba", b_seam)):
                while sum(map(len, got[way].values())) < sum(sent[way].values()):
                    f = await seam.frame()
                    got[way].setdefault(f.from_id, []).append(int.from_bytes(f.payload[1:], "big"))

        lost = 0
        for round_ in range(6):
            burst()
            await drain()
            side = conn if round_ % 2 == 0 else far
            victims = side.links[: 1 + round_ % 3 // 2]  # one link, or two in rounds 1 and 4
            for v in victims:
                shut_down(v)
            lost += len(victims)

            def seen(side: Connection = side, victims: list[Any] = victims, lost: int = lost) -> bool:
                return all(v not in side.links for v in victims) and (
                    conn.stats()["links_lost"] == far.stats()["links_lost"] == lost
                )

            await until_links(seen, a, b)
            for _ in range(50):  # while the links are re-dialled (bounded)
                burst()
                if len(conn.links) == len(far.links) == 3:
                    break
                await asyncio.sleep(0)  # let the loop run the re-dial between bursts
            await until_links(lambda: len(conn.links) == len(far.links) == 3, a, b)
            burst()
        await drain()
        for way in ("ab", "ba"):
            assert got[way] == {s: list(range(n)) for s, n in sent[way].items()}, way
        assert conn.stats()["links_redialled"] == lost
        assert b_seam.lost.empty() and a_seam.lost.empty()

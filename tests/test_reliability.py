"""Reliability on real sockets: stalled readers, dead peers, floods and connection storms.

Each test measures what a misbehaving client costs the server (RSS, queued bytes,
mailbox length, file descriptors, tasks) and checks that well-behaved connections
on the same node keep working meanwhile. ``test_ws_limits.py`` has the basic
limit tests (1008 over the outbound limit, 1011 for a peer that never answers);
these add the load around them.
"""

from __future__ import annotations

import asyncio
import gc
import os
import struct
from collections.abc import Callable
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from ws_helpers import HOST, Got, Probe, RawClient, Served, ServerProbe, run, serve, upgrade_request

import ergopy
from ergopy import act, gen
from ergopy.meta import websocket

KiB = 1024
MiB = 1 << 20


# ---- measuring -------------------------------------------------------------------------------------


def rss_kib() -> int:
    """This process's resident set size (VmRSS) in KiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/self/status")


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


async def until(pred: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Wait until ``pred()`` holds (checked every loop turn for a while, then every 10 ms)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    turns = 0
    while not pred():
        if loop.time() > deadline:
            pytest.fail(f"{what} did not happen within {timeout} s")
        turns += 1
        await asyncio.sleep(0 if turns < 100 else 0.01)


async def next_matching(queue: asyncio.Queue[Got], pred: Callable[[Any], bool], timeout: float = 5.0) -> Any:
    """The first probe message satisfying ``pred``, discarding the others (e.g. another client's echoes)."""
    async with asyncio.timeout(timeout):
        while True:
            got = await queue.get()
            if pred(got.message):
                return got.message


def disconnect_of(alias: gen.Alias) -> Callable[[Any], bool]:
    return lambda m: isinstance(m, websocket.MessageDisconnect) and m.id == alias


def connect_msg(m: Any) -> bool:
    return isinstance(m, websocket.MessageConnect)


async def serve_pool(
    node: ergopy.Node, pool: list[str], options: websocket.HandlerOptions, queue: asyncio.Queue[Got]
) -> Served:
    """Like ``ws_helpers.serve``, over workers the test has already registered under ``pool``."""
    options.process_pool = pool
    probes: list[ServerProbe] = []

    def factory() -> ServerProbe:
        probes.append(ServerProbe())
        return probes[-1]

    pid = await node.spawn_register("srv", factory, None, queue, options, True, None, {})
    return Served(node, queue, probes[0].server.port, pid, probes[0])


class RoundTrips:
    """A well-behaved client on the same node echoing in a loop; ``count`` round trips done so far."""

    def __init__(self, c: ClientConnection) -> None:
        self.c = c
        self.count = 0
        self.slowest = 0.0
        self._stopping = False
        self._task = asyncio.get_running_loop().create_task(self._go())

    async def _go(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stopping:
            t0 = loop.time()
            await self.c.send(f"rt {self.count}")
            async with asyncio.timeout(5):
                assert await self.c.recv() == f"rt {self.count}"
            self.slowest = max(self.slowest, loop.time() - t0)
            self.count += 1

    async def stop(self) -> None:
        """End after the round trip in progress (raising what the loop raised, if it failed)."""
        self._stopping = True
        async with asyncio.timeout(10):
            await self._task


class Echo(act.Actor):
    """Echoes and records nothing (a probe's queue would grow with every round trip)."""

    def handle_message(self, from_: gen.PID, message: Any) -> None:
        if isinstance(message, websocket.Message):
            self.send_alias(message.id, message)  # type: ignore[arg-type]


# ---- slow and stalled readers ---------------------------------------------------------------------


async def test_stalled_reader_1kib_messages_bounded_queue_and_rss_1008_while_others_echo(node: ergopy.Node) -> None:
    """A client completes the handshake and never reads; its worker keeps sending 1 KiB messages.

    The bytes queued for it never exceed ``outbound_limit`` plus one frame, RSS stays
    bounded, the connection is closed with 1008 (default policy) and the worker gets
    ``MessageDisconnect``; another client on the node keeps echoing throughout.
    """
    options = websocket.HandlerOptions()  # defaults: 1 MiB, CLOSE
    limit = options.outbound_limit
    s = await serve(node, pool=["w1", "w2"], options=options)
    stalled = await RawClient.connect(s.port, rcvbuf=4096)  # -> w1; never reads again
    mc = await next_matching(s.queue, connect_msg)
    live = await connect(s.url())  # -> w2
    await next_matching(s.queue, connect_msg)
    rt = RoundTrips(live)
    await until(lambda: rt.count >= 5, what="first round trips")

    gc.collect()
    rss0 = rss_kib()
    body = b"m" * KiB

    async def pump(p: Probe) -> tuple[int, int, int]:
        sent = peak = 0
        rts_at_start = rt.count
        while True:
            try:
                p.send_alias(mc.id, websocket.Message(body=body))
                sent += 1
                if sent % 16 == 0:
                    info = await p.inspect_meta(mc.id)  # also lets the loop move the bytes
                    peak = max(peak, int(info["queued bytes"]))
            except gen.Error:
                return sent, peak, rt.count - rts_at_start
            if sent > 200_000:
                pytest.fail("200 MiB went to a client that reads nothing")

    sent, peak, rts_during = await run(node, "w1", pump, timeout=30)
    rss1 = rss_kib()
    md = await next_matching(s.queue, disconnect_of(mc.id), timeout=5)
    assert md.code == 1008
    assert not node.alias_exists(mc.id)
    frame = KiB + 4  # a 1 KiB text frame on the wire
    assert peak <= limit + frame, f"{peak} bytes queued, limit {limit}"
    assert rss1 - rss0 < 24 * 1024, f"RSS grew {rss1 - rss0} KiB"
    await stalled.wait_eof()  # the socket is really closed
    stalled.close()

    before = rt.count
    await until(lambda: rt.count >= before + 20, what="round trips after the stalled reader was cut")
    await rt.stop()
    await live.close()
    print(
        f"\nstalled reader: {sent} x 1 KiB sent before 1008, peak queued {peak} B (limit {limit}), "
        f"RSS {rss0} -> {rss1} KiB ({rss1 - rss0:+d}), {rts_during} round trips meanwhile, "
        f"slowest {rt.slowest * 1000:.1f} ms"
    )
    assert rts_during >= 5, f"only {rts_during} round trips on the other connection while the stalled one filled"


async def test_many_stalled_readers_are_all_cut_and_memory_is_bounded(node: ergopy.Node) -> None:
    """20 stalled readers at once, each fed 1 KiB messages: every one is cut with 1008."""
    limit = 128 * KiB
    options = websocket.HandlerOptions(outbound_limit=limit)
    s = await serve(node, pool=["w1", "w2"], options=options)
    stalled = [await RawClient.connect(s.port, rcvbuf=4096) for _ in range(20)]
    ids = [(await next_matching(s.queue, connect_msg)).id for _ in stalled]
    live = await connect(s.url())
    await next_matching(s.queue, connect_msg)
    rt = RoundTrips(live)
    gc.collect()
    rss0 = rss_kib()
    body = b"n" * KiB

    async def pump(p: Probe) -> int:
        alive = set(ids)
        sent = 0
        while alive:
            for a in list(alive):
                if not node.alias_exists(a):  # cut: a send to it would be a dead letter now
                    alive.discard(a)
                    continue
                p.send_alias(a, websocket.Message(body=body))
                sent += 1
            await asyncio.sleep(0)
            if sent > 400_000:
                pytest.fail("400 MiB went to clients that read nothing")
        return sent

    sent = await run(node, "w1", pump, timeout=60)
    rss1 = rss_kib()
    codes = {}
    while len(codes) < len(ids):
        md = await next_matching(s.queue, lambda m: isinstance(m, websocket.MessageDisconnect), timeout=5)
        codes[md.id] = md.code
    assert codes == dict.fromkeys(ids, 1008)
    for c in stalled:
        await c.wait_eof()
        c.close()
    before = rt.count
    await until(lambda: rt.count >= before + 10, what="round trips after the stalled readers were cut")
    await rt.stop()
    await live.close()
    print(f"\n20 stalled readers: {sent} x 1 KiB sent, RSS {rss0} -> {rss1} KiB ({rss1 - rss0:+d})")
    assert rss1 - rss0 < 48 * 1024


# ---- dead peers -------------------------------------------------------------------------------------


async def test_a_peer_that_vanishes_mid_conversation_is_found_by_keepalive(node: ergopy.Node) -> None:
    """The client talks, then vanishes (TCP open, reads and writes nothing) while its worker keeps
    sending it small messages: keepalive drops it with 1011 within one ping round after its last pong."""
    interval = timeout = 0.3
    options = websocket.HandlerOptions(ping_interval=interval, ping_timeout=timeout)
    s = await serve(node, pool=["w1", "w2"], options=options)
    loop = asyncio.get_running_loop()
    raw = await RawClient.connect(s.port, rcvbuf=4096)
    mc = await next_matching(s.queue, connect_msg)
    # a conversation with keepalive rounds answered, then silence
    pongs = 0
    raw.send_frame(1, b"hello")
    while pongs < 2:
        f = await raw.read_frame(timeout=3)
        assert f is not None
        if f[0] == 9:
            raw.send_frame(10, f[1])
            pongs += 1
    vanished = loop.time()

    async def chatter(p: Probe) -> int:
        n = 0
        while node.alias_exists(mc.id):  # once it is gone a send would only be a dead letter
            p.send_alias(mc.id, websocket.Message(body=b"x" * 200))
            n += 1
            await asyncio.sleep(0.01)  # a broadcast every 10 ms, as a busy chat room
        return n

    task = loop.create_task(run(node, "w1", chatter, timeout=10))
    md = await next_matching(s.queue, disconnect_of(mc.id), timeout=5)
    detected = loop.time() - vanished
    await task
    assert md.code in (1011, 1006), md
    # the last pong answered a ping just sent; the next ping goes out ping_interval after
    # that one and fails ping_timeout later: interval + timeout (plus timer slack)
    assert detected <= interval + timeout + 0.2, detected
    print(f"\nvanished peer: detected after {detected:.3f} s with {md.code} (interval {interval}, timeout {timeout})")
    raw.close()


async def read_frames_answering_pings(
    raw: RawClient, stop: asyncio.Event, rate: float | None, stats: dict[str, int]
) -> None:
    """Read frames as a correct client does (answer every ping); ``rate``: bytes per second, or full speed."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    got = 0
    while not stop.is_set():
        b1, b2 = await raw.reader.readexactly(2)
        n = b2 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", await raw.reader.readexactly(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", await raw.reader.readexactly(8))
        remaining = n
        payload = b""
        while remaining:
            chunk = await raw.reader.read(min(remaining, 16 * KiB))
            if not chunk:
                raise ConnectionError("closed")
            remaining -= len(chunk)
            got += len(chunk)
            if (b1 & 0x0F) in (8, 9):
                payload += chunk
            if rate:
                ahead = got / rate - (loop.time() - t0)
                if ahead > 0:
                    await asyncio.sleep(ahead)  # a client on a slow link
        op = b1 & 0x0F
        if op == 9:
            raw.send_frame(10, payload)
            stats["pings"] += 1
        elif op == 8:
            stats["closed"] = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
            return
        else:
            stats["messages"] += 1


async def test_a_ping_that_reaches_the_peer_behind_output_just_before_its_deadline_gets_time_for_its_pong(
    node: ergopy.Node,
) -> None:
    """The ping goes out behind 768 KiB the peer has not read; the peer reads it all shortly
    before the ping's deadline (its TCP takes the ping then) and answers after the deadline:
    alive. The same peer with nothing queued ahead of the ping is dropped (see
    test_ws_limits): the extra ``ping_timeout`` is only for a ping that waited behind output."""
    interval = timeout = 1.0
    options = websocket.HandlerOptions(ping_interval=interval, ping_timeout=timeout)
    s = await serve(node, pool=["w1"], options=options)
    loop = asyncio.get_running_loop()
    raw = await RawClient.connect(s.port, rcvbuf=4 * KiB)
    mc = await next_matching(s.queue, connect_msg)
    t0 = loop.time()  # the connection's keepalive clock started about now: first ping at t0 + interval
    body = b"B" * (256 * KiB)
    for _ in range(3):
        await run(
            node, "w1", lambda p: p.send_alias(mc.id, websocket.Message(type=websocket.MessageType.BINARY, body=body))
        )
    # the scenario, timed against the server's keepalive clock (not a synchronisation):
    # a peer that reads nothing until 0.3 s before the ping's deadline...
    await asyncio.sleep(interval + 0.7 * timeout)
    for _ in range(3):
        f = await raw.read_frame(timeout=5)
        assert f is not None and f[0] == 2, f
    f = await raw.read_frame(timeout=5)
    assert f == (9, b""), f
    pinged_at = loop.time() - t0
    assert pinged_at < interval + timeout, "the ping was read after its deadline: the machine was too slow"
    await asyncio.sleep(interval + timeout + 0.3 * timeout - pinged_at)  # ...and answers 0.3 s after it
    raw.send_frame(10, b"")
    raw.send_frame(1, b"still here")
    got = await next_matching(s.queue, lambda m: isinstance(m, websocket.Message | websocket.MessageDisconnect))
    assert isinstance(got, websocket.Message) and got.body == b"still here", got
    assert node.alias_exists(mc.id)
    raw.close()


@pytest.mark.parametrize("rate", [None, 2 * MiB], ids=["full-speed", "slow-link-2MiB/s"])
async def test_a_peer_answering_pings_is_not_dropped_while_256kib_messages_stream_to_it(
    node: ergopy.Node, rate: float | None
) -> None:
    """Big messages delay a pong behind them; a peer still taking our output is alive.

    The worker keeps about 512 KiB queued (under the 1 MiB outbound limit) for several
    keepalive rounds; on the slow link each pong comes back later than ``ping_timeout``.
    """
    interval = timeout = 0.3
    options = websocket.HandlerOptions(ping_interval=interval, ping_timeout=timeout)
    s = await serve(node, pool=["w1"], options=options)
    raw = await RawClient.connect(s.port, rcvbuf=64 * KiB)
    mc = await next_matching(s.queue, connect_msg)
    stop = asyncio.Event()
    stats = {"pings": 0, "messages": 0}
    reader = asyncio.get_running_loop().create_task(read_frames_answering_pings(raw, stop, rate, stats))
    body = b"B" * (256 * KiB)
    duration = 4 * (interval + timeout)

    async def stream(p: Probe) -> tuple[int, int]:
        loop = asyncio.get_running_loop()
        end = loop.time() + duration
        sent = peak = 0
        while loop.time() < end:
            try:
                info = await p.inspect_meta(mc.id)
                queued = int(info["queued bytes"])
                peak = max(peak, queued)
                if queued < 512 * KiB:
                    p.send_alias(mc.id, websocket.Message(type=websocket.MessageType.BINARY, body=body))
                    sent += 1
                else:
                    await asyncio.sleep(0.005)
            except gen.Error:
                break  # the connection is gone: its MessageDisconnect tells why
        return sent, peak

    sent, peak = await run(node, "w1", stream, timeout=duration + 10)
    if not node.alias_exists(mc.id):
        md = await next_matching(s.queue, disconnect_of(mc.id))
        pytest.fail(f"dropped after {sent} messages, peak queued {peak}, {stats}: {md}")
    assert s.queue.empty(), f"unexpected: {s.queue.get_nowait()}"
    # the client reads what is still on its way; then a clean close
    await until(lambda: stats["messages"] == sent, timeout=30, what="the client read every message")
    node.send_exit_meta(mc.id, gen.TERMINATE_REASON_NORMAL)
    md = await next_matching(s.queue, disconnect_of(mc.id), timeout=10)
    await asyncio.wait_for(reader, 10)
    assert (md.code, stats.get("closed")) == (1000, 1000), (md, stats)
    assert stats["pings"] >= 3, stats
    link = "full speed" if rate is None else f"{rate / MiB:g} MiB/s"
    print(
        f"\n256 KiB stream ({link}): {sent} messages ({sent * 256 >> 10} MiB) in {duration:.1f} s, "
        f"peak queued {peak >> 10} KiB, {stats['pings']} pings answered"
    )
    raw.close()


# ---- floods -------------------------------------------------------------------------------------------


class SlowWorker(act.Actor):
    """Awaits per message (a database write, say); records its own mailbox length as it goes."""

    def init(self, stats: dict[str, Any]) -> None:
        self.stats = stats

    async def handle_message(self, from_: gen.PID, message: Any) -> None:
        if isinstance(message, websocket.Message):
            n = self.node.process_info(self.pid)["messages_mailbox"]
            st = self.stats
            st["peak"] = max(st["peak"], n)
            st["handled"] += 1
            st["bytes"] += len(message.body)
            if st["slow"]:
                await asyncio.sleep(0.0005)
        elif isinstance(message, websocket.MessageConnect):
            self.stats["conn"].set_result(message)
        elif isinstance(message, websocket.MessageDisconnect):
            self.stats["disc"].set_result(message)


async def test_a_flooding_client_is_held_back_by_tcp_and_the_mailbox_stays_near_high_water(
    node: ergopy.Node,
) -> None:
    high = 200
    options = websocket.HandlerOptions(mailbox_high_water=high)
    loop = asyncio.get_running_loop()
    stats: dict[str, Any] = {
        "peak": 0, "handled": 0, "bytes": 0, "slow": True, "conn": loop.create_future(), "disc": loop.create_future()
    }  # fmt: skip
    await node.spawn_register("slow", SlowWorker, None, stats)
    await node.spawn_register("w2", Echo)  # for the second client
    s = await serve_pool(node, ["slow", "w2"], options, asyncio.Queue())  # the flooder goes to the slow worker
    flooder = await RawClient.connect(s.port)
    mc = await asyncio.wait_for(stats["conn"], 5)
    live = await connect(s.url())
    rt = RoundTrips(live)

    gc.collect()
    rss0 = rss_kib()
    payload = b"f" * 64
    frame = struct.pack("!BB", 0x81, 0x80 | len(payload)) + b"\x00\x00\x00\x00" + payload  # zero mask key
    sent = 0
    t0 = loop.time()
    while loop.time() - t0 < 2.0:  # as fast as TCP lets it, for 2 s
        flooder.writer.write(frame * 256)
        sent += 256
        await flooder.writer.drain()  # blocks while the server does not read: TCP pushes back
        mailbox = node.process_info(node.lookup_name("slow").pid)["messages_mailbox"]  # type: ignore[union-attr]
        stats["peak"] = max(stats["peak"], mailbox)
    rss1 = rss_kib()
    handled = stats["handled"]
    in_flight = sent - handled  # held by the two kernels' socket buffers, aiohttp's reader, the mailbox
    rts = rt.count
    await rt.stop()
    await live.close()
    flooder.close()  # RST: what was read is delivered, then MessageDisconnect with 1006
    stats["slow"] = False  # the backlog (what the kernels held) drains at full speed
    md = await asyncio.wait_for(stats["disc"], 30)
    assert (md.id, md.code) == (mc.id, 1006)
    check = max(1, min(64, high // 4))
    print(
        f"\nflood: client wrote {sent} messages in 2 s, worker handled {handled} "
        f"({in_flight} in sockets/buffers), mailbox peak {stats['peak']} (high water {high}), "
        f"RSS {rss0} -> {rss1} KiB ({rss1 - rss0:+d}), {rts} round trips on another connection"
    )
    assert stats["peak"] <= high + check, f"mailbox reached {stats['peak']}, high water {high}"
    assert in_flight * 70 < 16 * MiB, f"{in_flight} messages were accepted but not handled"
    assert rss1 - rss0 < 32 * 1024
    assert rts >= 10


# ---- connection storms --------------------------------------------------------------------------------


async def storm_cycle(port: int, i: int, request: bytes) -> None:
    """One connect/disconnect cycle: a handshake, one echo, then a close frame or an abrupt reset."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head[:40]
        mode = i % 3
        if mode == 0:  # abrupt: RST right after the handshake
            return
        writer.write(b"\x81\x82\x00\x00\x00\x00hi")  # masked "hi", zero key
        assert await reader.readexactly(4) == b"\x81\x02hi"
        if mode == 1:  # graceful close handshake
            writer.write(b"\x88\x82\x00\x00\x00\x00\x03\xe8")
            assert (await reader.readexactly(4))[:2] == b"\x88\x02"
            await reader.read()  # server closes TCP
    finally:
        writer.transport.abort()


async def test_a_burst_of_connects_fits_the_listen_backlog(node: ergopy.Node) -> None:
    """500 clients connect at once: none waits out a SYN retransmit (1 s) because the accept
    queue overflowed (asyncio's create_server listens with 100 unless given the backlog)."""
    await node.spawn_register("q1", Echo)
    s = await serve_pool(node, ["q1"], websocket.HandlerOptions(), asyncio.Queue())
    loop = asyncio.get_running_loop()

    async def connect_time() -> float:
        t0 = loop.time()
        _, writer = await asyncio.open_connection(HOST, s.port)
        t = loop.time() - t0
        writer.transport.abort()
        return t

    times = sorted(await asyncio.gather(*(connect_time() for _ in range(500))))
    print(f"\nburst of 500 connects: p50 {times[250] * 1000:.1f} ms, max {times[-1] * 1000:.1f} ms")
    assert times[-1] < 0.9, f"slowest connect took {times[-1]:.2f} s: the accept queue overflowed"
    await until(lambda: not s.probe.server._lowlevel.connections, what="the server dropped every socket")


@pytest.mark.storm
async def test_ten_thousand_connect_disconnect_cycles_leave_nothing_behind(node: ergopy.Node) -> None:
    cycles, batch = 10_000, 200
    await node.spawn_register("q1", Echo)
    await node.spawn_register("q2", Echo)
    s = await serve_pool(node, ["q1", "q2"], websocket.HandlerOptions(), asyncio.Queue())
    srv = s.probe
    request = upgrade_request(s.port)
    loop = asyncio.get_running_loop()

    async def wave(start: int, n: int) -> None:
        for b in range(start, start + n, batch):
            await asyncio.gather(*(storm_cycle(s.port, i, request) for i in range(b, min(b + batch, start + n))))
        await until(lambda: s.handler.connections == 0, what="every connection ended")
        await until(lambda: not srv.server._lowlevel.connections, what="the server dropped every socket")

    warm = 400
    await wave(0, warm)
    gc.collect()
    base = node.stats()
    tasks0 = len(asyncio.all_tasks())
    fds0 = fd_count()
    rss0 = rss_kib()
    t0 = loop.time()
    await wave(warm, cycles)
    elapsed = loop.time() - t0
    gc.collect()
    await until(lambda: node.stats() == base, what="node stats back to the baseline")
    await until(lambda: len(asyncio.all_tasks()) <= tasks0, what="tasks back to the baseline")
    await until(lambda: fd_count() <= fds0, what="file descriptors back to the baseline")
    rss1 = rss_kib()
    stats = node.stats()
    print(
        f"\nstorm: {cycles} cycles in {elapsed:.1f} s ({cycles / elapsed:.0f}/s, {batch} at a time); "
        f"stats {base} -> {stats}; tasks {tasks0} -> {len(asyncio.all_tasks())}; fds {fds0} -> {fd_count()}; "
        f"RSS {rss0} -> {rss1} KiB ({(rss1 - rss0) * 100 / rss0:+.1f}%); accepted {s.handler.accepted}"
    )
    assert s.handler.accepted == warm + cycles
    assert elapsed < 40, f"{cycles} cycles took {elapsed:.0f} s"
    assert rss1 <= rss0 * 1.10, f"RSS {rss0} -> {rss1} KiB"

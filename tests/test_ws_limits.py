"""Limits of a connection served natively: message size, keepalive, idle timeout, slow consumers."""

from __future__ import annotations

import asyncio

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from ws_helpers import Probe, RawClient, expect, run, serve

import ergopy
from ergopy import gen
from ergopy.meta import websocket

pytestmark = pytest.mark.timeout(20)  # a hang fails fast; every wait inside has its own timeout

MiB = 1 << 20
CHUNK = 64 * 1024


async def test_default_max_message_size_is_1_mib(node: ergopy.Node) -> None:
    assert websocket.HandlerOptions().max_message_size == MiB
    s = await serve(node, pool=["w1"], echo=False)
    async with connect(s.url(), max_size=None) as c:
        mc = await expect(s.queue, websocket.MessageConnect)
        await c.send(b"x" * MiB)  # exactly the limit: delivered
        assert len((await expect(s.queue, websocket.Message)).body) == MiB
        await c.send(b"x" * (MiB + 1))
        with pytest.raises(ConnectionClosed) as e:
            await asyncio.wait_for(c.recv(), 5)
        assert e.value.rcvd is not None and e.value.rcvd.code == 1009
    md = await expect(s.queue, websocket.MessageDisconnect)
    assert (md.id, md.code) == (mc.id, 1009)


async def test_a_smaller_max_message_size_closes_with_1009(node: ergopy.Node) -> None:
    s = await serve(node, pool=["w1"], options=websocket.HandlerOptions(max_message_size=100))
    async with connect(s.url()) as c:
        await expect(s.queue, websocket.MessageConnect)
        await c.send("y" * 100)
        assert await c.recv() == "y" * 100
        await c.send("y" * 101)
        with pytest.raises(ConnectionClosed) as e:
            await asyncio.wait_for(c.recv(), 5)
        assert e.value.rcvd is not None and e.value.rcvd.code == 1009
    assert (await expect(s.queue, websocket.Message)).body == b"y" * 100
    assert (await expect(s.queue, websocket.MessageDisconnect)).code == 1009


async def test_a_fragmented_message_over_the_limit_closes_with_1009(node: ergopy.Node) -> None:
    s = await serve(node, pool=["w1"], options=websocket.HandlerOptions(max_message_size=100))
    raw = await RawClient.connect(s.port)
    await expect(s.queue, websocket.MessageConnect)
    raw.send_frame(2, b"a" * 60, fin=False)  # each fragment is under the limit, the message is not
    raw.send_frame(0, b"a" * 60)
    assert await raw.read_close() == 1009
    assert (await expect(s.queue, websocket.MessageDisconnect)).code == 1009
    raw.close()


# ---- keepalive ---------------------------------------------------------------------------------------


async def test_a_peer_that_never_answers_pings_is_dropped_with_1011(node: ergopy.Node) -> None:
    interval = timeout = 0.2
    options = websocket.HandlerOptions(ping_interval=interval, ping_timeout=timeout)
    s = await serve(node, pool=["w1"], options=options)
    loop = asyncio.get_running_loop()
    raw = await RawClient.connect(s.port)  # completes the handshake, then reads nothing
    mc = await expect(s.queue, websocket.MessageConnect)
    t0 = loop.time()
    md = await expect(s.queue, websocket.MessageDisconnect, timeout=3)
    elapsed = loop.time() - t0
    assert (md.id, md.code) == (mc.id, 1011)
    assert interval + timeout - 0.05 <= elapsed < interval + timeout + 0.5
    assert await raw.read_frame() == (9, b"")  # the ping it never answered...
    assert await raw.read_frame() is None  # ...then the socket was cut
    raw.close()


async def test_a_peer_that_answers_pings_is_never_dropped(node: ergopy.Node) -> None:
    options = websocket.HandlerOptions(ping_interval=0.1, ping_timeout=0.1)
    s = await serve(node, pool=["w1"], options=options)
    raw = await RawClient.connect(s.port)
    await expect(s.queue, websocket.MessageConnect)
    for _ in range(5):  # five keepalive rounds, about a second
        frame = await raw.read_frame(timeout=2)
        assert frame is not None and frame[0] == 9
        raw.send_frame(10, frame[1])
    raw.send_frame(1, b"still alive")
    assert (await expect(s.queue, websocket.Message)).body == b"still alive"
    assert await raw.read_frame() == (1, b"still alive")
    assert s.queue.empty()
    raw.close()


# ---- idle timeout ------------------------------------------------------------------------------------


async def test_idle_timeout_closes_a_silent_connection(node: ergopy.Node) -> None:
    options = websocket.HandlerOptions(idle_timeout=0.3, ping_interval=None)
    s = await serve(node, pool=["w1"], options=options)
    loop = asyncio.get_running_loop()
    async with connect(s.url()) as c:
        await expect(s.queue, websocket.MessageConnect)
        t0 = loop.time()
        with pytest.raises(ConnectionClosed) as e:
            await asyncio.wait_for(c.recv(), 5)
        elapsed = loop.time() - t0
    assert e.value.rcvd is not None and e.value.rcvd.code == 1000
    assert 0.25 <= elapsed < 1.0
    md = await expect(s.queue, websocket.MessageDisconnect)
    assert (md.code, md.reason) == (1000, "idle timeout")


async def test_idle_timeout_counts_messages_not_keepalive_pings(node: ergopy.Node) -> None:
    # pings every 0.05 s are answered by the client; they must neither keep the
    # connection "busy" forever nor shorten the idle timeout to the ping period
    options = websocket.HandlerOptions(idle_timeout=0.5, ping_interval=0.05, ping_timeout=0.05)
    s = await serve(node, pool=["w1"], options=options)
    loop = asyncio.get_running_loop()
    async with connect(s.url(), ping_interval=None) as c:
        await expect(s.queue, websocket.MessageConnect)
        t0 = loop.time()
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(c.recv(), 5)
        elapsed = loop.time() - t0
    assert 0.45 <= elapsed < 1.2, elapsed
    assert (await expect(s.queue, websocket.MessageDisconnect)).reason == "idle timeout"


async def test_messages_keep_a_connection_from_going_idle(node: ergopy.Node) -> None:
    options = websocket.HandlerOptions(idle_timeout=0.3, ping_interval=None)
    s = await serve(node, pool=["w1"], options=options)
    loop = asyncio.get_running_loop()
    async with connect(s.url()) as c:
        await expect(s.queue, websocket.MessageConnect)
        t0 = loop.time()
        while loop.time() - t0 < 0.9:  # three idle periods of traffic, each message waits for its echo
            await c.send("tick")
            assert await c.recv() == "tick"
            await expect(s.queue, websocket.Message)
        assert s.queue.empty()
    assert (await expect(s.queue, websocket.MessageDisconnect)).code == 1000


# ---- slow consumers ------------------------------------------------------------------------------------


async def pump(p: Probe, alias: gen.Alias, limit: int, until_dropped: int = 0) -> tuple[int, int, int]:
    """Send 64 KiB messages to ``alias`` until it is gone (or ``until_dropped`` were dropped).

    Returns (messages sent, the most bytes ever queued for the peer, messages dropped).
    """
    peak = dropped = 0
    for sent in range(1, 4000):
        try:
            p.send_alias(alias, websocket.Message(type=websocket.MessageType.BINARY, body=b"z" * CHUNK))
            info = await p.inspect_meta(alias)  # also lets the loop move the bytes
        except gen.Error:
            return sent, peak, dropped
        peak = max(peak, int(info["queued bytes"]))
        dropped = int(info["messages dropped"])
        if until_dropped and dropped >= until_dropped:
            return sent, peak, dropped
    pytest.fail(f"the connection took {4000 * CHUNK} bytes from a peer that reads nothing")


async def test_a_stalled_reader_is_closed_with_1008_and_memory_stays_bounded(node: ergopy.Node) -> None:
    limit = 256 * 1024
    s = await serve(node, pool=["w1"], options=websocket.HandlerOptions(outbound_limit=limit))
    raw = await RawClient.connect(s.port, rcvbuf=4096)  # and never reads
    mc = await expect(s.queue, websocket.MessageConnect)
    _, peak, _ = await run(node, "w1", lambda p: pump(p, mc.id, limit), timeout=20)
    assert peak <= limit + CHUNK + 64, f"{peak} bytes were queued"
    md = await expect(s.queue, websocket.MessageDisconnect)
    assert (md.id, md.code) == (mc.id, 1008)
    assert not node.alias_exists(mc.id)
    await raw.wait_eof()  # the socket is really closed, backlog or not
    raw.close()


async def test_default_slow_consumer_policy_closes_over_1_mib(node: ergopy.Node) -> None:
    options = websocket.HandlerOptions()
    assert (options.outbound_limit, options.slow_consumer) == (MiB, websocket.SlowConsumerPolicy.CLOSE)
    s = await serve(node, pool=["w1"], options=options)
    raw = await RawClient.connect(s.port, rcvbuf=4096)
    mc = await expect(s.queue, websocket.MessageConnect)
    _, peak, _ = await run(node, "w1", lambda p: pump(p, mc.id, MiB), timeout=20)
    assert peak <= MiB + CHUNK + 64
    assert (await expect(s.queue, websocket.MessageDisconnect)).code == 1008
    raw.close()


async def test_drop_policy_drops_messages_and_keeps_the_connection(node: ergopy.Node) -> None:
    limit = 256 * 1024
    options = websocket.HandlerOptions(outbound_limit=limit, slow_consumer=websocket.SlowConsumerPolicy.DROP)
    s = await serve(node, pool=["w1"], options=options)
    raw = await RawClient.connect(s.port, rcvbuf=4096)
    mc = await expect(s.queue, websocket.MessageConnect)
    _, peak, dropped = await run(node, "w1", lambda p: pump(p, mc.id, limit, until_dropped=20), timeout=20)
    assert dropped >= 20
    assert peak <= limit + CHUNK + 64
    assert s.queue.empty()  # no MessageDisconnect: still connected
    raw.send_frame(1, b"can you hear me")  # it still reads what the peer sends
    assert (await expect(s.queue, websocket.Message)).body == b"can you hear me"
    raw.send_frame(8, websocket.close_body(1000, "bye"))
    md = await expect(s.queue, websocket.MessageDisconnect)
    assert (md.id, md.code, md.reason) == (mc.id, 1000, "bye")
    raw.close()


# ---- flood control and slow handshakes --------------------------------------------------------------


async def test_a_flooding_client_is_not_read_while_its_worker_is_behind(node: ergopy.Node) -> None:
    high = 10
    s = await serve(node, pool=["w1"], options=websocket.HandlerOptions(mailbox_high_water=high), echo=False)
    gate = asyncio.Event()
    async with connect(s.url()) as c:
        mc = await expect(s.queue, websocket.MessageConnect)
        blocked = asyncio.ensure_future(run(node, "w1", lambda p: gate.wait()))  # the worker is busy
        for i in range(500):
            await c.send(str(i))
        pong = await c.ping()
        with pytest.raises(TimeoutError):  # the connection stopped reading: the ping waits in the socket
            await asyncio.wait_for(asyncio.shield(pong), 0.5)
        waiting = node.process_info(node.lookup_name("w1").pid)["messages_mailbox"]  # type: ignore[union-attr]
        info = await node.inspect_meta(mc.id)
        # it read up to the high-water mark (the gate request may still have been queued
        # at the check), and at most one check period (high // 4 messages) beyond it
        assert high - 1 <= waiting <= high + high // 4, (waiting, info)
        gate.set()
        await blocked
        await asyncio.wait_for(pong, 5)  # reading resumed once the worker caught up
        for i in range(500):
            assert (await expect(s.queue, websocket.Message)).body == str(i).encode()


async def test_a_client_that_sends_no_request_head_is_cut_after_the_servers_handshake_timeout(
    node: ergopy.Node,
) -> None:
    s = await serve(node, pool=["w1"], handshake_timeout=0.3)
    loop = asyncio.get_running_loop()
    raw = await RawClient.open(s.port)
    raw.writer.write(b"GET /ws HTTP/1.1\r\nHost: x\r\n")  # and never the rest (slowloris)
    t0 = loop.time()
    await raw.wait_eof()
    assert 0.25 <= loop.time() - t0 < 1.5
    raw.close()
    assert s.queue.empty()


async def test_the_handlers_handshake_timeout_bounds_the_request_head_when_the_server_sets_none(
    node: ergopy.Node,
) -> None:
    s = await serve(node, pool=["w1"], options=websocket.HandlerOptions(handshake_timeout=0.3))
    loop = asyncio.get_running_loop()
    raw = await RawClient.open(s.port)
    raw.writer.write(b"GET /ws HTTP/1.1\r\nHost: x\r\n")  # and never the rest
    t0 = loop.time()
    await raw.wait_eof()
    assert 0.25 <= loop.time() - t0 < 1.5
    raw.close()
    assert s.queue.empty()

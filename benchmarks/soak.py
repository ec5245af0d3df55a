"""Soak: 1,000 WebSocket connections echoing through a supervised worker pool whose workers
crash at random, for a bounded time; checks that no message is lost silently.

The workers (``w0``..``w7``) are children of a ONE_FOR_ONE supervisor; each raises in
``handle_message`` with probability ``--crash`` per message and is restarted under the
same name, so its connections (pinned to the name, as the handler's pool does) carry on
with the new incarnation. The new incarnation tells every connection of the old one
(kept in a registry outside the process, as the chat worker adopts them) with a text
frame ``R``. A message sent while the name is between two incarnations can not be
delivered: the connection is closed with 1011, and the client reconnects.

Each client sends one numbered message at a time and waits for its echo. Definitions:

* **echoed**: the echo came back (``late``: after an ``R`` had given it up);
* **lost, told by R**: pending when the client got ``R`` and never echoed;
* **lost, told by close**: pending when the server closed the connection;
* **lost silently** = sent - echoed - lost told by R - lost told by close: pending messages
  whose probe (``?``, sent after 2 s without an answer, and answered ``?`` behind anything
  still queued) came back first, that got nothing for 30 s, or that were not echoed within
  5 s of the end. It must be 0: a message on a live connection is echoed, or the client is told.

A worker that crashed before handling a connection's ``MessageConnect`` does not know that
connection: its next incarnation adopts it on its next frame (here, the probe) and tells it ``R``.

    python benchmarks/soak.py              # 120 s, 1,000 connections
    python benchmarks/soak.py --quick      # 15 s
    python benchmarks/soak.py --duration 300 --connections 2000 --crash 0.001
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import logging
import os
import random
import resource
import struct
import sys
from dataclasses import dataclass, field
from typing import Any

import ergopy
from ergopy import act, gen
from ergopy.meta import web, websocket

HOST = "127.0.0.1"
MAX_DURATION = 300.0
PROBE_AFTER = 2.0  # seconds without an answer before the client sends a probe "?"
STUCK_AFTER = 30.0


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


@dataclass
class Stats:
    sent: int = 0
    echoed: int = 0
    late: int = 0
    notices: int = 0
    told_by_r: set[tuple[int, int]] = field(default_factory=set)  # (client, seq) given up after R
    told_by_close: int = 0
    in_flight_end: int = 0
    probes: int = 0
    probe_lost: int = 0  # the probe came back, the message never did
    stuck: int = 0  # nothing at all for STUCK_AFTER seconds
    connects: int = 0
    connect_failures: int = 0
    closes: dict[str, int] = field(default_factory=dict)
    restarts: int = 0
    crashes: int = 0
    live: int = 0


# ---- the server side --------------------------------------------------------------------------------


class Worker(act.Actor):
    """Echoes; crashes at random. Connections are remembered per name across incarnations."""

    def init(self, registry: dict[str, set[gen.Alias]], stats: Stats, crash: float) -> None:
        self.registry = registry
        self.stats = stats
        self.crash = crash
        assert self.name is not None
        self.mine = registry.setdefault(self.name.text, set())
        self.restarted = registry.setdefault("", set()).__contains__(self.name.text)
        registry[""].add(self.name.text)
        if self.restarted:  # tell the old incarnation's connections
            stats.restarts += 1
            for alias in list(self.mine):
                try:
                    self.send_alias(alias, websocket.Message(body=b"R"))
                except gen.Error:
                    self.mine.discard(alias)
        self.known = set(self.mine)

    def handle_message(self, from_: gen.PID, message: Any) -> None:
        if type(message) is websocket.Message:
            alias = message.id
            if alias not in self.known:
                # adopted: its MessageConnect went to an incarnation that crashed before
                # handling it, so it was never told; tell it now
                self.known.add(alias)  # type: ignore[arg-type]
                self.mine.add(alias)  # type: ignore[arg-type]
                self.send_alias(alias, websocket.Message(body=b"R"))  # type: ignore[arg-type]
            if message.body == b"?":  # the client's probe after 2 s without an answer
                self.send_alias(alias, websocket.Message(body=b"?"))  # type: ignore[arg-type]
                return
            if self.crash and random.random() < self.crash:
                self.stats.crashes += 1
                raise RuntimeError("injected crash")
            self.send_alias(alias, websocket.Message(body=message.body))  # type: ignore[arg-type]
        elif type(message) is websocket.MessageConnect:
            self.mine.add(message.id)
            self.known.add(message.id)
        elif type(message) is websocket.MessageDisconnect:
            self.mine.discard(message.id)


class Pool(act.Supervisor):
    def init(self, names: list[str], registry: dict[str, set[gen.Alias]], stats: Stats, crash: float) -> Any:
        return act.SupervisorSpec(
            type=act.SupervisorType.ONE_FOR_ONE,
            children=[act.SupervisorChildSpec(name=n, factory=Worker, args=[registry, stats, crash]) for n in names],
            restart=act.SupervisorRestart(strategy=act.SupervisorStrategy.TRANSIENT, intensity=0xFFFF, period=1),
        )


class Web(act.Actor):
    async def init(self, names: list[str], port: asyncio.Future[int]) -> None:
        handler = websocket.create_handler(websocket.HandlerOptions(process_pool=names))
        self.spawn_meta(handler, gen.MetaOptions())
        server = await web.create_web_server(web.WebServerOptions(host=HOST, port=0, handler=handler, backlog=4096))
        self.spawn_meta(server, gen.MetaOptions())
        port.set_result(server.port)


# ---- the clients ----------------------------------------------------------------------------------------


def text_frame(payload: bytes) -> bytes:
    return struct.pack("!BB", 0x81, 0x80 | len(payload)) + b"\0\0\0\0" + payload  # zero mask key


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    b1, b2 = await reader.readexactly(2)
    n = b2 & 0x7F
    if n == 126:
        (n,) = struct.unpack("!H", await reader.readexactly(2))
    elif n == 127:
        (n,) = struct.unpack("!Q", await reader.readexactly(8))
    return b1 & 0x0F, await reader.readexactly(n)


async def client(i: int, port: int, st: Stats, stop: asyncio.Event, drain_by: list[float]) -> None:
    loop = asyncio.get_running_loop()
    seq = 0
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection(HOST, port)
            key = base64.b64encode(os.urandom(16)).decode()
            writer.write(
                f"GET /ws HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
            )
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 15)
            if not head.startswith(b"HTTP/1.1 101"):
                raise ConnectionError(head[:40].decode(errors="replace"))
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ConnectionError):
            st.connect_failures += 1
            await asyncio.sleep(0.2)
            continue
        st.connects += 1
        st.live += 1
        pending: int | None = None
        waited = 0.0
        try:
            while True:
                if pending is None:
                    if stop.is_set():
                        break
                    seq += 1
                    pending = seq
                    waited = 0.0
                    writer.write(text_frame(b"%d:%d" % (i, seq)))
                    st.sent += 1
                # after the end the rules stay the same (probe a silent worker) until drain_by
                timeout = min(PROBE_AFTER, max(0.1, drain_by[0] - loop.time())) if stop.is_set() else PROBE_AFTER
                try:
                    op, payload = await asyncio.wait_for(read_frame(reader), timeout)
                except TimeoutError:
                    if stop.is_set() and loop.time() >= drain_by[0] - 0.05:
                        st.in_flight_end += 1
                        pending = None
                        break
                    waited += timeout
                    if waited >= STUCK_AFTER:
                        st.stuck += 1  # no echo, no R, no close, no answer to the probe
                        pending = None
                        continue
                    writer.write(text_frame(b"?"))  # anyone there?
                    st.probes += 1
                    continue
                if op == 1:
                    if payload == b"?":
                        if pending is not None:  # the worker answered the probe, not the message
                            st.probe_lost += 1
                            pending = None
                        continue
                    if payload == b"R":
                        st.notices += 1
                        if pending is not None:
                            st.told_by_r.add((i, pending))
                            pending = None
                        continue
                    n = int(payload.split(b":")[1])
                    if n == pending:
                        st.echoed += 1
                        pending = None
                    elif (i, n) in st.told_by_r:
                        st.told_by_r.discard((i, n))
                        st.echoed += 1
                        st.late += 1
                    else:
                        raise AssertionError(f"client {i}: echo of {n}, pending {pending}")
                elif op == 9:
                    writer.write(struct.pack("!BB", 0x8A, 0x80 | len(payload)) + b"\0\0\0\0" + payload)
                elif op == 8:
                    code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                    st.closes[str(code)] = st.closes.get(str(code), 0) + 1
                    if pending is not None:
                        st.told_by_close += 1
                        pending = None
                    break
        except (asyncio.IncompleteReadError, ConnectionError) as e:
            st.closes[type(e).__name__] = st.closes.get(type(e).__name__, 0) + 1
            if pending is not None:
                st.told_by_close += 1  # the socket went away: the client knows
        finally:
            st.live -= 1
            if stop.is_set() and not writer.is_closing():
                writer.write(b"\x88\x82\0\0\0\0\x03\xe8")  # close 1000
            writer.transport.abort()


# ---- the run ------------------------------------------------------------------------------------------


async def soak(duration: float, connections: int, crash: float, report_every: float) -> int:
    logging.getLogger("ergopy").setLevel(logging.CRITICAL)  # every injected crash would log an error
    nofile = raise_nofile()
    node = await ergopy.start_node("soak@localhost", gen.NodeOptions(stop_timeout=10.0))
    st = Stats()
    registry: dict[str, set[gen.Alias]] = {}
    names = [f"w{k}" for k in range(8)]
    await node.spawn_register("pool", Pool, None, names, registry, st, crash)
    loop = asyncio.get_running_loop()
    port_f: asyncio.Future[int] = loop.create_future()
    await node.spawn_register("web", Web, None, names, port_f)
    port = await port_f
    print(
        f"soak: {connections} connections, {len(names)} workers crashing with p={crash} per message, "
        f"{duration:.0f} s; RLIMIT_NOFILE {nofile}; loop {type(loop).__module__}"
    )
    stop = asyncio.Event()
    drain_by = [0.0]
    gc.collect()
    rss0 = rss_mib()
    t0 = loop.time()
    tasks = []
    for b in range(0, connections, 200):  # connect in batches
        tasks += [loop.create_task(client(i, port, st, stop, drain_by)) for i in range(b, min(b + 200, connections))]
        await asyncio.sleep(0.05)
    cols = ("t/s", 6), ("live", 5), ("sent", 9), ("echoed", 9), ("msg/s", 7), ("crashes", 7), ("restarts", 8)
    print(" ".join(f"{c:>{w}}" for c, w in cols), f"{'RSS MiB':>8}")
    last_t, last_echoed = t0, 0
    end = t0 + duration
    while (now := loop.time()) < end:
        await asyncio.sleep(min(report_every, end - now))
        now = loop.time()
        rate = (st.echoed - last_echoed) / (now - last_t)
        last_t, last_echoed = now, st.echoed
        print(
            f"{now - t0:6.1f} {st.live:5d} {st.sent:9d} {st.echoed:9d} {rate:7.0f} {st.crashes:7d} "
            f"{st.restarts:8d} {rss_mib():8.1f}",
            flush=True,
        )
    drain_by[0] = loop.time() + 5.0
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 30)
    elapsed = loop.time() - t0
    rss1 = rss_mib()
    told_r = len(st.told_by_r)
    silent = st.sent - st.echoed - told_r - st.told_by_close
    print(f"\nafter {elapsed:.1f} s: RSS {rss0:.1f} -> {rss1:.1f} MiB")
    print(f"  connections opened {st.connects} (failed attempts {st.connect_failures}), closes {st.closes}")
    print(f"  crashes {st.crashes}, restarts {st.restarts}, R notices received {st.notices}")
    print(f"  sent {st.sent}, echoed {st.echoed} ({st.late} late, after an R), {st.echoed / elapsed:.0f} echoes/s")
    print(f"  lost, told by R: {told_r}; lost, told by close: {st.told_by_close}; probes sent: {st.probes}")
    print(
        f"  lost silently: {silent} (the probe came back without it: {st.probe_lost}, nothing for "
        f"{STUCK_AFTER:.0f} s: {st.stuck}, not echoed within 5 s of the end: {st.in_flight_end})"
    )
    await asyncio.wait_for(node.stop(), 30)
    left = {k: v for k, v in node.stats().items() if v}
    print(f"  node stopped; left behind: {left or 'nothing'}")
    ok = silent == 0 and not left
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=120.0, help="seconds (at most 300)")
    ap.add_argument("--quick", action="store_true", help="15 s")
    ap.add_argument("--connections", type=int, default=1000)
    ap.add_argument("--crash", type=float, default=0.0005, help="probability a worker crashes on a message")
    args = ap.parse_args()
    duration = min(15.0 if args.quick else args.duration, MAX_DURATION)
    every = 3.0 if duration <= 30 else 5.0
    coro = soak(duration, args.connections, args.crash, every)
    try:
        import uvloop
    except ImportError:
        code = asyncio.run(coro)
    else:
        code = uvloop.run(coro)
    sys.exit(code)


if __name__ == "__main__":
    main()

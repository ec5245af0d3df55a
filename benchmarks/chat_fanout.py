"""Broadcast fan-out of the chat example: one line to a room of N members, until all have it.

The chat (``ergopy.examples.chat``: a node, the supervision tree, the web server)
runs in this process; N WebSocket clients run in a subprocess (raw asyncio
protocols, uvloop when installed), each process pinned to its own core when
there are two. All clients join one room; then, per round:

* room: one client sends ``{"type": "say"}``; it travels connection -> worker ->
  room process -> ``send_event`` -> one event per worker -> ``send_alias`` to each
  member -> connection -> socket (the chat's real path);
* direct: the baseline, measured on the same N connections in the same run: this
  process calls ``node.send_alias`` N times with one pre-built frame, as a room
  that kept every member's alias would (the time of the bare loop is printed too).

Latency of a client = the moment it read the line minus the moment the line was
sent (``time.monotonic``, one clock for both processes on Linux). Printed per N:
p50 and p99 of per-client latency and the time to the last client, the median
over ``--rounds`` rounds, for both paths and their ratio.

Throughput mode (issue 11: 2 nodes vs 1 node), in the same run. The chat runs in
node processes (1 node: alone, as today; 2 nodes: ``ChatOptions(cluster=...,
reuse_port=True)``, network on with static routes, connected to each other before
anyone joins) and ``--members`` (5,000) members in one subprocess connect to the one
port, so the kernel spreads them over the nodes, and join one room. ``--senders``
(10) of them say lines in turn at a fixed offered rate for ``--step-seconds``; each
line is ``"L<step><k>"`` and its send time is kept. Latency is per member: the
moment a member read a line minus the moment the line was sent, over every
(line, member) delivery of the step (1 ms histogram); a step passes when every line
reached every member, no connection was lost, the senders kept the offered rate,
and that latency's p99 is at most ``--bound`` ms (500: one line to 5,000 members
alone takes ~90 ms of a node's CPU, so 250 ms would leave room for two lines in the
queue and measure this shared machine's jitter, not the chat's throughput). The latency of a line to
its LAST member (the fan-out's completion: a maximum over 5,000 members, which one
slow read decides) is printed beside it, not judged. Offered rates double from
``--start-rate`` until a step fails, then the interval between the best that passed
and the first that failed is halved (geometrically) until within 8%, ``--steps`` (9)
steps at most. Reported per node count: the highest passing lines/s (and frames/s =
lines/s x members), its p50/p99, to-last p99, node CPU summed over the nodes, the
members' CPU, CPU time per line; then 2 nodes / 1 node. A 1-node sweep runs
first and once more after each sweep of several nodes, and each ratio is to the
geometric mean of the two 1-node sweeps just around it: this machine's speed drifts
over minutes (two 1-node sweeps a few minutes apart have come out 1.5x apart), and
the sweep between them sees the same drift on average (their own ratio is printed).
Under each ratio of nodes that share every core with the members, the most those cores
allow at the CPU per line measured: cores x 1 node's ms/line / (the nodes' + the members'
ms/line), 1 node having had a core of its own (``ws_echo.py`` prints the same for the echo). Pinning:
1 node on the server core, the members on the client core; 2 nodes twice, one per
core ("pinned") and not pinned, as the launcher runs them ("unpinned"; ``--pinning``),
the members not pinned (they share both cores with the nodes: a 2-core machine has
no third). The members' CPU is printed because on two cores it is taken from the
nodes: by default they are ``benchmarks/c/chatmembers.c`` (one epoll thread, the same
protocol, JSON and latency definition as the Python members), built with
``c_build``; ``--members-client python`` runs the Python members (``members_main``)
instead, which is also the fallback, with a note, when the C program cannot be built.
The report says which measured.

    python benchmarks/chat_fanout.py                   # N = 1000 and 5000, then throughput 1 vs 2 nodes (~3 min)
    python benchmarks/chat_fanout.py --quick           # N = 200; throughput with 300 members; ~10 s
    python benchmarks/chat_fanout.py --part throughput # throughput mode only
    python benchmarks/chat_fanout.py --part throughput --members-client python  # the Python members
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import resource
import statistics
import struct
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

import cpu_scaling
from c_build import BuildError, build
from proc_lines import Lines

ROUND_TIMEOUT = 30.0  # seconds for every client to get one line; far above any expected figure
SETUP_TIMEOUT = 180.0  # seconds to connect and join N clients
CONNECT_CONCURRENCY = 200  # handshakes in flight: stays under the listen backlog (1024)
HIST_MS = 30_000  # 1 ms latency buckets; later is counted in the last one
QUIET = 0.3  # seconds without a line of a failed step before the next step starts
DRAIN_LIMIT = 15.0  # seconds at most to wait for that
BOUND_MS = 500.0  # p99 per member; see the module docstring
THROUGHPUT_TARGET = 1.6  # issue 11: 2 nodes >= 1.6x one node's lines/s at the same p99
ONE = "1 node"  # the 1-node sweep runs first, and again after each sweep of several nodes (see throughput_report)


def one_label(k: int) -> str:
    """The label of the ``k``-th 1-node sweep (0: the first)."""
    return ONE if k == 0 else f"{ONE}, again" if k == 1 else f"{ONE}, sweep {k + 1}"


def raise_fd_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit (each client is a file descriptor; the server's too)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def pin(cpu: int) -> None:
    if cpu >= 0 and hasattr(os, "sched_setaffinity") and cpu < (os.cpu_count() or 1):
        os.sched_setaffinity(0, {cpu})


def run(coro: Any) -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


# ---- the clients (a subprocess: chat_fanout.py --clients URL N ROOM) ----------------------------


def _frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame (an all-zero mask is a valid mask: the payload goes as is)."""
    n = len(payload)
    length = struct.pack("!B", 0x80 | n) if n < 126 else struct.pack("!BH", 0x80 | 126, n)
    return struct.pack("!B", 0x80 | opcode) + length + b"\0\0\0\0" + payload


class _Client(asyncio.Protocol):
    """One WebSocket client: handshake, then unmasked server frames parsed from a buffer."""

    def __init__(self, host: str, join: dict[str, Any], joined: asyncio.Future[None]) -> None:
        self.host = host
        self.join = join
        self.buf = b""
        self.upgraded = False
        self.joined = joined
        self.marker: bytes | None = None
        self.arrived: float | None = None
        self.on_arrival: Any = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not an asyncio.Transport subclass
        transport.write(
            b"GET /ws HTTP/1.1\r\nHost: " + self.host.encode() + b"\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )

    def send_text(self, data: dict[str, Any]) -> None:
        assert self.transport is not None
        self.transport.write(_frame(0x1, json.dumps(data).encode()))

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        buf = self.buf + data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.buf = buf
                return
            if b" 101 " not in buf[: buf.find(b"\r\n")]:
                raise ConnectionError(f"handshake refused: {buf[:end]!r}")
            self.upgraded = True
            buf = buf[end + 4 :]
            self.send_text(self.join)
        pos = 0
        while len(buf) - pos >= 2:
            opcode = buf[pos] & 0x0F
            n = buf[pos + 1] & 0x7F
            start = pos + 2
            if n == 126:
                if len(buf) - pos < 4:
                    break
                (n,) = struct.unpack_from("!H", buf, pos + 2)
                start = pos + 4
            elif n == 127:
                if len(buf) - pos < 10:
                    break
                (n,) = struct.unpack_from("!Q", buf, pos + 2)
                start = pos + 10
            if len(buf) < start + n:
                break
            self._on_frame(opcode, buf[start : start + n], now)
            pos = start + n
        self.buf = buf[pos:]

    def _on_frame(self, opcode: int, payload: bytes, now: float) -> None:
        if opcode == 0x9 and self.transport is not None:
            self.transport.write(_frame(0xA, payload))  # keepalive ping
        elif opcode == 0x1:
            if self.marker is not None and self.arrived is None and self.marker in payload:
                self.arrived = now
                self.on_arrival()
            elif not self.joined.done() and b'"type":"joined"' in payload:
                self.joined.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.joined.done():
            self.joined.set_exception(ConnectionError(f"connection lost before joining: {exc}"))


class _Countdown:
    """Completes ``done`` when called ``n`` times (once per client that got the line)."""

    def __init__(self, n: int, done: asyncio.Future[None]) -> None:
        self.left, self.done = n, done

    def __call__(self) -> None:
        self.left -= 1
        if self.left == 0 and not self.done.done():
            self.done.set_result(None)


async def clients_main(url: str, n: int, room: str) -> None:
    """Connect and join N clients, then obey ``arm``/``quit`` lines on stdin; answer on stdout."""
    host_port = url.split("//", 1)[1].split("/", 1)[0]
    host, port = host_port.rsplit(":", 1)
    loop = asyncio.get_running_loop()
    clients: list[_Client] = []
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def connect(i: int) -> None:
        async with gate:
            joined: asyncio.Future[None] = loop.create_future()
            join = {"type": "join", "nick": f"u{i}", "room": room}
            _, c = await loop.create_connection(lambda: _Client(host_port, join, joined), host, int(port))
            await joined
            clients.append(c)

    async with asyncio.timeout(SETUP_TIMEOUT):
        await asyncio.gather(*(connect(i) for i in range(n)))
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print("ready", flush=True)
    while line := (await reader.readline()).decode().strip():
        cmd, *rest = line.split()
        if cmd == "quit":
            break
        marker, sender = rest[0], rest[1] == "say"
        done: asyncio.Future[None] = loop.create_future()
        arrived = _Countdown(len(clients), done)
        for c in clients:
            c.marker, c.arrived, c.on_arrival = f'"text":"{marker}"'.encode(), None, arrived
        t0 = None
        if sender:
            t0 = time.monotonic()
            clients[0].send_text({"type": "say", "text": marker})
        else:
            print("armed", flush=True)
        try:
            async with asyncio.timeout(ROUND_TIMEOUT):
                await done
        except TimeoutError:
            pass
        times = [c.arrived for c in clients if c.arrived is not None]
        print(json.dumps({"t0": t0, "times": times, "missing": len(clients) - len(times)}), flush=True)
    for c in clients:
        if c.transport is not None:
            c.transport.close()


# ---- throughput mode: the members (a subprocess: chat_fanout.py --member-clients URL N ROOM SENDERS) --


class _Step:
    """Per line of one step: how many members got it, when the last one did, when it was sent;
    and a histogram (1 ms buckets) of every delivery's latency."""

    def __init__(self, index: int, lines: int, members: int, done: asyncio.Future[None]) -> None:
        self.tag = b"%02d" % index
        self.count = [0] * lines
        self.last = [0.0] * lines
        self.sent = [0.0] * lines
        self.members = members
        self.complete = 0
        self.expected = lines
        self.done = done
        self.seen = 0.0  # when a line of this step last arrived anywhere
        self.hist = [0] * (HIST_MS + 1)

    def arrive(self, digits: bytes, now: float) -> None:
        if digits[:2] != self.tag:
            return  # a late line of an earlier step
        k = int(digits[2:8])
        self.seen = now
        self.hist[min(int((now - self.sent[k]) * 1e3), HIST_MS)] += 1
        c = self.count[k] = self.count[k] + 1
        if c == self.members:
            self.last[k] = now
            self.complete += 1
            if self.complete == self.expected and not self.done.done():
                self.done.set_result(None)


class _Member(_Client):
    """A member in throughput mode: counts the lines of the current step (``"text":"L<step><k>"``)."""

    step: _Step | None = None  # shared by every member: set on the class
    lost = 0

    def _on_frame(self, opcode: int, payload: bytes, now: float) -> None:
        if opcode == 0x1:
            i = payload.find(b'"text":"L')
            if i >= 0:
                step = _Member.step
                if step is not None:
                    step.arrive(payload[i + 9 : i + 17], now)
            elif not self.joined.done() and b'"type":"joined"' in payload:
                self.joined.set_result(None)
        elif opcode == 0x9 and self.transport is not None:
            self.transport.write(_frame(0xA, payload))

    def connection_lost(self, exc: Exception | None) -> None:
        _Member.lost += 1
        super().connection_lost(exc)


def _percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * q))]


def _hist_percentile(hist: list[int], q: float) -> float:
    """The q-quantile (ms, the bucket's middle) of a 1 ms histogram; inf when nothing was counted."""
    total = sum(hist)
    want, acc = min(int(total * q), total - 1), 0
    for ms, k in enumerate(hist):
        acc += k
        if acc > want:
            return ms + 0.5
    return float("inf")


async def members_main(url: str, n: int, room: str, senders: int) -> None:
    """Connect and join N members, then obey ``step INDEX RATE SECONDS GRACE`` / ``quit`` on stdin.

    A step: the first ``senders`` members say lines in turn at RATE lines/s for SECONDS
    (each line's send time kept), then the step waits up to GRACE seconds for every member
    to have every line; one JSON line answers with the per-line latency to the last member.
    """
    host_port = url.split("//", 1)[1].split("/", 1)[0]
    host, port = host_port.rsplit(":", 1)
    loop = asyncio.get_running_loop()
    members: list[_Member] = []
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def connect(i: int) -> None:
        async with gate:
            joined: asyncio.Future[None] = loop.create_future()
            join = {"type": "join", "nick": f"u{i}", "room": room}
            _, c = await loop.create_connection(lambda: _Member(host_port, join, joined), host, int(port))
            await joined
            members.append(c)

    async with asyncio.timeout(SETUP_TIMEOUT):
        await asyncio.gather(*(connect(i) for i in range(n)))
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    # This process is the measuring tool: a collector pause in it would show as chat latency.
    gc.collect()
    gc.freeze()
    gc.disable()
    print("ready", flush=True)
    speakers = members[:senders]
    while line := (await reader.readline()).decode().strip():
        cmd, *rest = line.split()
        if cmd == "quit":
            break
        index, rate, seconds, grace = int(rest[0]), float(rest[1]), float(rest[2]), float(rest[3])
        lines = max(1, round(rate * seconds))
        done: asyncio.Future[None] = loop.create_future()
        step = _Member.step = _Step(index, lines, len(members), done)
        lost_before = _Member.lost
        print("go", flush=True)  # the driver samples CPU now and at "sent": the offered load's window
        t0 = time.monotonic()
        for k in range(lines):
            due = t0 + k / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)  # the offered rate's clock, not synchronisation
            step.sent[k] = time.monotonic()
            speakers[k % len(speakers)].send_text({"type": "say", "text": f"L{index:02d}{k:06d}"})
        sent_for = time.monotonic() - t0
        print("sent", flush=True)
        try:
            async with asyncio.timeout(grace):
                await done
        except TimeoutError:
            # lines still on their way would load the next step: wait until none arrived for
            # QUIET seconds (bounded), so each step starts from an idle chat
            for _ in range(int(DRAIN_LIMIT / QUIET)):
                if time.monotonic() - step.seen > QUIET:
                    break
                await asyncio.sleep(QUIET)
        _Member.step = None
        last = sorted(
            (step.last[k] - step.sent[k]) * 1e3 if step.count[k] == step.members else float("inf") for k in range(lines)
        )
        finished = max((t for t in step.last), default=t0)
        result = {
            "lines": lines,
            "complete": step.complete,
            "sent_for": sent_for,
            "span": finished - t0,
            "p50": _hist_percentile(step.hist, 0.50),
            "p99": _hist_percentile(step.hist, 0.99),
            "last_p50": _percentile(last, 0.50),
            "last_p99": _percentile(last, 0.99),
            "lost": _Member.lost - lost_before,
        }
        print(json.dumps(result), flush=True)
        gc.collect()  # between steps, not inside one
    for c in members:
        if c.transport is not None:
            c.transport.close()


# ---- the server side and the report (this process) ----------------------------------------------


def _summary(t0: float, times: list[float]) -> tuple[float, float, float]:
    lat = sorted(t - t0 for t in times)
    p50 = lat[len(lat) // 2]
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    return p50 * 1e3, p99 * 1e3, lat[-1] * 1e3


async def measure(node: Any, url: str, n: int, rounds: int, workers: int, client_cpu: int) -> dict[str, Any]:
    from ergopy.examples.chat import protocol
    from ergopy.meta import websocket

    room = f"bench{n}"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, __file__, "--clients", url, str(n), room, "--client-cpu", str(client_cpu)]
    proc = await asyncio.create_subprocess_exec(
        *cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, limit=1 << 24
    )
    assert proc.stdin is not None and proc.stdout is not None
    results: dict[str, list[tuple[float, float, float]]] = {"room": [], "direct": []}
    loop_times: list[float] = []
    try:
        t_setup = time.monotonic()
        async with asyncio.timeout(SETUP_TIMEOUT):
            ready = (await proc.stdout.readline()).decode().strip()
        if ready != "ready":
            raise RuntimeError(f"the clients did not start: {ready!r}")
        setup = time.monotonic() - t_setup
        aliases = []
        for i in range(1, workers + 1):
            aliases += await node.call(f"chat_worker{i}", ("members", room))
        if len(aliases) != n:
            raise RuntimeError(f"{len(aliases)} members in room {room}, expected {n}")
        for r in range(rounds):
            for mode in ("room", "direct"):
                marker = f"{mode}-{r}-{time.monotonic_ns()}"
                proc.stdin.write(f"arm {marker} {'say' if mode == 'room' else 'wait'}\n".encode())
                await proc.stdin.drain()
                t0 = None
                if mode == "direct":
                    armed = (await proc.stdout.readline()).decode().strip()
                    assert armed == "armed", armed
                    frame = websocket.Message(body=protocol.encode({"type": "direct", "text": marker}))
                    t0 = time.monotonic()
                    for alias in aliases:
                        node.send_alias(alias, frame)
                    loop_times.append(time.monotonic() - t0)
                result = json.loads(await proc.stdout.readline())
                if result["missing"]:
                    raise RuntimeError(f"{result['missing']} of {n} clients did not get the {mode} line")
                results[mode].append(_summary(result["t0"] if t0 is None else t0, result["times"]))
        proc.stdin.write(b"quit\n")
        await proc.stdin.drain()
        async with asyncio.timeout(30):
            await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return {"n": n, "setup": setup, "results": results, "loop": statistics.median(loop_times)}


def report(m: dict[str, Any]) -> None:
    n = m["n"]
    print(f"\nN = {n} members in one room (setup: connect + join in {m['setup']:.1f} s)")
    print(f"  {'path':<34} {'p50 ms':>8} {'p99 ms':>8} {'last ms':>8} {'best last':>10}")
    med = {}
    for mode, label in (("room", "room: say -> send_event -> workers"), ("direct", "direct: N x node.send_alias")):
        rows = m["results"][mode]
        p50, p99, last = (statistics.median(col) for col in zip(*rows, strict=True))
        med[mode] = last
        print(f"  {label:<34} {p50:8.2f} {p99:8.2f} {last:8.2f} {min(r[2] for r in rows):10.2f}")
    loop_ms = m["loop"] * 1e3
    print(f"  bare loop of {n} send_alias calls: {loop_ms:.2f} ms ({m['loop'] / n * 1e6:.2f} µs each)")
    print(f"  time to last, room / direct: {med['room'] / med['direct']:.2f}x")


async def server_main(args: argparse.Namespace) -> None:
    import ergopy
    from ergopy.examples.chat import ChatOptions, start_chat

    node = await ergopy.start_node("fanout@localhost")
    try:
        chat = await start_chat(node, ChatOptions(host="127.0.0.1", port=0, workers=args.workers))
        for n in args.n:
            report(await measure(node, chat.ws_url, n, args.rounds, args.workers, args.client_cpu))
    finally:
        await node.stop()


# ---- throughput mode: the chat nodes (subprocesses: chat_fanout.py --chat-node NAME ...) ----------

COOKIE = "chat-fanout-bench"  # the cluster nodes' shared secret (loopback only)
NODE_START_TIMEOUT = 30.0  # seconds for a node to serve and, in a cluster, to be connected to its peers


def _free_port() -> int:
    """A port free on 127.0.0.1 now (for a node's acceptor: each node needs the others' before they start)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def chat_node_main(name: str, port: int, workers: int, peers: list[str]) -> None:
    """One node of the chat (``peers``: ``name=port`` of every node of the service, this one
    included; empty: a node alone, as the chat runs without a cluster). Prints its web port,
    then ``connected`` once it is connected to every other node; stops when stdin closes."""
    import ergopy
    from ergopy import gen
    from ergopy.examples.chat import ChatOptions, start_chat

    routes = {n: int(p) for n, p in (x.split("=") for x in peers)}
    options = None
    if routes:
        peer_routes = {n: gen.NetworkRoute(host="127.0.0.1", port=p) for n, p in routes.items() if n != name}
        acceptor = gen.AcceptorOptions(host="127.0.0.1", port=routes[name])
        network = gen.NetworkOptions(cookie=COOKIE, acceptors=[acceptor], registrar=False, routes=peer_routes)
        options = gen.NodeOptions(network=network)
    node = await ergopy.start_node(name, options)
    try:
        chat_options = ChatOptions(host="127.0.0.1", port=port, workers=workers)
        if routes:
            chat_options = ChatOptions(  # type: ignore[call-arg]
                host="127.0.0.1", port=port, workers=workers, cluster=tuple(routes), reuse_port=True
            )
        chat = await start_chat(node, chat_options)
        print(chat.port, flush=True)
        if len(routes) > 1:
            await _connect_peers(node, set(routes) - {name})
        print("connected", flush=True)
        reader = asyncio.StreamReader()
        await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        await reader.read()  # until the driver closes stdin
    finally:
        await node.stop()


async def _connect_peers(node: Any, others: set[str]) -> None:
    """Return once ``node`` is connected to every node of ``others`` (dialling the missing ones).

    Raises RuntimeError after NODE_START_TIMEOUT.
    """
    from ergopy import gen

    for _ in range(int(NODE_START_TIMEOUT / 0.1)):
        missing = others - {str.__str__(n) for n in node.network.nodes()}
        if not missing:
            return
        for peer in sorted(missing):  # the chat dials its peers too; this does not wait for its interval
            with contextlib.suppress(gen.Error, OSError):
                await node.network.get_node(peer)
        await asyncio.sleep(0.1)  # a peer started after this node is not listening yet
    raise RuntimeError(f"{node.name} not connected to {sorted(others)} within {NODE_START_TIMEOUT:g} s")


def cluster_available() -> str | None:
    """Why the chat cannot run on several nodes here (the chat of this tree has no cluster), or None."""
    from ergopy.examples.chat import ChatOptions

    fields = getattr(ChatOptions, "__dataclass_fields__", {})
    if "cluster" not in fields or "reuse_port" not in fields:
        return "not available: ChatOptions has no cluster/reuse_port in this tree (the chat across nodes)"
    return None


# ---- throughput mode: the driver (this process) ---------------------------------------------------


def _affinity(cpu: int | None) -> Any:
    """A preexec_fn pinning a child to ``cpu``, or to every core when None (not the driver's own mask)."""
    every = set(range(os.cpu_count() or 1))

    def apply() -> None:
        if hasattr(os, "sched_setaffinity"):
            with contextlib.suppress(OSError):
                os.sched_setaffinity(0, {cpu} if cpu is not None else every)

    return apply


class _Proc:
    """A child with a line reader that times out (the child may hang: we do not)."""

    def __init__(self, cmd: list[str], cpu: int | None) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.p = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, preexec_fn=_affinity(cpu)
        )
        self.lines = Lines(self.p, repr(cmd[-1]))

    def readline(self, timeout: float) -> str:
        """As ``Lines.readline``."""
        return self.lines.readline(timeout)

    def write(self, line: str) -> None:
        assert self.p.stdin is not None
        self.p.stdin.write(line.encode() + b"\n")
        self.p.stdin.flush()

    def cpu(self) -> float:
        with open(f"/proc/{self.p.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        """Close stdin (the child stops by itself), then wait; killed after 20 s."""
        if self.p.stdin is not None:
            with contextlib.suppress(OSError):
                self.p.stdin.close()
        try:
            self.p.wait(20)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        if self.p.stdout is not None:
            self.p.stdout.close()


def _sockets(pid: int) -> int:
    """How many sockets ``pid`` holds."""
    n = 0
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                n += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
    return n


def _start_nodes(count: int, workers: int, cpus: list[int | None]) -> tuple[list[_Proc], int]:
    """The chat on ``count`` node processes (one: alone, as the chat runs today; more: a cluster on
    one web port); returns them, once every one is connected to the others, and the port.

    Raises RuntimeError when a node does not start within NODE_START_TIMEOUT.
    """
    names = [f"fanout{i + 1}@localhost" for i in range(count)]
    peers = [f"{n}={_free_port()}" for n in names] if count > 1 else []
    nodes: list[_Proc] = []
    port = 0
    try:
        for i, name in enumerate(names):
            cmd = [sys.executable, __file__, "--chat-node", name, str(port), str(workers), *peers]
            nodes.append(_Proc(cmd, cpus[i]))
            port = int(nodes[-1].readline(NODE_START_TIMEOUT))
        for node in nodes:
            if (line := node.readline(NODE_START_TIMEOUT)) != "connected":
                raise RuntimeError(f"a node said {line!r}")
    except (TimeoutError, EOFError, ValueError, RuntimeError) as e:
        for node in nodes:
            node.stop()
        raise RuntimeError(f"the chat on {count} node(s) did not start: {e}") from e
    return nodes, port


@dataclass(slots=True)
class StepResult:
    rate: float  # lines/s offered
    lines: int
    complete: int
    sent_for: float  # seconds the senders took to say them (the offered rate's window)
    span: float  # seconds from the first line sent to the last line at its last member
    p50: float  # ms, latency of a delivery (a line at one member), over every delivery of the step
    p99: float
    last_p50: float  # ms, latency of a line to its LAST member, over the step's lines
    last_p99: float
    lost: int  # connections lost during the step
    node_cpu: float  # share of one core while the lines were said, summed over the nodes
    client_cpu: float  # the members' process, the same window
    why: str = ""  # why the step failed; empty: it passed

    @property
    def ok(self) -> bool:
        return not self.why


def _grace(args: argparse.Namespace) -> float:
    """Seconds a step waits, once its lines are said, for every member to have every line."""
    return max(1.0 + 4 * args.bound / 1e3, args.step_seconds / 2)  # a passing line is at its last member by then


def _members_cmd(args: argparse.Namespace, url: str, n: int) -> list[str]:
    """The members' command line: the C program (``args.members_binary``) or this script's Python members."""
    if args.members_binary is None:
        return [sys.executable, __file__, "--member-clients", url, str(n), "tp", str(args.senders)]
    # the C program's own bound: the longest this driver could wait on it, then some
    step_wait = args.step_seconds * 3 + 30 + _grace(args) + DRAIN_LIMIT + 30 + 30
    bound = SETUP_TIMEOUT + args.steps * step_wait + 60
    return [str(args.members_binary), url, str(n), "tp", str(args.senders), "-deadline", f"{bound:g}"]


def _members_label(args: argparse.Namespace) -> str:
    if args.members_binary is None:
        return "Python (members_main, asyncio protocols)"
    return "C (benchmarks/c/chatmembers.c, one epoll thread)"


def _run_step(
    members: _Proc, nodes: list[_Proc], index: int, rate: float, args: argparse.Namespace, n: int
) -> StepResult:
    grace = _grace(args)
    members.write(f"step {index} {rate:g} {args.step_seconds:g} {grace:g}")
    if (line := members.readline(30)) != "go":
        raise RuntimeError(f"the members said {line!r}")
    c0 = (sum(x.cpu() for x in nodes), members.cpu(), time.monotonic())
    if (line := members.readline(args.step_seconds * 3 + 30)) != "sent":
        raise RuntimeError(f"the members said {line!r}")
    c1 = (sum(x.cpu() for x in nodes), members.cpu(), time.monotonic())
    r = json.loads(members.readline(grace + DRAIN_LIMIT + 30))
    dt = c1[2] - c0[2]
    s = StepResult(
        rate, r["lines"], r["complete"], r["sent_for"], r["span"], r["p50"], r["p99"], r["last_p50"], r["last_p99"],
        r["lost"],
        (c1[0] - c0[0]) / dt, (c1[1] - c0[1]) / dt,
    )  # fmt: skip
    if s.lost:
        s.why = f"{s.lost} connections lost"
    elif s.complete < s.lines:
        s.why = f"{s.lines - s.complete} of {s.lines} lines not at every member within {grace:g} s"
    elif s.sent_for > args.step_seconds * 1.1 + 0.05:
        s.why = f"the members' process could not offer {rate:g} lines/s (took {s.sent_for:.2f} s)"
    elif s.p99 > args.bound:
        s.why = f"p99 {s.p99:.0f} ms > {args.bound:g} ms"
    return s


def sweep(
    count: int, args: argparse.Namespace, pin_nodes: bool = True, label: str | None = None
) -> tuple[list[StepResult], float]:
    """The chat on ``count`` nodes (more than one: one per core if ``pin_nodes``, else not
    pinned), ``args.members`` members in one room: offered rates doubled
    from ``args.start_rate`` until a step fails, then halved intervals between the best that
    passed and the first that failed, ``args.steps`` steps at most. Returns the steps and the
    setup time. Raises RuntimeError when the chat or the members cannot start."""
    n = args.members
    pinned, (a, b), _ = _pinning(args)
    if count == 1:
        cpus: list[int | None] = [a if pinned else None]
        client: int | None = b if pinned else None
    else:
        cpus = [([a, b][i % 2] if pinned and pin_nodes else None) for i in range(count)]
        client = None
    nodes, port = _start_nodes(count, args.workers, cpus)
    members: _Proc | None = None
    steps: list[StepResult] = []
    try:
        t0 = time.monotonic()
        url = f"ws://127.0.0.1:{port}/ws"
        members = _Proc(_members_cmd(args, url, n), client)
        if (line := members.readline(SETUP_TIMEOUT)) != "ready":
            raise RuntimeError(f"the members did not start: {line!r}")
        setup = time.monotonic() - t0
        label = label or _config_label(count, pin_nodes)
        if count > 1:
            split = " / ".join(f"{_sockets(x.p.pid):,}" for x in nodes)
            print(f"    {label}: sockets per node (members, listening and node links): {split}", flush=True)
        rate, best, worst = args.start_rate, 0.0, 0.0
        for i in range(args.steps):
            s = _run_step(members, nodes, i % 100, rate, args, n)
            steps.append(s)
            print(f"    {label}, step {i + 1}: {_step_line(s, n)}", flush=True)
            if s.ok:
                best = rate
            else:
                worst = rate
            if worst == 0:
                rate *= 2
            elif best == 0:
                rate = rate / 2  # the first step failed: look below it
            else:
                rate = (best * worst) ** 0.5
                if worst / best < 1.08:
                    break  # within 8%: finer steps would be noise on a shared machine
        members.write("quit")
        return steps, setup
    except (TimeoutError, EOFError, ValueError) as e:
        raise RuntimeError(f"the chat on {count} node(s): {e}") from e
    finally:
        if members is not None:
            members.stop()
        for node in nodes:
            node.stop()


def _pinning(args: argparse.Namespace) -> tuple[bool, tuple[int, int], str]:
    """Whether the throughput mode pins (two distinct usable cores given), the cores, and what it says."""
    a, b = args.server_cpu, args.client_cpu
    usable = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
    if a in usable and b in usable and a != b:
        return True, (a, b), (
            f"1 node on core {a}, the members on core {b}; 2 nodes pinned: one per core; 2 nodes unpinned: "
            f"as the launcher runs them; the members not pinned with 2 nodes (they share both cores with them)"
        )  # fmt: skip
    return False, (a, b), "nothing pinned (no two distinct usable cores given)"


def _step_line(s: StepResult, n: int) -> str:
    verdict = "ok" if s.ok else f"FAIL: {s.why}"
    return (
        f"{s.rate:8.1f} lines/s offered ({s.rate * n:,.0f} frames/s)  p50 {s.p50:7.1f} ms  p99 {s.p99:7.1f} ms  "
        f"last p99 {s.last_p99:7.1f} ms  "
        f"nodes CPU {s.node_cpu:4.0%}  members CPU {s.client_cpu:4.0%}  {verdict}"
    )


def _config_label(count: int, pin_nodes: bool) -> str:
    if count == 1:
        return "1 node"
    return f"{count} nodes {'pinned' if pin_nodes else 'unpinned'}"


def throughput_report(runs: dict[str, tuple[list[StepResult], float] | str], args: argparse.Namespace) -> None:
    n = args.members
    print(
        f"\nthroughput: {n:,} members in one room, {args.senders} of them saying lines at a fixed offered rate "
        f"({args.step_seconds:g} s per step); a rate passes when every line reached every member and the p99 "
        f"of the latency per member (line sent -> read by a member) is <= {args.bound:g} ms"
    )
    print(f"  members: {_members_label(args)}")
    print(
        f"  {'chat on':<18}{'best lines/s':>13}{'frames/s':>12}{'p50 ms':>9}{'p99 ms':>9}{'last p99':>10}"
        f"{'nodes CPU':>11}{'members CPU':>13}{'nodes ms/line':>15}{'members ms/line':>17}"
    )
    best: dict[str, float] = {}
    cost: dict[str, tuple[float, float]] = {}  # CPU ms per line at the best rate: nodes, members
    for label, run in runs.items():
        if isinstance(run, str):
            print(f"  {label:<18}{run}")
            continue
        steps, _setup = run
        passed = [s for s in steps if s.ok]
        if not passed:
            print(f"  {label:<18}no offered rate passed (lowest tried {min(s.rate for s in steps):g} lines/s)")
            continue
        s = max(passed, key=lambda x: x.rate)
        capped = all(x.rate <= s.rate for x in steps)  # nothing above it was tried: its ceiling is higher
        if not capped:
            best[label] = s.rate
            cost[label] = (s.node_cpu / s.rate * 1e3, s.client_cpu / s.rate * 1e3)
        print(
            f"  {label:<18}{s.rate:>13.1f}{s.rate * n:>12,.0f}{s.p50:>9.1f}{s.p99:>9.1f}{s.last_p99:>10.1f}"
            f"{s.node_cpu:>11.0%}"
            f"{s.client_cpu:>13.0%}{s.node_cpu / s.rate * 1e3:>15.1f}{s.client_cpu / s.rate * 1e3:>17.1f}"
            + ("   (the highest rate tried: the ceiling is higher)" if capped else "")
        )
    labels = list(runs)
    for i, label in enumerate(labels):
        if label.startswith(ONE):
            continue
        # the 1-node sweeps just before and just after this one: the machine's speed drifts
        # over minutes, and the two neighbours see the same drift as this sweep on average
        around = [x for x in labels[max(i - 1, 0) : i + 2] if x.startswith(ONE) and x in best]
        one = statistics.geometric_mean([best[x] for x in around]) if around else 0.0
        if not one or label not in best:
            print(f"  {label} / 1 node: not determined (a sweep did not find its ceiling: more --steps)")
            continue
        if len(around) == 2:
            a, b = best[around[0]], best[around[1]]
            print(f"  {label}: 1 node around it: {a:.1f} and {b:.1f} lines/s ({b / a:.2f}x apart: this "
                  f"machine's drift), {one:.1f} their geometric mean")  # fmt: skip
        ratio = best[label] / one
        verdict = "met" if ratio >= THROUGHPUT_TARGET else "NOT met"
        print(f"  {label} / 1 node: {ratio:.2f}x lines/s at p99 <= {args.bound:g} ms "
              f"(issue 11's target >= {THROUGHPUT_TARGET}x: {verdict})")  # fmt: skip
        cores = os.cpu_count() or 1
        count = int(label.split()[0])  # the label _config_label made: "<count> nodes ..."
        if count >= cores:
            # 1 node has a core of its own and the members another; these nodes share every
            # core with the members: at the CPU per line measured, all cores busy allow at most
            # cores / (the nodes' + the members' CPU per line) against 1 core / 1 node's
            one_ms = statistics.geometric_mean([cost[x][0] for x in around])
            nodes_ms, members_ms = cost[label]
            print(
                f"    the most {cores} busy cores allow at these costs: {cores} x {one_ms:.1f} ms/line (1 node, "
                f"the sweeps around it) / "
                f"({nodes_ms:.1f} + {members_ms:.1f} ms/line ({count} nodes + the members on "
                f"the same cores)) = {cores * one_ms / (nodes_ms + members_ms):.2f}x"
            )
    print(
        "  nodes CPU: summed over the node processes (200% = both cores), while the lines were said; "
        "ms/line: CPU time per line (a line is one frame to each member); last p99: a line's latency to its "
        "LAST member, p99 over the lines"
    )
    print(f"  pinning: {_pinning(args)[2]}")
    print(f"  {cpu_scaling.line(quick=args.quick)}", flush=True)


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=_ints, default=[1000, 5000])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="small N, few rounds and short steps, for CI")
    parser.add_argument("--server-cpu", type=int, default=0, help="-1: do not pin")
    parser.add_argument("--client-cpu", type=int, default=1, help="-1: do not pin")
    parser.add_argument("--part", choices=("all", "fanout", "throughput"), default="all")
    throughput = parser.add_argument_group("throughput mode")
    throughput.add_argument("--nodes", type=_ints, default=[1, 2], help="node counts to compare (default 1,2)")
    throughput.add_argument("--members", type=int, default=5000, help="members of the room (default 5000)")
    throughput.add_argument("--senders", type=int, default=10, help="members that say the lines (default 10)")
    throughput.add_argument("--step-seconds", type=float, default=4.0, help="seconds per offered rate (default 4)")
    throughput.add_argument("--steps", type=int, default=9, help="offered rates tried at most (default 9)")
    throughput.add_argument("--start-rate", type=float, default=None, help="first lines/s (default 20000/members)")
    throughput.add_argument(
        "--bound", type=float, default=BOUND_MS, help=f"bound of the p99 per member, ms ({BOUND_MS:g})"
    )
    throughput.add_argument(
        "--members-client",
        choices=("c", "python"),
        default="c",
        help="the members' program: c (benchmarks/c/chatmembers.c, the default; python when it cannot be "
        "built) or python (members_main)",
    )
    throughput.add_argument(
        "--pinning",
        type=lambda t: [{"pinned": True, "unpinned": False}[x] for x in t.split(",")],
        default=None,
        help="several nodes: pinned (one per core), unpinned (as the launcher runs them), or both "
        "(the default; --quick: unpinned)",
    )
    parser.add_argument("--clients", nargs=3, metavar=("URL", "N", "ROOM"), help=argparse.SUPPRESS)
    parser.add_argument("--member-clients", nargs=4, metavar=("URL", "N", "ROOM", "SENDERS"), help=argparse.SUPPRESS)
    parser.add_argument("--chat-node", nargs="+", metavar="ARG", help=argparse.SUPPRESS)
    args = parser.parse_args()
    fds = raise_fd_limit()
    if args.clients:
        pin(args.client_cpu)
        url, n, room = args.clients
        run(clients_main(url, int(n), room))
        return
    if args.member_clients:  # pinned (or not) by the driver
        url, n, room, senders = args.member_clients
        run(members_main(url, int(n), room, int(senders)))
        return
    if args.chat_node:
        name, port, workers, *peers = args.chat_node
        run(chat_node_main(name, int(port), int(workers), peers))
        return
    if args.quick:
        args.n, args.rounds = [200], 3
        args.members, args.step_seconds, args.steps = 300, 0.5, 4
        args.pinning = args.pinning or [False]
    args.pinning = args.pinning or [True, False]
    if args.start_rate is None:  # frames/s: well under one node's ceiling, reached in few doublings in quick
        args.start_rate = (30_000 if args.quick else 20_000) / args.members
    sizes = (args.n if args.part != "throughput" else []) + ([args.members] if args.part != "fanout" else [])
    need = 2 * max(sizes) + 100  # both ends of every connection may share this machine's limit
    if fds < need:
        sys.exit(f"RLIMIT_NOFILE is {fds}; N={max(sizes)} needs about {need}: raise the hard limit (ulimit -Hn)")
    try:
        import uvloop  # noqa: F401

        loop = "uvloop"
    except ImportError:
        loop = "asyncio"
    print(
        f"chat fan-out: python {sys.version.split()[0]}, loop={loop}, workers={args.workers}, "
        f"rounds={args.rounds}, cpus: server {args.server_cpu}, clients {args.client_cpu}, fd limit {fds}"
    )
    started = time.monotonic()
    if args.part != "throughput":
        every = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
        pin(args.server_cpu)
        run(server_main(args))
        if every:
            os.sched_setaffinity(0, every)  # the throughput driver only waits: it is not pinned
    if args.part != "fanout":
        args.members_binary = None
        if args.members_client == "c":
            try:
                args.members_binary = build("chatmembers")
            except (BuildError, ValueError) as e:
                print(f"note: the C members could not be built ({e}); the Python members measure instead")
        print(f"\nthroughput mode ({time.monotonic() - started:.0f} s so far): one sweep per node count, "
              f"members: {_members_label(args)}", flush=True)  # fmt: skip
        runs: dict[str, tuple[list[StepResult], float] | str] = {}
        why = cluster_available()
        several = [(count, pinned) for count in args.nodes if count > 1 for pinned in args.pinning]
        configs: list[tuple[int, bool, str]] = [(1, True, ONE)] if 1 in args.nodes else []
        for k, (count, pinned) in enumerate(several, 1):
            configs.append((count, pinned, _config_label(count, pinned)))
            if 1 in args.nodes:  # each sweep of several nodes sits between two 1-node sweeps
                configs.append((1, True, one_label(k)))
        for count, pinned, label in configs:
            if count > 1 and why:
                runs[label] = why
                continue
            try:
                runs[label] = sweep(count, args, pinned, label)
            except RuntimeError as e:
                runs[label] = f"failed: {e}"
        throughput_report(runs, args)
    print(f"\nchat_fanout: {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()

"""WebSocket echo, measured side by side: ergopy against Go (gorilla, Ergo) and Python peers.

Every server runs in its own process pinned to one core (``--server-cpu``); a load
client pinned to the other core (``--client-cpu``) drives it. The client keeps K
messages in flight on each of N connections and answers every batch of echoes it
reads with one write, so it is not the bottleneck (its CPU is printed beside the
server's, and per message). Two clients speak the same command line and print the
same figures: ``--client c`` (the default) is ``benchmarks/c/loadclient.c`` (built by
``c_build.py``; one epoll thread, one read and one write per ready connection: 15-45%
less CPU per echoed message than the Go client at 1,000 x 1, which matters when the client
shares the cores with 2 nodes), ``--client go`` is ``benchmarks/go/loadclient``
(built by ``go_build.py``). The C client does not do permessage-deflate: the deflate
workload is always driven by the Go client. When the C client cannot be built, the
run says so and uses the Go client. Every table says which client measured each row.

Servers:

* ``ergopy``: a node, a websocket handler with a pool of 4 workers; every message goes
  connection -> worker process -> ``send_alias`` back -> connection.
* ``ergopy-deflate-all``: the ``ergopy`` server with ``compression_threshold=0``, run on the
  deflate workload only: every reply compressed, as gorilla and Ergo do (the ``ergopy`` row
  keeps the default threshold, 128 bytes, so its 64-byte replies go uncompressed, as RFC 7692
  allows per message; the table marks them "replies not compressed").
* ``ergopy-direct``: the same engine (handler, connection meta-process, transport) with
  the actor hop cut out: each connection echoes its own messages, so the hop's cost is
  the difference between the two lines.
* ``ergopy-engine``: ergopy's WebSocket engine alone (no node, no meta-process): each
  message echoed from the engine's callback, as picows's row echoes from its listener.
* ``ergo``: Ergo's own echo (``benchmarks/go/ergo_echo``: web server meta-process, a
  websocket handler with a pool of 4 workers echoing by ``SendAlias``, ``GOMAXPROCS=1``),
  when it could be built. The Go module proxy refuses ``ergo.services/*`` here (403),
  so the Ergo column is then the reference of issue 12's table, taken as a ratio to
  gorilla measured in the same run, and labelled as such: never presented as measured.
* ``gorilla``: gorilla/websocket's raw echo in Go, ``GOMAXPROCS=1``.
* ``aiohttp``: raw aiohttp written naively: ``async for msg in ws: await ws.send_str(...)``.
* ``aiohttp-batched``: raw aiohttp whose echoes of one loop turn go out in one write.
* ``picows``: picows's echo (``WSListener.on_ws_frame`` -> ``transport.send``).

Workloads: 50 connections x 16 in flight, 1,000 x 1, 1 x 1 (latency), 4 KiB binary
(50 x 16) and 1,000 x 1 with permessage-deflate (no context takeover; the servers that
support it). Reported per server: msgs/s, ratio to gorilla and to Ergo, p50/p99
latency, server and client CPU (from /proc), and write system calls per echoed
message (``syscw`` of /proc/<pid>/io before and after). Each figure is the median of
``--rounds`` interleaved rounds (each round starts each server once and runs every
workload on it; the server order rotates between rounds).

Then idle memory: 5,000 and 20,000 idle connections are opened to each server (by load
clients holding them, ``-idle``) and the server's RSS growth per connection is printed.
20,000 needs that many file descriptors in one process: when the hard RLIMIT_NOFILE
is lower, the largest count that fits is used, and said.

Then 2 nodes vs 1 node (issue 11), at 1,000 connections x 1 in flight, in its own
interleaved rounds (``--node-rounds``, medians): the ``ergopy`` row's echo (handler,
pool of 4 workers, ``send_alias``) as one node and as two node processes on one web
port (``WebServerOptions(reuse_port=True)``: the kernel spreads the connections), each
node with its network on and the second connected to the first (a call across them
before serving), as the service runs. Pinning: 1 node on the server core, the client
on the other; 2 nodes twice, one per core ("pinned") and not pinned at all, as the
launcher runs them ("unpinned"), the client not pinned either way (it shares both
cores with them: on two cores there is no third); gorilla and Ergo with
``GOMAXPROCS=2`` as the ceiling, not pinned. Printed: msgs/s, the ratio to 1 node and to the ceiling, p50/p99,
server CPU summed over the node processes, client CPU, the share of connections the
less loaded node got; then idle memory per connection (RSS growth summed over the
nodes) for 2 nodes beside 1 node.

    python benchmarks/ws_echo.py               # full run (about 5 minutes on an otherwise idle machine)
    python benchmarks/ws_echo.py --quick       # every server and workload briefly, for CI
    python benchmarks/ws_echo.py --part nodes  # 2 nodes vs 1 node only
    python benchmarks/ws_echo.py --client go   # the Go load client for every workload
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import c_build
import cpu_scaling
import go_build
from proc_lines import Lines

# ---- servers (run in a subprocess: python ws_echo.py --serve NAME) -------------------------


def serve_ergopy(
    port: int,
    workers: int,
    direct: bool = False,
    cluster: bool = False,
    node_name: str = "bench@localhost",
    peer: str | None = None,
    compress_all: bool = False,
) -> None:
    """The ``ergopy`` row's echo server; with ``cluster``, one node of the service as the launcher runs it.

    A cluster node has its network on (cookie, one acceptor on a free loopback port, static routes
    only: no registrar shared with other runs on this host) and binds its web port with
    ``reuse_port``; it prints ``net <port>`` (its acceptor) before its web port. With ``peer``
    (``name@host:port``) it connects to that node first and makes one call to its ``echo1``, so
    both nodes are connected before it serves.
    """
    import ergopy
    from ergopy import act, gen
    from ergopy.meta import web, websocket

    if direct:
        _install_direct_connection()

    class Echo(act.Actor):
        def handle_message(self, from_: gen.PID, message: Any) -> None:
            if type(message) is websocket.Message:
                if direct:  # the engine changed under _install_direct_connection: say so, do not mislabel
                    print("ergopy-direct: a message reached the worker; the actor hop was not cut", file=sys.stderr)
                    os._exit(70)
                self.send_alias(message.id, message)  # type: ignore[arg-type]

        def handle_call(self, from_: gen.PID, ref: gen.Ref, request: Any) -> Any:
            return "pong"  # a peer node's proof that the two nodes talk

    class Web(act.Actor):
        async def init(self, port: int, pool: list[str]) -> None:
            handler = websocket.create_handler(
                websocket.HandlerOptions(
                    process_pool=pool, enable_compression=True, compression_threshold=0 if compress_all else 128
                )
            )
            self.spawn_meta(handler, gen.MetaOptions())
            server = await web.create_web_server(
                web.WebServerOptions(host="127.0.0.1", port=port, handler=handler, reuse_port=cluster)
            )
            self.spawn_meta(server, gen.MetaOptions())
            print(server.port, flush=True)

    async def main() -> None:
        options = gen.NodeOptions()
        peer_name = ""
        if cluster:
            routes = {}
            if peer:
                peer_name, peer_port = peer.rsplit(":", 1)
                routes[peer_name] = gen.NetworkRoute(host="127.0.0.1", port=int(peer_port))
            acceptor = gen.AcceptorOptions(host="127.0.0.1", port=0)
            options = gen.NodeOptions(
                network=gen.NetworkOptions(cookie=NODE_COOKIE, acceptors=[acceptor], registrar=False, routes=routes)
            )
        node = await ergopy.start_node(node_name, options)
        if cluster:
            print(f"net {node.network.acceptors()[0].port}", flush=True)
        if peer_name:
            await node.network.get_node(peer_name)
            reply = await node.call(gen.ProcessID("echo1", peer_name), "ping", timeout=10)
            if reply != "pong":
                raise RuntimeError(f"{peer_name} answered {reply!r}")
        pool = [f"echo{i}" for i in range(1, workers + 1)]
        for name in pool:
            await node.spawn_register(name, Echo)
        await node.spawn_register("web", Web, None, port, pool)
        await node.wait()

    ergopy.run(main, log_level=40)


def _install_direct_connection() -> None:
    """Make every server-side connection echo its own messages (no worker, no mailbox hop).

    It leans on the handler module's ``Connection`` name: if the engine no longer has
    it, the server exits and the run says ``ergopy-direct`` is not available.
    """
    from ergopy.meta.websocket import handler as handler_module

    handler_module.Connection = direct_connection_class()  # type: ignore[misc]


def direct_connection_class() -> type:
    """A ``Connection`` that echoes its own messages: the connection meta-process hands each
    message to ``MetaProcess.send``; here that send is answered at once by the connection's
    own ``handle_message`` (what a worker's ``send_alias`` would reach), everything else
    goes on as usual. Raises ``AttributeError`` if the handler module has no ``Connection``."""
    from ergopy import gen
    from ergopy.meta.websocket import handler as handler_module
    from ergopy.meta.websocket.messages import Message

    base = handler_module.Connection

    class _DirectMeta:
        def __init__(self, meta: gen.MetaProcess, conn: Any) -> None:
            self._meta = meta
            self._conn = conn
            self._pid = meta.parent

        def send(self, to: Any, message: Any) -> None:
            if type(message) is Message:
                self._conn.handle_message(self._pid, message)
            else:
                self._meta.send(to, message)

        def __getattr__(self, name: str) -> Any:
            return getattr(self._meta, name)

    class DirectConnection(base):  # type: ignore[misc, valid-type]
        def init(self, process: gen.MetaProcess) -> None:
            super().init(_DirectMeta(process, self))

    return DirectConnection


def serve_engine(port: int) -> None:
    """ergopy's WebSocket engine alone (``websocket.engine.WSProtocol``, no node, no meta-process):
    each message is echoed from the engine's callback, the way picows's row echoes from its listener."""
    import asyncio

    import uvloop

    from ergopy.meta.websocket import engine, upgrade

    class Front(asyncio.Protocol):
        def __init__(self) -> None:
            self.buf = b""
            self.tp: Any = None

        def connection_made(self, transport: Any) -> None:
            self.tp = transport

        def data_received(self, data: bytes) -> None:
            self.buf += data
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = upgrade.parse_head(self.buf[:end], 8190, 8190)
            assert head is not None
            response, _, compress, no_takeover = upgrade.handshake(head.headers, (), True)
            ws = engine.WSProtocol(client=False, compress=compress, no_takeover=no_takeover)
            self.tp.write(response)
            self.tp.set_protocol(ws)
            ws.connection_made(self.tp)
            ws.attach(ws.send)
            if self.buf[end + 4 :]:
                ws.data_received(self.buf[end + 4 :])

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(Front, "127.0.0.1", port, backlog=4096)
        print(server.sockets[0].getsockname()[1], flush=True)
        await server.serve_forever()

    uvloop.run(main())


def serve_aiohttp(port: int, batched: bool) -> None:
    import asyncio
    import struct

    import uvloop
    from aiohttp import WSMsgType, web

    def server_frame(opcode: int, data: bytes) -> bytes:
        n = len(data)
        if n < 126:
            return bytes((0x80 | opcode, n)) + data
        if n < 65536:
            return struct.pack("!BBH", 0x80 | opcode, 126, n) + data
        return struct.pack("!BBQ", 0x80 | opcode, 127, n) + data

    async def naive(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()  # compress=True: permessage-deflate when offered
        await ws.prepare(request)
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    await ws.send_str(msg.data)
                elif msg.type is WSMsgType.BINARY:
                    await ws.send_bytes(msg.data)
        except ConnectionResetError:
            pass  # the load client hung up at the end of a run
        return ws

    async def batched_echo(request: web.Request) -> web.WebSocketResponse:
        # The echoes of one loop turn are joined and written once (what ergopy's transport
        # does); frames are built here, so no permessage-deflate.
        ws = web.WebSocketResponse(compress=False)
        await ws.prepare(request)
        transport = request.transport
        loop = asyncio.get_running_loop()
        out: list[bytes] = []

        def flush() -> None:
            if transport is not None and not transport.is_closing():
                transport.write(b"".join(out))
            out.clear()

        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    frame = server_frame(1, msg.data.encode())
                elif msg.type is WSMsgType.BINARY:
                    frame = server_frame(2, msg.data)
                else:
                    continue
                if not out:
                    loop.call_soon(flush)
                out.append(frame)
        except ConnectionResetError:
            pass
        return ws

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/ws", batched_echo if batched else naive)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port, backlog=1024)
        await site.start()
        server = site._server
        assert server is not None and server.sockets
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Event().wait()

    uvloop.run(main())


def serve_picows(port: int) -> None:
    import asyncio
    import logging

    import uvloop
    from picows import WSFrame, WSListener, WSMsgType, WSTransport, WSUpgradeRequest, ws_create_server

    class Echo(WSListener):  # type: ignore[misc]
        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            if frame.msg_type in (WSMsgType.TEXT, WSMsgType.BINARY):
                transport.send(frame.msg_type, frame.get_payload_as_memoryview())
            elif frame.msg_type == WSMsgType.CLOSE:
                transport.send_close(frame.get_close_code(), frame.get_close_message())
                transport.disconnect()

    def factory(request: WSUpgradeRequest) -> Echo:
        return Echo()

    # echoes still due when the load client hangs up at the end of a run: one warning each
    logging.getLogger("aiofastnet").setLevel(logging.ERROR)

    async def main() -> None:
        server = await ws_create_server(factory, "127.0.0.1", port, backlog=1024)
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Event().wait()

    uvloop.run(main())


# ---- what is measured ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Workload:
    key: str
    label: str
    conns: int
    inflight: int
    size: int = 64
    binary: bool = False
    deflate: bool = False


WORKLOADS = (
    Workload("50x16", "50 connections x 16 in flight, 64-byte text", 50, 16),
    Workload("1000x1", "1,000 connections x 1 in flight, 64-byte text", 1000, 1),
    Workload("1x1", "1 connection x 1 in flight (latency), 64-byte text", 1, 1),
    Workload("4k", "4 KiB binary, 50 connections x 16 in flight", 50, 16, 4096, binary=True),
    Workload("deflate", "1,000 connections x 1 in flight, permessage-deflate, 64-byte text", 1000, 1, deflate=True),
)

SERVERS = (
    "ergopy",
    "ergopy-deflate-all",
    "ergopy-direct",
    "ergopy-engine",
    "ergo",
    "gorilla",
    "aiohttp",
    "aiohttp-batched",
    "picows",
)
# ergopy with compression_threshold=0 (every message compressed, as gorilla and Ergo do): it runs
# the deflate workload only, beside the ``ergopy`` row whose 64-byte replies stay uncompressed
# under the default threshold (128 bytes)
DEFLATE_ONLY = {"ergopy-deflate-all"}
GO_SERVERS = {"ergo": "ergo_echo", "gorilla": "gorilla_echo"}
NO_DEFLATE = {"aiohttp-batched": "frames written by hand", "picows": "no permessage-deflate in picows"}

# Issue 12's table (same machine, server pinned to one core, Go load client with batched
# writes, 64-byte text, 3 interleaved rounds, medians): Ergo's figures as ratios to gorilla.
ERGO_REFERENCE = {"50x16": 1 / 1.08, "1000x1": 1 / 1.32}
ERGO_REFERENCE_P50 = 97 / 83  # 1 x 1: Ergo p50 97 µs where gorilla's was 83 µs
ERGO_REFERENCE_MEMORY_KIB = 16.0  # idle memory per connection at 20,000 connections
NODE_COOKIE = "ws-echo-bench"  # the cluster nodes' shared secret (loopback only)
CLIENT_LABELS = {"c": "C", "go": "Go"}  # --client's choices, as the tables name them


def _pin(cpu: int | None) -> Callable[[], None] | None:
    if cpu is None or not hasattr(os, "sched_setaffinity"):
        return None

    def pin() -> None:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, {cpu})

    return pin


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _syscw(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/io") as f:
            for line in f:
                if line.startswith("syscw:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _sockets(pid: int) -> int:
    """How many sockets ``pid`` holds (its listening and network sockets included)."""
    n = 0
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                n += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
    return n


def _stop(proc: subprocess.Popen[bytes], kill: bool = False) -> None:
    if proc.poll() is None:
        if kill:
            proc.kill()
        else:
            proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Bench:
    """The run: which servers exist, how to start them and drive them."""

    def __init__(self, args: argparse.Namespace, built: dict[str, go_build.Built], clients: dict[str, Path]) -> None:
        self.args = args
        self.built = built
        self.clients = clients  # "c" / "go" -> the load client's binary, for those that could be built
        self._sources = 0
        self.server_cpu: int | None = args.server_cpu
        self.client_cpu: int | None = args.client_cpu
        cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
        if args.server_cpu not in cpus or args.client_cpu not in cpus or args.server_cpu == args.client_cpu:
            self.server_cpu = self.client_cpu = None  # not enough cores to pin: say so in the header

    def source_ip(self) -> str:
        """A fresh loopback source address per client: each has its own ephemeral ports, so
        20,000 idle connections and the TIME_WAIT left by earlier runs never exhaust them."""
        self._sources += 1
        return f"127.0.{1 + self._sources // 250}.{2 + self._sources % 250}"

    def client_for(self, w: Workload | None = None) -> str:
        """Which load client drives ``w`` ("c" or "go"): ``--client``, except that permessage-deflate
        is the Go client's (the C one does not do it). None: the idle holders."""
        return "go" if w is not None and w.deflate else self.args.client

    def loadclient(self, w: Workload | None = None) -> str:
        """The path of the load client that drives ``w`` (see ``client_for``).

        Raises RuntimeError when that client could not be built.
        """
        kind = self.client_for(w)
        if kind not in self.clients:
            raise RuntimeError(f"the {CLIENT_LABELS[kind]} load client is {self.built['loadclient'].note}")
        return str(self.clients[kind])

    def unavailable(self, server: str) -> str | None:
        """Why ``server`` cannot run here, or None."""
        if server in GO_SERVERS:
            b = self.built[GO_SERVERS[server]]
            return None if b.ok else b.note
        if server == "picows":
            try:
                import picows  # noqa: F401
            except ImportError:
                return "not available: picows is not installed (pip install -e '.[bench]')"
        return None

    def start_server(self, server: str, pin: bool = True, procs: int = 1) -> tuple[subprocess.Popen[bytes], int]:
        """Start ``server`` (pinned to the server core unless ``pin`` is false; a Go server with
        ``GOMAXPROCS=procs``); returns it and its port.

        Raises RuntimeError when it does not print its port within 30 s.
        """
        if server in GO_SERVERS:
            path = self.built[GO_SERVERS[server]].path
            cmd = [str(path), "-procs", str(procs)]
            if server == "ergo":
                cmd += ["-workers", str(self.args.workers)]
        else:
            cmd = [sys.executable, __file__, "--serve", server, "--workers", str(self.args.workers)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, preexec_fn=_pin(self.server_cpu if pin else None))
        lines = Lines(proc)
        try:
            while not (line := lines.readline(30)).isdigit():
                pass  # anything a server prints before its port
        except (TimeoutError, EOFError) as e:
            _stop(proc)
            raise RuntimeError(f"{server} did not start: {e}") from e
        return proc, int(line)

    def start_nodes(self, count: int, cpus: Sequence[int | None]) -> tuple[list[subprocess.Popen[bytes]], int]:
        """Start ``count`` ergopy echo nodes (``serve_ergopy(cluster=True)``) on one web port shared
        with ``reuse_port``, node i pinned to ``cpus[i]`` (None: not pinned); every node after the
        first connects to the first before it serves. Returns the node processes and the port.

        Raises RuntimeError when a node does not start within 30 s (the started ones are stopped).
        """
        procs: list[subprocess.Popen[bytes]] = []
        port, first = 0, ""
        try:
            for i in range(count):
                name = f"echo{i + 1}@localhost"
                cmd = [sys.executable, __file__, "--serve", "ergopy-node", "--workers", str(self.args.workers)]
                cmd += ["--node-name", name, "--node-port", str(port)]
                if first:
                    cmd += ["--node-peer", first]
                proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, preexec_fn=_pin(cpus[i]))
                procs.append(proc)
                lines = Lines(proc)
                net = ""
                while not (line := lines.readline(30)).isdigit():
                    if line.startswith("net "):
                        net = line.split()[1]
                if i == 0:
                    port, first = int(line), f"{name}:{net}"
                elif int(line) != port:
                    raise RuntimeError(f"node {name} listens on {line}, not on the shared port {port}")
        except (TimeoutError, EOFError, RuntimeError, ValueError) as e:
            for proc in procs:
                _stop(proc)
            raise RuntimeError(f"{count} ergopy nodes did not start: {e}") from e
        return procs, port

    def run_load(
        self,
        port: int,
        server_pid: int | Sequence[int],
        w: Workload,
        seconds: float,
        warmup: float,
        pin_client: bool = True,
    ) -> dict[str, float]:
        """One load run against the server process(es) ``server_pid`` (CPU and writes summed over
        them; with several, ``split`` is the smallest share of the connections one of them holds);
        the client pinned to the client core unless ``pin_client`` is false. Returns its figures.

        Raises RuntimeError when the client fails.
        """
        pids = [server_pid] if isinstance(server_pid, int) else list(server_pid)

        def sample() -> tuple[float, int | None]:
            writes = [_syscw(p) for p in pids]
            total = None if None in writes else sum(x for x in writes if x is not None)
            return sum(_cpu_seconds(p) for p in pids), total

        cmd = [
            self.loadclient(w),
            f"-url=ws://127.0.0.1:{port}/ws",
            f"-conns={w.conns}",
            f"-inflight={w.inflight}",
            f"-size={w.size}",
            f"-binary={str(w.binary).lower()}",
            f"-deflate={str(w.deflate).lower()}",
            f"-warmup={warmup}",
            f"-duration={seconds}",
            f"-deadline={seconds + warmup + 90}",
            f"-src={self.source_ip()}",
        ]
        client_pin = _pin(self.client_cpu if pin_client else None)
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=client_pin)
        lines = Lines(proc)
        try:
            connected = lines.readline(60)
            if not connected.startswith("connected"):
                raise RuntimeError(connected)
            if lines.readline(warmup + 30) != "start":
                raise RuntimeError("the load client did not start its window")
            s0 = (*sample(), _cpu_seconds(proc.pid), time.perf_counter())
            # connections per node while all are open (the client closes them once it says "end")
            split = min(_sockets(p) for p in pids) / max(w.conns, 1) if len(pids) > 1 else 1.0
            if lines.readline(seconds + 30) != "end":
                raise RuntimeError("the load client did not end its window")
            s1 = (*sample(), _cpu_seconds(proc.pid), time.perf_counter())
            result = json.loads(lines.readline(60))
            proc.wait(30)
            if result["wrong_length"]:
                raise RuntimeError(f"{result['wrong_length']} echoes were not the {w.size}-byte message sent")
            ended = result.get("closed", 0) + result.get("lost", 0)  # the C client counts them, the Go one not
            if ended:
                raise RuntimeError(
                    f"{ended} of {w.conns} connections ended during the run "
                    f"({result.get('closed', 0)} closed by the server, {result.get('lost', 0)} lost)"
                )
        except (TimeoutError, EOFError, RuntimeError, ValueError, subprocess.TimeoutExpired) as e:
            _stop(proc)
            err = proc.stderr.read().decode(errors="replace").strip() if proc.stderr else ""
            raise RuntimeError(err.splitlines()[-1] if err else str(e)) from e
        finally:
            if proc.stderr is not None:
                proc.stderr.close()
            if proc.stdout is not None:
                proc.stdout.close()
        dt = s1[3] - s0[3]
        echoed = result["rate"] * dt
        writes = None if s0[1] is None or s1[1] is None else (s1[1] - s0[1]) / max(echoed, 1)
        return {
            "rate": result["rate"],
            "p50": result["p50_us"],
            "p99": result["p99_us"],
            "server_cpu": (s1[0] - s0[0]) / dt,
            "client_cpu": (s1[2] - s0[2]) / dt,
            "writes": writes if writes is not None else float("nan"),
            "compressed": float(result["compressed"] > 0),
            "split": split,
        }

    def hold_idle(self, port: int, n: int) -> list[subprocess.Popen[bytes]]:
        """Open ``n`` idle connections (``--client`` load clients, -idle, at most 10,000 each, not pinned:
        memory is not a timing, and connecting 20,000 goes faster on whichever core is free); returns them.

        Raises RuntimeError when a client cannot open its share.
        """
        holders: list[subprocess.Popen[bytes]] = []
        try:
            left = n
            while left > 0:
                k = min(left, 10_000)
                cmd = [self.loadclient(), f"-url=ws://127.0.0.1:{port}/ws", "-idle", f"-conns={k}", "-dial=100"]
                cmd += ["-hold=300", "-deadline=330", f"-src={self.source_ip()}"]
                p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                holders.append(p)
                lines = Lines(p)
                while (line := lines.readline(180)) != "ready":
                    if not line.startswith("connected"):
                        raise RuntimeError(line)
                left -= k
        except (TimeoutError, EOFError, RuntimeError) as e:
            err = b""
            if holders and holders[-1].poll() is not None and holders[-1].stderr is not None:
                err = holders[-1].stderr.read()
            release(holders)
            raise RuntimeError(err.decode(errors="replace").strip() or str(e)) from e
        return holders


def release(holders: Sequence[subprocess.Popen[bytes]]) -> None:
    """Let idle holders close their connections and exit (killed after 30 s)."""
    for p in holders:
        if p.stdin is not None and p.poll() is None:
            with contextlib.suppress(OSError):
                p.stdin.write(b"\n")
                p.stdin.close()
    for p in holders:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        for f in (p.stdout, p.stderr):
            if f is not None:
                f.close()


def _settled_rss(pid: int) -> int:
    """RSS once it stops moving (a server may still be finishing its handshakes); bounded."""
    last = _rss_kib(pid)
    for _ in range(40):
        time.sleep(0.25)  # a benchmark's polling interval, not synchronisation
        now = _rss_kib(pid)
        if abs(now - last) <= max(64, last // 500):
            return now
        last = now
    return last


def idle_memory(bench: Bench, server: str, counts: Sequence[int], nodes: int = 0) -> dict[int, float]:
    """Server RSS growth per idle connection (KiB) at each of ``counts`` (ascending); with
    ``nodes`` > 0, of that many ergopy cluster nodes on one port (their RSS growth summed).

    Raises RuntimeError when the server or a holder fails.
    """
    if nodes:
        procs, port = bench.start_nodes(nodes, [None] * nodes)
    else:
        proc, port = bench.start_server(server, pin=False)
        procs = [proc]
    holders: list[subprocess.Popen[bytes]] = []
    out: dict[int, float] = {}
    try:
        holders += bench.hold_idle(port, 100)  # allocator, caches and free lists warm
        base = sum(_settled_rss(p.pid) for p in procs)
        opened = 0
        for n in counts:
            holders += bench.hold_idle(port, n - opened)
            opened = n
            out[n] = (sum(_settled_rss(p.pid) for p in procs) - base) / n
    finally:
        release(holders)
        for p in procs:
            _stop(p, kill=True)  # a graceful stop of 20,000 connections is not measured: no need to wait
    return out


# ---- the run --------------------------------------------------------------------------------------


def _median(values: list[float]) -> float:
    clean = [v for v in values if v == v]  # NaN (not measured) left out
    return statistics.median(clean) if clean else float("nan")


def _fmt(v: float, spec: str, unit: str = "") -> str:
    return "-" if v != v else f"{v:{spec}}{unit}"


def _writes(v: float) -> str:
    # /proc/<pid>/io syscw counts write() and writev(), not send()/sendmsg(): a server that
    # writes with send() shows (almost) none. Batching cannot go below 1/16 here.
    return "-" if v != v else ("n/a*" if v < 0.01 else f"{v:.3f}")


def print_tables(
    bench: Bench, servers: list[str], results: dict[str, dict[str, list[dict[str, float]]]], notes: dict[str, str]
) -> None:
    ergo_measured = "ergo" in servers and not bench.unavailable("ergo")
    for w in WORKLOADS:
        if w.key not in bench.args.workload_keys:
            continue
        med: dict[str, dict[str, float]] = {}
        for s in servers:
            runs = results.get(s, {}).get(w.key, [])
            if runs:
                med[s] = {k: _median([r[k] for r in runs]) for k in runs[0]}
        gorilla = med.get("gorilla", {}).get("rate", float("nan"))
        if ergo_measured and "ergo" in med:
            ergo_rate, ergo_label = med["ergo"]["rate"], "xErgo"
        else:
            ergo_rate = gorilla * ERGO_REFERENCE[w.key] if w.key in ERGO_REFERENCE else float("nan")
            ergo_label = "xErgo ref"
        print(f"\n{w.label}")
        print(
            f"  {'server':19s}{'msgs/s':>11s}{'xgorilla':>10s}{ergo_label:>11s}{'p50 us':>9s}{'p99 us':>9s}"
            f"{'srv CPU':>9s}{'cli CPU':>9s}{'writes/msg':>12s}{'cli us/msg':>12s}  client"
        )
        for s in servers:
            if s not in med:
                why = notes.get(s) or notes.get(f"{s}/{w.key}") or "no result"
                print(f"  {s:19s}  {why}")
                continue
            m = med[s]
            print(
                f"  {s:19s}{m['rate']:>11,.0f}{_fmt(m['rate'] / gorilla, '.2f'):>10s}"
                f"{_fmt(m['rate'] / ergo_rate, '.2f'):>11s}{m['p50']:>9.0f}{m['p99']:>9.0f}"
                f"{m['server_cpu']:>9.0%}{m['client_cpu']:>9.0%}{_writes(m['writes']):>12s}"
                f"{m['client_cpu'] / m['rate'] * 1e6:>12.1f}  {CLIENT_LABELS[bench.client_for(w)]}"
                + ("" if not w.deflate or m["compressed"] else "  (replies not compressed)")
            )
        if not ergo_measured:
            if w.key in ERGO_REFERENCE and gorilla == gorilla:
                print(
                    f"  {'Ergo (reference)':19s}{ergo_rate:>11,.0f}{ERGO_REFERENCE[w.key]:>10.2f}{1.0:>11.2f}"
                    f"   issue 12's table: gorilla / {1 / ERGO_REFERENCE[w.key]:.2f}, not measured here"
                )
            elif w.key == "1x1" and "gorilla" in med:
                p50 = med["gorilla"]["p50"] * ERGO_REFERENCE_P50
                print(
                    f"  {'Ergo (reference)':19s}{'':>11s}{'':>10s}{'':>11s}{p50:>9.0f}"
                    f"   issue 12's table: p50 = gorilla's x 97/83, not measured here"
                )
            else:
                why = f" ({notes['ergo']})" if "ergo" in notes else ""
                print(f"  {'Ergo':19s}  no reference figure for this workload{why}")
    print(
        "\n* writes/msg comes from syscw of /proc/<pid>/io, which counts write() and writev() calls only;"
        " n/a: the server writes with send() (picows over aiofastnet), which it does not count."
        "\n  cli us/msg: the load client's CPU time per echoed message; client: the load client that measured"
        " the row (C: benchmarks/c/loadclient.c, Go: benchmarks/go/loadclient)."
    )


# ---- 2 nodes vs 1 node (issue 11) -----------------------------------------------------------------

NODE_ROWS = ("ergopy 1 node", "ergopy 2 nodes pinned", "ergopy 2 nodes unpinned", "gorilla", "ergo")
TWO_NODES = ("ergopy 2 nodes pinned", "ergopy 2 nodes unpinned")
NODE_TARGET = 1.7  # issue 11: 2 nodes >= 1.7x one node's echo throughput at 1,000 x 1


def _node_row_label(row: str) -> str:
    return {"gorilla": "gorilla GOMAXPROCS=2", "ergo": "ergo GOMAXPROCS=2"}.get(row, row)


def _start_node_row(bench: Bench, row: str) -> tuple[list[subprocess.Popen[bytes]], int, bool]:
    """Start one row's server(s); returns the processes, the port and whether the client is pinned."""
    if row == "ergopy 1 node":
        procs, port = bench.start_nodes(1, [bench.server_cpu])
        return procs, port, True
    if row == "ergopy 2 nodes pinned":
        procs, port = bench.start_nodes(2, [bench.server_cpu, bench.client_cpu])
        return procs, port, False
    if row == "ergopy 2 nodes unpinned":  # as the launcher runs them
        procs, port = bench.start_nodes(2, [None, None])
        return procs, port, False
    proc, port = bench.start_server(row, pin=False, procs=2)
    return [proc], port, False


def node_pinning(bench: Bench) -> dict[str, str]:
    """What each row of the nodes section pins where, as printed."""
    if bench.server_cpu is None:
        return {row: "nothing pinned (fewer than two usable cores)" for row in NODE_ROWS}
    a, b = bench.server_cpu, bench.client_cpu
    shared = f"client not pinned: it shares cores {a} and {b} with the server"
    return {
        "ergopy 1 node": f"node on core {a}, client on core {b}",
        "ergopy 2 nodes pinned": f"node 1 on core {a}, node 2 on core {b}, {shared}s",
        "ergopy 2 nodes unpinned": "nodes and client not pinned (as the launcher runs the nodes)",
        "gorilla": f"server GOMAXPROCS=2 not pinned, {shared}",
        "ergo": f"server GOMAXPROCS=2 not pinned, {shared}",
    }


def run_nodes(bench: Bench, started: float) -> None:
    """Issue 11's comparison: the ergopy echo as 1 node and as 2 nodes sharing one port (network on,
    connected to each other), gorilla and Ergo with GOMAXPROCS=2 as the ceiling, at 1,000 x 1 in
    flight, in interleaved rounds; then idle memory per connection, 1 node beside 2 nodes."""
    args = bench.args
    w = next(x for x in WORKLOADS if x.key == "1000x1")
    notes: dict[str, str] = {}
    for row in ("gorilla", "ergo"):
        why = bench.unavailable(row)
        if why:
            notes[row] = why
    rows = [r for r in NODE_ROWS if r not in notes]
    pinning = node_pinning(bench)
    client = CLIENT_LABELS[bench.client_for(w)]
    print(
        f"\n2 nodes vs 1 node: {w.label}; ergopy nodes: network on and connected to each other, one web "
        f"port shared with reuse_port; median of {args.node_rounds} interleaved round(s); "
        f"every row measured by the {client} load client"
    )
    for row in NODE_ROWS:
        print(f"  {_node_row_label(row)}: {pinning[row]}")
    results: dict[str, list[dict[str, float]]] = {r: [] for r in rows}
    for r in range(args.node_rounds):
        order = rows[r % len(rows) :] + rows[: r % len(rows)]
        for row in order:
            try:
                procs, port, pin_client = _start_node_row(bench, row)
            except RuntimeError as e:
                notes[row] = f"not available: {e}"
                continue
            try:
                m = bench.run_load(port, [p.pid for p in procs], w, args.seconds, args.warmup, pin_client)
                results[row].append(m)
            except RuntimeError as e:
                notes[row] = f"failed: {e}"
            finally:
                for p in procs:
                    _stop(p)
        print(f"  nodes round {r + 1}/{args.node_rounds} done ({time.monotonic() - started:.0f} s)", flush=True)
    med = {row: {k: _median([x[k] for x in runs]) for k in runs[0]} for row, runs in results.items() if runs}
    one = med.get("ergopy 1 node", {}).get("rate", float("nan"))
    ceiling = med.get("ergo", med.get("gorilla", {})).get("rate", float("nan"))
    ceiling_label = "xErgo2" if "ergo" in med else "xgorilla2"
    print(
        f"\n  {'server':24s}{'msgs/s':>11s}{'x1 node':>9s}{ceiling_label:>11s}{'p50 us':>9s}{'p99 us':>9s}"
        f"{'srv CPU':>9s}{'cli CPU':>9s}{'srv us/msg':>12s}{'cli us/msg':>12s}"
    )
    for row in NODE_ROWS:
        label = _node_row_label(row)
        if row not in med:
            print(f"  {label:24s}  {notes.get(row, 'no result')}")
            continue
        m = med[row]
        split = f"   fewest connections on one node: {m['split']:.0%}" if row in TWO_NODES else ""
        print(
            f"  {label:24s}{m['rate']:>11,.0f}{_fmt(m['rate'] / one, '.2f'):>9s}{_fmt(m['rate'] / ceiling, '.2f'):>11s}"
            f"{m['p50']:>9.0f}{m['p99']:>9.0f}{m['server_cpu']:>9.0%}{m['client_cpu']:>9.0%}"
            f"{m['server_cpu'] / m['rate'] * 1e6:>12.1f}{m['client_cpu'] / m['rate'] * 1e6:>12.1f}{split}"
        )
    if "ergo" in notes:
        print(f"  {'Ergo (reference)':24s}  GOMAXPROCS=2: no reference figure exists, not measured here")
    for row in TWO_NODES:
        ratio = med.get(row, {}).get("rate", float("nan")) / one
        verdict = "-" if ratio != ratio else ("met" if ratio >= NODE_TARGET else "NOT met")
        how = row.rsplit(" ", 1)[1]
        print(f"  2 nodes {how} / 1 node: {_fmt(ratio, '.2f', 'x')} (issue 11's target >= {NODE_TARGET}x: {verdict})")
        if row in med and one == one:
            # 1 node has a core of its own and the client the other; 2 nodes share both cores
            # with the client: with both cores busy, the per-message costs measured allow at most
            # 2 cores / (2 nodes' + the client's CPU per message) against 1 core / 1 node's
            m, m1 = med[row], med["ergopy 1 node"]
            one_us = m1["server_cpu"] / m1["rate"] * 1e6
            two_us, client_us = m["server_cpu"] / m["rate"] * 1e6, m["client_cpu"] / m["rate"] * 1e6
            bound = 2 * one_us / (two_us + client_us)
            print(
                f"    the most two busy cores allow at these costs: 2 x {one_us:.1f} us (1 node) / ({two_us:.1f} + "
                f"{client_us:.1f} us (2 nodes + the client on the same cores)) = {bound:.2f}x"
            )
    print(
        f"  srv CPU: summed over the server's processes (200% = both cores); cli CPU: the {client} load client; "
        "us/msg: CPU time per echoed message"
    )
    print(f"  {cpu_scaling.line(quick=args.quick)}", flush=True)

    if args.idle_counts:
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        counts = sorted({min(n, hard - 250) for n in args.idle_counts})
        print("\nidle memory per connection, ergopy 1 node vs 2 nodes (RSS growth summed over the nodes, KiB)")
        print(f"  {'server':24s}" + "".join(f"{f'{n:,} conns':>14s}" for n in counts))
        for nodes in (1, 2):
            label = f"ergopy {nodes} node{'s' if nodes > 1 else ''}"
            try:
                mem = idle_memory(bench, "ergopy", counts, nodes=nodes)
            except RuntimeError as e:
                print(f"  {label:24s}  failed: {e}")
                continue
            print(f"  {label:24s}" + "".join(f"{mem[n]:>14.1f}" for n in counts))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--serve", choices=[*(s for s in SERVERS if s not in GO_SERVERS), "ergopy-node"], help=argparse.SUPPRESS
    )
    ap.add_argument("--node-name", default="bench@localhost", help=argparse.SUPPRESS)
    ap.add_argument("--node-port", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--node-peer", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--server-cpu", type=int, default=0)
    ap.add_argument("--client-cpu", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=1.2, help="measuring window per run (default 1.2)")
    ap.add_argument("--warmup", type=float, default=0.4, help="load before each window (default 0.4)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds, medians kept (default 3)")
    ap.add_argument("--workers", type=int, default=4, help="echo workers in the pool (default 4)")
    ap.add_argument("--servers", default=",".join(SERVERS), help="comma-separated subset of " + ", ".join(SERVERS))
    ap.add_argument("--workloads", default=",".join(w.key for w in WORKLOADS), help="comma-separated subset")
    ap.add_argument("--idle", default=None, help="idle connection counts for memory (default 5000,20000; '' skips)")
    ap.add_argument(
        "--part",
        choices=("all", "servers", "nodes"),
        default="all",
        help="servers: the servers' tables and idle memory; nodes: 2 nodes vs 1 node only (default: both)",
    )
    ap.add_argument("--node-rounds", type=int, default=5, help="interleaved rounds of 2 nodes vs 1 node (default 5)")
    ap.add_argument(
        "--client",
        choices=tuple(CLIENT_LABELS),
        default="c",
        help="the load client: c (benchmarks/c/loadclient.c, the default; falls back to go when it cannot be "
        "built) or go (benchmarks/go/loadclient); permessage-deflate is always the Go client's",
    )
    ap.add_argument("--quick", action="store_true", help="every server and workload briefly, for CI")
    args = ap.parse_args(argv)
    if args.quick:
        args.seconds, args.warmup, args.rounds, args.node_rounds = 0.3, 0.2, 1, 1
    if args.idle is None:
        args.idle = "200,400" if args.quick else "5000,20000"
    args.server_list = [s for s in args.servers.split(",") if s]
    args.workload_keys = [k for k in args.workloads.split(",") if k]
    for s in args.server_list:
        if s not in SERVERS:
            ap.error(f"unknown server {s!r}")
    for k in args.workload_keys:
        if k not in {w.key for w in WORKLOADS}:
            ap.error(f"unknown workload {k!r}")
    args.idle_counts = sorted(int(n) for n in args.idle.split(",") if n)
    return args


def _raise_nofile() -> int:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve:
        _raise_nofile()
        if args.serve in ("ergopy", "ergopy-direct", "ergopy-deflate-all"):
            serve_ergopy(
                0, args.workers, direct=args.serve == "ergopy-direct", compress_all=args.serve == "ergopy-deflate-all"
            )
        elif args.serve == "ergopy-node":
            serve_ergopy(args.node_port, args.workers, cluster=True, node_name=args.node_name, peer=args.node_peer)
        elif args.serve == "ergopy-engine":
            serve_engine(0)
        elif args.serve in ("aiohttp", "aiohttp-batched"):
            serve_aiohttp(0, batched=args.serve == "aiohttp-batched")
        else:
            serve_picows(0)
        return 0
    hard = _raise_nofile()
    started = time.monotonic()
    built = go_build.build_all()
    clients: dict[str, Path] = {}
    if built["loadclient"].path is not None:
        clients["go"] = built["loadclient"].path
    if args.client == "c":
        try:
            clients["c"] = c_build.build("loadclient")
        except c_build.BuildError as e:
            why = " ".join(str(e).split())
            print(f"ws_echo: the C load client could not be built ({why}); using the Go load client", file=sys.stderr)
            args.client = "go"
    if args.client not in clients:
        print(f"ws_echo: the Go load client is {built['loadclient'].note}", file=sys.stderr)
        return 1
    bench = Bench(args, built, clients)
    servers = args.server_list
    notes: dict[str, str] = {}
    for s in servers:
        why = bench.unavailable(s)
        if why:
            notes[s] = why
    runnable = [s for s in servers if s not in notes] if args.part != "nodes" else []
    client = CLIENT_LABELS[args.client]
    # (not "permessage-deflate": that is a table's title, which readers of the output search for)
    if "go" not in clients:  # the deflate workload has no client: its tables say so
        client += f" (the deflate workload not run: the Go load client is {built['loadclient'].note})"
    elif args.client != "go":
        client += " (Go for the deflate workload)"
    pinned = (
        f"server on core {bench.server_cpu}, load client on core {bench.client_cpu}"
        if bench.server_cpu is not None
        else "NOT pinned (needs two cores)"
    )
    print(
        f"ws_echo: {pinned}; {args.seconds:g} s windows after {args.warmup:g} s warm-up; "
        f"median of {args.rounds} interleaved round(s); python {sys.version.split()[0]}, {os.cpu_count()} CPUs; "
        f"load client: {client}"
    )
    for s in servers:
        if s in notes:
            print(f"  {s}: {notes[s]}")
    results: dict[str, dict[str, list[dict[str, float]]]] = {s: {} for s in runnable}
    workloads = [w for w in WORKLOADS if w.key in args.workload_keys]
    for r in range(args.rounds if args.part != "nodes" else 0):
        order = runnable[r % len(runnable) :] + runnable[: r % len(runnable)] if runnable else []
        for s in order:
            try:
                proc, port = bench.start_server(s)
            except RuntimeError as e:
                notes[s] = f"not available: {e}"
                continue
            try:
                for w in workloads:
                    if w.deflate and s in NO_DEFLATE:
                        notes[f"{s}/{w.key}"] = f"not run: {NO_DEFLATE[s]}"
                        continue
                    if not w.deflate and s in DEFLATE_ONLY:
                        notes[f"{s}/{w.key}"] = "not run: the deflate workload only"
                        continue
                    if proc.poll() is not None:
                        notes[f"{s}/{w.key}"] = f"server exited ({proc.returncode})"
                        continue
                    try:
                        m = bench.run_load(port, proc.pid, w, args.seconds, args.warmup)
                    except RuntimeError as e:
                        notes[f"{s}/{w.key}"] = f"failed: {e}"
                        continue
                    results[s].setdefault(w.key, []).append(m)
            finally:
                _stop(proc)
        print(f"  round {r + 1}/{args.rounds} done ({time.monotonic() - started:.0f} s)", flush=True)
    if args.part != "nodes":
        print_tables(bench, servers, results, notes)
    if args.part != "servers":
        run_nodes(bench, started)

    if args.idle_counts and args.part != "nodes":
        cap = hard - 250  # the server's own descriptors and the 100 warm connections
        counts = sorted({min(n, cap) for n in args.idle_counts})
        capped = "" if counts == args.idle_counts else f" (capped at {cap:,}: hard RLIMIT_NOFILE is {hard:,} here)"
        print(f"\nidle memory per connection, server RSS growth (KiB){capped}")
        print(f"  {'server':19s}" + "".join(f"{f'{n:,} conns':>14s}" for n in counts))
        for s in servers:
            if s in DEFLATE_ONLY:
                continue  # the same server as ergopy's, idle
            if s in notes and s not in results:
                print(f"  {s:19s}  {notes[s]}")
                continue
            try:
                mem = idle_memory(bench, s, counts)
            except RuntimeError as e:
                print(f"  {s:19s}  failed: {e}")
                continue
            print(f"  {s:19s}" + "".join(f"{mem[n]:>14.1f}" for n in counts))
        if "ergo" not in results:
            pad = " " * 14 * (len(counts) - 1)
            print(f"  {'Ergo (reference)':19s}{pad}{ERGO_REFERENCE_MEMORY_KIB:>14.1f}   issue 12, not measured here")
    print(f"\nws_echo: {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

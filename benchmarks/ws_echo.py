"""WebSocket echo throughput and idle memory: ergopy (actor-routed) beside raw aiohttp.

Each server runs in its own subprocess pinned to one core (--server-cpu) with
uvloop; the load client runs in this process pinned to the other core
(--client-cpu). The client is a raw asyncio protocol: it keeps ``--inflight``
64-byte text messages in flight on each of ``--conns`` connections and answers
every batch of echoes with one socket write, so it is not the bottleneck (its
CPU is printed beside the server's).

* ergopy: a node, a websocket handler with a pool of workers; every message
  goes connection → worker process → ``send_alias`` back → connection.
* aiohttp: ``web.WebSocketResponse`` and ``async for msg in ws: await ws.send_str(...)``.

Then idle memory: ``--idle`` connections are opened to each server and its RSS
growth per connection is printed (Ergo's Go echo measures 15.6 KiB here).

    python benchmarks/ws_echo.py            # full run (~1 min)
    python benchmarks/ws_echo.py --quick    # a few seconds, for CI
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import os
import resource
import struct
import subprocess
import sys
import time
from typing import Any

# ---- servers (run in a subprocess: python ws_echo.py --serve NAME) -------------------------


def serve_ergopy(port: int, workers: int) -> None:
    import ergopy
    from ergopy import act, gen
    from ergopy.meta import web, websocket

    class Echo(act.Actor):
        def handle_message(self, from_: gen.PID, message: Any) -> None:
            if type(message) is websocket.Message:
                self.send_alias(message.id, message)  # type: ignore[arg-type]

    class Web(act.Actor):
        async def init(self, port: int, pool: list[str]) -> None:
            handler = websocket.create_handler(websocket.HandlerOptions(process_pool=pool))
            self.spawn_meta(handler, gen.MetaOptions())
            server = await web.create_web_server(web.WebServerOptions(host="127.0.0.1", port=port, handler=handler))
            self.spawn_meta(server, gen.MetaOptions())
            print(server.port, flush=True)

    async def main() -> None:
        node = await ergopy.start_node("bench@localhost")
        pool = [f"echo{i}" for i in range(1, workers + 1)]
        for name in pool:
            await node.spawn_register(name, Echo)
        await node.spawn_register("web", Web, None, port, pool)
        await node.wait()

    ergopy.run(main, log_level=40)


def serve_aiohttp(port: int) -> None:
    import uvloop
    from aiohttp import WSMsgType, web

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
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

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/ws", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        server = site._server
        assert server is not None and server.sockets
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Event().wait()

    uvloop.run(main())


# ---- load client ----------------------------------------------------------------------------

_KEY = base64.b64encode(os.urandom(16)).decode()


def _masked_text(payload: bytes) -> bytes:
    mask = os.urandom(4)
    data = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return struct.pack("!BB", 0x81, 0x80 | len(payload)) + mask + data


class _Client(asyncio.Protocol):
    def __init__(
        self, host: str, port: int, frame: bytes, inflight: int, stats: dict[str, int], ready: asyncio.Future[None]
    ) -> None:
        self.host, self.port = host, port
        self.frame = frame
        self.inflight = inflight
        self.stats = stats
        self.ready = ready
        self.buf = bytearray()
        self.upgraded = False
        self.transport: asyncio.Transport | None = None
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no asyncio.Transport subclass
        transport.write(
            (
                f"GET /ws HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )

    def start(self) -> None:
        assert self.transport is not None
        if self.inflight:
            self.transport.write(self.frame * self.inflight)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            if not buf.startswith(b"HTTP/1.1 101"):
                self.ready.set_exception(RuntimeError(bytes(buf[:80]).decode("latin-1")))
                return
            del buf[: end + 4]
            self.upgraded = True
            if not self.ready.done():
                self.ready.set_result(None)
        n = 0
        pos = 0
        size = len(buf)
        while size - pos >= 2:
            ln = buf[pos + 1] & 0x7F
            hdr = 2
            if ln == 126:
                if size - pos < 4:
                    break
                ln = struct.unpack_from("!H", buf, pos + 2)[0]
                hdr = 4
            elif ln == 127:
                if size - pos < 10:
                    break
                ln = struct.unpack_from("!Q", buf, pos + 2)[0]
                hdr = 10
            if size - pos < hdr + ln:
                break
            if buf[pos] & 0x0F in (1, 2):
                n += 1
            pos += hdr + ln
        if pos:
            del buf[:pos]
        if n:
            self.stats["received"] += n
            if self.stats["running"]:
                assert self.transport is not None
                self.transport.write(self.frame * n)  # one write answers the whole batch

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)
        if not self.ready.done():
            self.ready.set_exception(ConnectionError("lost before upgrade"))


async def _connect_all(port: int, conns: int, inflight: int, stats: dict[str, int], frame: bytes) -> list[_Client]:
    loop = asyncio.get_running_loop()
    clients: list[_Client] = []
    batch = 200  # bounded parallel connects: the listen backlog is finite
    for start in range(0, conns, batch):
        readies = []
        for _ in range(start, min(conns, start + batch)):
            ready: asyncio.Future[None] = loop.create_future()
            _, proto = await loop.create_connection(
                lambda r=ready: _Client("127.0.0.1", port, frame, inflight, stats, r), "127.0.0.1", port
            )
            clients.append(proto)
            readies.append(ready)
        await asyncio.wait_for(asyncio.gather(*readies), 30)
    return clients


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def _throughput(
    port: int, pid: int, conns: int, inflight: int, seconds: float, warmup: float
) -> dict[str, float]:
    stats = {"received": 0, "running": 1}
    frame = _masked_text(b"x" * 64)
    clients = await _connect_all(port, conns, inflight, stats, frame)
    for c in clients:
        c.start()
    await asyncio.sleep(warmup)  # a benchmark's measuring window, not synchronisation
    n0, s0, c0, t0 = stats["received"], _cpu_seconds(pid), time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    n1, s1, c1, t1 = stats["received"], _cpu_seconds(pid), time.process_time(), time.perf_counter()
    stats["running"] = 0
    for c in clients:
        assert c.transport is not None
        c.transport.close()
    await asyncio.wait([c.lost for c in clients], timeout=10)
    dt = t1 - t0
    return {"rate": (n1 - n0) / dt, "server_cpu": (s1 - s0) / dt, "client_cpu": (c1 - c0) / dt}


async def _idle_memory(port: int, pid: int, n: int) -> float:
    stats = {"received": 0, "running": 0}
    frame = _masked_text(b"x" * 64)
    warm = await _connect_all(port, 100, 0, stats, frame)  # steady state of allocator and caches
    before = _rss_kib(pid)
    clients = await _connect_all(port, n, 0, stats, frame)
    # let the server finish spawning what each connection needs; bounded wait on RSS to settle
    last = -1
    for _ in range(50):
        await asyncio.sleep(0.1)
        now = _rss_kib(pid)
        if now == last:
            break
        last = now
    after = _rss_kib(pid)
    for c in warm + clients:
        assert c.transport is not None
        c.transport.close()
    await asyncio.wait([c.lost for c in warm + clients], timeout=30)
    return (after - before) / n


def _start_server(name: str, cpu: int, workers: int) -> tuple[subprocess.Popen[str], int]:
    cmd = [sys.executable, __file__, "--serve", name, "--workers", str(workers), "--server-cpu", str(cpu)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.strip().isdigit():
        proc.kill()
        raise RuntimeError(f"{name} server did not start: {line!r}")
    return proc, int(line)


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--serve", choices=["ergopy", "aiohttp"], help=argparse.SUPPRESS)
    ap.add_argument("--server-cpu", type=int, default=0)
    ap.add_argument("--client-cpu", type=int, default=1)
    ap.add_argument("--conns", type=int, default=50)
    ap.add_argument("--inflight", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--idle", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=2, help="alternate the servers this many times")
    ap.add_argument("--quick", action="store_true", help="short run for CI")
    args = ap.parse_args()
    if args.serve:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, {args.server_cpu})
        if args.serve == "ergopy":
            serve_ergopy(0, args.workers)
        else:
            serve_aiohttp(0)
        return
    if args.quick:
        args.seconds, args.idle, args.rounds = 1.0, 300, 1
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, {args.client_cpu})
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    import uvloop

    results: dict[str, list[dict[str, float]]] = {"aiohttp": [], "ergopy": []}
    memory: dict[str, float] = {}
    print(f"echo: {args.conns} connections x {args.inflight} in flight, 64-byte text, {args.seconds:g} s per run")
    for _ in range(args.rounds):
        for name in ("aiohttp", "ergopy"):
            proc, port = _start_server(name, args.server_cpu, args.workers)
            try:
                r = uvloop.run(
                    _throughput(port, proc.pid, args.conns, args.inflight, args.seconds, min(1.0, args.seconds / 3))
                )
            finally:
                _stop(proc)
            results[name].append(r)
            print(
                f"  {name:8s} {r['rate']:10,.0f} msgs/s   "
                f"server CPU {r['server_cpu']:4.0%}   client CPU {r['client_cpu']:4.0%}"
            )
    for name in ("aiohttp", "ergopy"):
        proc, port = _start_server(name, args.server_cpu, args.workers)
        try:
            memory[name] = uvloop.run(_idle_memory(port, proc.pid, args.idle))
        finally:
            _stop(proc)
    best = {k: max(r["rate"] for r in v) for k, v in results.items()}
    ratio = best["ergopy"] / best["aiohttp"]
    print(
        f"best: ergopy {best['ergopy']:,.0f} msgs/s, raw aiohttp {best['aiohttp']:,.0f} msgs/s "
        f"→ ratio {ratio:.2f} (target ≥ 0.85)"
    )
    print(
        f"idle memory per connection ({args.idle} connections): ergopy {memory['ergopy']:.1f} KiB, "
        f"aiohttp {memory['aiohttp']:.1f} KiB (target ≤ 16 KiB; Ergo's Go echo 15.6 KiB)"
    )


if __name__ == "__main__":
    main()

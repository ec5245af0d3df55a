"""Where the memory of an idle WebSocket connection goes (server side, tracemalloc).

The ergopy echo server of ``ws_echo.py`` runs in this process (uvloop, as
``ergopy.run``); a client subprocess opens ``N`` idle connections and holds them.
Python allocations made between the two snapshots are grouped by the line that
made them and printed per connection, each with the ergopy frame that caused it.
RSS growth per connection is printed too (``ws_echo.py`` measures it in a clean
subprocess for every server it compares, at 5,000 and 20,000 connections; tracing
adds its own overhead to RSS here). The idle connections are opened and held by the
Go load client (``benchmarks/go/loadclient -idle``, built by ``go_build.py``).

    python benchmarks/ws_memory.py            # 1000 connections, top 25
    python benchmarks/ws_memory.py 2000 --top 40 --frames 15
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import resource
import subprocess
import sys
import tracemalloc
from typing import Any

_HERE = os.path.dirname(os.path.abspath(__file__))

sys.path.insert(0, _HERE)
import go_build  # noqa: E402


def _rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _where(tb: tracemalloc.Traceback) -> str:
    """The innermost frame in ergopy (what caused the allocation), else the outermost one."""
    for frame in reversed(tb):
        if f"{os.sep}ergopy{os.sep}" in frame.filename:
            return f"{os.path.basename(frame.filename)}:{frame.lineno}"
    return f"{os.path.basename(tb[0].filename)}:{tb[0].lineno}"


async def _main(n: int, top: int, frames: int, loadclient: str) -> None:
    import ergopy
    from ergopy import act, gen
    from ergopy.meta import web, websocket

    class Echo(act.Actor):
        def handle_message(self, from_: gen.PID, message: Any) -> None:
            pass

    class Web(act.Actor):
        async def init(self, fut: asyncio.Future[int]) -> None:
            h = websocket.create_handler(websocket.HandlerOptions(process_pool=["echo"]))
            self.spawn_meta(h, gen.MetaOptions())
            s = await web.create_web_server(web.WebServerOptions(host="127.0.0.1", port=0, handler=h))
            self.spawn_meta(s, gen.MetaOptions())
            fut.set_result(s.port)

    node = await ergopy.start_node("memory@localhost")
    clients: list[asyncio.subprocess.Process] = []
    try:
        await node.spawn_register("echo", Echo)
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        await node.spawn_register("web", Web, None, fut)
        port = await asyncio.wait_for(fut, 10)

        async def open_clients(count: int) -> None:
            p = await asyncio.create_subprocess_exec(
                loadclient, f"-url=ws://127.0.0.1:{port}/ws", "-idle", f"-conns={count}", "-dial=100",
                "-hold=120", "-deadline=150", stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            )  # fmt: skip
            clients.append(p)
            assert p.stdout is not None
            while (line := await asyncio.wait_for(p.stdout.readline(), 60)) != b"ready\n":
                if not line.startswith(b"connected"):
                    raise RuntimeError(f"the load client failed: {line!r}")

        await open_clients(50)  # warm up allocator, caches and free lists
        await asyncio.sleep(0.3)
        gc.collect()
        tracemalloc.start(frames)
        before = tracemalloc.take_snapshot()
        rss = _rss_kib()
        await open_clients(n)
        await asyncio.sleep(0.5)
        gc.collect()
        after = tracemalloc.take_snapshot()
        rss = _rss_kib() - rss
        tracemalloc.stop()
        stats = after.compare_to(before, "traceback")
        total = sum(s.size_diff for s in stats)
        print(f"{n} idle connections: traced {total / n / 1024:.2f} KiB/conn, RSS (traced) {rss / n:.2f} KiB/conn")
        lines: dict[tuple[str, str], list[int]] = {}
        for s in stats:
            tb = s.traceback
            key = (f"{os.path.basename(tb[-1].filename)}:{tb[-1].lineno}", _where(tb))
            acc = lines.setdefault(key, [0, 0])
            acc[0] += s.size_diff
            acc[1] += s.count_diff
        print(f"{'B/conn':>7} {'obj/conn':>8}  allocated at  <- caused by (innermost ergopy frame)")
        for (at, why), (size, count) in sorted(lines.items(), key=lambda kv: -kv[1][0])[:top]:
            print(f"{size / n:7.0f} {count / n:8.2f}  {at}  <- {why}")
    finally:
        for p in clients:
            if p.stdin is not None and p.returncode is None:
                p.stdin.write(b"\n")
                await p.stdin.drain()
        for p in clients:
            try:
                await asyncio.wait_for(p.wait(), 30)
            except TimeoutError:
                p.kill()
                await p.wait()
        await node.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("conns", type=int, nargs="?", default=1000)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--frames", type=int, default=25, help="tracemalloc traceback depth")
    args = ap.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    built = go_build.build("loadclient")
    if built.path is None:
        print(f"ws_memory: the Go load client is {built.note}", file=sys.stderr)
        sys.exit(1)
    import ergopy

    ergopy.run(lambda: _main(args.conns, args.top, args.frames, str(built.path)), log_level=40)


if __name__ == "__main__":
    main()

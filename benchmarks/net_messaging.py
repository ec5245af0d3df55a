"""Network messaging: two node processes over loopback, ergopy and Ergo.

Each measurement runs two node *processes* on 127.0.0.1, each pinned to its own
core (``os.sched_setaffinity``; ``--cpus``), speaking Ergo's protocol (ENP/EDF):

* one-way: a sender process sends N small messages (an int) to the process
  registered as ``recv`` on the peer, addressed by name. It sends in chunks of
  ``--chunk``; the receiver counts and answers every chunk with one ``ack``, and
  the sender keeps at most ``--window`` chunks unacknowledged (so the run is
  bounded in memory as well as in time: without a window the sender outruns the
  receiver and its buffer grows). The rate is N over the time from the first send
  to the last ack;
* CPU: the process CPU time per one-way message of each side (``time.process_time``;
  the receiver's read through a call to its ``echo``), steadier than the rates when
  other work shares the cores;
* call: ``--calls`` sequential calls to the process registered as ``echo`` on the
  peer, one at a time; p50 and p99 of the round trip and calls/s.

Pairs (sender -> receiver): py->py always; py->go, go->py and go->go when
``benchmarks/go/ergo_net`` could be built (``go_build.py``). The Go module proxy
refuses ``ergo.services/*`` here (403): then the run says "not available" and the
Go comparison is pending. The in-run baseline is ergopy's *local* messaging of the
same sizes (the one-way of ``local_messaging.py`` with the same N and chunk, and
the same number of sequential calls to a local process), run pinned to the first
core in its own process.

Every figure is the median of 3 rounds (``--rounds``); the rounds interleave the
pairs and the local baseline so drift hits all alike. Every process stops by
itself (``--timeout`` bounds each one).

    python benchmarks/net_messaging.py                # N=200,000, 5,000 calls, 3 rounds
    python benchmarks/net_messaging.py --quick        # a few seconds, for CI
    python benchmarks/net_messaging.py --loop asyncio --cpus 0,1
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ergopy
from ergopy import act, gen

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import go_build  # noqa: E402
import local_messaging  # noqa: E402

COOKIE = "bench-cookie"
PY_SERVER, PY_CLIENT = "pyrecv@localhost", "pysend@localhost"
GO_SERVER, GO_CLIENT = "gorecv@localhost", "gosend@localhost"
TARGET_PY_PY = 0.3  # py->py one-way >= 0.3x go->go (issue 10)
TARGET_PY_GO = 0.4  # py->go and go->py one-way >= 0.4x go->go
TARGET_CALL = 1.3  # call round trip py->go <= 1.3x go->go


# ---- the processes (the same in both roles' nodes) ----------------------------------------------


class Receiver(act.Actor):
    """Counts messages; answers every ``chunk``-th with ``"ack"`` to its sender."""

    def init(self, chunk: int) -> None:
        self.chunk = chunk
        self.count = 0

    def handle_message(self, from_: gen.PID, message: Any) -> None:
        self.count += 1
        if self.count == self.chunk:
            self.count = 0
            self.send(from_, "ack")


class Echo(act.Actor):
    """Answers a call with its request."""

    def handle_call(self, from_: gen.PID, ref: gen.Ref, request: Any) -> Any:
        if request == "cpu":  # this process's CPU seconds (Go's echo answers "cpu": no figure)
            return time.process_time()
        return request


class Sender(act.Actor):
    """Sends ``n`` messages to ``to`` in chunks, at most ``window`` chunks unacknowledged."""

    def init(self, to: gen.ProcessID, chunk: int, window: int) -> None:
        self.to = to
        self.chunk = chunk
        self.window = window
        self.left = 0
        self.acks = 0
        self.done: asyncio.Future[float] | None = None

    def start(self, n: int, done: asyncio.Future[float]) -> None:
        self.left = n
        self.acks = n // self.chunk
        self.done = done
        for _ in range(min(self.window, self.acks)):
            self._chunk()

    def _chunk(self) -> None:
        send, to = self.send, self.to
        k = min(self.chunk, self.left)
        self.left -= k
        for i in range(k):
            send(to, i)

    def handle_message(self, from_: gen.PID, message: Any) -> None:
        if type(message) is tuple:  # ("go", n, done) from the benchmark, on this node
            self.start(message[1], message[2])
            return
        self.acks -= 1
        if self.left:
            self._chunk()
        elif self.acks == 0 and self.done is not None:
            self.done.set_result(time.perf_counter())


# ---- roles ----------------------------------------------------------------------------------------


def _options(acceptor: bool, routes: dict[str, gen.NetworkRoute] | None = None) -> gen.NodeOptions:
    acceptors = [gen.AcceptorOptions(host="127.0.0.1", port=0)] if acceptor else []
    return gen.NodeOptions(
        network=gen.NetworkOptions(cookie=COOKIE, acceptors=acceptors, registrar=False, routes=routes or {})
    )


async def serve(args: argparse.Namespace) -> None:
    """The receiving node: ``recv`` and ``echo``; prints its port, runs until stdin closes."""
    node = await ergopy.start_node(PY_SERVER, _options(acceptor=True))
    try:
        await node.spawn_register("recv", Receiver, None, args.chunk)
        await node.spawn_register("echo", Echo)
        print(json.dumps({"port": node.network.acceptors()[0].port}), flush=True)
        loop = asyncio.get_running_loop()
        await asyncio.wait_for(loop.run_in_executor(None, sys.stdin.read), args.timeout)
    finally:
        await node.stop()


async def send(args: argparse.Namespace) -> dict[str, float]:
    """The sending node: one-way then calls to ``args.peer`` at ``args.port``; returns the figures."""
    route = gen.NetworkRoute(host="127.0.0.1", port=args.port)
    node = await ergopy.start_node(PY_CLIENT, _options(acceptor=False, routes={args.peer: route}))
    loop = asyncio.get_running_loop()
    try:
        await node.network.get_node(args.peer)
        recv = gen.ProcessID("recv", args.peer)
        echo = gen.ProcessID("echo", args.peer)
        sender = await node.spawn(Sender, None, recv, args.chunk, args.window)

        async def one_way(n: int) -> float:
            done: asyncio.Future[float] = loop.create_future()
            start = time.perf_counter()
            node.send(sender, ("go", n, done))
            end = await asyncio.wait_for(done, args.timeout)
            return n / (end - start)

        await one_way(max(args.chunk, args.n // 10 // args.chunk * args.chunk))  # warm up
        gc.collect()
        peer_cpu = await node.call(echo, "cpu")
        cpu = time.process_time()
        rate = await one_way(args.n)
        cpu = time.process_time() - cpu
        peer_cpu = (await node.call(echo, "cpu")) - peer_cpu if type(peer_cpu) is float else float("nan")
        call = node.call
        for i in range(min(200, args.calls)):  # warm up
            await call(echo, i)
        gc.collect()
        lat = []
        clock = time.perf_counter_ns
        start = clock()
        for i in range(args.calls):
            t0 = clock()
            await call(echo, i)
            lat.append(clock() - t0)
        total = (clock() - start) / 1e9
        cpu_us = {"send_cpu_us": cpu / args.n * 1e6, "recv_cpu_us": peer_cpu / args.n * 1e6}
        return {"one_way": rate, **cpu_us, **_latency(lat, total)}
    finally:
        await node.stop()


async def local(args: argparse.Namespace) -> dict[str, float]:
    """The in-run baseline: local_messaging's one-way (same N, chunk) and sequential local calls."""
    cpu = time.process_time()
    rate = await local_messaging.ergopy_one_way(args.n, args.chunk)
    cpu = time.process_time() - cpu  # both sides in one process
    node = await ergopy.start_node("local@localhost")
    try:
        echo = await node.spawn(Echo)
        for i in range(min(200, args.calls)):
            await node.call(echo, i)
        gc.collect()
        lat = []
        clock = time.perf_counter_ns
        start = clock()
        for i in range(args.calls):
            t0 = clock()
            await node.call(echo, i)
            lat.append(clock() - t0)
        total = (clock() - start) / 1e9
    finally:
        await node.stop()
    return {"one_way": rate, "send_cpu_us": cpu / args.n * 1e6, "recv_cpu_us": 0.0, **_latency(lat, total)}


def _latency(ns: list[int], total: float) -> dict[str, float]:
    ns.sort()
    return {
        "call_p50_us": ns[len(ns) // 2] / 1e3,
        "call_p99_us": ns[min(len(ns) - 1, len(ns) * 99 // 100)] / 1e3,
        "calls_per_s": len(ns) / total,
    }


# ---- the driver -------------------------------------------------------------------------------------


def _pin(cpu: int) -> Callable[[], None] | None:
    if cpu < 0 or not hasattr(os, "sched_setaffinity"):
        return None

    def pin() -> None:
        os.sched_setaffinity(0, {cpu})

    return pin


def _common(args: argparse.Namespace) -> list[str]:
    return [
        f"--loop={args.loop}",
        f"-n={args.n}",
        f"--chunk={args.chunk}",
        f"--window={args.window}",
        f"--calls={args.calls}",
        f"--timeout={args.timeout:g}",
    ]


def _py_cmd(role: str, args: argparse.Namespace) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), f"--role={role}", *_common(args)]


def _go_cmd(binary: Path, role: str, args: argparse.Namespace) -> list[str]:
    return [
        str(binary),
        f"-role={role}",
        f"-n={args.n}",
        f"-chunk={args.chunk}",
        f"-window={args.window}",
        f"-calls={args.calls}",
        f"-timeout={args.timeout:g}s",
        f"-cookie={COOKIE}",
    ]


def _last_json(out: str) -> dict[str, Any]:
    return dict(json.loads(out.strip().splitlines()[-1]))


def run_pair(args: argparse.Namespace, server: list[str], server_name: str, client: list[str]) -> dict[str, float]:
    """Start the receiving node (second core), run the sender (first core) against it.

    Raises RuntimeError when a side fails or does not report in time.
    """
    cpu_a, cpu_b = args.cpu_list
    srv = subprocess.Popen(server, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, preexec_fn=_pin(cpu_b))
    try:
        assert srv.stdout is not None and srv.stdin is not None
        line = srv.stdout.readline()  # the port, once both processes are registered
        if not line:
            raise RuntimeError(f"receiver {server_name} did not start (exit {srv.wait(args.timeout)})")
        port = int(json.loads(line)["port"])
        done = subprocess.run(
            [*client, f"--peer={server_name}", f"--port={port}"] if client[0] == sys.executable
            else [*client, f"-peer={server_name}", f"-port={port}"],
            capture_output=True,
            text=True,
            timeout=3 * args.timeout,
            preexec_fn=_pin(cpu_a),
            check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"sender failed: {done.stderr.strip()[-500:]}")
        return {k: float(v) for k, v in _last_json(done.stdout).items()}
    finally:
        if srv.stdin is not None:
            srv.stdin.close()  # the receiver's signal to stop
        try:
            srv.wait(args.timeout)
        except subprocess.TimeoutExpired:
            srv.kill()
            srv.wait()


def run_local(args: argparse.Namespace) -> dict[str, float]:
    """The local baseline in its own process, pinned to the first core. Raises RuntimeError on failure."""
    done = subprocess.run(
        _py_cmd("local", args),
        capture_output=True,
        text=True,
        timeout=3 * args.timeout,
        preexec_fn=_pin(args.cpu_list[0]),
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"local baseline failed: {done.stderr.strip()[-500:]}")
    return {k: float(v) for k, v in _last_json(done.stdout).items()}


def fmt_rate(rate: float) -> str:
    return f"{rate / 1e6:6.3f} M/s" if rate >= 1e6 else f"{rate / 1e3:6.1f} k/s"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    uvloop_ok = True
    try:
        import uvloop  # noqa: F401
    except ImportError:
        uvloop_ok = False
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--role", choices=["driver", "serve", "send", "local"], default="driver", help=argparse.SUPPRESS)
    p.add_argument("--peer", default=PY_SERVER, help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--loop", choices=["asyncio", "uvloop"], default="uvloop" if uvloop_ok else "asyncio")
    p.add_argument("--cpus", default="0,1", help="sender core,receiver core (default 0,1; -1,-1: do not pin)")
    p.add_argument("--quick", action="store_true", help="small N and calls, one round (seconds, for CI)")
    p.add_argument("-n", type=int, default=None, help="one-way messages (default 200,000; quick 20,000)")
    p.add_argument("--chunk", type=int, default=500, help="messages per chunk, one ack each (default 500)")
    p.add_argument("--window", type=int, default=8, help="chunks in flight (default 8)")
    p.add_argument("--calls", type=int, default=None, help="sequential calls (default 5,000; quick 500)")
    p.add_argument("--rounds", type=int, default=None, help="interleaved rounds, median kept (default 3; quick 1)")
    p.add_argument("--no-go", action="store_true", help="skip Ergo (benchmarks/go/ergo_net)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds allowed per process (default 120)")
    args = p.parse_args(argv)
    if args.loop == "uvloop" and not uvloop_ok:
        p.error("uvloop is not installed")
    args.n = args.n or (20_000 if args.quick else 200_000)
    args.n = max(args.chunk, args.n // args.chunk * args.chunk)  # whole chunks
    args.calls = args.calls or (500 if args.quick else 5_000)
    args.rounds = args.rounds or (1 if args.quick else 3)
    cpus = [int(c) for c in args.cpus.split(",")]
    if len(cpus) != 2:
        p.error("--cpus takes two cores: sender,receiver")
    args.cpu_list = cpus
    return args


def _run_role(args: argparse.Namespace) -> int:
    factory = local_messaging.loop_factory(args.loop)
    with asyncio.Runner(loop_factory=factory) as runner:
        if args.role == "serve":
            runner.run(serve(args))
        elif args.role == "send":
            print(json.dumps(runner.run(asyncio.wait_for(send(args), 3 * args.timeout))), flush=True)
        else:
            print(json.dumps(runner.run(asyncio.wait_for(local(args), 3 * args.timeout))), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.role != "driver":
        return _run_role(args)
    pinned = f"sender core {args.cpu_list[0]}, receiver core {args.cpu_list[1]}"
    print(
        f"ergopy network messaging: loop={args.loop} {pinned} python={sys.version.split()[0]} "
        f"N={args.n:,} chunk={args.chunk} window={args.window} calls={args.calls:,} rounds={args.rounds}"
    )
    go_note = "skipped (--no-go)"
    go_bin: Path | None = None
    if not args.no_go:
        built = go_build.build("ergo_net")
        go_bin, go_note = built.path, built.note
    runs: dict[str, Callable[[], dict[str, float]]] = {
        "py local": lambda: run_local(args),
        "py->py": lambda: run_pair(args, _py_cmd("serve", args), PY_SERVER, _py_cmd("send", args)),
    }
    if go_bin is not None:
        gb = go_bin
        runs["go->go"] = lambda: run_pair(args, _go_cmd(gb, "serve", args), GO_SERVER, _go_cmd(gb, "send", args))
        runs["py->go"] = lambda: run_pair(args, _go_cmd(gb, "serve", args), GO_SERVER, _py_cmd("send", args))
        runs["go->py"] = lambda: run_pair(args, _py_cmd("serve", args), PY_SERVER, _go_cmd(gb, "send", args))
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in runs}
    for _ in range(args.rounds):
        for name, fn in runs.items():
            samples[name].append(fn())
    med = {name: {k: statistics.median(s.get(k, math.nan) for s in ss) for k in ss[0]} for name, ss in samples.items()}

    print()
    print(
        f"{'':<12}{'one-way msgs/s':>16}{'call p50':>12}{'call p99':>12}{'calls/s':>12}{'one-way/local':>15}"
        f"{'cpu us/msg send+recv':>24}"
    )
    base = med["py local"]["one_way"]
    for name, m in med.items():
        cpu = m.get("send_cpu_us", math.nan) + m.get("recv_cpu_us", math.nan)
        cpu_text = "-" if math.isnan(cpu) else f"{m['send_cpu_us']:.2f}+{m['recv_cpu_us']:.2f}"
        if name == "py local":
            cpu_text = f"{m['send_cpu_us']:.2f} (both)"
        print(
            f"{name:<12}{fmt_rate(m['one_way']):>16}{m['call_p50_us']:>10.0f}us{m['call_p99_us']:>10.0f}us"
            f"{m['calls_per_s']:>12,.0f}{m['one_way'] / base:>14.3f}x{cpu_text:>24}"
        )
    print("(cpu: process CPU time per one-way message, each side; steadier than the rates on a shared machine)")
    pp = med["py->py"]
    print(
        f"py->py / py local: one-way {pp['one_way'] / base:.3f}x, "
        f"call p50 {pp['call_p50_us'] / med['py local']['call_p50_us']:.1f}x"
    )
    if "go->go" in med:
        gg = med["go->go"]
        checks = [
            (f"py->py one-way >= {TARGET_PY_PY}x go->go", pp["one_way"] / gg["one_way"], TARGET_PY_PY, True),
            (f"py->go one-way >= {TARGET_PY_GO}x go->go", med["py->go"]["one_way"] / gg["one_way"], TARGET_PY_GO, True),
            (f"go->py one-way >= {TARGET_PY_GO}x go->go", med["go->py"]["one_way"] / gg["one_way"], TARGET_PY_GO, True),
            (
                f"call p50 py->go <= {TARGET_CALL}x go->go",
                med["py->go"]["call_p50_us"] / gg["call_p50_us"],
                TARGET_CALL,
                False,
            ),
        ]
        print("ratios to go->go: " + ", ".join(f"{n}: {r:.2f}x" for n, r, _, _ in checks))
        met = [(n, r >= t if up else r <= t) for n, r, t, up in checks]
        print("targets: " + ", ".join(f"{n}: {'met' if ok else 'MISSED'}" for n, ok in met))
    else:
        print(f"ergo (Go): {go_note}")
        print("ratios to go->go: pending (Ergo not measured in this run; targets: py->py one-way >= 0.3x,")
        print("  py->go and go->py one-way >= 0.4x, call round trip py->go <= 1.3x go->go)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

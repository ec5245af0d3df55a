"""Local messaging throughput: ergopy against a bare asyncio loop and Pykka.

Measures, in one run on one core:

* one-way: a sender actor sends N messages to a receiver actor (sync
  ``handle_message``). The sender works in bounded batches: it sends ``--chunk``
  messages to the receiver, then one message to itself to continue, so the loop
  stays fair. The receiver counts and, on the last message, resolves a future
  the benchmark awaits;
* ping-pong: two actors bounce one message M times (M round trips).

Beside each ergopy figure it prints two baselines measured in the same run:

(a) a bare asyncio loop: the same two "actors" as a deque drained by one
    ``loop.call_soon`` callback each (the floor cost of a Python message);
(b) Pykka: ``ThreadingActor.tell`` one-way (same batched sender), ``tell``
    ping-pong between two actors, and ``ask`` round trips from the main thread.
    Pykka is slower, so it runs ``--pykka-scale`` of N and M (rates are per second)
    and ``ask`` a tenth of that.

and the ratio ergopy / bare loop; and (c) Ergo itself: ``benchmarks/go/ergo_local``, the
same one-way and ping-pong on one core (``GOMAXPROCS=1``, pinned to the same core), when
``go_build.py`` could build it. The Go module proxy refuses ``ergo.services/*`` here
(403); then the run says so and prints issue 12's Ergo figures as a labelled reference
(one-way 3.49-3.58 M/s, ping-pong 399-421 k/s on this 2-core machine), not as measured.
Usage::

    python benchmarks/local_messaging.py                 # uvloop when installed, core 0
    python benchmarks/local_messaging.py --loop asyncio --cpu 1
    python benchmarks/local_messaging.py --quick         # a few seconds, for CI

Every run is bounded: each measurement stops by itself after its N or M
messages (and a ``--timeout`` guards against a hang). ``--repeat`` runs each
measurement several times and keeps the best.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import ergopy
from ergopy import act, gen

sys.path.insert(0, str(Path(__file__).resolve().parent))
import go_build

TARGET_ONE_WAY = 2_000_000  # msgs/s, uvloop, one core
TARGET_ROUND_TRIPS = 250_000  # round trips/s, uvloop, one core
TARGET_RATIO = 0.4  # of the bare loop in the same run
# Issue 12: Ergo on this machine, one core (not measured by this run when ergo_local cannot be built)
ERGO_REFERENCE_ONE_WAY = (3.49e6, 3.58e6)
ERGO_REFERENCE_ROUND_TRIPS = (399e3, 421e3)

_CONTINUE = object()  # the sender's "send the next chunk" message to itself


# ---- ergopy ----------------------------------------------------------------------------------


class Receiver(act.Actor):
    def init(self, n: int, done: asyncio.Future[float]) -> None:
        self.n = n
        self.count = 0
        self.done = done

    def handle_message(self, from_: gen.PID, message: Any) -> None:
        self.count += 1
        if self.count == self.n:
            self.done.set_result(time.perf_counter())


class Sender(act.Actor):
    def init(self, to: gen.PID, n: int, chunk: int) -> None:
        self.to = to
        self.left = n
        self.chunk = chunk

    def handle_message(self, from_: gen.PID, message: Any) -> None:
        k = min(self.chunk, self.left)
        self.left -= k
        send = self.send
        to = self.to
        for i in range(k):
            send(to, i)
        if self.left:
            send(self.pid, _CONTINUE)


class Pinger(act.Actor):
    def init(self, peer: gen.PID, m: int, done: asyncio.Future[float]) -> None:
        self.peer = peer
        self.left = m
        self.done = done

    def handle_message(self, from_: gen.PID, message: Any) -> None:
        if message == "pong":
            self.left -= 1
            if not self.left:
                self.done.set_result(time.perf_counter())
                return
        self.send(self.peer, "ping")


class Ponger(act.Actor):
    def handle_message(self, from_: gen.PID, message: Any) -> None:
        self.send(from_, "pong")


async def ergopy_one_way(n: int, chunk: int) -> float:
    loop = asyncio.get_running_loop()
    node = await ergopy.start_node("bench@localhost")
    try:
        done: asyncio.Future[float] = loop.create_future()
        receiver = await node.spawn(Receiver, None, n, done)
        sender = await node.spawn(Sender, None, receiver, n, chunk)
        start = time.perf_counter()
        node.send(sender, _CONTINUE)
        end = await done
        return n / (end - start)
    finally:
        await node.stop()


async def ergopy_ping_pong(m: int) -> float:
    loop = asyncio.get_running_loop()
    node = await ergopy.start_node("bench@localhost")
    try:
        done: asyncio.Future[float] = loop.create_future()
        ponger = await node.spawn(Ponger)
        pinger = await node.spawn(Pinger, None, ponger, m, done)
        start = time.perf_counter()
        node.send(pinger, "go")
        end = await done
        return m / (end - start)
    finally:
        await node.stop()


# ---- (a) the bare loop: a deque drained by one call_soon callback -----------------------------


class BareActor:
    """The least a Python actor can be: a deque, a flag and one drain callback."""

    __slots__ = ("call_soon", "handler", "q", "scheduled")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.q: deque[tuple[Any, Any]] = deque()
        self.scheduled = False
        self.call_soon = loop.call_soon
        self.handler: Callable[[Any, Any], None] = lambda from_, message: None

    def push(self, from_: Any, message: Any) -> None:
        self.q.append((from_, message))
        if not self.scheduled:
            self.scheduled = True
            self.call_soon(self.drain)

    def drain(self) -> None:
        q = self.q
        pop = q.popleft
        handler = self.handler
        for _ in range(len(q)):  # what was queued when the drain began, then yield
            from_, message = pop()
            handler(from_, message)
        if q:
            self.call_soon(self.drain)
        else:
            self.scheduled = False


async def bare_one_way(n: int, chunk: int) -> float:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[float] = loop.create_future()
    receiver = BareActor(loop)
    sender = BareActor(loop)
    count = 0
    left = n

    def receive(from_: Any, message: Any) -> None:
        nonlocal count
        count += 1
        if count == n:
            done.set_result(time.perf_counter())

    def send_chunk(from_: Any, message: Any) -> None:
        nonlocal left
        k = min(chunk, left)
        left -= k
        push = receiver.push
        for i in range(k):
            push(sender, i)
        if left:
            sender.push(sender, _CONTINUE)

    receiver.handler = receive
    sender.handler = send_chunk
    start = time.perf_counter()
    sender.push(None, _CONTINUE)
    end = await done
    return n / (end - start)


async def bare_ping_pong(m: int) -> float:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[float] = loop.create_future()
    pinger = BareActor(loop)
    ponger = BareActor(loop)
    left = m

    def ping(from_: Any, message: Any) -> None:
        nonlocal left
        if message == "pong":
            left -= 1
            if not left:
                done.set_result(time.perf_counter())
                return
        ponger.push(pinger, "ping")

    def pong(from_: Any, message: Any) -> None:
        from_.push(ponger, "pong")

    pinger.handler = ping
    ponger.handler = pong
    start = time.perf_counter()
    pinger.push(None, "go")
    end = await done
    return m / (end - start)


# ---- (b) Pykka ------------------------------------------------------------------------------------


def pykka_available() -> bool:
    try:
        import pykka  # noqa: F401
    except ImportError:
        return False
    return True


def pykka_one_way(n: int, chunk: int, timeout: float) -> float:
    import pykka

    done = threading.Event()
    end = [0.0]

    class PReceiver(pykka.ThreadingActor):
        def __init__(self) -> None:
            super().__init__()
            self.count = 0

        def on_receive(self, message: Any) -> None:
            self.count += 1
            if self.count == n:
                end[0] = time.perf_counter()
                done.set()

    class PSender(pykka.ThreadingActor):
        def __init__(self, to: Any) -> None:
            super().__init__()
            self.to = to
            self.left = n

        def on_receive(self, message: Any) -> None:
            k = min(chunk, self.left)
            self.left -= k
            tell = self.to.tell
            for i in range(k):
                tell(i)
            if self.left:
                self.actor_ref.tell(_CONTINUE)

    receiver = PReceiver.start()
    sender = PSender.start(receiver)
    try:
        start = time.perf_counter()
        sender.tell(_CONTINUE)
        if not done.wait(timeout):
            raise TimeoutError("pykka one-way did not finish")
        return n / (end[0] - start)
    finally:
        pykka.ActorRegistry.stop_all()


def pykka_ping_pong_tell(m: int, timeout: float) -> float:
    import pykka

    done = threading.Event()
    end = [0.0]

    class PPonger(pykka.ThreadingActor):
        def on_receive(self, message: Any) -> None:
            message[0].tell((self.actor_ref, "pong"))

    class PPinger(pykka.ThreadingActor):
        def __init__(self, peer: Any) -> None:
            super().__init__()
            self.peer = peer
            self.left = m

        def on_receive(self, message: Any) -> None:
            if message[1] == "pong":
                self.left -= 1
                if not self.left:
                    end[0] = time.perf_counter()
                    done.set()
                    return
            self.peer.tell((self.actor_ref, "ping"))

    ponger = PPonger.start()
    pinger = PPinger.start(ponger)
    try:
        start = time.perf_counter()
        pinger.tell((None, "go"))
        if not done.wait(timeout):
            raise TimeoutError("pykka ping-pong did not finish")
        return m / (end[0] - start)
    finally:
        pykka.ActorRegistry.stop_all()


def pykka_ping_pong_ask(m: int) -> float:
    import pykka

    class PEcho(pykka.ThreadingActor):
        def on_receive(self, message: Any) -> Any:
            return message

    echo = PEcho.start()
    try:
        ask = echo.ask
        start = time.perf_counter()
        for i in range(m):
            ask(i)
        return m / (time.perf_counter() - start)
    finally:
        pykka.ActorRegistry.stop_all()


# ---- (c) Ergo -------------------------------------------------------------------------------------


def ergo_local(args: argparse.Namespace) -> tuple[dict[str, float] | None, str]:
    """Ergo's one-way and ping-pong (``benchmarks/go/ergo_local``), or None and why not.

    Never raises: a build or run failure is the returned note.
    """
    built = go_build.build("ergo_local")
    if built.path is None:
        return None, built.note
    cmd = [str(built.path), f"-n={args.n}", f"-m={args.m}", f"-chunk={args.chunk}", f"-repeat={args.repeat}"]
    cmd.append(f"-timeout={args.timeout:g}s")
    pin = None
    if args.cpu >= 0 and hasattr(os, "sched_setaffinity"):
        cpu = args.cpu

        def pin() -> None:
            os.sched_setaffinity(0, {cpu})

    try:
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=2 * args.timeout * args.repeat + 30, preexec_fn=pin
        )
        if done.returncode != 0:
            return None, f"ergo_local failed: {done.stderr.strip()[-300:]}"
        out = json.loads(done.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.TimeoutExpired, ValueError, IndexError) as e:
        return None, f"ergo_local failed: {e}"
    return {"one_way": float(out["one_way"]), "ping_pong": float(out["ping_pong"])}, "measured"


# ---- the run ----------------------------------------------------------------------------------------


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return asyncio.new_event_loop


def best_interleaved(
    runner: asyncio.Runner,
    fns: dict[str, Callable[[], Coroutine[Any, Any, float]]],
    repeat: int,
    timeout: float,
) -> dict[str, float]:
    """Run each measurement ``repeat`` times, alternating them (so drift hits all alike); keep the best."""
    best = dict.fromkeys(fns, 0.0)
    for _ in range(repeat):
        for name, fn in fns.items():
            gc.collect()
            best[name] = max(best[name], runner.run(asyncio.wait_for(fn(), timeout)))
    return best


def fmt_rate(rate: float) -> str:
    return f"{rate / 1e6:6.3f} M/s" if rate >= 1e6 else f"{rate / 1e3:6.1f} k/s"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    uvloop_ok = True
    try:
        import uvloop  # noqa: F401
    except ImportError:
        uvloop_ok = False
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--loop", choices=["asyncio", "uvloop"], default="uvloop" if uvloop_ok else "asyncio")
    p.add_argument("--cpu", type=int, default=0, help="pin the run to this core (-1: do not pin)")
    p.add_argument("--quick", action="store_true", help="small N and M, one repeat (seconds, for CI)")
    p.add_argument("-n", type=int, default=None, help="one-way messages (default 2,000,000; quick 100,000)")
    p.add_argument("-m", type=int, default=None, help="ping-pong round trips (default 500,000; quick 20,000)")
    p.add_argument("--chunk", type=int, default=1000, help="messages per sender batch (default 1000)")
    p.add_argument("--repeat", type=int, default=None, help="runs per measurement, best kept (default 3; quick 1)")
    p.add_argument("--pykka-scale", type=float, default=0.1, help="fraction of N and M Pykka runs (default 0.1)")
    p.add_argument("--no-pykka", action="store_true", help="skip the Pykka baseline")
    p.add_argument("--no-ergo", action="store_true", help="skip Ergo (benchmarks/go/ergo_local)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds allowed per measurement (default 120)")
    p.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = p.parse_args(argv)
    if args.loop == "uvloop" and not uvloop_ok:
        p.error("uvloop is not installed")
    args.n = args.n or (100_000 if args.quick else 2_000_000)
    args.m = args.m or (20_000 if args.quick else 500_000)
    args.repeat = args.repeat or (1 if args.quick else 3)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    pinned = "not pinned"
    if args.cpu >= 0 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
        pinned = f"core {args.cpu}"
    print(
        f"ergopy local messaging: loop={args.loop} {pinned} python={sys.version.split()[0]} "
        f"N={args.n:,} M={args.m:,} chunk={args.chunk} repeat={args.repeat}"
    )
    results: dict[str, float] = {}
    with asyncio.Runner(loop_factory=loop_factory(args.loop)) as runner:
        n, m, chunk = args.n, args.m, args.chunk
        fns: dict[str, Callable[[], Coroutine[Any, Any, float]]] = {
            "bare one-way": lambda: bare_one_way(n, chunk),
            "ergopy one-way": lambda: ergopy_one_way(n, chunk),
            "bare ping-pong": lambda: bare_ping_pong(m),
            "ergopy ping-pong": lambda: ergopy_ping_pong(m),
        }
        results.update(best_interleaved(runner, fns, args.repeat, args.timeout))
    pykka_note = ""
    if args.no_pykka:
        pykka_note = "skipped (--no-pykka)"
    elif not pykka_available():
        pykka_note = "skipped (pykka not installed: pip install -e '.[bench]')"
    else:
        pn = max(1, int(args.n * args.pykka_scale))
        pm = max(1, int(args.m * args.pykka_scale))
        pa = max(1, pm // 10)
        pykka_fns: dict[str, Callable[[], float]] = {
            "pykka one-way": lambda: pykka_one_way(pn, args.chunk, args.timeout),
            "pykka ping-pong": lambda: pykka_ping_pong_tell(pm, args.timeout),
            "pykka ask": lambda: pykka_ping_pong_ask(pa),
        }
        for _ in range(args.repeat):  # best of --repeat, as for the others
            for name, fn in pykka_fns.items():
                gc.collect()
                results[name] = max(results.get(name, 0.0), fn())
        pykka_note = f"N={pn:,}, tell ping-pong M={pm:,}, ask M={pa:,} (threads; the GIL hands over between them)"

    print()
    print(f"{'one-way msgs/s':<28}{'ergopy':>14}{'bare loop':>14}{'pykka':>14}{'ergopy/bare':>14}")
    ow, bow = results["ergopy one-way"], results["bare one-way"]
    print(
        f"{'  sender -> receiver':<28}{fmt_rate(ow):>14}{fmt_rate(bow):>14}"
        f"{fmt_rate(results['pykka one-way']) if 'pykka one-way' in results else '-':>14}{ow / bow:>13.2f}x"
    )
    print(f"{'round trips/s':<28}")
    pp, bpp = results["ergopy ping-pong"], results["bare ping-pong"]
    print(
        f"{'  ping-pong (tell)':<28}{fmt_rate(pp):>14}{fmt_rate(bpp):>14}"
        f"{fmt_rate(results['pykka ping-pong']) if 'pykka ping-pong' in results else '-':>14}{pp / bpp:>13.2f}x"
    )
    if "pykka ask" in results:
        print(f"{'  ask from main thread':<28}{'':>14}{'':>14}{fmt_rate(results['pykka ask']):>14}")
    print(f"pykka: {pykka_note}")
    if "pykka one-way" in results:
        print(
            f"ergopy / pykka: one-way {ow / results['pykka one-way']:.1f}x, "
            f"ping-pong {pp / results['pykka ping-pong']:.1f}x"
        )

    if args.no_ergo:
        ergo, ergo_note = None, "skipped (--no-ergo)"
    else:
        ergo, ergo_note = ergo_local(args)
    if ergo is not None:
        print(
            f"ergo (Go, GOMAXPROCS=1, {pinned}): one-way {fmt_rate(ergo['one_way'])}, "
            f"ping-pong {fmt_rate(ergo['ping_pong'])}"
        )
        print(f"ergopy / ergo: one-way {ow / ergo['one_way']:.2f}x, ping-pong {pp / ergo['ping_pong']:.2f}x")
    else:
        lo, hi = ERGO_REFERENCE_ONE_WAY
        plo, phi = ERGO_REFERENCE_ROUND_TRIPS
        print(f"ergo (Go): {ergo_note}")
        print(
            f"ergo (reference, issue 12's figures on this machine, not measured here): one-way "
            f"{fmt_rate(lo).strip()}-{fmt_rate(hi).strip()}, ping-pong {fmt_rate(plo).strip()}-{fmt_rate(phi).strip()}"
        )
        print(
            f"ergopy / ergo reference: one-way {ow / hi:.2f}-{ow / lo:.2f}x, ping-pong {pp / phi:.2f}-{pp / plo:.2f}x"
        )

    checks = [
        ("one-way >= 2 M/s", ow >= TARGET_ONE_WAY),
        ("round trips >= 250 k/s", pp >= TARGET_ROUND_TRIPS),
        (f"one-way >= {TARGET_RATIO}x bare", ow / bow >= TARGET_RATIO),
        (f"ping-pong >= {TARGET_RATIO}x bare", pp / bpp >= TARGET_RATIO),
    ]
    note = "" if args.loop == "uvloop" and not args.quick else " (targets are for a full uvloop run)"
    print("targets" + note + ": " + ", ".join(f"{name}: {'met' if ok else 'MISSED'}" for name, ok in checks))
    if args.check and not all(ok for _, ok in checks):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The actor hop's CPU cost per message, in one process: what ``ws_echo.py`` cannot show steadily.

``ws_echo.py`` measures over real sockets, where most of a message's time goes to the
kernel's reads and writes and the load client shares the machine, and where this
virtual machine's speed drifts by up to 2x over minutes. This drives the same server
code with no socket and no load client: each connection's transport is a stand-in
that counts writes, and each frame is handed to the engine's ``data_received`` as the
event loop would. What is measured is ergopy's own work per echoed message, in three
sets of connections living in one node in one process:

* ``ergopy``: the ``ergopy`` row of ``ws_echo.py``: a websocket handler with a pool of 4
  workers; every message goes connection -> worker process -> ``send_alias`` back ->
  connection.
* ``no actor hop``: the same connections echoing from their own meta-process (the
  ``ergopy-direct`` row: ``ws_echo.direct_connection_class``).
* ``engine alone``: the frame engine echoing from its callback (no node, no meta-process).

A batch is one masked 64-byte text frame to each of ``--conns`` connections of a set,
waiting for every echo to be written; a round is ``--batches`` batches of every set,
the sets taking turns batch by batch (the order rotates), so a change of the machine's
speed weighs on all of them alike. The medians over the rounds are printed, with the
hop's cost (``ergopy`` minus ``no actor hop``).

    python benchmarks/ws_hop.py              # 1,000 connections, 7 rounds of 100 batches
    python benchmarks/ws_hop.py --quick      # a few seconds, for CI

Every loop is bounded by its counts; a round that does not complete in 60 s fails the run.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ws_echo

import ergopy
from ergopy import act, gen
from ergopy.meta import websocket
from ergopy.meta.websocket import engine, upgrade
from ergopy.meta.websocket import handler as handler_module

_UPGRADE = (
    b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13"
)
_ROUND_TIMEOUT = 60.0
WORKERS = 4


class _Writes:
    """Counts the writes of every stand-in transport; resolves ``done`` at ``want``."""

    def __init__(self) -> None:
        self.n = 0
        self.want = -1
        self.done: asyncio.Future[None] | None = None

    def hit(self) -> None:
        self.n += 1
        if self.n == self.want and self.done is not None:
            self.done.set_result(None)


class _Transport(asyncio.Transport):
    """A socket that takes every write at once: the engine's ``_flush`` sees what it sees on
    a fast socket (nothing buffered), and each write is counted."""

    def __init__(self, writes: _Writes) -> None:
        super().__init__()
        self._writes = writes
        self.protocol: Any = None

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name in ("peername", "sockname") else default

    def write(self, data: Any) -> None:
        self._writes.hit()

    def writelines(self, list_of_data: Any) -> None:
        self._writes.hit()

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0

    def set_protocol(self, protocol: Any) -> None:
        self.protocol = protocol

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


def _frame(size: int) -> bytes:
    """One masked text frame of ``size`` bytes (size < 126), as a client sends it."""
    key = os.urandom(4)
    return bytes((0x81, 0x80 | size)) + key + engine.unmask(key, b"x" * size)


class _Echo(act.Actor):
    def handle_message(self, from_: gen.PID, message: Any) -> None:
        if type(message) is websocket.Message:
            self.send_alias(message.id, message)  # type: ignore[arg-type]


class _Web(act.Actor):
    """Spawns the handler meta-process and hands it to the benchmark through ``found``."""

    def init(self, pool: list[str], found: asyncio.Future[Any]) -> None:
        handler = websocket.create_handler(websocket.HandlerOptions(process_pool=pool))
        self.spawn_meta(handler, gen.MetaOptions())
        found.set_result(handler)


def _connections(handler: Any, n: int, writes: _Writes) -> list[Any]:
    """``n`` connections upgraded by ``handler``, each on a stand-in transport; their engines."""
    head = upgrade.parse_head(_UPGRADE, 8190, 8190)
    assert head is not None
    protos = []
    for _ in range(n):
        tp = _Transport(writes)
        if not handler.accept_upgrade(head, tp, b"", False):
            raise RuntimeError("the handler refused the upgrade")
        protos.append(tp.protocol)
    return protos


def _engines(n: int, writes: _Writes) -> list[Any]:
    """``n`` frame engines echoing from their callback, each on a stand-in transport."""
    protos = []
    for _ in range(n):
        ws = engine.WSProtocol(client=False)
        ws.connection_made(_Transport(writes))
        ws.attach(ws.send)
        protos.append(ws)
    return protos


async def _batch(protos: list[Any], writes: _Writes, frame: bytes) -> float:
    """Seconds to echo one frame on every connection of ``protos`` (every write waited for)."""
    writes.want = writes.n + len(protos)
    writes.done = asyncio.get_running_loop().create_future()
    t0 = time.perf_counter()
    for p in protos:
        p.data_received(frame)
    await writes.done
    return time.perf_counter() - t0


async def _round(sets: dict[str, list[Any]], writes: _Writes, frame: bytes, batches: int) -> dict[str, float]:
    """Microseconds per echoed message of each set over ``batches`` batches each, the sets taking
    turns batch by batch (a few milliseconds each), so a change of the machine's speed weighs
    on all of them alike."""
    names = list(sets)
    spent = dict.fromkeys(names, 0.0)
    async with asyncio.timeout(_ROUND_TIMEOUT):
        for b in range(batches):
            for name in names[b % len(names) :] + names[: b % len(names)]:
                spent[name] += await _batch(sets[name], writes, frame)
    return {name: t / (batches * len(sets[name])) * 1e6 for name, t in spent.items()}


async def measure(conns: int, batches: int, rounds: int) -> dict[str, list[float]]:
    """The three sets' microseconds per message, one figure per round each."""
    node = await ergopy.start_node("wshop@localhost", gen.NodeOptions())
    try:
        pool = [f"echo{i}" for i in range(1, WORKERS + 1)]
        for name in pool:
            await node.spawn_register(name, _Echo)
        found: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        await node.spawn_register("web", _Web, None, pool, found)
        handler = await found
        writes = _Writes()
        sets: dict[str, list[Any]] = {"ergopy": _connections(handler, conns, writes)}
        plain = handler_module.Connection
        handler_module.Connection = ws_echo.direct_connection_class()  # type: ignore[misc]
        try:
            sets["no actor hop"] = _connections(handler, conns, writes)
        finally:
            handler_module.Connection = plain  # type: ignore[misc]
        sets["engine alone"] = _engines(conns, writes)
        frame = _frame(64)
        # warm-up; a connection whose start() has not attached to its engine yet holds the
        # first frame and delivers it on attaching: the batch waits for its echo all the same
        await _round(sets, writes, frame, max(3, batches // 10))
        results: dict[str, list[float]] = {name: [] for name in sets}
        for _ in range(rounds):
            for name, us in (await _round(sets, writes, frame, batches)).items():
                results[name].append(us)
        return results
    finally:
        await node.stop()


def report(results: dict[str, list[float]], conns: int, batches: int) -> None:
    med = {name: statistics.median(v) for name, v in results.items()}
    engine_us = med["engine alone"]
    print(
        f"ws_hop: {conns:,} connections x 1 message of 64 bytes, {batches} batches per round, "
        f"medians of {len(next(iter(results.values())))} rounds, the sets taking turns batch by batch; "
        "no socket (writes counted)"
    )
    print(f"  {'server':<16}{'us / message':>14}{'x engine alone':>16}   each round (us / message)")
    for name, us in med.items():
        rounds = " ".join(f"{x:.2f}" for x in results[name])
        print(f"  {name:<16}{us:>14.2f}{us / engine_us:>16.2f}   {rounds}")
    hop = med["ergopy"] - med["no actor hop"]
    print(
        f"  the actor hop (connection -> worker -> send_alias -> connection): {hop:.2f} us per message, "
        f"{hop / med['ergopy']:.0%} of ergopy's own work; the connection meta-process: "
        f"{med['no actor hop'] - engine_us:.2f} us"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--conns", type=int, default=1000, help="connections per set (default 1000)")
    ap.add_argument("--batches", type=int, default=100, help="batches per round (default 100)")
    ap.add_argument("--rounds", type=int, default=7, help="alternating rounds, medians kept (default 7)")
    ap.add_argument("--cpu", type=int, default=0, help="core to pin to (-1: do not pin)")
    ap.add_argument("--quick", action="store_true", help="100 connections, 3 rounds of 20 batches, for CI")
    args = ap.parse_args(argv)
    if args.quick:
        args.conns, args.batches, args.rounds = 100, 20, 3
    if args.cpu >= 0 and hasattr(os, "sched_setaffinity") and args.cpu in os.sched_getaffinity(0):
        os.sched_setaffinity(0, {args.cpu})
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"  # what ergopy.run uses
    print(f"ws_hop: python {sys.version.split()[0]}, loop={loop}, cpu {args.cpu}")
    results = ergopy.run(lambda: measure(args.conns, args.batches, args.rounds), log_level=40)
    report(results, args.conns, args.batches)
    return 0


if __name__ == "__main__":
    sys.exit(main())

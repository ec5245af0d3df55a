"""Autobahn|Testsuite client mode: ergopy's client connections against ``wstest -m fuzzingserver``.

    python tests/conformance/echo_client.py --port 9001 [--compression] [--case-timeout 120]

A driver actor reads ``/getCaseCount`` (the count arrives as a text message), then
for each case N dials ``/runCase?case=N&agent=ergopy`` with
``websocket.create_connection`` and spawns the connection meta-process with an echo
worker (same type back); the worker reports the ``MessageDisconnect`` to the driver,
which then runs the next case. Finally ``/updateReports?agent=ergopy`` writes the
reports. Exits 0 when every case ran (verdicts are judged from the reports).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import dataclass
from typing import Any

import ergopy
from ergopy import act, gen
from ergopy.meta import websocket

AGENT = "ergopy"
MAX_MESSAGE_SIZE = 16 << 20
OUTBOUND_LIMIT = 64 << 20


class Echo(act.Actor):
    """Echoes every message back to its connection; tells the driver when a connection ends."""

    def handle_message(self, from_: gen.PID, message: Any) -> None:
        if type(message) is websocket.Message:
            try:
                self.send_alias(message.id, websocket.Message(type=message.type, body=message.body))
            except gen.Error:
                pass  # the connection ended meanwhile (e.g. the peer failed a case and left)
        elif type(message) is websocket.MessageDisconnect:
            self.send("driver", message)


@dataclass(frozen=True, slots=True)
class _CaseTimeout:
    case: int


class Driver(act.Actor):
    def init(self, args: argparse.Namespace, done: Any) -> None:
        self.args = args
        self.base = f"ws://127.0.0.1:{args.port}"
        self.done = done
        self.count: int | None = None
        self.case = 0  # 0: reading the count; 1..count: running; count+1: updating reports
        self.conn: gen.Alias | None = None
        self.cancel_timer: Any = None
        self.started = 0.0
        self.failures: list[str] = []
        self.send(self.pid, "start")

    async def dial(self, path: str, process: str) -> bool:
        try:
            conn = await websocket.create_connection(
                websocket.ConnectionOptions(
                    process=process,
                    url=self.base + path,
                    enable_compression=self.args.compression,
                    compression_threshold=0,  # every message compressed, as in the server
                    max_message_size=MAX_MESSAGE_SIZE,
                    outbound_limit=OUTBOUND_LIMIT,
                )
            )
        except websocket.ConnectError as e:
            self.failures.append(f"{path}: {e}")
            self.log.error("%s", e)
            return False
        try:
            self.conn = self.spawn_meta(conn, gen.MetaOptions())
        except gen.Error as e:
            conn.terminate(e)
            self.failures.append(f"{path}: {e}")
            return False
        self.cancel_timer = self.send_after(self.pid, _CaseTimeout(self.case), self.args.case_timeout)
        return True

    async def next_step(self) -> Any:
        if self.cancel_timer is not None:
            self.cancel_timer()
            self.cancel_timer = None
        self.conn = None
        while True:
            self.case += 1
            assert self.count is not None
            if self.case <= self.count:
                self.started = time.monotonic()
                if await self.dial(f"/runCase?case={self.case}&agent={AGENT}", "echo"):
                    return None
                continue  # could not connect: try the next case (the report will show it)
            if self.case == self.count + 1 and await self.dial(f"/updateReports?agent={AGENT}", ""):
                return None
            return self.finish()

    def finish(self) -> Any:
        if not self.done.done():
            self.done.set_result(self.failures)
        return gen.TERMINATE_REASON_NORMAL

    async def handle_message(self, from_: gen.PID, message: Any) -> Any:
        if message == "start":
            if not await self.dial("/getCaseCount", ""):
                return self.finish()
            return None
        if type(message) is websocket.Message and self.case == 0:
            self.count = int(message.body)
            print(f"cases: {self.count}", flush=True)
            return None
        if type(message) is websocket.MessageDisconnect and message.id == self.conn:
            if self.case == 0 and self.count is None:
                self.failures.append("no case count")
                return self.finish()
            if 1 <= self.case <= (self.count or 0) and self.args.verbose:
                print(f"case {self.case}: {time.monotonic() - self.started:.2f}s code={message.code}", flush=True)
            return await self.next_step()
        if type(message) is _CaseTimeout and message.case == self.case and self.conn is not None:
            self.failures.append(f"case {self.case}: no disconnect within {self.args.case_timeout}s")
            self.log.error("case %d timed out; ending its connection", self.case)
            self.send_exit_meta(self.conn, gen.TERMINATE_REASON_SHUTDOWN)  # its disconnect moves on
            self.cancel_timer = self.send_after(self.pid, _CaseTimeout(self.case), 10.0)
            return None
        if type(message) is _CaseTimeout and message.case == self.case:
            return None
        return None


async def main(args: argparse.Namespace) -> int:
    import asyncio

    node = await ergopy.start_node("echoclient@localhost")
    try:
        await node.spawn_register("echo", Echo)
        done = asyncio.get_running_loop().create_future()
        await node.spawn_register("driver", Driver, None, args, done)
        failures = await done
    finally:
        await node.stop()
    for f in failures:
        print(f"error: {f}", file=sys.stderr)
    return 1 if failures else 0


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=9001, help="the fuzzingserver's port")
    p.add_argument("--compression", action="store_true", help="offer permessage-deflate")
    p.add_argument("--case-timeout", type=float, default=120.0, help="seconds one case may take")
    p.add_argument("--verbose", action="store_true", help="print every case's time")
    return p.parse_args(argv)


if __name__ == "__main__":
    sys.exit(ergopy.run(lambda: main(parse(sys.argv[1:])), log_level=logging.WARNING))

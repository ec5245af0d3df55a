"""A node in its own OS process, for the failure tests (``tests/test_net_failures.py``).

    python tests/net_node_proc.py NAME COOKIE PORT [--liveness S] [--host H] [--wait-go]
                                  [--dial PEER PEER_PORT [--peer-host H] [--watch]]

Starts node NAME (cookie COOKIE, one acceptor on 127.0.0.1:PORT or ``--host``,
PORT 0 for a free one; no registrar) with a few processes: "echo" (answers calls
with the request), "sink" (never answers a call), an alias of "echo", and the
event "ev" registered by "echo". With ``--dial`` it connects to PEER at
127.0.0.1:PEER_PORT (or ``--peer-host``) itself: it is then the dialer of the
connection. With ``--wait-go`` it first prints "ready" and waits for a line on
stdin. It prints one JSON line (its port, the ID and creation of "echo", the
alias's ID), then waits until its stdin closes (or it is killed: the point).

With ``--watch`` (and ``--dial``) it also watches the peer's own "echo": link and
monitor of its PID, name, alias and event "ev", and of the peer node, plus one call
to the peer's "sink" that is never answered. After its JSON line it waits for a
line "cut" on stdin, then prints one JSON line: for each watcher the message type,
its reason's type and the seconds since "cut" it took, and the same for the call
(at most 30 s; what did not come is missing).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from typing import Any

import ergopy
from ergopy import act, gen


class Echo(act.Actor):
    """Answers a call with its request; owns the event "ev" and one alias."""

    def init(self) -> None:
        self.token = self.register_event("ev", gen.EventOptions())
        self.alias = self.create_alias()

    def handle_call(self, from_: gen.PID, ref: gen.Ref, request: Any) -> Any:
        if request == "alias":
            return self.alias
        if request == "info":
            return [self.pid.id, self.pid.creation, list(self.alias.id)]
        return request


class Watcher(act.Actor):
    """Trapping exits, links to or monitors what a ``("watch", relation, target)``
    message names (then puts True in ``acks``) and queues everything else it hears."""

    def init(self, q: asyncio.Queue[Any], acks: asyncio.Queue[bool]) -> None:
        self.q, self.acks = q, acks
        self.set_trap_exit(True)

    def handle_message(self, from_: gen.PID, message: Any) -> None:
        if not (isinstance(message, tuple) and message[0] == "watch"):
            self.q.put_nowait(message)
            return
        _, relation, target = message
        if isinstance(target, gen.Event):
            (self.link_event if relation == "link" else self.monitor_event)(target)
        elif isinstance(target, str):
            (self.link_node if relation == "link" else self.monitor_node)(target)
        else:
            (self.link if relation == "link" else self.monitor)(target)
        self.acks.put_nowait(True)


async def watch(node: ergopy.Node, peer: str) -> None:
    """Watch ``peer``'s echo in every way, wait for "cut", report what arrived (JSON)."""
    pid_id, creation, alias_id = await node.call(gen.ProcessID("echo", peer), "info")
    targets: list[Any] = [
        gen.PID(peer, pid_id, creation),
        gen.ProcessID("echo", peer),
        gen.Alias(peer, creation, tuple(alias_id)),
        gen.Event("ev", peer),
        peer,
    ]
    q: asyncio.Queue[Any] = asyncio.Queue()
    acks: asyncio.Queue[bool] = asyncio.Queue()
    for relation in ("link", "monitor"):
        for target in targets:
            node.send(await node.spawn(Watcher, None, q, acks), ("watch", relation, target))
            async with asyncio.timeout(10):
                await acks.get()
    call = asyncio.create_task(node.call(gen.ProcessID("sink", peer), "hang", timeout=60))
    try:
        assert await node.call(targets[0], "ping") == "ping"  # every request before it went out
        print(json.dumps({"watching": 2 * len(targets)}), flush=True)
        loop = asyncio.get_running_loop()
        assert (await loop.run_in_executor(None, sys.stdin.readline)).strip() == "cut"
        start = loop.time()
        told: list[list[Any]] = []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(30):
                while len(told) < 2 * len(targets):
                    m = await q.get()
                    told.append([type(m).__name__, type(getattr(m, "reason", None)).__name__, loop.time() - start])
        failed: list[Any] = []
        try:
            async with asyncio.timeout(max(0.1, start + 30 - loop.time())):
                await call
        except TimeoutError:
            pass
        except Exception as e:
            failed = [type(e).__name__, loop.time() - start]
        print(json.dumps({"told": told, "call": failed}), flush=True)
    finally:
        call.cancel()
        await asyncio.gather(call, return_exceptions=True)


class Sink(act.Actor):
    """Takes calls and never answers them (a pending call)."""

    def handle_call(self, from_: gen.PID, ref: gen.Ref, request: Any) -> Any:
        return None  # no reply: the caller waits


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("name")
    parser.add_argument("cookie")
    parser.add_argument("port", type=int)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--liveness", type=float, default=20.0)
    parser.add_argument("--dial", nargs=2, metavar=("PEER", "PEER_PORT"))
    parser.add_argument("--watch", action="store_true")
    parser.add_argument("--peer-host", default="127.0.0.1")
    parser.add_argument("--wait-go", action="store_true")
    args = parser.parse_args()
    if args.wait_go:  # e.g. in a fresh network namespace: until the test has set up its links
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    routes = {args.dial[0]: gen.NetworkRoute(host=args.peer_host, port=int(args.dial[1]))} if args.dial else {}
    options = gen.NetworkOptions(
        cookie=args.cookie,
        acceptors=[gen.AcceptorOptions(host=args.host, port=args.port)],
        registrar=False,
        routes=routes,
        liveness=args.liveness,
    )
    node = await ergopy.start_node(args.name, gen.NodeOptions(network=options))
    try:
        echo = await node.spawn_register("echo", Echo)
        await node.spawn_register("sink", Sink)
        alias = await node.call(echo, "alias")
        if args.dial:
            await node.network.get_node(args.dial[0])
        port = node.network.acceptors()[0].port
        print(
            json.dumps({"port": port, "echo": echo.id, "creation": echo.creation, "alias": list(alias.id)}),
            flush=True,
        )
        if args.watch and args.dial:
            await watch(node, args.dial[0])
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    finally:
        await node.stop()


if __name__ == "__main__":
    asyncio.run(main())

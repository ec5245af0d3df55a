"""A node in its own OS process, for the failure tests (``tests/test_net_failures.py``).

    python tests/net_node_proc.py NAME COOKIE PORT [--liveness S] [--host H] [--dial PEER PEER_PORT]

Starts node NAME (cookie COOKIE, one acceptor on 127.0.0.1:PORT, 0 for a free
one, no registrar) with a few processes: "echo" (answers calls with the request),
"sink" (never answers a call), an alias of "echo", and the event "ev" registered
by "echo". With ``--dial`` it connects to PEER at 127.0.0.1:PEER_PORT itself (it
is then the dialer of the connection). It prints one JSON line with its port, the
PID of "echo", the alias and whether it dialled, then waits until its stdin closes
(or it is killed, which is the point).
"""

from __future__ import annotations

import argparse
import asyncio
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
        return self.alias if request == "alias" else request


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
    args = parser.parse_args()
    routes = {args.dial[0]: gen.NetworkRoute(host=args.host, port=int(args.dial[1]))} if args.dial else {}
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
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    finally:
        await node.stop()


if __name__ == "__main__":
    asyncio.run(main())

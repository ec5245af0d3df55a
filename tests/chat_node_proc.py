"""A chat node in its own OS process, for ``tests/test_chat_cluster.py`` (killed with ``kill -9``).

    python tests/chat_node_proc.py NAME COOKIE PORT [--peer NAME PORT]... [--workers N]

Starts node NAME (cookie COOKIE, one acceptor on 127.0.0.1:PORT, no registrar, a
static route to each ``--peer``) and the chat on a free web port with
``cluster`` = NAME and every peer. When it is connected to every peer it prints one
JSON line, ``{"ws_url": ..., "port": PORT}``, then serves until its stdin closes
(or it is killed: the point).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

import ergopy
from ergopy import gen
from ergopy.examples.chat import ChatOptions, start_chat

CONNECT_TIMEOUT = 30.0  # seconds to see every peer: they start at about the same time


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("name")
    parser.add_argument("cookie")
    parser.add_argument("port", type=int)
    parser.add_argument("--peer", nargs=2, action="append", default=[], metavar=("NAME", "PORT"))
    parser.add_argument("--workers", type=int, default=3)
    args = parser.parse_args()
    options = gen.NetworkOptions(
        cookie=args.cookie,
        acceptors=[gen.AcceptorOptions(host="127.0.0.1", port=args.port)],
        registrar=False,
        routes={name: gen.NetworkRoute(host="127.0.0.1", port=int(port)) for name, port in args.peer},
    )
    node = await ergopy.start_node(args.name, gen.NodeOptions(network=options))
    try:
        peers = [name for name, _ in args.peer]
        cluster = (args.name, *peers)
        chat = await start_chat(node, ChatOptions(port=0, workers=args.workers, cluster=cluster))
        async with asyncio.timeout(CONNECT_TIMEOUT):
            while not set(peers) <= set(node.network.nodes()):
                await node.network._endpoint.changes.wait()
        print(json.dumps({"ws_url": chat.ws_url, "port": args.port}), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    finally:
        await node.stop()


if __name__ == "__main__":
    asyncio.run(main())

"""Autobahn|Testsuite echo server built only from ergopy's public API.

    python tests/conformance/echo_server.py --port 0 [--compression]

A node, a websocket handler served by ``web.create_web_server`` on 127.0.0.1, and a
pool of workers that echo every ``websocket.Message`` back to its connection with
the same type. Prints ``PORT <n>`` once it listens; runs until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

import ergopy
from ergopy import act, gen
from ergopy.meta import web, websocket

MAX_MESSAGE_SIZE = 16 << 20  # cases 9.* send messages up to 16 MiB
OUTBOUND_LIMIT = 64 << 20  # 9.* echoes 16 MiB messages back-to-back: never a slow consumer here


class Echo(act.Actor):
    def handle_message(self, from_: gen.PID, message: Any) -> None:
        if type(message) is websocket.Message:
            try:
                self.send_alias(message.id, websocket.Message(type=message.type, body=message.body))
            except gen.Error:
                pass  # the connection ended meanwhile (e.g. the peer failed a case and left)


class Server(act.Actor):
    def init(self, handler: websocket.Handler) -> None:
        self.spawn_meta(handler, gen.MetaOptions())


async def main(args: argparse.Namespace) -> None:
    node = await ergopy.start_node("echo@localhost")
    pool = [f"echo{i}" for i in range(args.workers)]
    for name in pool:
        await node.spawn_register(name, Echo)
    handler = websocket.create_handler(
        websocket.HandlerOptions(
            process_pool=pool,
            enable_compression=args.compression,
            compression_threshold=0,  # every message compressed: Autobahn checks our deflate at every size
            max_message_size=MAX_MESSAGE_SIZE,
            outbound_limit=OUTBOUND_LIMIT,
        )
    )
    await node.spawn_register("server", Server, None, handler)
    server = await web.create_web_server(web.WebServerOptions(host="127.0.0.1", port=args.port, handler=handler))
    await node.spawn_register("listener", Server, None, server)
    print(f"PORT {server.port}", flush=True)
    await node.wait()


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=9001, help="0 picks a free port (default 9001)")
    p.add_argument("--compression", action="store_true", help="offer permessage-deflate")
    p.add_argument("--workers", type=int, default=3, help="pool size (default 3)")
    return p.parse_args(argv)


if __name__ == "__main__":
    ergopy.run(lambda: main(parse(sys.argv[1:])), log_level=logging.WARNING)

"""``python -m ergopy.examples.chat [--host H] [--port P] [--workers N]``: run the chat until Ctrl-C."""

from __future__ import annotations

import argparse
import errno
import socket
import sys

import ergopy

from ... import gen
from .app import ChatOptions, start_chat


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m ergopy.examples.chat",
        description="Runs the chat demo (a web page and its WebSocket service) until Ctrl-C.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8080, help="port; 0 picks a free one (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=4, help="chat worker processes (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    if not 0 <= args.port <= 65535:
        parser.error("--port must be between 0 and 65535")
    return args


def _cannot_listen(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be listened on (in use, no such address), or None.

    Checked before the node starts so that a busy port is one line, not the
    supervision tree's exit reports first.
    """
    if port == 0:
        return None
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        for family, kind, proto, _, address in infos:
            with socket.socket(family, kind, proto) as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as asyncio's server does
                s.bind(address)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            return "the port is in use (another program listens there: pick another with --port)"
        return str(e.strerror or e)
    return None


async def _serve(options: ChatOptions) -> int:
    problem = _cannot_listen(options.host, options.port)
    if problem is not None:
        print(f"chat: cannot start on {options.host}:{options.port}: {problem}", file=sys.stderr)
        return 1
    node = await ergopy.start_node("chat@localhost")
    try:
        chat = await start_chat(node, options)
    except (OSError, gen.Error) as e:
        await node.stop()
        print(f"chat: cannot start on {options.host}:{options.port}: {e}", file=sys.stderr)
        return 1
    print(f"open {chat.url}  (Ctrl-C stops)", flush=True)
    await node.wait()  # SIGINT/SIGTERM stop the node: clients see close 1001
    print("chat: stopped", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    return ergopy.run(lambda: _serve(ChatOptions(args.host, args.port, args.workers)))


if __name__ == "__main__":
    sys.exit(main())

"""``python -m ergopy.examples.chat``: run the chat until Ctrl-C, on one node or several.

::

    python -m ergopy.examples.chat [--host H] [--port P] [--workers W] [--nodes N]
    ERGOPY_COOKIE=secret python -m ergopy.examples.chat --node NAME [--node-port P]
                                                      [--peers NAME[=HOST:PORT],...]

- Alone (``--nodes 1``, the default): one node ``chat1@localhost`` in this process,
  no network.
- One service on every core (``--nodes N``): ``ergopy.run(main, nodes=N)`` starts N
  node processes ``chat1@localhost`` .. ``chatN@localhost``; they share the launcher's
  random cookie, find each other through the embedded registrar (``--registrar-port``,
  4499 by default: one service per host and registrar port) and all listen on the same
  ``--host``/``--port`` with SO_REUSEPORT, so the kernel spreads the connections. Port
  0 picks one free port first, for all of them. Node 1 prints the "open" line. Ctrl-C
  stops every node (clients see close 1001); a node that dies is restarted.
- Several machines, by hand (``--node``): this process runs the one node ``NAME`` (e.g.
  ``chat1@10.0.0.1``: the host part must be an address the peers can reach), its Ergo
  acceptor on ``--host`` port ``--node-port`` (11144, Go's default; that port only), the
  cookie from the environment variable ``ERGOPY_COOKIE`` (required, the same on every
  node, never a flag: a command line is visible to every user of the machine).
  ``--peers`` names the other nodes of the service; ``NAME=HOST:PORT`` adds a static
  route to it, a bare ``NAME`` is found through the registrar on its host. Start the
  same command on each machine with its own ``--node`` and the others as ``--peers``.
"""

from __future__ import annotations

import argparse
import errno
import functools
import os
import socket
import sys
from dataclasses import dataclass

import ergopy

from ... import gen
from .app import ChatOptions, start_chat

COOKIE_ENV = "ERGOPY_COOKIE"


@dataclass(frozen=True, slots=True)
class _Peer:
    name: str
    host: str | None = None
    port: int | None = None


@dataclass(frozen=True, slots=True)
class _Settings:
    """What every node of the service needs (picklable: it travels to the launcher's children)."""

    host: str
    port: int
    workers: int
    nodes: int = 1
    registrar_port: int = gen.DEFAULT_REGISTRAR_PORT
    node: str | None = None  # --node: this node's name on a service spread over machines
    node_port: int = gen.DEFAULT_ACCEPTOR_PORT
    peers: tuple[_Peer, ...] = ()
    cookie: str | None = None  # --node's cookie (ERGOPY_COOKIE); the launcher makes its own


def _parse_peer(text: str) -> _Peer:
    name, _, address = text.partition("=")
    if "@" not in name:
        raise ValueError(f"a peer is NAME@HOST or NAME@HOST=HOST:PORT, got {text!r}")
    if not address:
        return _Peer(name)
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) <= 65535:
        raise ValueError(f"a peer's address is HOST:PORT, got {address!r} in {text!r}")
    return _Peer(name, host.strip("[]"), int(port))


def _parse(argv: list[str] | None) -> _Settings:
    parser = argparse.ArgumentParser(
        prog="python -m ergopy.examples.chat",
        description=(
            "Runs the chat demo (a web page and its WebSocket service) until Ctrl-C: on one node, "
            "on N node processes sharing one port (--nodes), or as one node of a service spread "
            f"over machines (--node, --peers, the cookie in the environment variable {COOKIE_ENV})."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8080, help="port; 0 picks a free one (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=4, help="chat worker processes per node (default: %(default)s)")
    parser.add_argument(
        "--nodes", type=int, default=1, help="node processes sharing the port, one per core (default: %(default)s)"
    )
    parser.add_argument(
        "--registrar-port",
        type=int,
        default=gen.DEFAULT_REGISTRAR_PORT,
        help="port of the registrar through which the nodes find each other (default: %(default)s)",
    )
    parser.add_argument("--node", metavar="NAME", help="this node's name, e.g. chat1@10.0.0.1 (one node per machine)")
    parser.add_argument(
        "--node-port",
        type=int,
        default=gen.DEFAULT_ACCEPTOR_PORT,
        help="with --node: the port other nodes dial (default: %(default)s)",
    )
    parser.add_argument(
        "--peers",
        default="",
        metavar="NAME[=HOST:PORT],...",
        help="with --node: the service's other nodes; HOST:PORT when their registrar cannot be asked",
    )
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.nodes < 1:
        parser.error("--nodes must be at least 1")
    for flag in ("port", "registrar_port", "node_port"):
        if not 0 <= getattr(args, flag) <= 65535:
            parser.error(f"--{flag.replace('_', '-')} must be between 0 and 65535")
    if args.registrar_port == 0:
        parser.error("--registrar-port must be a port the nodes can share (1-65535): 0 gives each its own")
    peers: tuple[_Peer, ...] = ()
    cookie = None
    if args.peers and not args.node:
        parser.error("--peers needs --node (this node's name)")
    if args.node:
        if args.nodes != 1:
            parser.error("--node runs one node of a service spread over machines: not with --nodes")
        if "@" not in args.node:
            parser.error(f"--node is NAME@HOST, got {args.node!r}")
        try:
            peers = tuple(_parse_peer(p) for p in args.peers.split(",") if p)
        except ValueError as e:
            parser.error(f"--peers: {e}")
        cookie = os.environ.get(COOKIE_ENV)
        if not cookie:
            parser.error(f"--node needs the service's cookie in the environment variable {COOKIE_ENV}")
    return _Settings(
        host=args.host,
        port=args.port,
        workers=args.workers,
        nodes=args.nodes,
        registrar_port=args.registrar_port,
        node=args.node,
        node_port=args.node_port,
        peers=peers,
        cookie=cookie,
    )


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


def _free_port(host: str) -> int:
    """A port free on ``host`` now, for every node of the service to share (``--port 0``).

    Raises ``OSError`` if ``host`` cannot be bound.
    """
    family, kind, proto, _, address = socket.getaddrinfo(
        host or None, 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    with socket.socket(family, kind, proto) as s:
        s.bind(address)
        return int(s.getsockname()[1])


def _node_options(s: _Settings) -> tuple[str, gen.NodeOptions | None, tuple[str, ...]]:
    """This node's name, options and the service's node names (``ChatOptions.cluster``)."""
    if s.node is not None:
        assert s.cookie is not None
        routes = {p.name: gen.NetworkRoute(host=p.host, port=p.port) for p in s.peers if p.host and p.port}
        network = gen.NetworkOptions(
            cookie=s.cookie,
            acceptors=[gen.AcceptorOptions(host=s.host, port=s.node_port, port_range=s.node_port)],
            registrar_port=s.registrar_port,
            routes=routes,
        )
        return s.node, gen.NodeOptions(network=network), (s.node, *(p.name for p in s.peers))
    me = ergopy.member()
    name = f"chat{me.index}@localhost"
    if s.nodes == 1:
        return name, None, ()
    network = gen.NetworkOptions(
        cookie=me.cookie,
        acceptors=[gen.AcceptorOptions(port=0)],  # on the name's host; the registrar tells the port
        registrar_port=s.registrar_port,
    )
    return name, gen.NodeOptions(network=network), tuple(f"chat{i}@localhost" for i in range(1, s.nodes + 1))


async def _serve(s: _Settings) -> int:
    """One node of the chat: serve until a signal stops it; 1 if it cannot start."""
    if s.nodes == 1:  # the launcher checked the shared port itself
        problem = _cannot_listen(s.host, s.port)
        if problem is not None:
            print(f"chat: cannot start on {s.host}:{s.port}: {problem}", file=sys.stderr)
            return 1
    name, options, cluster = _node_options(s)
    try:
        node = await ergopy.start_node(name, options)
    except (OSError, gen.Error) as e:
        print(f"chat: cannot start node {name}: {e}", file=sys.stderr)
        return 1
    chat_options = ChatOptions(s.host, s.port, s.workers, cluster=cluster, reuse_port=s.nodes > 1)
    try:
        chat = await start_chat(node, chat_options)
    except (OSError, gen.Error) as e:
        await node.stop()
        print(f"chat: cannot start on {s.host}:{s.port}: {e}", file=sys.stderr)
        return 1
    if ergopy.member().index == 1:
        print(f"open {chat.url}  (Ctrl-C stops)", flush=True)
    await node.wait()  # SIGINT/SIGTERM stop the node: clients see close 1001
    if s.nodes == 1:
        print("chat: stopped", flush=True)
    return 0


def _launch(s: _Settings) -> int:
    """Start the N nodes of one service on this machine and supervise them until Ctrl-C."""
    problem = _cannot_listen(s.host, s.port)
    if problem is not None:
        print(f"chat: cannot start on {s.host}:{s.port}: {problem}", file=sys.stderr)
        return 1
    if s.port == 0:
        try:
            s = _Settings(s.host, _free_port(s.host), s.workers, s.nodes, s.registrar_port)
        except OSError as e:
            print(f"chat: cannot start on {s.host}:0: {e.strerror or e}", file=sys.stderr)
            return 1
    try:
        ergopy.run(functools.partial(_serve, s), nodes=s.nodes)
    except ergopy.LaunchError as e:
        print(f"chat: {e}", file=sys.stderr)
        return 1
    print("chat: stopped", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """The command line (see the module docstring); returns the exit status."""
    settings = _parse(argv)
    if settings.nodes > 1:
        return _launch(settings)
    return ergopy.run(functools.partial(_serve, settings))


if __name__ == "__main__":
    # Run the copy of this module imported under its own name: the launcher's children
    # re-import the functions it hands them by module name, and "__main__" is not one.
    from ergopy.examples.chat.__main__ import main as _main

    sys.exit(_main())

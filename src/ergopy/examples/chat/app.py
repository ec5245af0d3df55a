"""The chat service's supervision tree, and :func:`start_chat` to start it on a node.

::

    chat (act.Supervisor, ONE_FOR_ONE)
    ├── chat_peers           ChatPeers (only with ``cluster``): dials the service's other nodes,
    │                        publishes the live set as the local event "chat_live"
    ├── chat_rooms           Rooms: SIMPLE_ONE_FOR_ONE supervisor of the room processes "room:<name>"
    ├── chat_worker1..N      ChatWorker: the WebSocket handler's process pool
    └── web                  Web: spawns the WebSocket handler and the web server meta-processes
                             (a web.Mux: the page at "/", the handler at "/ws")

The children start in that order, so the workers are registered before the
handler can assign them a connection. A worker that fails is restarted alone;
its connections end (the handler can no longer deliver to them) and the rooms
send leave notices for its members.

Several nodes serve one chat when each is started with the same
``ChatOptions.cluster`` (all their names; the node needs its network on, with
routes or the registrar to find the others): a browser connects to any node, each
room lives on one of them, and every line reaches every member. See :mod:`.cluster`.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from typing import Any

from ... import act, gen
from ...gen import PID, Ref
from ...meta import web, websocket
from . import protocol
from .cluster import PEERS, ChatPeers, Cluster
from .room import PRESENCE_LIMIT, ROOMS, Rooms
from .worker import ChatWorker

__all__ = ["CHAT", "WEB", "Chat", "ChatOptions", "ChatSup", "Web", "page", "start_chat", "worker_names"]

CHAT = "chat"  # the registered name of the top supervisor
WEB = "web"  # the registered name of the process that owns the web server


@dataclass(slots=True)
class ChatOptions:
    """Where to listen and how many workers serve connections.

    ``port`` 0 picks a free port. ``workers``: one is enough for one core; more
    spread each broadcast's fan-out into smaller slices (see :mod:`.room`).
    ``presence_limit``: rooms bigger than this announce counts, not each join/leave.
    ``cluster``: the names of every node of the service, this one included (empty: alone).
    ``reuse_port``: listen with SO_REUSEPORT, so the service's nodes share one port.
    """

    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 4
    presence_limit: int = PRESENCE_LIMIT
    cluster: tuple[str, ...] = ()
    reuse_port: bool = False


def worker_names(count: int) -> list[str]:
    """The registered names of the ``count`` chat workers (raises nothing)."""
    return [f"chat_worker{i}" for i in range(1, count + 1)]


def page() -> bytes:
    """The chat page (static HTML with inline JS, no external URLs)."""
    return resources.files(__package__).joinpath("page.html").read_bytes()


class Web(act.Actor):
    """Owns the WebSocket handler and the web server; answers the call ``"address"`` with ``(host, port)``."""

    async def init(self, options: ChatOptions) -> None:
        handler = websocket.create_handler(
            websocket.HandlerOptions(
                process_pool=worker_names(options.workers),
                max_message_size=protocol.MAX_FRAME,
            )
        )
        self.spawn_meta(handler, gen.MetaOptions())
        mux = web.Mux()
        mux.handle("/ws", handler)
        mux.handle("/", web.StaticContent(page()))
        self.server = await web.create_web_server(
            web.WebServerOptions(host=options.host, port=options.port, handler=mux, reuse_port=options.reuse_port)
        )
        self.spawn_meta(self.server, gen.MetaOptions())
        self.host = options.host
        self.log.info(
            "chat: serving http://%s/ (%d workers)", _host_port(options.host, self.server.port), options.workers
        )

    def handle_call(self, from_: PID, ref: Ref, request: Any) -> Any:
        if request == "address":
            return (self.host, self.server.port)
        return None


class ChatSup(act.Supervisor):
    """The top of the chat's tree (see the module docstring)."""

    def init(self, options: ChatOptions) -> act.SupervisorSpec:
        if options.workers < 1:
            raise gen.IncorrectError(f"the chat needs at least one worker, got {options.workers}")
        children = []
        cluster = Cluster(self.node, options.cluster) if options.cluster else None
        if cluster is not None:
            children.append(act.SupervisorChildSpec(name=PEERS, factory=ChatPeers, args=[cluster]))
        children.append(act.SupervisorChildSpec(name=ROOMS, factory=Rooms, args=[options.presence_limit, cluster]))
        children += [
            act.SupervisorChildSpec(name=n, factory=ChatWorker, args=[cluster]) for n in worker_names(options.workers)
        ]
        children.append(act.SupervisorChildSpec(name=WEB, factory=Web, args=[options]))
        return act.SupervisorSpec(type=act.SupervisorType.ONE_FOR_ONE, children=children)


@dataclass(frozen=True, slots=True)
class Chat:
    """A started chat service: its supervisor and the address it serves."""

    pid: PID
    host: str
    port: int

    @property
    def url(self) -> str:
        """The page's URL (a wildcard host is shown as the loopback address)."""
        return f"http://{_host_port(self.host, self.port)}/"

    @property
    def ws_url(self) -> str:
        """The WebSocket endpoint's URL (a wildcard host is shown as the loopback address)."""
        return f"ws://{_host_port(self.host, self.port)}/ws"


async def start_chat(node: gen.Node, options: ChatOptions | None = None) -> Chat:
    """Spawn the chat's supervision tree on ``node``, registered as ``chat``.

    Raises ``gen.TakenError`` if a chat already runs on this node, ``OSError`` if
    the address can not be bound, ``gen.IncorrectError`` for fewer than one worker,
    ``gen.NotAllowedError`` for a ``cluster`` on a node without network.
    """
    options = options or ChatOptions()
    pid = await node.spawn_register(CHAT, ChatSup, None, options)
    host, port = await node.call(WEB, "address")
    return Chat(pid, host, port)


def _host_port(host: str, port: int) -> str:
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{port}"

"""The chat across nodes: which nodes are live, where each room lives, and the process
that keeps the nodes of one service connected.

A chat service may run on several nodes (``ChatOptions.cluster`` names them all);
a browser connects to any of them (the nodes can share one port with
``reuse_port``, and the kernel spreads connections). Every room still lives in ONE
process, on one node: its *home*.

Where a room lives
------------------
The live nodes are this node plus the nodes of the service it is connected to now
(``node.network.nodes()``, read at each decision, so a lost connection counts at
once). A room's home is the rendezvous (highest-random-weight) hash of its name
over the live nodes: every node computes it alone, with no registrar and no
messages, and when a node comes or goes only the rooms whose home it is (or
becomes) move; the others stay where they are. While two nodes see different live
sets (a node is coming back and not every other node is connected to it yet: at
most one dial interval) they may disagree; the rules below keep a room from
living on two nodes for longer than that:

- ``Rooms`` starts a room only if this node is its home by its own view; otherwise
  it answers the worker "not here" and the worker asks again a moment later, with
  its own view then (a node that does not answer at all, because it is stopping or
  runs no chat, is asked again after ``worker.OPEN_TIMEOUT``; after ``worker.RETRY_LIMIT`` asks the
  members get an error: views that never agree are a misconfigured service);
- a running room checks its home again whenever the live set changes (it
  subscribes to the local event ``chat_live`` that :class:`ChatPeers` publishes);
  if the home is now another node, it unregisters its event and ends. Its
  subscribers get ``MessageDownEvent`` with ``gen.UnregisteredError``, which a
  worker reads as "the room moved": it joins its members again at the new home.

What crosses nodes
------------------
A worker sends ``OpenRoom`` to ``ProcessID("chat_rooms", home)``, then subscribes
with ``monitor_event(Event("room:<name>", home))`` and sends ``RoomJoin``/``RoomSay``/
``RoomLeave`` to ``ProcessID("room:<name>", home)``; the room answers ``RoomJoined``
or ``RoomRefused`` to the worker's PID and publishes each line (the encoded JSON
bytes) as an event: the network sends ONE event frame per subscribing node,
whatever the number of workers and members there. Every one of these messages is
a dataclass registered with ``@net.register`` (see :mod:`.room`).

Failures
--------
- The home node is lost: every subscribed worker gets ``MessageDownEvent`` with
  ``gen.NoConnectionError`` (within the network's liveness, at once for a killed
  process: its sockets close), tells its members ``{"type": "moved"}``, and joins
  them again at the home computed over the nodes still live.
- A node with connections is lost: the room monitors each worker PID, so it gets
  ``MessageDownPID`` (``NoConnectionError``) and sends leave notices and the new
  count, as for a local worker that died.
- A node comes back: the dialler connects to it within ``DIAL_INTERVAL``; the rooms
  whose home it becomes end (moved) and their members follow them there.
- A node that stops gracefully ends its rooms first; their members follow them as
  for a lost node.

What it does not do: there is no consensus. Until the nodes are connected (at
start, or across a partition that leaves both sides running) each side serves the
rooms it sees as its own, so a room may run on both sides; they merge when
they connect again (the rooms that are not at home move, their members follow) but
lines said on the other side meanwhile are not replayed. A node that vanishes
without closing its sockets (a machine, not a process) is seen lost after the
network's liveness bound (``NetworkOptions.liveness``, 20 s by default), not at once.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterable
from typing import Any

from ... import act, gen
from ...gen import PID

__all__ = ["DIAL_INTERVAL", "LIVE_EVENT", "PEERS", "ChatPeers", "Cluster", "rendezvous"]

PEERS = "chat_peers"  # the registered name of the ChatPeers process
LIVE_EVENT = "chat_live"  # the local event ChatPeers publishes when the live set changes
DIAL_INTERVAL = 0.5  # seconds between dials of a node of the service that is not connected


def _weight(node: str, room: str) -> int:
    digest = hashlib.blake2b(f"{node}\x00{room}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def rendezvous(room: str, nodes: Iterable[str]) -> str:
    """The node of ``nodes`` with the highest weight for ``room`` (a stable hash, the same
    in every process). Raises ``ValueError`` if ``nodes`` is empty."""
    return max(nodes, key=lambda n: (_weight(n, room), n))


class Cluster:
    """The nodes of one chat service, as this node sees them.

    ``names``: every node of the service (this one may be among them). Raises
    ``gen.NotAllowedError`` if ``node`` has no network.
    """

    __slots__ = ("names", "network", "this")

    def __init__(self, node: gen.Node, names: Iterable[str]) -> None:
        self.this = str.__str__(node.name)
        self.names = frozenset(str.__str__(n) for n in names) | {self.this}
        self.network: Any = node.network  # type: ignore[attr-defined]  # the real node's; gen.Node does not declare it

    def live(self) -> list[str]:
        """This node and the nodes of the service it is connected to now."""
        names = self.names
        return [self.this, *(str.__str__(n) for n in self.network.nodes() if n in names)]

    def missing(self) -> list[str]:
        """The nodes of the service this node is not connected to."""
        connected = {str.__str__(n) for n in self.network.nodes()}
        return sorted(n for n in self.names if n != self.this and n not in connected)

    def home(self, room: str) -> str:
        """The node where ``room`` lives, by this node's live set now."""
        return rendezvous(room, self.live())


class _Tick:
    """From the dialler to ChatPeers, after each round of dials: look at the live set."""


class _Dialer(gen.MetaBehavior):
    """Every ``DIAL_INTERVAL``, dials the nodes of the service that are not connected
    and have no dial of ours in progress (each dial is its own task, owned here and
    bounded by the network's handshake timeout), then ticks its parent."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.stopped = asyncio.Event()
        self.dials: dict[str, asyncio.Task[None]] = {}

    def init(self, process: gen.MetaProcess) -> None:
        self.process = process

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while not self.stopped.is_set():
                for name in self.cluster.missing():
                    if name not in self.dials:
                        self.dials[name] = loop.create_task(self._dial(name), name=f"chat dial {name}")
                self.process.send(self.process.parent, _Tick())
                try:
                    async with asyncio.timeout(DIAL_INTERVAL):
                        await self.stopped.wait()
                except TimeoutError:
                    pass
        finally:
            for task in self.dials.values():
                task.cancel()
            await asyncio.gather(*self.dials.values(), return_exceptions=True)

    async def _dial(self, name: str) -> None:
        try:
            await self.cluster.network.get_node(name)
        except gen.Error:
            pass  # down, or not started yet: a later round dials again
        finally:
            self.dials.pop(name, None)

    def terminate(self, reason: BaseException) -> None:
        self.stopped.set()


class ChatPeers(act.Actor):
    """Keeps this node connected to the other nodes of the service (a dialler
    meta-process it owns), monitors each connected one, and publishes the local event
    ``chat_live`` (the live node names, sorted) whenever the live set changes."""

    def init(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.token = self.register_event(LIVE_EVENT, gen.EventOptions())
        self.live = frozenset(cluster.live())
        self.monitored: set[str] = set()
        self.spawn_meta(_Dialer(cluster), gen.MetaOptions())

    def handle_message(self, from_: PID, message: Any) -> None:
        t = type(message)
        if t is gen.MessageDownNode:
            self.monitored.discard(str.__str__(message.name))
        elif t is not _Tick:
            self.log.warning("chat peers: unexpected message from %s: %r", from_, message)
            return
        self._check()

    def _check(self) -> None:
        live = frozenset(self.cluster.live())
        for name in live - self.monitored - {self.cluster.this}:
            try:
                self.monitor_node(name)
                self.monitored.add(name)
            except gen.Error:
                pass  # lost again meanwhile: not live at the next look
        if live != self.live:
            self.live = live
            self.log.info("chat: live nodes %s", ", ".join(sorted(live)))
            self.send_event(LIVE_EVENT, self.token, tuple(sorted(live)))

    def handle_call(self, from_: PID, ref: gen.Ref, request: Any) -> Any:
        """``"live"``: the live node names as this process last saw them (for tests, tools)."""
        if request == "live":
            return sorted(self.live)
        return None

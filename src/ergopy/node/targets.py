"""Links and monitors: who is told when a process, name, alias or event goes away.

Both are unidirectional, as in Ergo 3: the *watcher* is the one notified. A link
delivers ``MessageExit*`` to the urgent queue (a watcher that does not trap exits
terminates instead); a monitor delivers ``MessageDown*`` to the system queue.
Each relationship fires once and is then removed. Unlike Ergo, a watcher's own
relationships are removed when it terminates, so nothing leaks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import gen
from ..gen import PID, Alias, Atom, Event, ProcessID
from . import mailbox

if TYPE_CHECKING:
    from .node import Node
    from .process import ProcessRecord

__all__ = ["Targets"]

ProcessTarget = PID | ProcessID | Alias | Event
Target = ProcessTarget | Atom  # an Atom: a node (monitor_node / link_node)

_EXIT: dict[type, type] = {
    PID: gen.MessageExitPID,
    ProcessID: gen.MessageExitProcessID,
    Alias: gen.MessageExitAlias,
    Event: gen.MessageExitEvent,
}
_DOWN: dict[type, type] = {
    PID: gen.MessageDownPID,
    ProcessID: gen.MessageDownProcessID,
    Alias: gen.MessageDownAlias,
    Event: gen.MessageDownEvent,
}


class Targets:
    """The node's table of links and monitors, keyed by target."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self.links: dict[Target, dict[PID, ProcessRecord]] = {}
        self.monitors: dict[Target, dict[PID, ProcessRecord]] = {}

    def _table(self, kind: str) -> dict[Target, dict[PID, ProcessRecord]]:
        return self.links if kind == "link" else self.monitors

    def normalize(self, target: Any) -> ProcessTarget:
        """Turn a name into a ``ProcessID``; raise ``UnsupportedError`` for anything else unknown."""
        node = self._node
        if isinstance(target, str):
            return ProcessID(target, node.name)
        if type(target) is ProcessID and not target.node:
            return ProcessID(target.name, node.name)
        if type(target) is Event and not target.node:
            return Event(target.name, node.name)
        if type(target) in (PID, ProcessID, Alias, Event):
            return target  # type: ignore[no-any-return]
        raise gen.UnsupportedError(f"can not link or monitor {target!r}: expected a PID, name, Alias or Event")

    def check_target(self, t: Any) -> None:
        """Raise the error a link or monitor to the local target ``t`` meets if it does not exist:
        ``ProcessUnknownError``, ``ProcessTerminatedError``, ``AliasUnknownError``, ``EventUnknownError``."""
        node = self._node
        tt = type(t)
        if tt is PID:
            p = node.lookup_pid(t)
            if p is None:
                raise gen.ProcessUnknownError(f"unknown process {t}")
            if p.state & gen.ProcessState.TERMINATED:
                raise gen.ProcessTerminatedError(f"process {t} has terminated")
        elif tt is ProcessID:
            if node.lookup_name(t.name) is None:
                raise gen.ProcessUnknownError(f"unknown process {t}")
        elif tt is Alias:
            if not node.alias_exists(t):
                raise gen.AliasUnknownError(f"unknown alias {t}")
        elif not node.events.exists(t):
            raise gen.EventUnknownError(f"unknown event {t}")

    def add(self, watcher: ProcessRecord, kind: str, target: Any) -> list[gen.MessageEvent] | None:
        """Create a link or monitor; for an event, return its buffered recent messages.

        A target on another node is asked over the network (see ``net.network``): it
        raises ``NoConnectionError`` without a connection, and an event's history then
        arrives later, as ``handle_event`` messages.
        """
        node = self._node
        t = self.normalize(target)
        if t.node != node.name:
            return self._add_remote(watcher, kind, t)
        history: list[gen.MessageEvent] | None = None
        tt = type(t)
        if tt is PID and t == watcher.pid:
            raise gen.NotAllowedError(f"process {watcher.pid} can not {kind} itself")
        if tt is Alias and t in watcher.alias_set:
            raise gen.NotAllowedError(f"process {watcher.pid} can not {kind} its own alias {t}")
        self.check_target(t)
        if tt is ProcessID and node.lookup_name(t.name) is watcher:  # type: ignore[union-attr]
            raise gen.NotAllowedError(f"process {watcher.pid} can not {kind} its own name")
        watchers = self._table(kind).setdefault(t, {})
        if watcher.pid in watchers:
            raise gen.TargetExistError(f"process {watcher.pid} already has a {kind} to {t}")
        watchers[watcher.pid] = watcher
        watcher.watching.add((kind, t))
        if tt is Event:
            assert isinstance(t, Event)
            history = node.events.subscribed(t)
        return history

    def _add_remote(self, watcher: ProcessRecord, kind: str, t: ProcessTarget) -> list[gen.MessageEvent] | None:
        net = self._node._network
        if net is None:
            raise gen.NoConnectionError(f"no connection to node {t.node}: this node has no network")
        table = self._table(kind)
        watchers = table.get(t)
        if watchers is not None and watcher.pid in watchers:
            raise gen.TargetExistError(f"process {watcher.pid} already has a {kind} to {t}")
        net.watch(watcher.pid, kind, t)
        table.setdefault(t, {})[watcher.pid] = watcher
        watcher.watching.add((kind, t))
        return [] if type(t) is Event else None

    def add_node(self, watcher: ProcessRecord, kind: str, name: str) -> None:
        """Link to or monitor the connected node ``name``: ``MessageExitNode``/``MessageDownNode``
        when its connection is lost.

        Raises ``NoConnectionError`` if it is not connected, ``TargetExistError`` if the
        relation exists, ``IncorrectError`` for this node itself.
        """
        node = self._node
        t = Atom(name)
        if t == node.name:
            raise gen.IncorrectError(f"process {watcher.pid} can not {kind} its own node")
        net = node._network
        if net is None or t not in net.nodes():
            raise gen.NoConnectionError(f"no connection to node {t}")
        watchers = self._table(kind).setdefault(t, {})
        if watcher.pid in watchers:
            raise gen.TargetExistError(f"process {watcher.pid} already has a {kind} to node {t}")
        watchers[watcher.pid] = watcher
        watcher.watching.add((kind, t))

    def remove_node(self, watcher: ProcessRecord, kind: str, name: str) -> None:
        """Remove a node link or monitor; ``TargetUnknownError`` if there is none."""
        self._remove(watcher, kind, Atom(name))

    def remove(self, watcher: ProcessRecord, kind: str, target: Any) -> None:
        """Remove a link or monitor; ``TargetUnknownError`` if there is none."""
        t = self.normalize(target)
        self._remove(watcher, kind, t)
        if t.node != self._node.name:
            self._node._network.unwatch(watcher.pid, kind, t)

    def _remove(self, watcher: ProcessRecord, kind: str, t: Target) -> None:
        table = self._table(kind)
        watchers = table.get(t)
        if watchers is None or watchers.pop(watcher.pid, None) is None:
            raise gen.TargetUnknownError(f"process {watcher.pid} has no {kind} to {t}")
        if not watchers:
            del table[t]
        watcher.watching.discard((kind, t))
        if type(t) is Event and t.node == self._node.name:
            self._node.events.unsubscribed(t)

    def forget(self, watcher: ProcessRecord) -> None:
        """A watcher terminated: drop every relationship it held (telling remote targets' nodes)."""
        local = self._node.name
        for kind, t in watcher.watching:
            if type(t) is not Atom and t.node != local:
                self._node._network.unwatch(watcher.pid, kind, t)
            table = self._table(kind)
            watchers = table.get(t)
            if watchers is not None:
                watchers.pop(watcher.pid, None)
                if not watchers:
                    del table[t]
            if type(t) is Event and t.node == local:
                self._node.events.unsubscribed(t)
        watcher.watching.clear()

    def subscribers(self, event: Event) -> list[ProcessRecord]:
        """Every process linked to or monitoring ``event``, each once (linked and monitoring counts once)."""
        out = dict(self.links.get(event, {}))
        out.update(self.monitors.get(event, {}))
        return list(out.values())

    def count(self, target: Target) -> int:
        return len(self.links.get(target, ())) + len(self.monitors.get(target, ()))

    def fire(self, target: Target, reason: BaseException) -> None:
        """``target`` is gone: notify and drop its links and monitors."""
        node = self._node
        net = node._network
        if net is not None and net.watched:
            net.target_gone(target, reason)  # remote watchers: one terminate frame per node
        from_ = target if type(target) is PID else node.pid
        assert isinstance(from_, PID)
        links = self.links.pop(target, None)
        if links:
            exit_msg = _EXIT[type(target)](target, reason)
            for w in links.values():
                w.watching.discard(("link", target))
                if not w.state & gen.ProcessState.TERMINATED:
                    w.push_urgent(mailbox.Exit(from_, target, reason, exit_msg))
        monitors = self.monitors.pop(target, None)
        if monitors:
            down = _DOWN[type(target)](target, reason)
            for w in monitors.values():
                w.watching.discard(("monitor", target))
                if not w.state & gen.ProcessState.TERMINATED:
                    w.push_system(from_, down)

    def remote_answer(self, watcher: PID, kind: str, target: Target, error: BaseException | None, result: Any) -> None:
        """The target's node answered a remote link/monitor: a refusal fires this watcher
        alone with ``error`` as reason; an event's history goes to its ``handle_event``."""
        table = self._table(kind)
        watchers = table.get(target)
        w = watchers.get(watcher) if watchers else None
        if w is None:
            return  # the relation ended meanwhile
        if error is None:
            if type(target) is Event and result:
                for msg in result:
                    if type(msg) is gen.MessageEvent and not w.state & gen.ProcessState.TERMINATED:
                        w.push(None, mailbox.Event(self._node.pid, msg), gen.MessagePriority.NORMAL)
            return
        assert watchers is not None
        del watchers[watcher]
        if not watchers:
            del table[target]
        w.watching.discard((kind, target))
        if w.state & gen.ProcessState.TERMINATED:
            return
        if kind == "link":
            w.push_urgent(mailbox.Exit(self._node.pid, target, error, _EXIT[type(target)](target, error)))
        else:
            w.push_system(self._node.pid, _DOWN[type(target)](target, error))

    def node_down(self, name: str, reason: BaseException) -> None:
        """The connection to node ``name`` is lost: every watcher of its targets gets its
        exit/down with ``reason`` once, node links/monitors ``MessageExitNode``/``MessageDownNode``."""
        node = self._node
        lost = {t for table in (self.links, self.monitors) for t in table if type(t) is not Atom and t.node == name}  # type: ignore[union-attr]
        for t in lost:
            self.fire(t, reason)
        key = Atom(name)
        links = self.links.pop(key, None)
        if links:
            for w in links.values():
                w.watching.discard(("link", key))
                if not w.state & gen.ProcessState.TERMINATED:
                    w.push_urgent(mailbox.Exit(node.pid, key, reason, gen.MessageExitNode(key)))
        monitors = self.monitors.pop(key, None)
        if monitors:
            for w in monitors.values():
                w.watching.discard(("monitor", key))
                if not w.state & gen.ProcessState.TERMINATED:
                    w.push_system(node.pid, gen.MessageDownNode(key))

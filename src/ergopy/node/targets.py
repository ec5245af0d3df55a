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
from ..gen import PID, Alias, Event, ProcessID
from . import mailbox

if TYPE_CHECKING:
    from .node import Node
    from .process import ProcessRecord

__all__ = ["Targets"]

Target = PID | ProcessID | Alias | Event

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

    def normalize(self, target: Any) -> Target:
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

    def add(self, watcher: ProcessRecord, kind: str, target: Any) -> list[gen.MessageEvent] | None:
        """Create a link or monitor; for an event, return its buffered recent messages."""
        node = self._node
        t = self.normalize(target)
        if t.node != node.name:
            raise gen.NoConnectionError(f"no connection to node {t.node} (remote {kind}s need the network layer)")
        history: list[gen.MessageEvent] | None = None
        tt = type(t)
        if tt is PID:
            assert isinstance(t, PID)
            if t == watcher.pid:
                raise gen.NotAllowedError(f"process {watcher.pid} can not {kind} itself")
            p = node.lookup_pid(t)
            if p is None:
                raise gen.ProcessUnknownError(f"unknown process {t}")
            if p.state & gen.ProcessState.TERMINATED:
                raise gen.ProcessTerminatedError(f"process {t} has terminated")
        elif tt is ProcessID:
            assert isinstance(t, ProcessID)
            p = node.lookup_name(t.name)
            if p is None:
                raise gen.ProcessUnknownError(f"unknown process {t}")
            if p is watcher:
                raise gen.NotAllowedError(f"process {watcher.pid} can not {kind} its own name")
        elif tt is Alias:
            assert isinstance(t, Alias)
            if t in watcher.alias_set:
                raise gen.NotAllowedError(f"process {watcher.pid} can not {kind} its own alias {t}")
            if not node.alias_exists(t):
                raise gen.AliasUnknownError(f"unknown alias {t}")
        else:
            assert isinstance(t, Event)
            if not node.events.exists(t):
                raise gen.EventUnknownError(f"unknown event {t}")
        watchers = self._table(kind).setdefault(t, {})
        if watcher.pid in watchers:
            raise gen.TargetExistError(f"process {watcher.pid} already has a {kind} to {t}")
        watchers[watcher.pid] = watcher
        watcher.watching.add((kind, t))
        if tt is Event:
            assert isinstance(t, Event)
            history = node.events.subscribed(t)
        return history

    def remove(self, watcher: ProcessRecord, kind: str, target: Any) -> None:
        """Remove a link or monitor; ``TargetUnknownError`` if there is none."""
        t = self.normalize(target)
        table = self._table(kind)
        watchers = table.get(t)
        if watchers is None or watchers.pop(watcher.pid, None) is None:
            raise gen.TargetUnknownError(f"process {watcher.pid} has no {kind} to {t}")
        if not watchers:
            del table[t]
        watcher.watching.discard((kind, t))
        if type(t) is Event:
            self._node.events.unsubscribed(t)

    def forget(self, watcher: ProcessRecord) -> None:
        """A watcher terminated: drop every relationship it held."""
        for kind, t in watcher.watching:
            table = self._table(kind)
            watchers = table.get(t)
            if watchers is not None:
                watchers.pop(watcher.pid, None)
                if not watchers:
                    del table[t]
            if type(t) is Event:
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

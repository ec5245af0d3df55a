"""Links and monitors across nodes, for PID, name, alias and event: the target's node
sends one terminate frame per watching node, a lost connection fires every watcher
once with NoConnectionError, node links/monitors get MessageExitNode/MessageDownNode,
and a restarted peer's old PIDs are refused as a previous incarnation."""

from __future__ import annotations

import asyncio
import time
import types
from collections.abc import Callable
from typing import Any

import pytest
from conftest import Runner, receive, run_in
from test_net_node import B, Echo

import ergopy
from ergopy import act, gen, net
from ergopy.node import node as node_module


class Target(act.Actor):
    """Registered as "target" with an alias and an event "ev"; ends with the reason it is sent."""

    def init(self, q: asyncio.Queue[Any]) -> None:
        self.alias = self.create_alias()
        self.token = self.register_event("ev", gen.EventOptions(buffer=2))
        q.put_nowait((self.pid, self.alias, self.token))

    def handle_message(self, from_: gen.PID, message: Any) -> Any:
        if callable(message):
            return message(self)
        return message


async def spawn_target(b: ergopy.Node) -> tuple[gen.PID, gen.Alias, gen.Ref]:
    q: asyncio.Queue[Any] = asyncio.Queue()
    await b.spawn_register("target", Target, None, q)
    return await receive(q)  # type: ignore[no-any-return]


async def watcher(a: ergopy.Node, trap: bool = True) -> tuple[gen.PID, asyncio.Queue[Any]]:
    q: asyncio.Queue[Any] = asyncio.Queue()
    return await a.spawn(Runner, None, q, trap), q


async def disconnected(a: ergopy.Node, peer: str) -> None:
    """Wait (2 s at most) until ``a`` has seen its connection to ``peer`` go."""
    endpoint = a.network._endpoint
    async with asyncio.timeout(2):
        while peer in a.network.nodes():
            await endpoint.changes.wait()


async def barrier(a: ergopy.Node, w: gen.PID) -> None:
    """A call from ``w`` (alive or not) to B's "echo" (spawned by the test): it goes on
    the link of ``w``'s frames, so once answered, B has handled what ``w`` sent before."""
    assert await a.make_call(w, gen.ProcessID("echo", B), "sync", 5) == ["reply", "sync"]


def targets_of(pid: gen.PID, alias: gen.Alias) -> dict[str, Any]:
    return {"pid": pid, "name": gen.ProcessID("target", B), "alias": alias, "event": gen.Event("ev", B)}


DOWN = {
    "pid": gen.MessageDownPID,
    "name": gen.MessageDownProcessID,
    "alias": gen.MessageDownAlias,
    "event": gen.MessageDownEvent,
}
EXIT = {
    "pid": gen.MessageExitPID,
    "name": gen.MessageExitProcessID,
    "alias": gen.MessageExitAlias,
    "event": gen.MessageExitEvent,
}


def watch(kind: str, relation: str, target: Any) -> Callable[[Any], Any]:
    if kind == "event":
        return lambda p: (p.link_event if relation == "link" else p.monitor_event)(target)
    return lambda p: (p.link if relation == "link" else p.monitor)(target)


@pytest.mark.parametrize("relation", ["link", "monitor"])
@pytest.mark.parametrize("kind", ["pid", "name", "alias", "event"])
async def test_the_target_ends_and_the_remote_watcher_is_told_once_with_its_reason(
    net_pair: tuple[ergopy.Node, ergopy.Node], kind: str, relation: str
) -> None:
    a, b = net_pair
    pid, alias, _ = await spawn_target(b)
    target = targets_of(pid, alias)[kind]
    w, q = await watcher(a)
    await run_in(a, q, w, watch(kind, relation, target))
    # sent by the watcher: the same link as its request, so it arrives after it
    await run_in(a, q, w, lambda p: p.send(pid, RuntimeError("boom")))
    msg = await receive(q)
    assert type(msg) is (EXIT if relation == "link" else DOWN)[kind]
    assert str(msg.reason) == "boom"
    assert a.stats()["links"] == a.stats()["monitors"] == 0  # fired once, then gone
    assert b.stats()["remote_watched"] == 0
    a.send(w, "marker")
    assert await receive(q) == "marker"


async def test_one_terminate_frame_per_watching_node(net_pair: tuple[ergopy.Node, ergopy.Node]) -> None:
    a, b = net_pair
    pid, _, _ = await spawn_target(b)
    await b.spawn_register("echo", Echo)
    watchers = [await watcher(a, trap=False) for _ in range(3)]
    for w, q in watchers:
        await run_in(a, q, w, lambda p: p.monitor(pid))
        await barrier(a, w)
    sent = b.network.node(a.name).stats()["frames_out"]
    b.send(pid, RuntimeError("boom"))
    for _, q in watchers:
        msg = await receive(q)
        assert type(msg) is gen.MessageDownPID and msg.pid == pid
    assert b.network.node(a.name).stats()["frames_out"] == sent + 1


async def test_a_refused_remote_monitor_is_a_down_with_the_refusal(net_pair: tuple[ergopy.Node, ergopy.Node]) -> None:
    a, b = net_pair
    w, q = await watcher(a)
    gone = gen.PID(B, 99999, b.creation)
    await run_in(a, q, w, lambda p: p.monitor(gone))
    msg = await receive(q)
    assert type(msg) is gen.MessageDownPID and msg.pid == gone and isinstance(msg.reason, gen.ProcessUnknownError)
    await run_in(a, q, w, lambda p: p.link(gen.ProcessID("nobody", B)))
    msg = await receive(q)
    assert type(msg) is gen.MessageExitProcessID and isinstance(msg.reason, gen.ProcessUnknownError)
    assert a.stats()["links"] == a.stats()["monitors"] == 0


async def test_demonitor_and_a_watcher_ending_are_told_to_the_target_node(
    net_pair: tuple[ergopy.Node, ergopy.Node],
) -> None:
    a, b = net_pair
    pid, _, _ = await spawn_target(b)
    await b.spawn_register("echo", Echo)
    w, q = await watcher(a)
    await run_in(a, q, w, lambda p: p.monitor(pid))
    await run_in(a, q, w, lambda p: p.demonitor(pid))
    w2, q2 = await watcher(a)
    await run_in(a, q2, w2, lambda p: p.link(gen.ProcessID("target", B)))
    a.send_exit(w2, gen.TERMINATE_REASON_KILL)
    assert (await receive(q2))[0] == "terminated"
    await barrier(a, w)
    await barrier(a, w2)  # w2 is gone, its PID still picks the link its unlink went on
    assert b.stats()["remote_watched"] == 0


@pytest.mark.parametrize("how", ["connection lost", "peer stopped"])
async def test_losing_the_peer_tells_every_watcher_once(net_pair: tuple[ergopy.Node, ergopy.Node], how: str) -> None:
    a, b = net_pair
    pid, alias, _ = await spawn_target(b)
    await b.spawn_register("echo", Echo)
    relations = [(kind, rel) for kind in ("pid", "name", "alias", "event") for rel in ("link", "monitor")]
    watchers = []
    for kind, rel in relations:
        w, q = await watcher(a)
        await run_in(a, q, w, watch(kind, rel, targets_of(pid, alias)[kind]))
        await barrier(a, w)
        watchers.append((kind, rel, w, q))
    nw, nq = await watcher(a)
    await run_in(a, nq, nw, lambda p: p.monitor_node(B))
    lw, lq = await watcher(a)
    await run_in(a, lq, lw, lambda p: p.link_node(B))
    if how == "connection lost":
        b.network.node(a.name).disconnect()
    else:
        await b.stop()
    for kind, rel, w, q in watchers:
        msg = await receive(q)
        assert type(msg) is (EXIT if rel == "link" else DOWN)[kind], (kind, rel, msg)
        if how == "connection lost":
            assert isinstance(msg.reason, gen.NoConnectionError), (kind, rel, msg)
        a.send(w, "marker")
        assert await receive(q) == "marker"  # exactly one
    assert await receive(nq) == gen.MessageDownNode(gen.Atom(B))
    assert await receive(lq) == gen.MessageExitNode(gen.Atom(B))
    assert a.stats()["links"] == a.stats()["monitors"] == 0


async def test_monitor_node_needs_a_connection(net_pair: tuple[ergopy.Node, ergopy.Node]) -> None:
    a, _ = net_pair
    w, q = await watcher(a)
    with pytest.raises(gen.NoConnectionError):
        await run_in(a, q, w, lambda p: p.monitor_node("c@localhost"))
    await run_in(a, q, w, lambda p: p.monitor_node(B))
    with pytest.raises(gen.TargetExistError):
        await run_in(a, q, w, lambda p: p.monitor_node(B))
    await run_in(a, q, w, lambda p: p.demonitor_node(B))
    assert a.stats()["monitors"] == 0


async def test_a_restarted_peer_refuses_the_pids_of_its_previous_incarnation(
    net_cluster: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    a = await net_cluster("a@localhost")
    b1 = await net_cluster(B)
    await a.network.get_node(B)
    old = await b1.spawn_register("echo", Echo)
    await b1.stop()
    await disconnected(a, B)
    later = time.time() + 10  # a restart within the same second would keep the creation
    monkeypatch.setattr(node_module, "time", types.SimpleNamespace(time=lambda: later, time_ns=time.time_ns))
    b2 = await net_cluster(B)
    monkeypatch.undo()
    assert b2.creation != old.creation
    assert (await a.network.get_node(B)).creation == b2.creation
    await b2.spawn_register("echo", Echo)
    a.send(old, "to the old one")
    assert a.dead_letters()["dead_letters_incarnation"] == 1
    with pytest.raises(gen.ProcessIncarnationError):
        await a.call(old, 1)
    w, q = await watcher(a)
    with pytest.raises(gen.ProcessIncarnationError):
        await run_in(a, q, w, lambda p: p.monitor(old))
    assert await a.call(gen.ProcessID("echo", B), 2) == ["reply", 2]


_ = net  # the module registers the EDF types the frames use


async def test_a_remote_link_ends_a_watcher_that_does_not_trap_exits(net_pair: tuple[ergopy.Node, ergopy.Node]) -> None:
    a, b = net_pair
    pid, _, _ = await spawn_target(b)
    await b.spawn_register("echo", Echo)
    w, q = await watcher(a, trap=False)
    await run_in(a, q, w, lambda p: p.link(pid))
    await barrier(a, w)
    b.send(pid, RuntimeError("boom"))
    kind, reason = await receive(q)
    assert kind == "terminated" and isinstance(reason, gen.ExitSignal) and "boom" in str(reason)
    assert w not in a.processes()


async def test_call_a_remote_alias_and_a_process_calls_across(net_pair: tuple[ergopy.Node, ergopy.Node]) -> None:
    a, b = net_pair
    await b.spawn_register("echo", Echo)
    q: asyncio.Queue[Any] = asyncio.Queue()

    class AliasEcho(Echo):
        def init(self) -> None:
            q.put_nowait(self.create_alias())

    await b.spawn(AliasEcho)
    alias = await receive(q)

    class Caller(act.Actor):
        async def handle_call(self, from_: gen.PID, ref: gen.Ref, request: Any) -> Any:
            return await self.call(gen.ProcessID("echo", B), request)

    caller = await a.spawn(Caller)
    assert await a.call(caller, "via a process on a") == ["reply", "via a process on a"]
    assert await a.call(alias, "to an alias") == ["reply", "to an alias"]
    with pytest.raises(gen.ProcessUnknownError):
        await a.call(gen.Alias(B, b.creation, (1, 2, 3)), "to no alias")

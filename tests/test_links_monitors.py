"""Links and monitors: the watcher is told when a process, name or alias goes away."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from conftest import Runner as Watcher
from conftest import receive, run_in

import ergopy
from ergopy import act, gen


class Target(act.Actor):
    """Ends with the reason it is sent; reports its alias when asked."""

    def handle_message(self, from_: gen.PID, message: Any) -> Any:
        if callable(message):
            return message(self)
        return message


async def watcher(node: ergopy.Node, trap: bool = False) -> tuple[gen.PID, asyncio.Queue[Any]]:
    q: asyncio.Queue[Any] = asyncio.Queue()
    return await node.spawn(Watcher, None, q, trap), q


async def make_alias(node: ergopy.Node, pid: gen.PID) -> gen.Alias:
    q: asyncio.Queue[Any] = asyncio.Queue()
    node.send(pid, lambda a: q.put_nowait(a.create_alias()))
    return await receive(q)  # type: ignore[no-any-return]


# ---- monitors --------------------------------------------------------------------------------------


async def test_monitor_pid_delivers_down_pid_with_the_reason(node: ergopy.Node) -> None:
    w, q = await watcher(node)
    target = await node.spawn(Target)
    await run_in(node, q, w, lambda a: a.monitor(target))
    err = RuntimeError("target failed")
    node.send(target, err)
    assert await receive(q) == gen.MessageDownPID(target, err)


async def test_down_pid_comes_from_the_target_pid(node: ergopy.Node) -> None:
    got: asyncio.Queue[Any] = asyncio.Queue()

    class FromWatcher(act.Actor):
        def handle_message(self, from_: gen.PID, message: Any) -> None:
            if isinstance(message, gen.PID):
                self.monitor(message)
            else:
                got.put_nowait((from_, message))

    target = await node.spawn(Target)
    w = await node.spawn(FromWatcher)
    node.send(w, target)
    node.send(target, gen.TERMINATE_REASON_NORMAL)
    from_, message = await receive(got)
    assert from_ == target
    assert message == gen.MessageDownPID(target, gen.TERMINATE_REASON_NORMAL)


async def test_monitor_name_delivers_down_process_id(node: ergopy.Node) -> None:
    w, q = await watcher(node)
    target = await node.spawn_register("target", Target)
    await run_in(node, q, w, lambda a: a.monitor("target"))
    node.send(target, gen.TERMINATE_REASON_SHUTDOWN)
    assert await receive(q) == gen.MessageDownProcessID(
        gen.ProcessID("target", node.name), gen.TERMINATE_REASON_SHUTDOWN
    )


async def test_monitor_alias_delivers_down_alias_when_its_process_ends(node: ergopy.Node) -> None:
    w, q = await watcher(node)
    target = await node.spawn(Target)
    alias = await make_alias(node, target)
    await run_in(node, q, w, lambda a: a.monitor(alias))
    node.send(target, gen.TERMINATE_REASON_NORMAL)
    assert await receive(q) == gen.MessageDownAlias(alias, gen.TERMINATE_REASON_NORMAL)


async def test_deleting_an_alias_delivers_down_alias_unregistered(node: ergopy.Node) -> None:
    w, q = await watcher(node)
    target = await node.spawn(Target)
    alias = await make_alias(node, target)
    await run_in(node, q, w, lambda a: a.monitor(alias))
    node.send(target, lambda a: a.delete_alias(alias))
    down = await receive(q)
    assert type(down) is gen.MessageDownAlias and down.alias == alias
    assert isinstance(down.reason, gen.UnregisteredError)


async def test_monitor_does_not_end_the_watcher(node: ergopy.Node) -> None:
    w, q = await watcher(node)
    target = await node.spawn(Target)
    await run_in(node, q, w, lambda a: a.monitor(target))
    node.send(target, RuntimeError("failed"))
    assert type(await receive(q)) is gen.MessageDownPID
    assert await run_in(node, q, w, lambda a: "alive") == "alive"


async def test_monitor_fires_once_and_is_removed(node: ergopy.Node) -> None:
    w, q = await watcher(node)
    target = await node.spawn(Target)
    await run_in(node, q, w, lambda a: a.monitor(target))
    assert node.stats()["monitors"] == 1
    node.send(target, gen.TERMINATE_REASON_NORMAL)
    await receive(q)
    assert node.stats()["monitors"] == 0


async def test_demonitor_stops_the_notification(node: ergopy.Node) -> None:
    w, q = await watcher(node)
    target = await node.spawn(Target)
    sentinel = await node.spawn(Target)
    await run_in(node, q, w, lambda a: a.monitor(target))
    await run_in(node, q, w, lambda a: a.monitor(sentinel))
    await run_in(node, q, w, lambda a: a.demonitor(target))
    node.kill(target)  # a down for the target would be queued before the sentinel's
    node.kill(sentinel)
    assert await receive(q) == gen.MessageDownPID(sentinel, gen.TERMINATE_REASON_KILL)


# ---- links -----------------------------------------------------------------------------------------


async def test_link_pid_terminates_a_watcher_that_does_not_trap_exits(node: ergopy.Node) -> None:
    w, q = await watcher(node)
    target = await node.spawn(Target)
    await run_in(node, q, w, lambda a: a.link(target))
    err = RuntimeError("target failed")
    node.send(target, err)
    kind, reason = await receive(q)
    assert kind == "terminated"
    assert isinstance(reason, gen.ExitSignal) and reason.reason is err
    assert str(reason) == f"{target}: target failed"


async def test_link_terminates_the_watcher_even_for_a_normal_exit(node: ergopy.Node) -> None:
    w, q = await watcher(node)
    target = await node.spawn(Target)
    await run_in(node, q, w, lambda a: a.link(target))
    node.send(target, gen.TERMINATE_REASON_NORMAL)
    kind, reason = await receive(q)
    assert kind == "terminated" and gen.unwrap_reason(reason) is gen.TERMINATE_REASON_NORMAL


async def test_watchers_of_a_linked_watcher_get_the_unwrapped_reason(node: ergopy.Node) -> None:
    w, q = await watcher(node)
    outer, outer_q = await watcher(node)
    target = await node.spawn(Target)
    await run_in(node, q, w, lambda a: a.link(target))
    await run_in(node, outer_q, outer, lambda a: a.monitor(w))
    err = RuntimeError("target failed")
    node.send(target, err)
    assert await receive(outer_q) == gen.MessageDownPID(w, err)


async def test_trapped_link_pid_delivers_exit_pid(node: ergopy.Node) -> None:
    w, q = await watcher(node, trap=True)
    target = await node.spawn(Target)
    await run_in(node, q, w, lambda a: a.link(target))
    err = RuntimeError("target failed")
    node.send(target, err)
    assert await receive(q) == gen.MessageExitPID(target, err)
    assert w in node.processes()


async def test_trapped_link_name_delivers_exit_process_id(node: ergopy.Node) -> None:
    w, q = await watcher(node, trap=True)
    target = await node.spawn_register("target", Target)
    await run_in(node, q, w, lambda a: a.link("target"))
    node.send(target, gen.TERMINATE_REASON_NORMAL)
    assert await receive(q) == gen.MessageExitProcessID(gen.ProcessID("target", node.name), gen.TERMINATE_REASON_NORMAL)


async def test_trapped_link_alias_delivers_exit_alias(node: ergopy.Node) -> None:
    w, q = await watcher(node, trap=True)
    target = await node.spawn(Target)
    alias = await make_alias(node, target)
    await run_in(node, q, w, lambda a: a.link(alias))
    node.send(target, gen.TERMINATE_REASON_NORMAL)
    assert await receive(q) == gen.MessageExitAlias(alias, gen.TERMINATE_REASON_NORMAL)


async def test_trapped_exit_signal_from_another_process_is_a_message(node: ergopy.Node) -> None:
    w, q = await watcher(node, trap=True)
    sender = await node.spawn(Target)
    err = RuntimeError("go away")
    node.send(sender, lambda a: a.send_exit(w, err))
    assert await receive(q) == gen.MessageExitPID(sender, err)


async def test_exit_from_parent_is_not_trappable(node: ergopy.Node) -> None:
    q: asyncio.Queue[Any] = asyncio.Queue()

    class Parent(act.Actor):
        async def handle_message(self, from_: gen.PID, message: Any) -> None:
            child = await self.spawn(Watcher, None, q, True)
            self.send_exit(child, gen.TERMINATE_REASON_SHUTDOWN)

    parent = await node.spawn(Parent)
    node.send(parent, "go")
    kind, reason = await receive(q)
    assert kind == "terminated"
    assert gen.unwrap_reason(reason) is gen.TERMINATE_REASON_SHUTDOWN


async def test_link_parent_option_ends_a_trapping_child_with_its_parent(node: ergopy.Node) -> None:
    q: asyncio.Queue[Any] = asyncio.Queue()

    class Parent(act.Actor):
        async def handle_message(self, from_: gen.PID, message: Any) -> Any:
            if message == "spawn":
                await self.spawn(Watcher, gen.ProcessOptions(link_parent=True), q, True)
                q.put_nowait("spawned")
                return None
            return message

    parent = await node.spawn(Parent)
    node.send(parent, "spawn")
    assert await receive(q) == "spawned"
    err = RuntimeError("parent failed")
    node.send(parent, err)
    kind, reason = await receive(q)
    assert kind == "terminated" and gen.unwrap_reason(reason) is err


async def test_link_child_option_tells_a_trapping_parent_of_its_child(node: ergopy.Node) -> None:
    q: asyncio.Queue[Any] = asyncio.Queue()

    class Parent(Watcher):
        async def handle_message(self, from_: gen.PID, message: Any) -> None:  # type: ignore[override]
            if message == "spawn":
                self.queue.put_nowait(await self.spawn(Target, gen.ProcessOptions(link_child=True)))
            else:
                self.queue.put_nowait(message)

    parent = await node.spawn(Parent, None, q, True)
    node.send(parent, "spawn")
    child = await receive(q)
    node.send(child, gen.TERMINATE_REASON_NORMAL)
    assert await receive(q) == gen.MessageExitPID(child, gen.TERMINATE_REASON_NORMAL)


async def test_unlink_stops_the_exit(node: ergopy.Node) -> None:
    w, q = await watcher(node, trap=True)
    target = await node.spawn(Target)
    sentinel = await node.spawn(Target)
    await run_in(node, q, w, lambda a: a.link(target))
    await run_in(node, q, w, lambda a: a.link(sentinel))
    await run_in(node, q, w, lambda a: a.unlink(target))
    node.kill(target)
    node.kill(sentinel)
    assert await receive(q) == gen.MessageExitPID(sentinel, gen.TERMINATE_REASON_KILL)


# ---- names -----------------------------------------------------------------------------------------


async def test_unregister_name_tells_watchers_unregistered(node: ergopy.Node) -> None:
    w, q = await watcher(node)
    target = await node.spawn_register("target", Target)
    await run_in(node, q, w, lambda a: a.monitor("target"))
    node.send(target, lambda a: a.unregister_name())
    down = await receive(q)
    assert type(down) is gen.MessageDownProcessID and down.process_id == gen.ProcessID("target", node.name)
    assert isinstance(down.reason, gen.UnregisteredError)
    assert node.process_info(target)["name"] is None


async def test_unregister_name_without_a_name_raises_name_unknown(node: ergopy.Node) -> None:
    w, q = await watcher(node)
    with pytest.raises(gen.NameUnknownError):
        await run_in(node, q, w, lambda a: a.unregister_name())
    with pytest.raises(gen.NameUnknownError):
        node.unregister_name("nobody")


async def test_register_name_makes_the_process_reachable(node: ergopy.Node) -> None:
    w, q = await watcher(node)
    await run_in(node, q, w, lambda a: a.register_name("late"))
    node.send("late", "hello")
    assert await receive(q) == "hello"


async def test_register_second_name_raises_taken(node: ergopy.Node) -> None:
    w, q = await watcher(node)
    await run_in(node, q, w, lambda a: a.register_name("first"))
    with pytest.raises(gen.TakenError):
        await run_in(node, q, w, lambda a: a.register_name("second"))


# ---- errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["link", "monitor"])
async def test_duplicate_raises_target_exist(node: ergopy.Node, kind: str) -> None:
    w, q = await watcher(node)
    target = await node.spawn(Target)
    await run_in(node, q, w, lambda a: getattr(a, kind)(target))
    with pytest.raises(gen.TargetExistError):
        await run_in(node, q, w, lambda a: getattr(a, kind)(target))


@pytest.mark.parametrize("kind", ["unlink", "demonitor"])
async def test_removing_a_missing_one_raises_target_unknown(node: ergopy.Node, kind: str) -> None:
    w, q = await watcher(node)
    target = await node.spawn(Target)
    with pytest.raises(gen.TargetUnknownError):
        await run_in(node, q, w, lambda a: getattr(a, kind)(target))


@pytest.mark.parametrize("kind", ["link", "monitor"])
async def test_unknown_targets_raise_unknown_errors(node: ergopy.Node, kind: str) -> None:
    w, q = await watcher(node)
    with pytest.raises(gen.ProcessUnknownError):
        await run_in(node, q, w, lambda a: getattr(a, kind)(gen.PID(node.name, 999_999, node.creation)))
    with pytest.raises(gen.ProcessUnknownError):
        await run_in(node, q, w, lambda a: getattr(a, kind)("nobody"))
    with pytest.raises(gen.AliasUnknownError):
        await run_in(node, q, w, lambda a: getattr(a, kind)(gen.Alias(node.name, node.creation, (1, 2, 3))))


@pytest.mark.parametrize("kind", ["link", "monitor"])
async def test_watching_itself_raises_not_allowed(node: ergopy.Node, kind: str) -> None:
    w, q = await watcher(node)
    with pytest.raises(gen.NotAllowedError):
        await run_in(node, q, w, lambda a: getattr(a, kind)(a.pid))
    with pytest.raises(gen.NotAllowedError):
        await run_in(node, q, w, lambda a: getattr(a, kind)(a.create_alias()))


async def test_link_of_unsupported_target_raises_unsupported(node: ergopy.Node) -> None:
    w, q = await watcher(node)
    with pytest.raises(gen.UnsupportedError):
        await run_in(node, q, w, lambda a: a.link(42))


async def test_link_in_init_is_not_allowed(node: ergopy.Node) -> None:
    target = await node.spawn(Target)

    class LinksInInit(act.Actor):
        def init(self) -> None:
            self.link(target)

    with pytest.raises(gen.NotAllowedError):
        await node.spawn(LinksInInit)


# ---- cleanup -----------------------------------------------------------------------------------------


async def test_watcher_termination_leaves_nothing_behind(node: ergopy.Node) -> None:
    w, q = await watcher(node)
    target = await node.spawn_register("target", Target)
    alias = await make_alias(node, target)
    for how in ("link", "monitor"):
        await run_in(node, q, w, lambda a, how=how: getattr(a, how)(target))
        await run_in(node, q, w, lambda a, how=how: getattr(a, how)("target"))
        await run_in(node, q, w, lambda a, how=how: getattr(a, how)(alias))
    assert node.stats()["links"] == 3 and node.stats()["monitors"] == 3
    node.kill(w)
    assert node.stats()["links"] == 0 and node.stats()["monitors"] == 0
    node.send(target, gen.TERMINATE_REASON_NORMAL)  # nobody left to tell


async def test_target_termination_leaves_nothing_behind(node: ergopy.Node) -> None:
    w, q = await watcher(node, trap=True)
    target = await node.spawn_register("target", Target)
    await run_in(node, q, w, lambda a: a.link(target))
    await run_in(node, q, w, lambda a: a.monitor("target"))
    node.kill(target)
    await receive(q)
    await receive(q)
    assert node.stats()["links"] == 0 and node.stats()["monitors"] == 0
    assert await run_in(node, q, w, lambda a: a.process.node.process_info(a.pid)["name"]) is None


async def test_exit_signal_with_kill_reason_from_another_process_is_trappable(node: ergopy.Node) -> None:
    w, q = await watcher(node, trap=True)
    sender = await node.spawn(Target)
    node.send(sender, lambda a: a.send_exit(w, gen.TERMINATE_REASON_KILL))
    assert await receive(q) == gen.MessageExitPID(sender, gen.TERMINATE_REASON_KILL)


async def test_trapping_watcher_hears_of_a_killed_linked_process(node: ergopy.Node) -> None:
    w, q = await watcher(node, trap=True)
    target = await node.spawn(Target)
    await run_in(node, q, w, lambda a: a.link(target))
    node.kill(target)
    assert await receive(q) == gen.MessageExitPID(target, gen.TERMINATE_REASON_KILL)
    assert w in node.processes()

"""The node: names, sending from outside, stopping, timers, info, env, logging, identifiers."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from conftest import receive

import ergopy
from ergopy import act, gen


class Probe(act.Actor):
    """Puts every message into its queue; reports ``("terminated", reason)``; runs callables."""

    def init(self, queue: asyncio.Queue[Any], trap: bool = False) -> None:
        self.queue = queue
        self.set_trap_exit(trap)

    def handle_message(self, from_: gen.PID, message: Any) -> Any:
        if callable(message):
            self.queue.put_nowait(("ok", message(self)))
            return None
        self.queue.put_nowait(message)
        return None

    def terminate(self, reason: BaseException) -> None:
        self.queue.put_nowait(("terminated", reason))


@pytest.fixture
async def named_node() -> AsyncIterator[ergopy.Node]:
    """A node called ``node@localhost``, whose CRC is ``2C323E75``."""
    n = await ergopy.start_node("node@localhost", gen.NodeOptions(stop_timeout=1.0))
    try:
        yield n
    finally:
        await n.stop()


# ---- starting ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("nohost", "incorrect FQDN node name"),
        ("@localhost", "too short node name"),
        ("node@", "too short host name"),
        ("n@" + "h" * 300, "too long"),
    ],
)
async def test_start_node_refuses_malformed_names(name: str, message: str) -> None:
    with pytest.raises(gen.IncorrectError, match=message):
        await ergopy.start_node(name)


async def test_start_node_has_name_creation_and_core_pid(named_node: ergopy.Node) -> None:
    assert named_node.name == "node@localhost"
    assert named_node.creation > 0
    assert named_node.pid == gen.PID("node@localhost", 1, named_node.creation)
    assert named_node.is_alive()


# ---- identifiers print as Ergo's -------------------------------------------------------------------------


async def test_first_spawned_pid_prints_as_ergo(named_node: ergopy.Node) -> None:
    pid = await named_node.spawn(act.Actor)
    assert str(pid) == "<2C323E75.0.1001>"


async def test_core_pid_prints_as_ergo(named_node: ergopy.Node) -> None:
    assert str(named_node.pid) == "<2C323E75.0.1>"


async def test_alias_prints_as_ergo(named_node: ergopy.Node) -> None:
    q: asyncio.Queue[Any] = asyncio.Queue()
    pid = await named_node.spawn(Probe, None, q)
    named_node.send(pid, lambda a: a.create_alias())
    _, alias = await receive(q)
    assert re.fullmatch(r"Alias#<2C323E75\.\d+\.\d+\.\d+>", str(alias))


async def test_ref_prints_as_ergo(named_node: ergopy.Node) -> None:
    assert re.fullmatch(r"Ref#<2C323E75\.\d+\.\d+\.0>", str(named_node.make_ref()))


async def test_refs_are_unique(named_node: ergopy.Node) -> None:
    refs = {named_node.make_ref() for _ in range(1000)}
    assert len(refs) == 1000


async def test_process_id_of_a_name_prints_as_ergo(named_node: ergopy.Node) -> None:
    q: asyncio.Queue[Any] = asyncio.Queue()
    watcher = await named_node.spawn(Probe, None, q)
    await named_node.spawn_register("worker", act.Actor)
    named_node.send(watcher, lambda a: a.monitor("worker"))
    await receive(q)
    named_node.send("worker", gen.TERMINATE_REASON_NORMAL)
    named_node.kill(named_node.processes()[-1])
    down = await receive(q)
    assert str(down.process_id) == "<2C323E75.'worker'>"


async def test_event_prints_as_ergo(named_node: ergopy.Node) -> None:
    q: asyncio.Queue[Any] = asyncio.Queue()
    pid = await named_node.spawn(Probe, None, q)
    named_node.send(pid, lambda a: a.register_event("ev"))
    await receive(q)
    assert str(named_node.process_info(pid)["events"][0]) == "'ev'"
    assert str(gen.Event("ev", named_node.name)) == "Event#<2C323E75:'ev'>"


async def test_ref_and_alias_from_the_node_never_compare_equal(named_node: ergopy.Node) -> None:
    ref = named_node.make_ref()
    alias = gen.Alias(ref.node, ref.creation, ref.id)
    assert ref != alias
    assert {ref: 1}.get(alias) is None


# ---- sending from the node ------------------------------------------------------------------------------


async def test_node_send_reaches_pid_name_and_alias(node: ergopy.Node) -> None:
    q: asyncio.Queue[Any] = asyncio.Queue()
    pid = await node.spawn_register("probe", Probe, None, q)
    node.send(pid, lambda a: a.create_alias())
    _, alias = await receive(q)
    node.send(pid, 1)
    node.send("probe", 2)
    node.send_alias(alias, 3)
    assert [await receive(q) for _ in range(3)] == [1, 2, 3]


async def test_an_alias_equal_to_a_live_one_reaches_it_and_one_of_an_earlier_node_does_not(node: ergopy.Node) -> None:
    """Aliases are found by their ID: a copy (as EDF decodes one off the network) is the
    same alias; the same ID of an earlier incarnation of this node (another creation) is a
    dead letter, and anything not an alias is no alias."""
    q: asyncio.Queue[Any] = asyncio.Queue()
    pid = await node.spawn(Probe, None, q)
    node.send(pid, lambda a: a.create_alias())
    _, alias = await receive(q)
    copy = gen.Alias(alias.node, alias.creation, alias.id)
    assert copy is not alias and copy == alias
    node.send_alias(copy, "by a copy")
    assert await receive(q) == "by a copy"
    assert node.alias_exists(copy)
    earlier = gen.Alias(node.name, node.creation - 1, alias.id)
    node.send_alias(earlier, "lost")
    assert node.stats()["dead_letters_alias_unknown"] == 1
    assert not node.alias_exists(earlier)
    assert not node.alias_exists(gen.ProcessID("probe", node.name))  # type: ignore[arg-type]
    with pytest.raises(gen.AliasUnknownError):
        node.send_exit_meta(earlier, gen.TERMINATE_REASON_KILL)


async def test_node_send_exit_terminates_the_process(node: ergopy.Node) -> None:
    q: asyncio.Queue[Any] = asyncio.Queue()
    pid = await node.spawn(Probe, None, q)
    node.send_exit(pid, gen.TERMINATE_REASON_SHUTDOWN)
    kind, reason = await receive(q)
    assert kind == "terminated" and gen.unwrap_reason(reason) is gen.TERMINATE_REASON_SHUTDOWN


async def test_node_send_exit_to_unknown_raises_process_unknown(node: ergopy.Node) -> None:
    with pytest.raises(gen.ProcessUnknownError):
        node.send_exit(gen.PID(node.name, 999_999, node.creation), gen.TERMINATE_REASON_NORMAL)


async def test_node_kill_terminates_with_kill(node: ergopy.Node) -> None:
    q: asyncio.Queue[Any] = asyncio.Queue()
    pid = await node.spawn(Probe, None, q)
    node.kill(pid)
    assert await receive(q) == ("terminated", gen.TERMINATE_REASON_KILL)


# ---- timers ------------------------------------------------------------------------------------------


async def test_send_after_delivers_later(node: ergopy.Node) -> None:
    q: asyncio.Queue[Any] = asyncio.Queue()
    pid = await node.spawn(Probe, None, q)
    node.send(pid, lambda a: a.send_after(a.pid, "tick", 0.01))
    await receive(q)
    assert await receive(q) == "tick"
    assert node.stats()["timers"] == 0


async def test_send_after_cancel_stops_the_delivery(node: ergopy.Node) -> None:
    q: asyncio.Queue[Any] = asyncio.Queue()
    pid = await node.spawn(Probe, None, q)

    def schedule(a: act.Actor) -> bool:
        cancel = a.send_after(a.pid, "cancelled", 0.01)
        a.send_after(a.pid, "kept", 0.03)
        return cancel()

    node.send(pid, schedule)
    assert await receive(q) == ("ok", True)
    assert await receive(q) == "kept"  # "cancelled" would have come first


async def test_send_after_cancel_after_delivery_returns_false(node: ergopy.Node) -> None:
    q: asyncio.Queue[Any] = asyncio.Queue()
    pid = await node.spawn(Probe, None, q)
    node.send(pid, lambda a: a.send_after(a.pid, "tick", 0))
    _, cancel = await receive(q)
    assert await receive(q) == "tick"
    assert cancel() is False


async def test_send_after_to_a_name(node: ergopy.Node) -> None:
    q: asyncio.Queue[Any] = asyncio.Queue()
    pid = await node.spawn_register("timed", Probe, None, q)
    node.send(pid, lambda a: a.send_after("timed", "by name", 0))
    await receive(q)
    assert await receive(q) == "by name"


# ---- info ----------------------------------------------------------------------------------------------


async def test_process_info_describes_the_process(node: ergopy.Node) -> None:
    q: asyncio.Queue[Any] = asyncio.Queue()
    pid = await node.spawn_register("probe", Probe, gen.ProcessOptions(mailbox_size=7), q, True)
    info = node.process_info(pid)
    assert info["pid"] == pid
    assert info["name"] == "probe"
    assert info["behavior"] == "Probe"
    assert info["state"] == "sleep"
    assert info["parent"] == node.pid
    assert info["mailbox_size"] == 7
    assert info["trap_exit"] is True


async def test_process_info_of_unknown_raises_process_unknown(node: ergopy.Node) -> None:
    with pytest.raises(gen.ProcessUnknownError):
        node.process_info(gen.PID(node.name, 999_999, node.creation))


async def test_inspect_of_unknown_raises_process_unknown(node: ergopy.Node) -> None:
    with pytest.raises(gen.ProcessUnknownError):
        await node.inspect(gen.PID(node.name, 999_999, node.creation))


async def test_inspect_overtakes_queued_messages(node: ergopy.Node) -> None:
    seen: list[Any] = []

    class Counting(act.Actor):
        def handle_message(self, from_: gen.PID, message: Any) -> None:
            seen.append(message)

        def handle_inspect(self, from_: gen.PID, *items: str) -> dict[str, str]:
            return {"seen": str(len(seen))}

    pid = await node.spawn(Counting)
    node.send(pid, 1)
    node.send(pid, 2)
    assert await node.inspect(pid) == {"seen": "0"}


# ---- env -----------------------------------------------------------------------------------------------


async def test_node_env_is_case_insensitive() -> None:
    n = await ergopy.start_node("env@localhost", gen.NodeOptions(env={"Mode": "test"}))
    try:
        assert n.env("MODE") == "test"
        assert n.env("mode") == "test"
        assert n.env("missing", 42) == 42
    finally:
        await n.stop()


async def test_process_env_inherits_from_node_and_parent() -> None:
    n = await ergopy.start_node("env2@localhost", gen.NodeOptions(env={"node_key": "n"}))
    q: asyncio.Queue[Any] = asyncio.Queue()

    class Parent(act.Actor):
        async def handle_message(self, from_: gen.PID, message: Any) -> None:
            self.set_env("parent_key", "p")
            child = await self.spawn(Probe, gen.ProcessOptions(env={"own": "o"}), q)
            self.send(child, lambda a: (a.env("NODE_KEY"), a.env("parent_key"), a.env("OWN")))

    try:
        parent = await n.spawn(Parent)
        n.send(parent, "go")
        assert await receive(q) == ("ok", ("n", "p", "o"))
    finally:
        await n.stop()


async def test_set_env_none_removes_the_variable(node: ergopy.Node) -> None:
    """Go: ``SetEnv(name, nil)`` deletes the variable, for the node and for a process."""
    node.set_env("color", "blue")
    node.set_env("COLOR", None)
    assert node.env("color", "none") == "none" and "COLOR" not in node.env_list()
    q: asyncio.Queue[Any] = asyncio.Queue()
    pid = await node.spawn(Probe, gen.ProcessOptions(env={"size": 1}), q)

    def unset(a: act.Actor) -> tuple[Any, dict[str, Any]]:
        a.set_env("size", None)
        return a.env("size", "none"), a.process.env_list()  # type: ignore[attr-defined]

    node.send(pid, unset)
    assert await receive(q) == ("ok", ("none", {}))


async def test_a_process_env_is_a_copy_taken_at_spawn() -> None:
    """Go copies the environment into the process at spawn: later ``set_env`` calls of the
    node or of the parent do not reach a running child (nor do the child's reach them)."""
    n = await ergopy.start_node("envcopy@localhost", gen.NodeOptions(env={"mode": "before"}))
    q: asyncio.Queue[Any] = asyncio.Queue()

    class Parent(Probe):
        async def handle_message(self, from_: gen.PID, message: Any) -> Any:  # type: ignore[override]
            if message == "spawn":
                self.queue.put_nowait(("child", await self.spawn(Probe, None, self.queue)))
                return None
            return super().handle_message(from_, message)

    try:
        parent = await n.spawn(Parent, None, q)
        n.send(parent, lambda a: a.set_env("from_parent", "before"))
        await receive(q)
        n.send(parent, "spawn")
        _, child = await receive(q)
        n.set_env("mode", "after")
        n.set_env("new", "after")
        n.send(parent, lambda a: a.set_env("from_parent", "after"))
        await receive(q)
        n.send(child, lambda a: (a.env("mode"), a.env("new"), a.env("from_parent")))
        assert await receive(q) == ("ok", ("before", None, "before"))
        n.send(child, lambda a: a.set_env("mine", 1))
        await receive(q)
        n.send(parent, lambda a: a.env("mine"))
        assert await receive(q) == ("ok", None)
        assert n.env("mine") is None
    finally:
        await n.stop()


# ---- logging ---------------------------------------------------------------------------------------------


async def test_process_log_records_carry_source_and_name(node: ergopy.Node, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="ergopy")
    q: asyncio.Queue[Any] = asyncio.Queue()
    pid = await node.spawn_register("talker", Probe, None, q)
    node.send(pid, lambda a: a.log.info("hello %s", "world"))
    await receive(q)
    [record] = [r for r in caplog.records if r.getMessage() == "hello world"]
    assert record.levelno == logging.INFO
    assert record.ergo_source == str(pid)  # type: ignore[attr-defined]
    assert record.ergo_name == "talker"  # type: ignore[attr-defined]
    assert record.ergo_behavior == "Probe"  # type: ignore[attr-defined]


async def test_node_log_records_carry_the_node_crc(node: ergopy.Node, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="ergopy")
    node.log.warning("careful")
    [record] = [r for r in caplog.records if r.getMessage() == "careful"]
    assert record.levelno == logging.WARNING
    assert record.ergo_source == node.name.crc32()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("method", "level"),
    [("debug", logging.DEBUG), ("info", logging.INFO), ("warning", logging.WARNING), ("error", logging.ERROR)],
)
async def test_log_methods_map_to_logging_levels(
    node: ergopy.Node, caplog: pytest.LogCaptureFixture, method: str, level: int
) -> None:
    caplog.set_level(logging.DEBUG, logger="ergopy")
    node.log.set_level(gen.LogLevel.DEBUG)
    getattr(node.log, method)("at %s", method)
    [record] = [r for r in caplog.records if r.getMessage() == f"at {method}"]
    assert record.levelno == level


async def test_log_below_the_process_level_is_not_emitted(node: ergopy.Node, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="ergopy")
    q: asyncio.Queue[Any] = asyncio.Queue()
    pid = await node.spawn(Probe, gen.ProcessOptions(log_level=gen.LogLevel.WARNING), q)

    def talk(a: act.Actor) -> None:
        a.log.info("quiet")
        a.log.warning("loud")

    node.send(pid, talk)
    await receive(q)
    messages = [r.getMessage() for r in caplog.records]
    assert "loud" in messages and "quiet" not in messages


async def test_meta_log_records_carry_the_alias(node: ergopy.Node, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="ergopy")
    q: asyncio.Queue[Any] = asyncio.Queue()

    class Talker(gen.MetaBehavior):
        def init(self, process: gen.MetaProcess) -> None:
            process.log.info("meta here")

    pid = await node.spawn(Probe, None, q)
    node.send(pid, lambda a: a.spawn_meta(Talker()))
    _, alias = await receive(q)
    [record] = [r for r in caplog.records if r.getMessage() == "meta here"]
    assert record.ergo_source == str(alias)  # type: ignore[attr-defined]


# ---- stopping --------------------------------------------------------------------------------------------


async def test_stop_terminates_every_process_with_shutdown_from_the_parent() -> None:
    n = await ergopy.start_node("stop1@localhost")
    q: asyncio.Queue[Any] = asyncio.Queue()
    await n.spawn(Probe, None, q, True)  # traps exits, but not its parent's
    await n.stop()
    kind, reason = q.get_nowait()
    assert kind == "terminated"
    assert isinstance(reason, gen.ExitSignal) and reason.reason is gen.TERMINATE_REASON_SHUTDOWN
    assert n.processes() == []
    assert not n.is_alive()


async def test_stop_lets_processes_handle_what_is_queued() -> None:
    n = await ergopy.start_node("stop2@localhost")
    q: asyncio.Queue[Any] = asyncio.Queue()
    pid = await n.spawn(Probe, None, q)
    n.send(pid, "last words")
    await n.stop()
    assert q.get_nowait() == "last words"


async def test_stop_returns_only_when_all_tasks_are_done() -> None:
    n = await ergopy.start_node("stop3@localhost")
    finished: list[str] = []

    class SlowTerminate(act.Actor):
        async def terminate(self, reason: BaseException) -> None:
            for _ in range(5):
                await asyncio.sleep(0)
            finished.append("process")

    class Meta(gen.MetaBehavior):
        def init(self, process: gen.MetaProcess) -> None:
            self.stop = asyncio.Event()

        async def start(self) -> None:
            await self.stop.wait()
            for _ in range(5):
                await asyncio.sleep(0)
            finished.append("meta start")

        def terminate(self, reason: BaseException) -> None:
            self.stop.set()

    class Busy(act.Actor):
        async def handle_message(self, from_: gen.PID, message: Any) -> None:
            await asyncio.sleep(0)

    q: asyncio.Queue[Any] = asyncio.Queue()
    await n.spawn(SlowTerminate)
    host = await n.spawn(Probe, None, q)
    n.send(host, lambda a: a.spawn_meta(Meta()))
    await receive(q)
    busy = await n.spawn(Busy)
    n.send(busy, "work")
    await n.stop()
    assert sorted(finished) == ["meta start", "process"]
    pending = [t for t in asyncio.all_tasks() if t.get_name().startswith("ergopy") and not t.done()]
    assert pending == []
    assert not any(n.stats().values())


async def test_stop_kills_a_process_stuck_in_a_callback_after_the_timeout() -> None:
    n = await ergopy.start_node("stop4@localhost", gen.NodeOptions(stop_timeout=0.1))
    q: asyncio.Queue[Any] = asyncio.Queue()

    class Stuck(Probe):
        async def handle_message(self, from_: gen.PID, message: Any) -> None:  # type: ignore[override]
            self.queue.put_nowait("stuck")
            await asyncio.Event().wait()

    pid = await n.spawn(Stuck, None, q)
    n.send(pid, "go")
    assert await receive(q) == "stuck"
    await n.stop()
    assert q.get_nowait() == ("terminated", gen.TERMINATE_REASON_KILL)
    assert n.processes() == []


async def test_stop_does_not_wait_for_a_process_that_keeps_itself_busy() -> None:
    n = await ergopy.start_node("stop5@localhost", gen.NodeOptions(stop_timeout=5.0))

    class Spinner(act.Actor):
        def handle_message(self, from_: gen.PID, message: Any) -> None:
            self.send(self.pid, message)

    n.send(await n.spawn(Spinner), "spin")
    async with asyncio.timeout(1.0):
        await n.stop()


async def test_concurrent_stops_all_return() -> None:
    n = await ergopy.start_node("stop6@localhost")
    await n.spawn(act.Actor)
    await asyncio.gather(n.stop(), n.stop(), n.stop())
    await n.stop()
    assert not n.is_alive()


async def test_after_stop_spawn_and_send_raise_node_terminated() -> None:
    n = await ergopy.start_node("stop7@localhost")
    pid = await n.spawn(act.Actor)
    await n.stop()
    with pytest.raises(gen.NodeTerminatedError):
        await n.spawn(act.Actor)
    with pytest.raises(gen.NodeTerminatedError):
        n.send(pid, "x")


async def test_wait_returns_when_the_node_stops() -> None:
    n = await ergopy.start_node("wait1@localhost")
    waiter = asyncio.create_task(n.wait())
    await asyncio.sleep(0)
    assert not waiter.done()
    await n.stop()
    await asyncio.wait_for(waiter, 1.0)


async def test_wait_with_timeout_raises_timeout(node: ergopy.Node) -> None:
    with pytest.raises(gen.TimeoutError):
        await node.wait(timeout=0.01)


async def test_pending_node_call_fails_when_the_node_stops() -> None:
    n = await ergopy.start_node("call1@localhost", gen.NodeOptions(stop_timeout=0.5))

    class Silent(act.Actor):
        def handle_call(self, from_: gen.PID, ref: gen.Ref, request: Any) -> None:
            return None

    pid = await n.spawn(Silent)
    call = asyncio.create_task(n.call(pid, "x", timeout=5.0))
    await asyncio.sleep(0)
    await n.stop()
    with pytest.raises(gen.NodeTerminatedError):
        await call


async def test_a_process_may_stop_its_node() -> None:
    n = await ergopy.start_node("stop8@localhost", gen.NodeOptions(stop_timeout=5.0))
    q: asyncio.Queue[Any] = asyncio.Queue()

    class Stopper(Probe):
        async def handle_message(self, from_: gen.PID, message: Any) -> None:  # type: ignore[override]
            await self.node.stop()  # type: ignore[attr-defined]
            self.queue.put_nowait("stop returned")

    pid = await n.spawn(Stopper, None, q)
    n.send(pid, "stop")
    async with asyncio.timeout(1.0):
        await n.wait()
    assert q.get_nowait() == "stop returned"
    kind, reason = q.get_nowait()
    assert kind == "terminated" and gen.unwrap_reason(reason) is gen.TERMINATE_REASON_SHUTDOWN


async def test_a_meta_process_may_stop_its_node() -> None:
    n = await ergopy.start_node("stop9@localhost", gen.NodeOptions(stop_timeout=5.0))
    q: asyncio.Queue[Any] = asyncio.Queue()

    class Stopper(gen.MetaBehavior):
        def init(self, process: gen.MetaProcess) -> None:
            self.process = process

        async def start(self) -> None:
            await self.process.node.stop()  # type: ignore[attr-defined]

    pid = await n.spawn(Probe, None, q)
    n.send(pid, lambda a: a.spawn_meta(Stopper()))
    async with asyncio.timeout(1.0):
        await n.wait()
    assert n.processes() == []

"""act.Supervisor: start order, restart types and strategies, limits, the child API."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from conftest import receive

import ergopy
from ergopy import act, gen
from ergopy.act import supervisor as supervisor_module

Events = asyncio.Queue[Any]


class Worker(act.Actor):
    """A child that reports its start, messages and end to the test's queue."""

    def init(self, events: Events, tag: str | None = None) -> None:
        self.events = events
        self.tag = tag if tag is not None else (self.name.text if self.name else "?")
        events.put_nowait(("start", self.tag, self.pid))

    def handle_message(self, from_: gen.PID, message: Any) -> Any:
        if message == "crash":
            return RuntimeError("crash")
        if message == "normal":
            return gen.TERMINATE_REASON_NORMAL
        if message == "shutdown":
            return gen.TERMINATE_REASON_SHUTDOWN
        self.events.put_nowait(("message", self.tag, message))
        return None

    def handle_call(self, from_: gen.PID, ref: gen.Ref, request: Any) -> Any:
        return (self.tag, request)

    def terminate(self, reason: BaseException) -> None:
        self.events.put_nowait(("stop", self.tag, gen.unwrap_reason(reason)))


class FailingWorker(act.Actor):
    def init(self, *args: Any) -> None:
        raise ValueError("refused")


class Sup(act.Supervisor):
    """A supervisor whose spec comes from the test; calls drive its API."""

    def init(self, spec: act.SupervisorSpec, events: Events | None = None) -> act.SupervisorSpec:
        self.events = events
        return spec

    async def handle_call(self, from_: gen.PID, ref: gen.Ref, request: Any) -> Any:
        try:
            match request:
                case ("children",):
                    return self.children()
                case ("start_child", name, *args):
                    return await self.start_child(name, *args)
                case ("add_child", spec):
                    return ("added", await self.add_child(spec))
                case ("enable_child", name):
                    return ("enabled", await self.enable_child(name))
                case ("link", pid):
                    self.link(pid)
                    return "linked"
                case ("disable_child", name):
                    self.disable_child(name)
                    return "disabled"
        except gen.Error as e:
            return e
        return None

    def handle_message(self, from_: gen.PID, message: Any) -> None:
        if self.events is not None:
            self.events.put_nowait(("sup message", message))

    def handle_child_start(self, name: gen.Atom, pid: gen.PID) -> None:
        if self.events is not None:
            self.events.put_nowait(("child start", name, pid))

    def handle_child_terminate(self, name: gen.Atom, pid: gen.PID, reason: BaseException) -> None:
        if self.events is not None:
            self.events.put_nowait(("child terminate", name, pid, reason))


class Watcher(act.Actor):
    """Monitors what it is told to and reports each ``MessageDownPID``."""

    def init(self, events: Events) -> None:
        self.events = events

    def handle_call(self, from_: gen.PID, ref: gen.Ref, request: Any) -> Any:
        self.monitor(request)
        return "watching"

    def handle_message(self, from_: gen.PID, message: Any) -> None:
        self.events.put_nowait(("down", message.pid, message.reason))


def children(events: Events, *names: str, **kw: Any) -> list[act.SupervisorChildSpec]:
    return [act.SupervisorChildSpec(name=n, factory=Worker, args=[events], **kw) for n in names]


def spec(
    events: Events,
    *names: str,
    type: act.SupervisorType = act.SupervisorType.ONE_FOR_ONE,
    strategy: act.SupervisorStrategy = act.SupervisorStrategy.TRANSIENT,
    intensity: int = 5,
    period: float = 5,
    keep_order: bool = False,
    **kw: Any,
) -> act.SupervisorSpec:
    return act.SupervisorSpec(
        type=type,
        children=children(events, *names),
        restart=act.SupervisorRestart(strategy=strategy, intensity=intensity, period=period, keep_order=keep_order),
        **kw,
    )


async def started(events: Events, *tags: str) -> dict[str, gen.PID]:
    """Wait for the ``start`` events of ``tags``, in that order; their PIDs."""
    pids = {}
    for tag in tags:
        kind, got, pid = await receive(events)
        assert (kind, got) == ("start", tag)
        pids[tag] = pid
    return pids


async def watch(node: ergopy.Node, events: Events, pid: gen.PID) -> None:
    watcher = await node.spawn(Watcher, None, events)
    assert await node.call(watcher, pid) == "watching"


# ---- starting ------------------------------------------------------------------------------------


async def test_children_start_in_spec_order_registered_under_their_names(node: ergopy.Node) -> None:
    events: Events = asyncio.Queue()
    sup = await node.spawn(Sup, None, spec(events, "a", "b", "c"))
    pids = await started(events, "a", "b", "c")
    for name, pid in pids.items():
        assert node.process_info(pid)["name"] == name
        assert node.process_info(pid)["parent"] == sup
    assert await node.call(sup, ("children",)) == [("a", pids["a"]), ("b", pids["b"]), ("c", pids["c"])]


async def test_children_are_linked_to_the_supervisor_and_die_with_it(node: ergopy.Node) -> None:
    events: Events = asyncio.Queue()
    sup = await node.spawn(Sup, None, spec(events, "a", "b"))
    await started(events, "a", "b")
    node.send_exit(sup, gen.TERMINATE_REASON_SHUTDOWN)
    stops = {(await receive(events))[:2] for _ in range(2)}
    assert stops == {("stop", "a"), ("stop", "b")}


async def test_duplicate_child_names_make_spawn_raise(node: ergopy.Node) -> None:
    events: Events = asyncio.Queue()
    with pytest.raises(gen.SupervisorError, match="duplicate"):
        await node.spawn(Sup, None, spec(events, "a", "a"))


async def test_empty_children_make_spawn_raise(node: ergopy.Node) -> None:
    events: Events = asyncio.Queue()
    with pytest.raises(gen.SupervisorError, match="empty"):
        await node.spawn(Sup, None, spec(events))


async def test_init_that_returns_no_spec_makes_spawn_raise(node: ergopy.Node) -> None:
    class NoSpec(act.Supervisor):
        def init(self, *args: Any) -> Any:
            return None

    with pytest.raises(gen.SupervisorError):
        await node.spawn(NoSpec)


async def test_a_child_init_failure_makes_spawn_raise_and_stops_started_children(node: ergopy.Node) -> None:
    events: Events = asyncio.Queue()
    s = spec(events, "a")
    s.children.append(act.SupervisorChildSpec(name="bad", factory=FailingWorker))
    with pytest.raises(ValueError, match="refused"):
        await node.spawn(Sup, None, s)
    await started(events, "a")
    assert (await receive(events))[:2] == ("stop", "a")
    assert node.lookup_name("a") is None


# ---- restart strategies -----------------------------------------------------------------------


async def test_one_for_one_restarts_only_the_crashed_child(node: ergopy.Node) -> None:
    events: Events = asyncio.Queue()
    sup = await node.spawn(Sup, None, spec(events, "a", "b", "c"))
    pids = await started(events, "a", "b", "c")
    node.send("b", "crash")
    kind, tag, reason = await receive(events)
    assert (kind, tag) == ("stop", "b") and isinstance(reason, RuntimeError)
    new = await started(events, "b")
    assert new["b"] != pids["b"]
    assert await node.call(sup, ("children",)) == [("a", pids["a"]), ("b", new["b"]), ("c", pids["c"])]
    assert await node.call("b", "hello") == ("b", "hello")


async def test_transient_child_ending_normally_is_not_restarted(node: ergopy.Node) -> None:
    events: Events = asyncio.Queue()
    sup = await node.spawn(Sup, None, spec(events, "a", "b"))
    pids = await started(events, "a", "b")
    node.send("a", "normal")
    assert await receive(events) == ("stop", "a", gen.TERMINATE_REASON_NORMAL)
    assert await node.call(sup, ("children",)) == [("b", pids["b"])]
    assert events.empty()


async def test_transient_child_ending_with_shutdown_is_not_restarted(node: ergopy.Node) -> None:
    events: Events = asyncio.Queue()
    sup = await node.spawn(Sup, None, spec(events, "a", "b"))
    pids = await started(events, "a", "b")
    node.send("a", "shutdown")
    assert await receive(events) == ("stop", "a", gen.TERMINATE_REASON_SHUTDOWN)
    assert await node.call(sup, ("children",)) == [("b", pids["b"])]


async def test_temporary_child_is_never_restarted(node: ergopy.Node) -> None:
    events: Events = asyncio.Queue()
    sup = await node.spawn(Sup, None, spec(events, "a", "b", strategy=act.SupervisorStrategy.TEMPORARY))
    pids = await started(events, "a", "b")
    node.send("a", "crash")
    assert (await receive(events))[:2] == ("stop", "a")
    assert await node.call(sup, ("children",)) == [("b", pids["b"])]
    assert events.empty()


async def test_permanent_child_is_restarted_even_after_a_normal_exit(node: ergopy.Node) -> None:
    events: Events = asyncio.Queue()
    await node.spawn(Sup, None, spec(events, "a", strategy=act.SupervisorStrategy.PERMANENT))
    await started(events, "a")
    node.send("a", "normal")
    assert await receive(events) == ("stop", "a", gen.TERMINATE_REASON_NORMAL)
    await started(events, "a")


async def test_all_for_one_stops_the_others_in_reverse_order_with_the_reason_and_restarts_all(
    node: ergopy.Node,
) -> None:
    """Go (act/supervisor_arfo.go): the siblings are sent ``SendExit(pid, reason)`` with the
    failing child's reason (not shutdown), in reverse start order, one at a time with KeepOrder."""
    events: Events = asyncio.Queue()
    sup = await node.spawn(Sup, None, spec(events, "a", "b", "c", type=act.SupervisorType.ALL_FOR_ONE, keep_order=True))
    old = await started(events, "a", "b", "c")
    node.send("b", "crash")
    kind, tag, reason = await receive(events)
    assert (kind, tag) == ("stop", "b") and isinstance(reason, RuntimeError)
    assert await receive(events) == ("stop", "c", reason)
    assert await receive(events) == ("stop", "a", reason)
    new = await started(events, "a", "b", "c")
    assert not set(new.values()) & set(old.values())
    assert await node.call(sup, ("children",)) == [("a", new["a"]), ("b", new["b"]), ("c", new["c"])]


async def test_all_for_one_without_keep_order_restarts_all(node: ergopy.Node) -> None:
    events: Events = asyncio.Queue()
    await node.spawn(Sup, None, spec(events, "a", "b", "c", type=act.SupervisorType.ALL_FOR_ONE))
    await started(events, "a", "b", "c")
    node.send("a", "crash")
    stops = {(await receive(events))[1] for _ in range(3)}
    assert stops == {"a", "b", "c"}
    await started(events, "a", "b", "c")


async def test_rest_for_one_restarts_the_crashed_child_and_those_after_it(node: ergopy.Node) -> None:
    events: Events = asyncio.Queue()
    sup = await node.spawn(
        Sup, None, spec(events, "a", "b", "c", "d", type=act.SupervisorType.REST_FOR_ONE, keep_order=True)
    )
    old = await started(events, "a", "b", "c", "d")
    node.send("b", "crash")
    kind, tag, reason = await receive(events)
    assert (kind, tag) == ("stop", "b") and isinstance(reason, RuntimeError)
    assert await receive(events) == ("stop", "d", reason)  # Go: the failing child's reason
    assert await receive(events) == ("stop", "c", reason)
    new = await started(events, "b", "c", "d")
    got = await node.call(sup, ("children",))
    assert got == [("a", old["a"]), ("b", new["b"]), ("c", new["c"]), ("d", new["d"])]


async def test_all_for_one_temporary_restarts_nothing(node: ergopy.Node) -> None:
    events: Events = asyncio.Queue()
    sup = await node.spawn(
        Sup,
        None,
        spec(events, "a", "b", type=act.SupervisorType.ALL_FOR_ONE, strategy=act.SupervisorStrategy.TEMPORARY),
    )
    pids = await started(events, "a", "b")
    node.send("a", "crash")
    assert (await receive(events))[:2] == ("stop", "a")
    assert await node.call(sup, ("children",)) == [("b", pids["b"])]


async def test_rest_for_one_transient_normal_exit_restarts_nothing(node: ergopy.Node) -> None:
    events: Events = asyncio.Queue()
    sup = await node.spawn(Sup, None, spec(events, "a", "b", type=act.SupervisorType.REST_FOR_ONE))
    pids = await started(events, "a", "b")
    node.send("a", "normal")
    assert (await receive(events))[:2] == ("stop", "a")
    assert await node.call(sup, ("children",)) == [("b", pids["b"])]


# ---- limits and shutdown ----------------------------------------------------------------------


async def test_more_restarts_than_intensity_stop_children_and_the_supervisor(node: ergopy.Node) -> None:
    events: Events = asyncio.Queue()
    sup = await node.spawn(Sup, None, spec(events, "a", "b", intensity=2, period=60))
    await started(events, "a", "b")
    await watch(node, events, sup)
    for _ in range(2):
        node.send("a", "crash")
        assert (await receive(events))[:2] == ("stop", "a")
        await started(events, "a")
    node.send("a", "crash")  # the third restart within the period is one too many
    assert (await receive(events))[:2] == ("stop", "a")
    kind, tag, reason = await receive(events)  # Go: children get ErrSupervisorRestartsExceeded
    assert (kind, tag) == ("stop", "b") and isinstance(reason, gen.SupervisorError)
    kind, pid, reason = await receive(events)
    assert (kind, pid) == ("down", sup)
    assert isinstance(reason, gen.SupervisorError) and "restarts exceeded" in str(reason)


async def test_restarts_older_than_the_period_do_not_count(node: ergopy.Node, monkeypatch: pytest.MonkeyPatch) -> None:
    class Clock:
        now = 1000.0

        @classmethod
        def monotonic(cls) -> float:
            return cls.now

    monkeypatch.setattr(supervisor_module, "time", Clock)
    events: Events = asyncio.Queue()
    sup = await node.spawn(Sup, None, spec(events, "a", intensity=1, period=10))
    await started(events, "a")
    for _ in range(3):
        node.send("a", "crash")
        assert (await receive(events))[:2] == ("stop", "a")
        await started(events, "a")
        Clock.now += 11  # the next restart falls outside this one's window
    assert await node.call(sup, ("children",)) != []


async def test_supervisor_shuts_down_when_no_child_is_left(node: ergopy.Node) -> None:
    events: Events = asyncio.Queue()
    sup = await node.spawn(Sup, None, spec(events, "a", "b"))
    await started(events, "a", "b")
    await watch(node, events, sup)
    node.send("a", "normal")
    node.send("b", "normal")
    assert {(await receive(events))[1] for _ in range(2)} == {"a", "b"}
    assert await receive(events) == ("down", sup, gen.TERMINATE_REASON_NORMAL)


async def test_disable_auto_shutdown_keeps_a_childless_supervisor(node: ergopy.Node) -> None:
    events: Events = asyncio.Queue()
    sup = await node.spawn(Sup, None, spec(events, "a", disable_auto_shutdown=True))
    await started(events, "a")
    node.send("a", "normal")
    assert (await receive(events))[:2] == ("stop", "a")
    assert await node.call(sup, ("children",)) == []


async def test_significant_child_ending_normally_stops_the_supervisor(node: ergopy.Node) -> None:
    events: Events = asyncio.Queue()
    s = spec(events, "a")
    s.children.append(act.SupervisorChildSpec(name="key", factory=Worker, args=[events], significant=True))
    sup = await node.spawn(Sup, None, s)
    await started(events, "a", "key")
    await watch(node, events, sup)
    node.send("key", "normal")
    assert (await receive(events))[:2] == ("stop", "key")
    assert await receive(events) == ("stop", "a", gen.TERMINATE_REASON_NORMAL)  # Go: the child's reason
    assert await receive(events) == ("down", sup, gen.TERMINATE_REASON_NORMAL)


async def test_significant_transient_child_crashing_is_restarted(node: ergopy.Node) -> None:
    events: Events = asyncio.Queue()
    s = act.SupervisorSpec(children=children(events, "key", significant=True))
    await node.spawn(Sup, None, s)
    await started(events, "key")
    node.send("key", "crash")
    assert (await receive(events))[:2] == ("stop", "key")
    await started(events, "key")


async def test_exit_from_a_linked_non_child_stops_children_then_the_supervisor(node: ergopy.Node) -> None:
    events: Events = asyncio.Queue()
    sup = await node.spawn(Sup, None, spec(events, "a", "b"))
    await started(events, "a", "b")
    await watch(node, events, sup)
    stranger = await node.spawn(Worker, None, events, "stranger")
    await started(events, "stranger")
    assert await node.call(sup, ("link", stranger)) == "linked"
    node.send(stranger, "crash")
    kind, tag, reason = await receive(events)
    assert (kind, tag) == ("stop", "stranger")
    assert await receive(events) == ("stop", "b", reason)  # Go: the exit's reason
    assert await receive(events) == ("stop", "a", reason)
    assert await receive(events) == ("down", sup, reason)


async def test_nested_supervisor_is_restarted_when_it_exceeds_its_intensity(node: ergopy.Node) -> None:
    events: Events = asyncio.Queue()
    inner = act.SupervisorSpec(children=children(events, "leaf"), restart=act.SupervisorRestart(intensity=1, period=60))
    outer = act.SupervisorSpec(children=[act.SupervisorChildSpec(name="inner", factory=Sup, args=[inner])])
    top = await node.spawn(Sup, None, outer)
    await started(events, "leaf")
    first_inner = node.lookup_name("inner")
    assert first_inner is not None
    node.send("leaf", "crash")
    assert (await receive(events))[:2] == ("stop", "leaf")
    await started(events, "leaf")
    node.send("leaf", "crash")  # exceeds the inner limit: the inner supervisor exits, the outer restarts it
    assert (await receive(events))[:2] == ("stop", "leaf")
    await started(events, "leaf")
    ((name, pid),) = await node.call(top, ("children",))
    assert name == "inner" and pid != first_inner.pid


# ---- the child API --------------------------------------------------------------------------------


async def test_simple_one_for_one_starts_nothing_until_start_child(node: ergopy.Node) -> None:
    events: Events = asyncio.Queue()
    sup = await node.spawn(Sup, None, spec(events, "w", type=act.SupervisorType.SIMPLE_ONE_FOR_ONE))
    assert await node.call(sup, ("children",)) == []
    assert events.empty()
    p1 = await node.call(sup, ("start_child", "w", events, "one"))
    p2 = await node.call(sup, ("start_child", "w", events, "two"))
    assert await started(events, "one", "two") == {"one": p1, "two": p2}
    assert node.process_info(p1)["name"] is None  # instances are unnamed
    assert await node.call(sup, ("children",)) == [("w", p1), ("w", p2)]


async def test_simple_one_for_one_restarts_an_instance_with_its_own_args(node: ergopy.Node) -> None:
    events: Events = asyncio.Queue()
    sup = await node.spawn(Sup, None, spec(events, "w", type=act.SupervisorType.SIMPLE_ONE_FOR_ONE))
    p1 = await node.call(sup, ("start_child", "w", events, "one"))
    p2 = await node.call(sup, ("start_child", "w", events, "two"))
    await started(events, "one", "two")
    node.send(p2, "crash")
    assert (await receive(events))[:2] == ("stop", "two")
    new = await started(events, "two")
    assert await node.call(sup, ("children",)) == [("w", p1), ("w", new["two"])]


async def test_simple_one_for_one_does_not_shut_down_when_empty(node: ergopy.Node) -> None:
    events: Events = asyncio.Queue()
    sup = await node.spawn(Sup, None, spec(events, "w", type=act.SupervisorType.SIMPLE_ONE_FOR_ONE))
    p1 = await node.call(sup, ("start_child", "w", events, "one"))
    await started(events, "one")
    node.send(p1, "normal")
    assert (await receive(events))[:2] == ("stop", "one")
    assert await node.call(sup, ("children",)) == []


async def test_start_child_of_unknown_name_is_a_supervisor_error(node: ergopy.Node) -> None:
    events: Events = asyncio.Queue()
    sup = await node.spawn(Sup, None, spec(events, "w", type=act.SupervisorType.SIMPLE_ONE_FOR_ONE))
    assert isinstance(await node.call(sup, ("start_child", "nope")), gen.SupervisorError)


async def test_start_child_restarts_a_child_that_ended_normally(node: ergopy.Node) -> None:
    events: Events = asyncio.Queue()
    sup = await node.spawn(Sup, None, spec(events, "a", "b"))
    await started(events, "a", "b")
    assert isinstance(await node.call(sup, ("start_child", "a")), gen.SupervisorError)  # running
    node.send("a", "normal")
    assert (await receive(events))[:2] == ("stop", "a")
    pid = await node.call(sup, ("start_child", "a", events, "a-again"))
    assert await started(events, "a-again") == {"a-again": pid}
    assert node.process_info(pid)["name"] == "a"


async def test_disable_child_stops_it_and_enable_child_starts_it_again(node: ergopy.Node) -> None:
    events: Events = asyncio.Queue()
    sup = await node.spawn(Sup, None, spec(events, "a", "b"))
    pids = await started(events, "a", "b")
    assert await node.call(sup, ("disable_child", "a")) == "disabled"
    assert await receive(events) == ("stop", "a", gen.TERMINATE_REASON_SHUTDOWN)
    assert await node.call(sup, ("children",)) == [("b", pids["b"])]
    assert isinstance(await node.call(sup, ("start_child", "a")), gen.SupervisorError)  # disabled
    _, pid = await node.call(sup, ("enable_child", "a"))
    assert await started(events, "a") == {"a": pid}
    assert await node.call(sup, ("children",)) == [("a", pid), ("b", pids["b"])]


async def test_disabling_the_last_child_shuts_the_supervisor_down(node: ergopy.Node) -> None:
    events: Events = asyncio.Queue()
    sup = await node.spawn(Sup, None, spec(events, "a"))
    await started(events, "a")
    await watch(node, events, sup)
    await node.call(sup, ("disable_child", "a"))
    assert (await receive(events))[:2] == ("stop", "a")
    assert await receive(events) == ("down", sup, gen.TERMINATE_REASON_SHUTDOWN)


async def test_add_child_starts_it_and_rejects_duplicates(node: ergopy.Node) -> None:
    events: Events = asyncio.Queue()
    sup = await node.spawn(Sup, None, spec(events, "a"))
    pids = await started(events, "a")
    _, pid = await node.call(sup, ("add_child", children(events, "b")[0]))
    assert await started(events, "b") == {"b": pid}
    assert await node.call(sup, ("children",)) == [("a", pids["a"]), ("b", pid)]
    assert isinstance(await node.call(sup, ("add_child", children(events, "b")[0])), gen.SupervisorError)


async def test_add_child_to_simple_one_for_one_only_adds_the_spec(node: ergopy.Node) -> None:
    events: Events = asyncio.Queue()
    sup = await node.spawn(Sup, None, act.SupervisorSpec(type=act.SupervisorType.SIMPLE_ONE_FOR_ONE))
    assert await node.call(sup, ("add_child", children(events, "w")[0])) == ("added", None)
    pid = await node.call(sup, ("start_child", "w"))
    assert (await receive(events))[2] == pid


async def test_handle_child_start_and_terminate_are_called_when_enabled(node: ergopy.Node) -> None:
    events: Events = asyncio.Queue()
    sup_events: Events = asyncio.Queue()
    await node.spawn(Sup, None, spec(events, "a", enable_handle_child=True), sup_events)
    pid = (await started(events, "a"))["a"]
    assert await receive(sup_events) == ("child start", "a", pid)
    node.send("a", "crash")
    kind, name, old, reason = await receive(sup_events)
    assert (kind, name, old) == ("child terminate", "a", pid) and isinstance(reason, RuntimeError)
    assert (await receive(events))[:2] == ("stop", "a")
    new = (await started(events, "a"))["a"]
    assert await receive(sup_events) == ("child start", "a", new)


async def test_user_handle_message_gets_messages_but_not_child_exits(node: ergopy.Node) -> None:
    events: Events = asyncio.Queue()
    sup_events: Events = asyncio.Queue()
    sup = await node.spawn(Sup, None, spec(events, "a"), sup_events)
    await started(events, "a")
    node.send("a", "crash")
    assert (await receive(events))[:2] == ("stop", "a")
    await started(events, "a")
    node.send(sup, "hello")
    assert await receive(sup_events) == ("sup message", "hello")
    assert sup_events.empty()


async def test_supervisor_exit_reaches_a_linked_parent(node: ergopy.Node) -> None:
    events: Events = asyncio.Queue()

    class Parent(act.Actor):
        def init(self) -> None:
            self.set_trap_exit(True)

        async def handle_call(self, from_: gen.PID, ref: gen.Ref, request: Any) -> Any:
            return await self.spawn(Sup, gen.ProcessOptions(link_child=True), request)

        def handle_message(self, from_: gen.PID, message: Any) -> None:
            events.put_nowait(("parent got", message))

    parent = await node.spawn(Parent)
    sup = await node.call(parent, spec(events, "a", intensity=0, period=60, strategy=act.SupervisorStrategy.PERMANENT))
    await started(events, "a")
    for _ in range(5):
        node.send("a", "normal")
        assert (await receive(events))[:2] == ("stop", "a")
        await started(events, "a")
    node.send("a", "normal")  # the sixth restart within the period: too many
    assert (await receive(events))[:2] == ("stop", "a")
    kind, message = await receive(events)
    assert kind == "parent got" and isinstance(message, gen.MessageExitPID) and message.pid == sup
    assert isinstance(message.reason, gen.SupervisorError)


async def test_a_killed_child_is_restarted(node: ergopy.Node) -> None:
    events: Events = asyncio.Queue()
    await node.spawn(Sup, None, spec(events, "a"))
    old = await started(events, "a")
    node.kill(old["a"])
    assert await receive(events) == ("stop", "a", gen.TERMINATE_REASON_KILL)
    new = await started(events, "a")
    assert new["a"] != old["a"]


async def test_disable_child_of_simple_one_for_one_stops_every_instance(node: ergopy.Node) -> None:
    events: Events = asyncio.Queue()
    sup = await node.spawn(Sup, None, spec(events, "w", type=act.SupervisorType.SIMPLE_ONE_FOR_ONE))
    await node.call(sup, ("start_child", "w", events, "one"))
    await node.call(sup, ("start_child", "w", events, "two"))
    await started(events, "one", "two")
    await node.call(sup, ("disable_child", "w"))
    assert {await receive(events) for _ in range(2)} == {
        ("stop", "one", gen.TERMINATE_REASON_SHUTDOWN),
        ("stop", "two", gen.TERMINATE_REASON_SHUTDOWN),
    }
    assert isinstance(await node.call(sup, ("start_child", "w")), gen.SupervisorError)
    assert await node.call(sup, ("enable_child", "w")) == ("enabled", None)
    pid = await node.call(sup, ("start_child", "w", events, "three"))
    assert await started(events, "three") == {"three": pid}


# ---- an exit from the parent: the supervisor stops its tree itself (issue 9 §4) ------------------


class SlowWorker(Worker):
    """A child whose ``async def terminate`` takes a while: it reports its end only after."""

    async def terminate(self, reason: BaseException) -> None:  # type: ignore[override]
        await asyncio.sleep(0.05)  # work a real terminate would do (flush, close)
        self.events.put_nowait(("stop", self.tag, gen.unwrap_reason(reason)))


def ordered_spec(events: Events, factory: type[act.Actor] = Worker) -> act.SupervisorSpec:
    return act.SupervisorSpec(
        children=[act.SupervisorChildSpec(name=n, factory=factory, args=[events]) for n in ("a", "b", "c")],
        restart=act.SupervisorRestart(keep_order=True),
    )


async def test_an_exit_from_the_parent_stops_the_children_first_in_reverse_order(node: ergopy.Node) -> None:
    """Go: the supervisor reads its parent's exit from its own urgent queue like any other,
    sends its children the exit (one at a time, last started first, with KeepOrder), waits
    for each, and only then terminates with the parent's reason."""
    events: Events = asyncio.Queue()
    sup = await node.spawn(Sup, None, ordered_spec(events))
    await started(events, "a", "b", "c")
    await watch(node, events, sup)
    node.send_exit(sup, gen.TERMINATE_REASON_SHUTDOWN)  # from the node: the supervisor's parent
    assert await receive(events) == ("stop", "c", gen.TERMINATE_REASON_SHUTDOWN)
    assert await receive(events) == ("stop", "b", gen.TERMINATE_REASON_SHUTDOWN)
    assert await receive(events) == ("stop", "a", gen.TERMINATE_REASON_SHUTDOWN)
    assert await receive(events) == ("down", sup, gen.TERMINATE_REASON_SHUTDOWN)


async def test_node_stop_stops_a_supervision_tree_top_down_in_the_supervisors_order() -> None:
    """Go's node.Stop sends each process an exit from its parent; a supervisor then stops its
    own children in its order. Here: the nested supervisor's children go first (reverse
    start order), then the nested supervisor itself, then the top one's first child; and
    node.stop() returns only once every async terminate has finished."""
    n = await ergopy.start_node("treestop@localhost", gen.NodeOptions(stop_timeout=5.0))
    events: Events = asyncio.Queue()
    inner = ordered_spec(events, SlowWorker)
    outer = act.SupervisorSpec(
        children=[
            act.SupervisorChildSpec(name="first", factory=SlowWorker, args=[events]),
            act.SupervisorChildSpec(name="inner", factory=Sup, args=[inner]),
        ],
        restart=act.SupervisorRestart(keep_order=True),
    )
    await n.spawn(Sup, None, outer)
    await started(events, "first", "a", "b", "c")
    await n.stop()
    stops = []
    while not events.empty():
        stops.append(events.get_nowait()[1])
    assert stops == ["c", "b", "a", "first"]


async def test_application_stop_returns_after_the_whole_tree_has_finished(node: ergopy.Node) -> None:
    """Go's ApplicationStop waits for the members; a member supervisor ends only after its
    children, and here the children's async terminates are awaited too."""
    events: Events = asyncio.Queue()

    class App(gen.ApplicationBehavior):
        def load(self, n: Any, *args: Any) -> gen.ApplicationSpec:
            return gen.ApplicationSpec(
                name="tree",
                group=[gen.ApplicationMemberSpec(factory=Sup, name="top", args=[ordered_spec(events, SlowWorker)])],
            )

    node.application_load(App())
    await node.application_start("tree")
    await started(events, "a", "b", "c")
    await node.application_stop("tree")
    stops = []
    while not events.empty():
        stops.append(events.get_nowait()[:2])
    assert stops == [("stop", "c"), ("stop", "b"), ("stop", "a")]
    assert node.processes() == []


# ---- spec validation (issue 9 §2) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "error", "field"),
    [
        (lambda: act.SupervisorChildSpec(name="", factory=Worker), ValueError, "name"),
        (lambda: act.SupervisorChildSpec(name=1, factory=Worker), TypeError, "name"),  # type: ignore[arg-type]
        (lambda: act.SupervisorChildSpec(name="a", factory="Worker"), TypeError, "factory"),  # type: ignore[arg-type]
        (lambda: act.SupervisorChildSpec(name="a", factory=Worker, args="xy"), TypeError, "args"),  # type: ignore[arg-type]
        (lambda: act.SupervisorChildSpec(name="a", factory=Worker, options={}), TypeError, "options"),  # type: ignore[arg-type]
        (lambda: act.SupervisorChildSpec(name="a", factory=Worker, significant="yes"), TypeError, "significant"),  # type: ignore[arg-type]
        (lambda: act.SupervisorRestart(strategy=7), ValueError, "strategy"),  # type: ignore[arg-type]
        (lambda: act.SupervisorRestart(strategy="permanent"), TypeError, "strategy"),  # type: ignore[arg-type]
        (lambda: act.SupervisorRestart(intensity=-1), ValueError, "intensity"),
        (lambda: act.SupervisorRestart(intensity=70_000), ValueError, "intensity"),
        (lambda: act.SupervisorRestart(intensity="5"), TypeError, "intensity"),  # type: ignore[arg-type]
        (lambda: act.SupervisorRestart(period=-5), ValueError, "period"),
        (lambda: act.SupervisorRestart(period="5"), TypeError, "period"),  # type: ignore[arg-type]
        (lambda: act.SupervisorRestart(keep_order=1), TypeError, "keep_order"),  # type: ignore[arg-type]
        (lambda: act.SupervisorSpec(children="a"), TypeError, "children"),  # type: ignore[arg-type]
        (lambda: act.SupervisorSpec(children=[{"name": "a"}]), TypeError, "children"),  # type: ignore[list-item]
        (lambda: act.SupervisorSpec(type=9), ValueError, "type"),  # type: ignore[arg-type]
        (lambda: act.SupervisorSpec(restart=5), TypeError, "restart"),  # type: ignore[arg-type]
        (lambda: act.SupervisorSpec(enable_handle_child="no"), TypeError, "enable_handle_child"),  # type: ignore[arg-type]
        (lambda: act.SupervisorSpec(disable_auto_shutdown=None), TypeError, "disable_auto_shutdown"),  # type: ignore[arg-type]
    ],
)
def test_a_bad_spec_field_fails_at_construction_naming_it(build: Any, error: type[Exception], field: str) -> None:
    with pytest.raises(error, match=rf"\.{field}\b"):
        build()


def test_good_specs_are_accepted_and_normalised() -> None:
    r = act.SupervisorRestart(strategy=2, intensity=0, period=0.5, keep_order=True)  # type: ignore[arg-type]
    assert r.strategy is act.SupervisorStrategy.PERMANENT
    c = act.SupervisorChildSpec(name="a", factory=Worker, args=(1, 2))  # type: ignore[arg-type]
    assert c.args == [1, 2]
    s = act.SupervisorSpec(children=(c,), type=1, restart=r)  # type: ignore[arg-type]
    assert s.type is act.SupervisorType.ALL_FOR_ONE and s.children == [c]

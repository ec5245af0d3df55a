"""Applications: load, start in order, the three modes, stop, unload, dependencies, node stop."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from conftest import receive

import ergopy
from ergopy import act, gen

Events = asyncio.Queue[Any]


class Member(act.Actor):
    """Reports its start (with the env it sees), its end, and obeys "crash"/"normal"."""

    def init(self, events: Events) -> None:
        self.events = events
        events.put_nowait(("start", self.name, self.env("color")))

    def handle_message(self, from_: gen.PID, message: Any) -> Any:
        if message == "crash":
            return RuntimeError("member crashed")
        if message == "normal":
            return gen.TERMINATE_REASON_NORMAL
        return None

    def terminate(self, reason: BaseException) -> None:
        self.events.put_nowait(("stop", self.name, gen.unwrap_reason(reason)))


class SlowMember(Member):
    """Its termination takes until the test sets ``release``."""

    def init(self, events: Events, release: asyncio.Event | None = None) -> None:
        super().init(events)
        self.release = release

    async def terminate(self, reason: BaseException) -> None:
        super().terminate(reason)
        if self.release is not None:
            await self.release.wait()


class FailingMember(act.Actor):
    def init(self, *args: Any) -> None:
        raise ValueError("member refused")


class App(gen.ApplicationBehavior):
    def __init__(
        self,
        events: Events,
        name: str = "app",
        members: tuple[str, ...] = ("a", "b"),
        mode: gen.ApplicationMode = gen.ApplicationMode.TEMPORARY,
        depends: tuple[str, ...] = (),
        extra: list[gen.ApplicationMemberSpec] | None = None,
    ) -> None:
        self.events = events
        self.name = name
        self.members = members
        self.mode = mode
        self.depends = depends
        self.extra = extra or []

    def load(self, node: gen.Node, *args: Any) -> gen.ApplicationSpec:
        self.events.put_nowait(("load", self.name, args))
        group = [gen.ApplicationMemberSpec(factory=Member, name=n, args=[self.events]) for n in self.members]
        return gen.ApplicationSpec(
            name=self.name,
            description="a test application",
            version="1.0",
            depends=list(self.depends),
            env={"color": "blue"},
            group=group + self.extra,
            mode=self.mode,
        )

    def start(self, mode: gen.ApplicationMode) -> None:
        self.events.put_nowait(("app start", self.name, mode))

    def terminate(self, reason: BaseException) -> None:
        self.events.put_nowait(("app terminate", self.name, reason))


async def collect(events: Events, n: int) -> list[Any]:
    """The next ``n`` events. An application's ``terminate`` runs as its last member
    unregisters, before that member's own ``terminate`` (as in Ergo), so tests
    compare these without their order."""
    return [await receive(events) for _ in range(n)]


async def load_and_start(node: ergopy.Node, app: App, mode: gen.ApplicationMode | None = None) -> None:
    node.application_load(app)
    assert (await receive(app.events))[0] == "load"
    await node.application_start(app.name, mode)
    for m in app.members:
        assert await receive(app.events) == ("start", m, "blue")
    assert (await receive(app.events))[:2] == ("app start", app.name)


# ---- load, start, info ----------------------------------------------------------------------------


async def test_load_calls_load_with_the_node_and_args_and_returns_the_name(node: ergopy.Node) -> None:
    events: Events = asyncio.Queue()
    assert node.application_load(App(events), 1, 2) == "app"
    assert await receive(events) == ("load", "app", (1, 2))
    assert node.applications() == ["app"]
    assert node.applications_running() == []
    assert node.application_info("app").state is gen.ApplicationState.LOADED


async def test_start_spawns_members_in_order_with_the_node_as_parent_and_the_app_env(node: ergopy.Node) -> None:
    events: Events = asyncio.Queue()
    await load_and_start(node, App(events, members=("a", "b", "c")))
    info = node.application_info("app")
    assert info.state is gen.ApplicationState.RUNNING
    assert [node.process_info(p)["name"] for p in info.group] == ["a", "b", "c"]
    assert all(node.process_info(p)["parent"] == node.pid for p in info.group)
    assert node.applications_running() == ["app"]


async def test_start_calls_start_with_the_spec_mode_or_the_given_one(node: ergopy.Node) -> None:
    events: Events = asyncio.Queue()
    node.application_load(App(events, mode=gen.ApplicationMode.TRANSIENT))
    await receive(events)
    await node.application_start("app", gen.ApplicationMode.PERMANENT)
    await receive(events), await receive(events)
    assert await receive(events) == ("app start", "app", gen.ApplicationMode.PERMANENT)
    assert node.application_info("app").mode is gen.ApplicationMode.PERMANENT


async def test_application_info_reports_the_spec(node: ergopy.Node) -> None:
    events: Events = asyncio.Queue()
    await load_and_start(node, App(events))
    info = node.application_info("app")
    assert (info.name, info.description, info.version) == ("app", "a test application", "1.0")
    assert info.env == {"color": "blue"} and len(info.group) == 2 and info.uptime >= 0


async def test_loading_a_loaded_name_again_raises_taken(node: ergopy.Node) -> None:
    events: Events = asyncio.Queue()
    node.application_load(App(events))
    with pytest.raises(gen.TakenError):
        node.application_load(App(events))


async def test_loading_an_empty_group_raises(node: ergopy.Node) -> None:
    with pytest.raises(gen.ApplicationError, match="empty"):
        node.application_load(App(asyncio.Queue(), members=()))


async def test_starting_an_unknown_or_running_application_raises(node: ergopy.Node) -> None:
    events: Events = asyncio.Queue()
    with pytest.raises(gen.ApplicationError, match="unknown"):
        await node.application_start("nope")
    await load_and_start(node, App(events))
    with pytest.raises(gen.ApplicationError, match="running"):
        await node.application_start("app")


async def test_a_member_failing_to_start_stops_the_started_ones_and_start_raises(node: ergopy.Node) -> None:
    events: Events = asyncio.Queue()
    bad = gen.ApplicationMemberSpec(factory=FailingMember, name="bad")
    node.application_load(App(events, members=("a",), extra=[bad]))
    await receive(events)
    with pytest.raises(ValueError, match="refused"):
        await node.application_start("app")
    assert await receive(events) == ("start", "a", "blue")
    got = await collect(events, 2)
    assert ("stop", "a", gen.TERMINATE_REASON_SHUTDOWN) in got
    (reason,) = [e[2] for e in got if e[0] == "app terminate"]
    assert isinstance(reason, ValueError)
    assert node.application_info("app").state is gen.ApplicationState.LOADED
    assert node.lookup_name("a") is None


async def test_dependencies_are_started_first(node: ergopy.Node) -> None:
    events: Events = asyncio.Queue()
    node.application_load(App(events, name="base", members=("db",)))
    node.application_load(App(events, name="web", members=("http",), depends=("base",)))
    await receive(events), await receive(events)
    await node.application_start("web")
    assert await receive(events) == ("start", "db", "blue")
    assert await receive(events) == ("app start", "base", gen.ApplicationMode.TEMPORARY)
    assert await receive(events) == ("start", "http", "blue")
    assert sorted(node.applications_running()) == ["base", "web"]


async def test_a_missing_dependency_makes_start_raise(node: ergopy.Node) -> None:
    events: Events = asyncio.Queue()
    node.application_load(App(events, name="web", depends=("base",)))
    with pytest.raises(gen.ApplicationError, match="depends"):
        await node.application_start("web")


# ---- modes ------------------------------------------------------------------------------------------


async def test_temporary_member_crash_leaves_the_others_running(node: ergopy.Node) -> None:
    events: Events = asyncio.Queue()
    await load_and_start(node, App(events, mode=gen.ApplicationMode.TEMPORARY))
    node.send("a", "crash")
    assert (await receive(events))[:2] == ("stop", "a")
    info = node.application_info("app")
    assert info.state is gen.ApplicationState.RUNNING and len(info.group) == 1


async def test_temporary_application_ends_when_its_last_member_ends(node: ergopy.Node) -> None:
    events: Events = asyncio.Queue()
    await load_and_start(node, App(events, mode=gen.ApplicationMode.TEMPORARY))
    node.send("a", "normal")
    node.send("b", "crash")
    got = await collect(events, 3)
    assert {e[:2] for e in got} == {("stop", "a"), ("stop", "b"), ("app terminate", "app")}
    assert ("app terminate", "app", gen.TERMINATE_REASON_NORMAL) in got
    assert node.application_info("app").state is gen.ApplicationState.LOADED


async def test_transient_abnormal_member_exit_stops_every_member_with_shutdown(node: ergopy.Node) -> None:
    events: Events = asyncio.Queue()
    await load_and_start(node, App(events, members=("a", "b", "c"), mode=gen.ApplicationMode.TRANSIENT))
    node.send("b", "crash")
    kind, name, reason = await receive(events)
    assert (kind, name) == ("stop", "b") and isinstance(reason, RuntimeError)
    assert set(await collect(events, 3)) == {
        ("stop", "a", gen.TERMINATE_REASON_SHUTDOWN),
        ("stop", "c", gen.TERMINATE_REASON_SHUTDOWN),
        ("app terminate", "app", reason),
    }


async def test_transient_normal_member_exit_leaves_the_others_running(node: ergopy.Node) -> None:
    events: Events = asyncio.Queue()
    await load_and_start(node, App(events, mode=gen.ApplicationMode.TRANSIENT))
    node.send("a", "normal")
    assert await receive(events) == ("stop", "a", gen.TERMINATE_REASON_NORMAL)
    assert node.application_info("app").state is gen.ApplicationState.RUNNING
    assert node.lookup_name("b") is not None


async def test_permanent_any_member_exit_stops_every_member(node: ergopy.Node) -> None:
    events: Events = asyncio.Queue()
    await load_and_start(node, App(events, mode=gen.ApplicationMode.PERMANENT))
    node.send("a", "normal")
    assert await receive(events) == ("stop", "a", gen.TERMINATE_REASON_NORMAL)
    assert set(await collect(events, 2)) == {
        ("stop", "b", gen.TERMINATE_REASON_SHUTDOWN),
        ("app terminate", "app", gen.TERMINATE_REASON_NORMAL),
    }
    assert node.application_info("app").state is gen.ApplicationState.LOADED


# ---- stop, unload, node stop ---------------------------------------------------------------------


async def test_stop_ends_every_member_then_calls_terminate_with_shutdown(node: ergopy.Node) -> None:
    events: Events = asyncio.Queue()
    await load_and_start(node, App(events, mode=gen.ApplicationMode.PERMANENT))
    await node.application_stop("app")
    got = {events.get_nowait() for _ in range(3)}  # all of it happened before stop returned
    assert got == {
        ("stop", "a", gen.TERMINATE_REASON_SHUTDOWN),
        ("stop", "b", gen.TERMINATE_REASON_SHUTDOWN),
        ("app terminate", "app", gen.TERMINATE_REASON_SHUTDOWN),
    }
    assert node.application_info("app").state is gen.ApplicationState.LOADED
    await node.application_start("app")  # a stopped application can start again
    assert await receive(events) == ("start", "a", "blue")


async def test_stop_raises_timeout_when_a_member_does_not_end_in_time(node: ergopy.Node) -> None:
    events: Events = asyncio.Queue()
    release = asyncio.Event()
    slow = gen.ApplicationMemberSpec(factory=SlowMember, name="slow", args=[events, release])
    node.application_load(App(events, members=(), extra=[slow]))
    await receive(events)
    await node.application_start("app")
    assert await receive(events) == ("start", "slow", "blue")
    with pytest.raises(gen.TimeoutError):
        await node.application_stop("app", timeout=0.05)
    release.set()
    await node.application_stop("app")


async def test_unload_refuses_a_running_application_and_forgets_a_stopped_one(node: ergopy.Node) -> None:
    events: Events = asyncio.Queue()
    await load_and_start(node, App(events))
    with pytest.raises(gen.ApplicationError):
        node.application_unload("app")
    await node.application_stop("app")
    node.application_unload("app")
    assert node.applications() == []
    with pytest.raises(gen.ApplicationError):
        node.application_info("app")


async def test_node_stop_stops_running_applications(node: ergopy.Node) -> None:
    events: Events = asyncio.Queue()
    await load_and_start(node, App(events, mode=gen.ApplicationMode.PERMANENT))
    await node.stop()
    got = {events.get_nowait()[:3] for _ in range(3)}
    assert {e[:2] for e in got} == {("stop", "a"), ("stop", "b"), ("app terminate", "app")}
    assert ("app terminate", "app", gen.TERMINATE_REASON_SHUTDOWN) in got
    assert node.application_info("app").state is gen.ApplicationState.LOADED
    assert node.applications_running() == []


async def test_processes_below_a_member_do_not_count_as_members(node: ergopy.Node) -> None:
    events: Events = asyncio.Queue()

    class Sup(act.Supervisor):
        def init(self) -> act.SupervisorSpec:
            return act.SupervisorSpec(children=[act.SupervisorChildSpec(name="leaf", factory=Member, args=[events])])

    class SupApp(gen.ApplicationBehavior):
        def load(self, node: gen.Node, *args: Any) -> gen.ApplicationSpec:
            group = [gen.ApplicationMemberSpec(factory=Sup, name="sup")]
            return gen.ApplicationSpec(name="tree", group=group, mode=gen.ApplicationMode.PERMANENT)

    node.application_load(SupApp())
    await node.application_start("tree")
    assert (await receive(events))[:2] == ("start", "leaf")
    node.send("leaf", "crash")  # the supervisor restarts it; the application does not notice
    assert (await receive(events))[:2] == ("stop", "leaf")
    assert (await receive(events))[:2] == ("start", "leaf")
    info = node.application_info("tree")
    assert info.state is gen.ApplicationState.RUNNING and info.group == [node.lookup_name("sup").pid]

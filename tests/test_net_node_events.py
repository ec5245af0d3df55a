"""Events and remote spawn across nodes: a remote subscription gets the buffered
history, a publish sends one frame per subscribing node; a remote spawn works only
for a name enabled with enable_spawn, and a refusal is answered (Go never answers)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from conftest import Runner, receive, run_in
from test_net_node import B, Echo

import ergopy
from ergopy import act, gen

EV = gen.Event("news", B)


class Producer(act.Actor):
    """Registers the event "news" (buffer 2, notify) and publishes what it is sent."""

    def init(self, q: asyncio.Queue[Any]) -> None:
        self.q = q
        self.token = self.register_event("news", gen.EventOptions(buffer=2, notify=True))

    def handle_message(self, from_: gen.PID, message: Any) -> Any:
        if isinstance(message, BaseException):
            return message
        if isinstance(message, gen.MessageEventStart | gen.MessageEventStop):
            self.q.put_nowait(message)
            return None
        self.send_event("news", self.token, message)
        return None


async def subscriber(a: ergopy.Node, relation: str = "monitor") -> tuple[gen.PID, asyncio.Queue[Any]]:
    q: asyncio.Queue[Any] = asyncio.Queue()
    pid = await a.spawn(Runner, None, q, True)
    got = await run_in(a, q, pid, lambda p: (p.link_event if relation == "link" else p.monitor_event)(EV))
    assert got == []  # remote: the history comes as events once B answers
    return pid, q


async def test_remote_subscribers_get_the_history_then_each_publish(net_pair: tuple[ergopy.Node, ergopy.Node]) -> None:
    a, b = net_pair
    pq: asyncio.Queue[Any] = asyncio.Queue()
    producer = await b.spawn_register("producer", Producer, None, pq)
    for n in (1, 2, 3):
        b.send(producer, f"e{n}")
    _s1, q1 = await subscriber(a, "monitor")
    assert await receive(pq) == gen.MessageEventStart(gen.Atom("news"))
    _s2, q2 = await subscriber(a, "link")
    for q in (q1, q2):
        history = [await receive(q), await receive(q)]
        assert [(k, m.event, m.message) for k, m in history] == [("event", EV, "e2"), ("event", EV, "e3")]
    frames = b.network.node(a.name).stats()["frames_out"]
    b.send(producer, "e4")
    for q in (q1, q2):
        kind, m = await receive(q)
        assert (kind, m.event, m.message) == ("event", EV, "e4")
    assert b.network.node(a.name).stats()["frames_out"] == frames + 1  # one frame for both subscribers
    b.send(producer, RuntimeError("producer gone"))
    down = await receive(q1)
    assert type(down) is gen.MessageDownEvent and down.event == EV and str(down.reason) == "producer gone"
    exit_ = await receive(q2)
    assert type(exit_) is gen.MessageExitEvent and exit_.event == EV


async def test_the_producer_hears_stop_when_the_last_remote_subscriber_leaves(
    net_pair: tuple[ergopy.Node, ergopy.Node],
) -> None:
    a, b = net_pair
    pq: asyncio.Queue[Any] = asyncio.Queue()
    await b.spawn_register("producer", Producer, None, pq)
    s1, q1 = await subscriber(a)
    assert await receive(pq) == gen.MessageEventStart(gen.Atom("news"))
    await run_in(a, q1, s1, lambda p: p.demonitor_event(EV))
    assert await receive(pq) == gen.MessageEventStop(gen.Atom("news"))
    assert b.stats()["remote_watched"] == 0


async def test_subscribing_to_an_unknown_remote_event_is_a_down(net_pair: tuple[ergopy.Node, ergopy.Node]) -> None:
    a, _ = net_pair
    _s, q = await subscriber(a)
    down = await receive(q)
    assert type(down) is gen.MessageDownEvent and isinstance(down.reason, gen.EventUnknownError)


# ---- remote spawn ------------------------------------------------------------------------------


class Worker(act.Actor):
    def init(self, *args: Any) -> None:
        self.args = list(args)

    def handle_call(self, from_: gen.PID, ref: gen.Ref, request: Any) -> Any:
        return {"args": self.args, "request": request}


async def test_remote_spawn_of_an_enabled_name(net_pair: tuple[ergopy.Node, ergopy.Node]) -> None:
    a, b = net_pair
    b.network.enable_spawn("worker", Worker)
    remote = await a.network.get_node(B)
    pid = await remote.spawn("worker", gen.ProcessOptions(), "x", 2)
    assert pid.node == B and pid in b.processes()
    assert await a.call(pid, "hi") == {"args": ["x", 2], "request": "hi"}
    named = await remote.spawn_register("w1", "worker", None)
    assert b.lookup_name("w1") is not None and named.node == B
    assert await a.call(gen.ProcessID("w1", B), 1) == {"args": [], "request": 1}


async def test_remote_spawn_refusals_are_answered(net_cluster: Callable[..., Any]) -> None:
    a = await net_cluster("a@localhost")
    b = await net_cluster(B)
    b.network.enable_spawn("only_c", Worker, "c@localhost")
    remote = await a.network.get_node(B)
    async with asyncio.timeout(2):  # answered at once, not after Go's 5 s
        with pytest.raises(gen.NameUnknownError):
            await remote.spawn("nope")
        with pytest.raises(gen.NotAllowedError):
            await remote.spawn("only_c")
    b.network.enable_spawn("only_c", Worker, "a@localhost")
    assert (await remote.spawn("only_c")).node == B
    b.network.disable_spawn("only_c")
    with pytest.raises(gen.NameUnknownError):
        await remote.spawn("only_c")


async def test_remote_spawn_init_failure_is_the_error(net_pair: tuple[ergopy.Node, ergopy.Node]) -> None:
    class Failing(act.Actor):
        def init(self) -> None:
            raise gen.NotAllowedError("init refused")

    a, b = net_pair
    b.network.enable_spawn("failing", Failing)
    with pytest.raises(gen.NotAllowedError):
        await (await a.network.get_node(B)).spawn("failing")
    assert b.processes() == []


async def test_remote_spawn_off_by_flags(net_cluster: Callable[..., Any]) -> None:
    a = await net_cluster("a@localhost")
    b = await net_cluster(B, flags=gen.NetworkFlags(remote_spawn=False))
    b.network.enable_spawn("worker", Worker)
    with pytest.raises(gen.NotAllowedError, match="does not allow remote spawns"):
        await (await a.network.get_node(B)).spawn("worker")


async def test_remote_spawn_carries_env_and_compression(net_pair: tuple[ergopy.Node, ergopy.Node]) -> None:
    class Probe(act.Actor):
        def handle_call(self, from_: gen.PID, ref: gen.Ref, request: Any) -> Any:
            c = self._process.options.compression  # type: ignore[attr-defined]
            return [self.env("COLOR"), c.type if c else None]

    a, b = net_pair
    b.network.enable_spawn("probe", Probe)
    opts = gen.ProcessOptions(env={"color": "blue"}, compression=gen.Compression(enable=True, type="zlib"))
    pid = await (await a.network.get_node(B)).spawn("probe", opts)
    assert await a.call(pid, "?") == ["blue", "zlib"]


async def test_a_publish_sends_one_frame_to_each_subscribing_node(net_cluster: Callable[..., Any]) -> None:
    a = await net_cluster("a@localhost")
    b = await net_cluster(B)
    c = await net_cluster("c@localhost")
    pq: asyncio.Queue[Any] = asyncio.Queue()
    producer = await b.spawn_register("producer", Producer, None, pq)
    subscribers = []
    for node in (a, a, c):
        await node.network.get_node(B)
        subscribers.append(await subscriber(node))
    assert await receive(pq) == gen.MessageEventStart(gen.Atom("news"))
    await b.spawn_register("echo", Echo)
    for node, (pid, _) in zip((a, a, c), subscribers, strict=True):  # every subscription is in
        assert await node.make_call(pid, gen.ProcessID("echo", B), 1, 5) == ["reply", 1]
    to_a, to_c = b.network.node("a@localhost"), b.network.node("c@localhost")
    before = to_a.stats()["frames_out"], to_c.stats()["frames_out"]
    b.send(producer, "hello all")
    for _, q in subscribers:
        kind, m = await receive(q)
        assert (kind, m.message) == ("event", "hello all")
    assert (to_a.stats()["frames_out"], to_c.stats()["frames_out"]) == (before[0] + 1, before[1] + 1)

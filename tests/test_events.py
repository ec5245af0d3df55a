"""Events: a producer registers a name; subscribers link to or monitor it and get handle_event."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from conftest import Runner as Subscriber
from conftest import receive, run_in

import ergopy
from ergopy import act, gen


class Producer(act.Actor):
    """Registers the event ``ev`` with the given options; publishes what it is sent;
    puts system messages (event start/stop) into its queue; runs callables."""

    def init(self, queue: asyncio.Queue[Any], options: gen.EventOptions | None = None) -> None:
        self.queue = queue
        self.token = self.register_event("ev", options)

    def handle_message(self, from_: gen.PID, message: Any) -> Any:
        if callable(message):
            return message(self)
        if isinstance(message, (gen.MessageEventStart, gen.MessageEventStop)):
            self.queue.put_nowait(message)
            return None
        self.send_event("ev", self.token, message)
        return None


async def producer(
    node: ergopy.Node, options: gen.EventOptions | None = None
) -> tuple[gen.PID, asyncio.Queue[Any], gen.Event]:
    q: asyncio.Queue[Any] = asyncio.Queue()
    pid = await node.spawn(Producer, None, q, options)
    return pid, q, gen.Event("ev", node.name)


async def subscriber(node: ergopy.Node, trap: bool = False) -> tuple[gen.PID, asyncio.Queue[Any]]:
    q: asyncio.Queue[Any] = asyncio.Queue()
    return await node.spawn(Subscriber, None, q, trap), q


async def test_register_event_returns_a_token_ref(node: ergopy.Node) -> None:
    sub, sq = await subscriber(node)
    token = await run_in(node, sq, sub, lambda a: a.register_event("mine"))
    assert type(token) is gen.Ref


async def test_registering_a_taken_event_raises_taken(node: ergopy.Node) -> None:
    await producer(node)
    sub, sq = await subscriber(node)
    with pytest.raises(gen.TakenError):
        await run_in(node, sq, sub, lambda a: a.register_event("ev"))


async def test_monitor_event_subscriber_gets_handle_event(node: ergopy.Node) -> None:
    prod, _, event = await producer(node)
    sub, sq = await subscriber(node)
    assert await run_in(node, sq, sub, lambda a: a.monitor_event(event)) == []
    node.send(prod, "news")
    kind, message = await receive(sq)
    assert kind == "event"
    assert type(message) is gen.MessageEvent
    assert message.event == event and message.message == "news"
    assert message.timestamp > 0


async def test_link_event_subscriber_gets_handle_event(node: ergopy.Node) -> None:
    prod, _, event = await producer(node)
    sub, sq = await subscriber(node)
    await run_in(node, sq, sub, lambda a: a.link_event(event))
    node.send(prod, "news")
    kind, message = await receive(sq)
    assert kind == "event" and message.message == "news"


async def test_every_subscriber_gets_every_event_in_order(node: ergopy.Node) -> None:
    prod, _, event = await producer(node)
    subs = [await subscriber(node) for _ in range(3)]
    for pid, q in subs:
        await run_in(node, q, pid, lambda a: a.monitor_event(event))
    for i in range(3):
        node.send(prod, i)
    for _, q in subs:
        assert [(await receive(q))[1].message for _ in range(3)] == [0, 1, 2]


async def test_subscribing_returns_the_buffered_last_events(node: ergopy.Node) -> None:
    prod, _, event = await producer(node, gen.EventOptions(buffer=2))
    for i in range(3):
        node.send(prod, i)
    first, fq = await subscriber(node)  # queued behind the three publishes
    history = await run_in(node, fq, first, lambda a: a.monitor_event(event))
    assert [m.message for m in history] == [1, 2]
    second, sq = await subscriber(node)
    history = await run_in(node, sq, second, lambda a: a.link_event(event))
    assert [m.message for m in history] == [1, 2]


async def test_event_without_buffer_returns_no_history(node: ergopy.Node) -> None:
    prod, _, event = await producer(node)
    node.send(prod, "before")
    sub, sq = await subscriber(node)
    assert await run_in(node, sq, sub, lambda a: a.monitor_event(event)) == []


async def test_notify_tells_producer_of_first_and_last_subscriber(node: ergopy.Node) -> None:
    _prod, pq, event = await producer(node, gen.EventOptions(notify=True))
    one, oq = await subscriber(node)
    two, tq = await subscriber(node)
    await run_in(node, oq, one, lambda a: a.monitor_event(event))
    assert await receive(pq) == gen.MessageEventStart(gen.Atom("ev"))
    await run_in(node, tq, two, lambda a: a.link_event(event))
    await run_in(node, oq, one, lambda a: a.demonitor_event(event))
    await run_in(node, tq, two, lambda a: a.unlink_event(event))
    assert await receive(pq) == gen.MessageEventStop(gen.Atom("ev"))
    assert pq.empty()


async def test_notify_stop_when_the_last_subscriber_terminates(node: ergopy.Node) -> None:
    _prod, pq, event = await producer(node, gen.EventOptions(notify=True))
    sub, sq = await subscriber(node)
    await run_in(node, sq, sub, lambda a: a.monitor_event(event))
    assert await receive(pq) == gen.MessageEventStart(gen.Atom("ev"))
    node.kill(sub)
    assert await receive(pq) == gen.MessageEventStop(gen.Atom("ev"))


async def test_producer_death_delivers_down_event_to_monitors(node: ergopy.Node) -> None:
    prod, _, event = await producer(node)
    sub, sq = await subscriber(node)
    await run_in(node, sq, sub, lambda a: a.monitor_event(event))
    err = RuntimeError("producer failed")
    node.send(prod, lambda a: err)
    assert await receive(sq) == gen.MessageDownEvent(event, err)


async def test_producer_death_delivers_exit_event_to_trapping_links(node: ergopy.Node) -> None:
    prod, _, event = await producer(node)
    sub, sq = await subscriber(node, trap=True)
    await run_in(node, sq, sub, lambda a: a.link_event(event))
    node.send(prod, lambda a: gen.TERMINATE_REASON_NORMAL)
    assert await receive(sq) == gen.MessageExitEvent(event, gen.TERMINATE_REASON_NORMAL)


async def test_producer_death_terminates_non_trapping_links(node: ergopy.Node) -> None:
    prod, _, event = await producer(node)
    sub, sq = await subscriber(node)
    await run_in(node, sq, sub, lambda a: a.link_event(event))
    node.send(prod, lambda a: gen.TERMINATE_REASON_NORMAL)
    kind, reason = await receive(sq)
    assert kind == "terminated" and isinstance(reason, gen.ExitSignal)
    assert str(reason) == f"{event}: normal"


async def test_unregister_event_tells_subscribers_unregistered(node: ergopy.Node) -> None:
    prod, _, event = await producer(node)
    sub, sq = await subscriber(node)
    await run_in(node, sq, sub, lambda a: a.monitor_event(event))
    node.send(prod, lambda a: a.unregister_event("ev"))
    down = await receive(sq)
    assert type(down) is gen.MessageDownEvent and isinstance(down.reason, gen.UnregisteredError)


async def test_event_name_is_free_again_after_the_producer_ends(node: ergopy.Node) -> None:
    prod, _, _ = await producer(node)
    node.kill(prod)
    await producer(node)


async def test_subscribing_to_unknown_event_raises_event_unknown(node: ergopy.Node) -> None:
    sub, sq = await subscriber(node)
    with pytest.raises(gen.EventUnknownError):
        await run_in(node, sq, sub, lambda a: a.monitor_event(gen.Event("nope", node.name)))
    with pytest.raises(gen.EventUnknownError):
        await run_in(node, sq, sub, lambda a: a.link_event(gen.Event("nope", node.name)))


async def test_send_event_with_wrong_token_is_refused(node: ergopy.Node) -> None:
    await producer(node)
    sub, sq = await subscriber(node)
    with pytest.raises(gen.NotAllowedError):
        await run_in(node, sq, sub, lambda a: a.send_event("ev", a.node.make_ref(), "forged"))


async def test_send_event_of_unknown_event_raises_event_unknown(node: ergopy.Node) -> None:
    sub, sq = await subscriber(node)
    with pytest.raises(gen.EventUnknownError):
        await run_in(node, sq, sub, lambda a: a.send_event("nope", a.node.make_ref(), "x"))


async def test_duplicate_event_subscription_raises_target_exist(node: ergopy.Node) -> None:
    _, _, event = await producer(node)
    sub, sq = await subscriber(node)
    await run_in(node, sq, sub, lambda a: a.monitor_event(event))
    with pytest.raises(gen.TargetExistError):
        await run_in(node, sq, sub, lambda a: a.monitor_event(event))


async def test_unsubscribed_process_gets_no_more_events(node: ergopy.Node) -> None:
    prod, _, event = await producer(node)
    sub, sq = await subscriber(node)
    await run_in(node, sq, sub, lambda a: a.monitor_event(event))
    await run_in(node, sq, sub, lambda a: a.demonitor_event(event))
    await run_in(node, sq, sub, lambda a: a.link_event(event))
    await run_in(node, sq, sub, lambda a: a.unlink_event(event))
    with pytest.raises(gen.TargetUnknownError):
        await run_in(node, sq, sub, lambda a: a.unlink_event(event))
    witness, wq = await subscriber(node)
    await run_in(node, wq, witness, lambda a: a.monitor_event(event))
    node.send(prod, "unseen")
    assert (await receive(wq))[0] == "event"  # published to every subscriber at once
    assert await run_in(node, sq, sub, lambda a: "no event before this") == "no event before this"


async def test_a_subscriber_both_linked_and_monitoring_gets_each_event_once(node: ergopy.Node) -> None:
    got: asyncio.Queue[Any] = asyncio.Queue()

    class Producer(act.Actor):
        def init(self) -> None:
            self.token = self.register_event("twice")

        def handle_message(self, from_: gen.PID, message: Any) -> None:
            self.send_event("twice", self.token, message)

    class Both(act.Actor):
        def init(self, q: asyncio.Queue[Any]) -> None:
            self.q = q

        def handle_message(self, from_: gen.PID, message: Any) -> None:
            ev = gen.Event("twice", self.node.name)
            self.link_event(ev)
            self.monitor_event(ev)
            self.q.put_nowait("subscribed")

        def handle_event(self, message: gen.MessageEvent) -> None:
            self.q.put_nowait(message.message)

    await node.spawn_register("producer", Producer)
    both = await node.spawn(Both, None, got)
    node.send(both, "subscribe")
    assert await receive(got) == "subscribed"
    node.send("producer", 1)
    node.send("producer", 2)
    assert await receive(got) == 1
    assert await receive(got) == 2  # not 1 again

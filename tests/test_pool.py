"""act.Pool: round-robin forwarding of messages and calls, worker replacement, resizing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from conftest import receive

import ergopy
from ergopy import act, gen

Events = asyncio.Queue[Any]


class Worker(act.Actor):
    def init(self, events: Events) -> None:
        self.events = events
        events.put_nowait(("start", self.pid))

    def handle_message(self, from_: gen.PID, message: Any) -> Any:
        if message == "crash":
            return RuntimeError("worker crashed")
        self.events.put_nowait(("got", self.pid, from_, message))
        return None

    def handle_call(self, from_: gen.PID, ref: gen.Ref, request: Any) -> Any:
        return (self.pid, request)

    def terminate(self, reason: BaseException) -> None:
        self.events.put_nowait(("stop", self.pid, gen.unwrap_reason(reason)))


class Workers(act.Pool):
    """A pool sized by its spawn argument; ``("add", n)``/``("remove", n)`` calls resize it."""

    def init(self, events: Events, size: int = 3) -> act.PoolOptions:
        return act.PoolOptions(pool_size=size, worker_factory=Worker, worker_args=[events])

    async def handle_call(self, from_: gen.PID, ref: gen.Ref, request: Any) -> Any:
        match request:
            case ("add", n):
                return await self.add_workers(n)
            case ("remove", n):
                try:
                    return self.remove_workers(n)
                except gen.Error as e:
                    return e
            case "workers":
                return self.workers()
        return super().handle_call(from_, ref, request)


class Sender(act.Actor):
    """Sends what it is told to, so the workers see it as the sender."""

    def handle_call(self, from_: gen.PID, ref: gen.Ref, request: Any) -> Any:
        to, message = request
        self.send(to, message)
        return "sent"


async def starts(events: Events, n: int) -> list[gen.PID]:
    pids = []
    for _ in range(n):
        kind, pid = await receive(events)
        assert kind == "start"
        pids.append(pid)
    return pids


async def test_pool_starts_pool_size_workers_linked_to_it(node: ergopy.Node) -> None:
    events: Events = asyncio.Queue()
    pool = await node.spawn(Workers, None, events, 4)
    workers = await starts(events, 4)
    assert await node.call(pool, "workers") == workers
    for w in workers:
        assert node.process_info(w)["parent"] == pool


async def test_pool_size_below_one_means_three(node: ergopy.Node) -> None:
    events: Events = asyncio.Queue()
    pool = await node.spawn(Workers, None, events, 0)
    assert len(await starts(events, 3)) == 3
    assert len(await node.call(pool, "workers")) == 3


async def test_messages_go_round_robin_with_the_original_sender(node: ergopy.Node) -> None:
    events: Events = asyncio.Queue()
    pool = await node.spawn(Workers, None, events, 3)
    workers = await starts(events, 3)
    sender = await node.spawn(Sender)
    for i in range(6):
        assert await node.call(sender, (pool, i)) == "sent"
    got = [await receive(events) for _ in range(6)]
    assert [g[3] for g in got] == list(range(6))
    assert [g[1] for g in got] == workers + workers
    assert all(g[2] == sender for g in got)


async def test_calls_through_the_pool_are_answered_by_the_workers_in_turn(node: ergopy.Node) -> None:
    events: Events = asyncio.Queue()
    pool = await node.spawn(Workers, None, events, 2)
    workers = await starts(events, 2)
    replies = [await node.call(pool, i) for i in range(4)]
    assert replies == [(workers[0], 0), (workers[1], 1), (workers[0], 2), (workers[1], 3)]


async def test_a_worker_that_dies_is_replaced(node: ergopy.Node) -> None:
    events: Events = asyncio.Queue()
    pool = await node.spawn(Workers, None, events, 2)
    old = await starts(events, 2)
    node.send(old[0], "crash")
    kind, pid, reason = await receive(events)
    assert (kind, pid) == ("stop", old[0]) and isinstance(reason, RuntimeError)
    (new,) = await starts(events, 1)
    assert new not in old
    assert sorted(await node.call(pool, "workers"), key=lambda p: p.id) == [old[1], new]
    replies = {(await node.call(pool, i))[0] for i in range(2)}
    assert replies == {old[1], new}


async def test_add_workers_grows_the_pool(node: ergopy.Node) -> None:
    events: Events = asyncio.Queue()
    pool = await node.spawn(Workers, None, events, 1)
    await starts(events, 1)
    assert await node.call(pool, ("add", 2)) == 3
    await starts(events, 2)
    assert len({(await node.call(pool, i))[0] for i in range(3)}) == 3


async def test_remove_workers_stops_the_next_in_line_without_replacement(node: ergopy.Node) -> None:
    """Go (act/pool.go ``RemoveWorkers``): ``p.pool.Pop()`` n times, the front of the queue,
    the workers that would have taken the next messages."""
    events: Events = asyncio.Queue()
    pool = await node.spawn(Workers, None, events, 3)
    workers = await starts(events, 3)
    await node.call(pool, 0)  # forwarded to workers[0], which goes to the back of the line
    assert await node.call(pool, "workers") == [workers[1], workers[2], workers[0]]
    assert await node.call(pool, ("remove", 2)) == 1
    stopped = {(await receive(events))[1:] for _ in range(2)}
    assert stopped == {(workers[1], gen.TERMINATE_REASON_NORMAL), (workers[2], gen.TERMINATE_REASON_NORMAL)}
    assert await node.call(pool, "workers") == [workers[0]]
    assert isinstance(await node.call(pool, ("remove", 5)), gen.IncorrectError)
    assert events.empty()


async def test_workers_end_with_the_pool(node: ergopy.Node) -> None:
    events: Events = asyncio.Queue()
    pool = await node.spawn(Workers, None, events, 2)
    workers = await starts(events, 2)
    node.send_exit(pool, gen.TERMINATE_REASON_SHUTDOWN)
    assert {(await receive(events))[1] for _ in range(2)} == set(workers)


async def test_init_that_returns_no_options_makes_spawn_raise(node: ergopy.Node) -> None:
    class Broken(act.Pool):
        def init(self, *args: Any) -> Any:
            return None

    with pytest.raises(gen.IncorrectError):
        await node.spawn(Broken)

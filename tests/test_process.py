"""Processes: spawning, the mailbox and its scheduler, callbacks, termination."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from conftest import receive

import ergopy
from ergopy import act, gen


class Probe(act.Actor):
    """Puts every message it gets into the queue given as its first init argument."""

    def init(self, queue: asyncio.Queue[Any]) -> None:
        self.queue = queue

    def handle_message(self, from_: gen.PID, message: Any) -> None:
        self.queue.put_nowait(message)


class SenderProbe(Probe):
    """Puts ``(from_, message)`` pairs into its queue."""

    def handle_message(self, from_: gen.PID, message: Any) -> None:
        self.queue.put_nowait((from_, message))


class Reporter(act.Actor):
    """Reports its termination reason; handles ``("raise", exc)``/``("return", value)`` messages."""

    def init(self, queue: asyncio.Queue[Any]) -> None:
        self.queue = queue

    def handle_message(self, from_: gen.PID, message: Any) -> Any:
        match message:
            case ("raise", exc):
                raise exc
            case ("return", value):
                return value
            case ("forward", to, what):
                self.send(to, what)
        self.queue.put_nowait(message)
        return None

    def handle_call(self, from_: gen.PID, ref: gen.Ref, request: Any) -> Any:
        if isinstance(request, BaseException):
            raise request
        return request

    def handle_event(self, message: gen.MessageEvent) -> Any:
        raise RuntimeError("event failure")

    def handle_inspect(self, from_: gen.PID, *items: str) -> Any:
        raise RuntimeError("inspect failure")

    def terminate(self, reason: BaseException) -> None:
        self.queue.put_nowait(("terminated", reason))


async def terminated(queue: asyncio.Queue[Any]) -> BaseException:
    """Skip collected messages until a ``("terminated", reason)`` report; return the reason."""
    while True:
        item = await receive(queue)
        if isinstance(item, tuple) and item and item[0] == "terminated":
            return item[1]  # type: ignore[no-any-return]


# ---- spawn ---------------------------------------------------------------------------------------


async def test_first_spawn_gets_id_1001(node: ergopy.Node) -> None:
    pid = await node.spawn(act.Actor)
    assert pid == gen.PID(node.name, 1001, node.creation)


async def test_spawn_passes_args_to_init(node: ergopy.Node) -> None:
    got: list[Any] = []

    class Init(act.Actor):
        def init(self, *args: Any) -> None:
            got.extend(args)

    await node.spawn(Init, None, 1, "two", 3.0)
    assert got == [1, "two", 3.0]


async def test_spawn_accepts_a_factory_callable(node: ergopy.Node) -> None:
    q: asyncio.Queue[Any] = asyncio.Queue()
    pid = await node.spawn(lambda: Probe(), None, q)
    node.send(pid, "hi")
    assert await receive(q) == "hi"


async def test_spawn_of_non_behaviour_raises_unsupported(node: ergopy.Node) -> None:
    with pytest.raises(gen.UnsupportedError):
        await node.spawn(object)  # type: ignore[arg-type]


async def test_spawn_register_makes_the_process_reachable_by_name(node: ergopy.Node) -> None:
    q: asyncio.Queue[Any] = asyncio.Queue()
    pid = await node.spawn_register("probe", Probe, None, q)
    node.send("probe", 1)
    node.send(gen.Atom("probe"), 2)
    node.send(gen.ProcessID("probe", node.name), 3)
    assert [await receive(q) for _ in range(3)] == [1, 2, 3]
    assert node.process_info(pid)["name"] == "probe"


async def test_spawn_register_of_taken_name_raises_taken(node: ergopy.Node) -> None:
    await node.spawn_register("one", act.Actor)
    with pytest.raises(gen.TakenError):
        await node.spawn_register("one", act.Actor)


async def test_init_raising_makes_spawn_raise_it(node: ergopy.Node) -> None:
    class Refuses(act.Actor):
        def init(self) -> None:
            raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        await node.spawn(Refuses)
    assert node.processes() == []


async def test_init_raising_frees_the_name(node: ergopy.Node) -> None:
    class Refuses(act.Actor):
        def init(self) -> None:
            raise ValueError("no")

    with pytest.raises(ValueError):
        await node.spawn_register("name", Refuses)
    await node.spawn_register("name", act.Actor)


async def test_init_raising_does_not_call_terminate(node: ergopy.Node) -> None:
    calls: list[BaseException] = []

    class Refuses(act.Actor):
        def init(self) -> None:
            raise ValueError("no")

        def terminate(self, reason: BaseException) -> None:
            calls.append(reason)

    with pytest.raises(ValueError):
        await node.spawn(Refuses)
    assert calls == []


async def test_messages_sent_to_self_during_init_are_handled_after_init(node: ergopy.Node) -> None:
    class SelfStarter(Probe):
        def init(self, queue: asyncio.Queue[Any]) -> None:
            super().init(queue)
            self.send(self.pid, "first")

    q: asyncio.Queue[Any] = asyncio.Queue()
    await node.spawn(SelfStarter, None, q)
    assert await receive(q) == "first"


async def test_async_init_completes_before_spawn_returns(node: ergopy.Node) -> None:
    class SlowInit(act.Actor):
        async def init(self) -> None:
            await asyncio.sleep(0)
            self.ready = True

    pid = await node.spawn(SlowInit)
    assert node.process_info(pid)["state"] == "sleep"


async def test_process_may_not_call_in_init(node: ergopy.Node) -> None:
    class CallsInInit(act.Actor):
        async def init(self) -> None:
            await self.call("anyone", 1)

    with pytest.raises(gen.NotAllowedError):
        await node.spawn(CallsInInit)


async def test_spawn_from_a_process_sets_parent_and_leader(node: ergopy.Node) -> None:
    q: asyncio.Queue[Any] = asyncio.Queue()

    class Parent(act.Actor):
        async def handle_message(self, from_: gen.PID, message: Any) -> None:
            child = await self.spawn(act.Actor)
            q.put_nowait((self.pid, child))

    parent = await node.spawn(Parent)
    node.send(parent, "go")
    parent_pid, child = await receive(q)
    assert node.process_info(child)["parent"] == parent_pid
    assert node.process_info(parent)["parent"] == node.pid
    assert node.process_info(child)["leader"] == node.pid


# ---- sending -------------------------------------------------------------------------------------


async def test_send_to_unknown_name_raises_process_unknown(node: ergopy.Node) -> None:
    with pytest.raises(gen.ProcessUnknownError):
        node.send("nobody", "x")


async def test_send_to_unsupported_target_raises_unsupported(node: ergopy.Node) -> None:
    with pytest.raises(gen.UnsupportedError):
        node.send(42, "x")  # type: ignore[arg-type]


async def test_message_carries_the_sender_pid(node: ergopy.Node) -> None:
    q: asyncio.Queue[Any] = asyncio.Queue()
    probe = await node.spawn(SenderProbe, None, q)
    sender = await node.spawn(Reporter, None, asyncio.Queue())
    node.send(sender, ("forward", probe, "hello"))
    assert await receive(q) == (sender, "hello")


async def test_node_sends_with_its_core_pid(node: ergopy.Node) -> None:
    q: asyncio.Queue[Any] = asyncio.Queue()
    probe = await node.spawn(SenderProbe, None, q)
    node.send(probe, "hello")
    assert await receive(q) == (node.pid, "hello")


async def test_messages_from_one_sender_arrive_in_order(node: ergopy.Node) -> None:
    q: asyncio.Queue[Any] = asyncio.Queue()
    probe = await node.spawn(Probe, None, q)

    class Burst(act.Actor):
        def handle_message(self, from_: gen.PID, message: Any) -> None:
            for i in range(200):
                self.send(probe, i)

    burst = await node.spawn(Burst)
    node.send(burst, "go")
    assert [await receive(q) for _ in range(200)] == list(range(200))


async def test_priorities_order_urgent_then_system_then_main(node: ergopy.Node) -> None:
    q: asyncio.Queue[Any] = asyncio.Queue()
    probe = await node.spawn(Probe, None, q)
    node.send_with_priority(probe, "main", gen.MessagePriority.NORMAL)
    node.send_with_priority(probe, "system", gen.MessagePriority.HIGH)
    node.send_with_priority(probe, "urgent", gen.MessagePriority.MAX)
    assert [await receive(q) for _ in range(3)] == ["urgent", "system", "main"]


async def test_process_send_priority_applies_to_its_sends(node: ergopy.Node) -> None:
    q: asyncio.Queue[Any] = asyncio.Queue()
    probe = await node.spawn(Probe, None, q)

    class Urgent(act.Actor):
        def init(self) -> None:
            self.set_send_priority(gen.MessagePriority.MAX)

        def handle_message(self, from_: gen.PID, message: Any) -> None:
            node.send(probe, "normal")  # queued first, main queue
            self.send(probe, "urgent")

    node.send(await node.spawn(Urgent), "go")
    assert [await receive(q) for _ in range(2)] == ["urgent", "normal"]


async def test_a_process_sending_to_itself_forever_does_not_starve_others(node: ergopy.Node) -> None:
    class Spinner(act.Actor):
        def handle_message(self, from_: gen.PID, message: Any) -> None:
            self.send(self.pid, message)

    q: asyncio.Queue[Any] = asyncio.Queue()
    spinner = await node.spawn(Spinner)
    node.send(spinner, "spin")
    probe = await node.spawn(Probe, None, q)
    for i in range(3):
        node.send(probe, i)
        assert await receive(q, timeout=1.0) == i
    node.kill(spinner)


async def test_two_processes_bouncing_a_message_forever_do_not_starve_timers_or_sockets(node: ergopy.Node) -> None:
    """The run queue drains a process readied by a send in the same loop callback, but only
    up to a bound: an endless ping-pong still lets timers, sockets and other processes run."""

    class Bouncer(act.Actor):
        def init(self) -> None:
            self.count = 0

        def handle_message(self, from_: gen.PID, message: Any) -> None:
            self.count += 1
            self.send(message, self.pid)

        def handle_call(self, from_: gen.PID, ref: gen.Ref, request: Any) -> int:
            return self.count

    a = await node.spawn(Bouncer)
    b = await node.spawn(Bouncer)
    node.send(a, b)  # a sends its own PID to b, b to a, and so on
    loop = asyncio.get_running_loop()
    fired = loop.create_future()
    loop.call_later(0.05, fired.set_result, None)
    await asyncio.wait_for(fired, 2.0)
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(*server.sockets[0].getsockname()[:2]), 2.0)
        writer.close()
    finally:
        server.close()
    q: asyncio.Queue[Any] = asyncio.Queue()
    probe = await node.spawn(Probe, None, q)
    node.send(probe, "through")
    assert await receive(q, timeout=1.0) == "through"
    first = await node.call(a, "count", timeout=2.0)
    assert await node.call(a, "count", timeout=2.0) > first > 0  # and it was bouncing all along
    node.kill(a)
    node.kill(b)


async def test_an_async_process_sending_to_itself_forever_does_not_starve_others(node: ergopy.Node) -> None:
    class AsyncSpinner(act.Actor):
        async def handle_message(self, from_: gen.PID, message: Any) -> None:
            self.send(self.pid, message)

    q: asyncio.Queue[Any] = asyncio.Queue()
    spinner = await node.spawn(AsyncSpinner)
    node.send(spinner, "spin")
    probe = await node.spawn(Probe, None, q)
    for i in range(3):
        node.send(probe, i)
        assert await receive(q, timeout=1.0) == i
    node.kill(spinner)


# ---- mailbox bounds ------------------------------------------------------------------------------


async def test_full_mailbox_raises_mailbox_full(node: ergopy.Node) -> None:
    pid = await node.spawn(act.Actor, gen.ProcessOptions(mailbox_size=2))
    node.send(pid, 1)
    node.send(pid, 2)  # nothing handled yet: the process runs only once this test yields
    with pytest.raises(gen.MailboxFullError):
        node.send(pid, 3)


async def test_mailbox_size_bounds_each_queue_separately(node: ergopy.Node) -> None:
    pid = await node.spawn(act.Actor, gen.ProcessOptions(mailbox_size=1))
    node.send(pid, 1)
    node.send_with_priority(pid, 2, gen.MessagePriority.HIGH)
    node.send_with_priority(pid, 3, gen.MessagePriority.MAX)
    with pytest.raises(gen.MailboxFullError):
        node.send_with_priority(pid, 4, gen.MessagePriority.HIGH)


async def test_full_mailbox_with_fallback_redirects_to_fallback_process(node: ergopy.Node) -> None:
    q: asyncio.Queue[Any] = asyncio.Queue()
    await node.spawn_register("overflow", Probe, None, q)
    opts = gen.ProcessOptions(mailbox_size=1, fallback=gen.ProcessFallback(enable=True, name="overflow", tag="t1"))
    pid = await node.spawn(act.Actor, opts)
    node.send(pid, "fits")
    node.send(pid, "spills")
    assert await receive(q) == gen.MessageFallback(pid, "t1", "spills")


async def test_full_mailbox_is_accepted_again_once_drained(node: ergopy.Node) -> None:
    q: asyncio.Queue[Any] = asyncio.Queue()
    pid = await node.spawn(Probe, gen.ProcessOptions(mailbox_size=1), q)
    node.send(pid, 1)
    assert await receive(q) == 1
    node.send(pid, 2)
    assert await receive(q) == 2


# ---- callbacks ending the process --------------------------------------------------------------


@pytest.mark.parametrize("reason", [gen.TERMINATE_REASON_NORMAL, gen.TERMINATE_REASON_SHUTDOWN])
async def test_returning_a_standard_reason_stops_the_process_with_it(
    node: ergopy.Node, reason: BaseException, caplog: pytest.LogCaptureFixture
) -> None:
    q: asyncio.Queue[Any] = asyncio.Queue()
    pid = await node.spawn(Reporter, None, q)
    node.send(pid, ("return", reason))
    assert await terminated(q) is reason
    assert pid not in node.processes()
    assert not [r for r in caplog.records if "abnormally" in r.getMessage()]


async def test_returning_an_exception_instance_terminates_with_it(node: ergopy.Node) -> None:
    q: asyncio.Queue[Any] = asyncio.Queue()
    pid = await node.spawn(Reporter, None, q)
    err = ValueError("custom")
    node.send(pid, ("return", err))
    assert await terminated(q) is err


async def test_handle_message_raising_terminates_with_the_exception(node: ergopy.Node) -> None:
    q: asyncio.Queue[Any] = asyncio.Queue()
    pid = await node.spawn(Reporter, None, q)
    err = RuntimeError("boom")
    node.send(pid, ("raise", err))
    assert await terminated(q) is err
    assert pid not in node.processes()


async def test_handle_call_raising_terminates_with_the_exception_and_caller_times_out(node: ergopy.Node) -> None:
    q: asyncio.Queue[Any] = asyncio.Queue()
    pid = await node.spawn(Reporter, None, q)
    err = RuntimeError("call failure")
    with pytest.raises(gen.TimeoutError):
        await node.call(pid, err, timeout=0.2)
    assert await terminated(q) is err


async def test_handle_event_raising_terminates_with_the_exception(node: ergopy.Node) -> None:
    q: asyncio.Queue[Any] = asyncio.Queue()

    class Producer(act.Actor):
        def init(self) -> None:
            self.token = self.register_event("ev")

        def handle_message(self, from_: gen.PID, message: Any) -> None:
            self.send_event("ev", self.token, message)

    class Subscriber(Reporter):
        def handle_message(self, from_: gen.PID, message: Any) -> Any:
            self.monitor_event(message)
            self.queue.put_nowait("subscribed")

    producer = await node.spawn_register("producer", Producer)
    sub = await node.spawn(Subscriber, None, q)
    node.send(sub, gen.Event("ev", node.name))
    assert await receive(q) == "subscribed"
    node.send(producer, "news")
    reason = await terminated(q)
    assert isinstance(reason, RuntimeError) and str(reason) == "event failure"


async def test_handle_inspect_raising_terminates_with_the_exception(node: ergopy.Node) -> None:
    q: asyncio.Queue[Any] = asyncio.Queue()
    pid = await node.spawn(Reporter, None, q)
    inspecting = asyncio.create_task(node.inspect(pid))
    reason = await terminated(q)
    assert isinstance(reason, RuntimeError) and str(reason) == "inspect failure"
    inspecting.cancel()


async def test_terminate_raising_is_logged_and_the_process_still_ends(
    node: ergopy.Node, caplog: pytest.LogCaptureFixture
) -> None:
    class BadTerminate(act.Actor):
        def terminate(self, reason: BaseException) -> None:
            raise RuntimeError("terminate failure")

    pid = await node.spawn(BadTerminate)
    node.kill(pid)
    assert pid not in node.processes()
    assert any("terminate callback raised" in r.getMessage() for r in caplog.records)


async def test_abnormal_termination_is_logged_at_error(node: ergopy.Node, caplog: pytest.LogCaptureFixture) -> None:
    q: asyncio.Queue[Any] = asyncio.Queue()
    pid = await node.spawn(Reporter, None, q)
    node.send(pid, ("raise", RuntimeError("boom")))
    await terminated(q)
    records = [r for r in caplog.records if "terminated abnormally" in r.getMessage()]
    assert records and records[0].levelname == "ERROR"
    assert records[0].ergo_source == str(pid)  # type: ignore[attr-defined]


async def test_messages_queued_behind_a_terminating_message_are_dropped(node: ergopy.Node) -> None:
    q: asyncio.Queue[Any] = asyncio.Queue()
    pid = await node.spawn(Reporter, None, q)
    node.send(pid, ("return", gen.TERMINATE_REASON_NORMAL))
    node.send(pid, "never handled")
    assert await terminated(q) is gen.TERMINATE_REASON_NORMAL
    assert q.empty()


# ---- async callbacks -----------------------------------------------------------------------------


async def test_async_handle_message_is_awaited(node: ergopy.Node) -> None:
    q: asyncio.Queue[Any] = asyncio.Queue()

    class AsyncProbe(Probe):
        async def handle_message(self, from_: gen.PID, message: Any) -> None:
            await asyncio.sleep(0)
            self.queue.put_nowait(message)

    pid = await node.spawn(AsyncProbe, None, q)
    node.send(pid, 1)
    node.send(pid, 2)
    assert [await receive(q), await receive(q)] == [1, 2]


async def test_process_handles_nothing_else_while_an_async_callback_awaits(node: ergopy.Node) -> None:
    q: asyncio.Queue[Any] = asyncio.Queue()
    gate = asyncio.Event()

    class Blocking(Probe):
        async def handle_message(self, from_: gen.PID, message: Any) -> None:
            self.queue.put_nowait(message)
            if message == "block":
                await gate.wait()

    pid = await node.spawn(Blocking, None, q)
    node.send(pid, "block")
    node.send(pid, "next")
    assert await receive(q) == "block"
    info = node.process_info(pid)
    assert info["state"] == "running" and info["messages_mailbox"] == 1
    gate.set()
    assert await receive(q) == "next"


async def test_async_callback_returning_a_reason_terminates(node: ergopy.Node) -> None:
    q: asyncio.Queue[Any] = asyncio.Queue()

    class AsyncStop(Reporter):
        async def handle_message(self, from_: gen.PID, message: Any) -> Any:  # type: ignore[override]
            await asyncio.sleep(0)
            return gen.TERMINATE_REASON_SHUTDOWN

    pid = await node.spawn(AsyncStop, None, q)
    node.send(pid, "stop")
    assert await terminated(q) is gen.TERMINATE_REASON_SHUTDOWN


async def test_async_callback_raising_terminates_with_the_exception(node: ergopy.Node) -> None:
    q: asyncio.Queue[Any] = asyncio.Queue()
    err = RuntimeError("async boom")

    class AsyncRaise(Reporter):
        async def handle_message(self, from_: gen.PID, message: Any) -> Any:  # type: ignore[override]
            await asyncio.sleep(0)
            raise err

    pid = await node.spawn(AsyncRaise, None, q)
    node.send(pid, "go")
    assert await terminated(q) is err


async def test_async_terminate_is_awaited_before_stop_returns() -> None:
    done: list[str] = []

    class SlowTerminate(act.Actor):
        async def terminate(self, reason: BaseException) -> None:
            for _ in range(3):
                await asyncio.sleep(0)
            done.append("terminated")

    n = await ergopy.start_node("slowterm@localhost")
    await n.spawn(SlowTerminate)
    await n.stop()
    assert done == ["terminated"]


# ---- kill ----------------------------------------------------------------------------------------


async def test_kill_terminates_an_idle_process_at_once(node: ergopy.Node) -> None:
    q: asyncio.Queue[Any] = asyncio.Queue()
    pid = await node.spawn(Reporter, None, q)
    node.kill(pid)
    assert pid not in node.processes()
    assert await terminated(q) is gen.TERMINATE_REASON_KILL


async def test_kill_is_not_trapped(node: ergopy.Node) -> None:
    q: asyncio.Queue[Any] = asyncio.Queue()

    class Trapper(Reporter):
        def init(self, queue: asyncio.Queue[Any]) -> None:
            super().init(queue)
            self.set_trap_exit(True)

    pid = await node.spawn(Trapper, None, q)
    node.kill(pid)
    assert await terminated(q) is gen.TERMINATE_REASON_KILL


async def test_kill_of_a_busy_async_process_ends_its_callback(node: ergopy.Node) -> None:
    q: asyncio.Queue[Any] = asyncio.Queue()

    class Busy(Reporter):
        async def handle_message(self, from_: gen.PID, message: Any) -> Any:  # type: ignore[override]
            self.queue.put_nowait("busy")
            await asyncio.Event().wait()

    pid = await node.spawn(Busy, None, q)
    node.send(pid, "go")
    assert await receive(q) == "busy"
    node.kill(pid)
    assert await terminated(q) is gen.TERMINATE_REASON_KILL
    assert pid not in node.processes()


async def test_kill_of_unknown_process_raises_process_unknown(node: ergopy.Node) -> None:
    with pytest.raises(gen.ProcessUnknownError):
        node.kill(gen.PID(node.name, 999_999, node.creation))


async def test_process_killing_itself_ends_after_its_callback(node: ergopy.Node) -> None:
    q: asyncio.Queue[Any] = asyncio.Queue()

    class Suicide(Reporter):
        def handle_message(self, from_: gen.PID, message: Any) -> Any:
            self.node.kill(self.pid)
            self.queue.put_nowait("still running")

    pid = await node.spawn(Suicide, None, q)
    node.send(pid, "go")
    assert await receive(q) == "still running"
    assert await terminated(q) is gen.TERMINATE_REASON_KILL


# ---- exit signals ----------------------------------------------------------------------------------


async def test_exit_signal_terminates_with_a_wrapped_reason(node: ergopy.Node) -> None:
    q: asyncio.Queue[Any] = asyncio.Queue()
    pid = await node.spawn(Reporter, None, q)
    err = RuntimeError("stop now")
    node.send_exit(pid, err)
    reason = await terminated(q)
    assert isinstance(reason, gen.ExitSignal)
    assert reason.reason is err
    assert str(reason) == f"{node.pid}: stop now"


async def test_exit_signal_overtakes_queued_messages(node: ergopy.Node) -> None:
    q: asyncio.Queue[Any] = asyncio.Queue()
    pid = await node.spawn(Reporter, None, q)
    node.send(pid, "queued")
    node.send_exit(pid, gen.TERMINATE_REASON_SHUTDOWN)
    reason = await terminated(q)
    assert isinstance(reason, gen.ExitSignal)
    assert q.empty()


async def test_send_exit_with_none_reason_raises_incorrect(node: ergopy.Node) -> None:
    pid = await node.spawn(act.Actor)
    with pytest.raises(gen.IncorrectError):
        node.send_exit(pid, None)  # type: ignore[arg-type]


# ---- misc ------------------------------------------------------------------------------------------


async def test_unhandled_message_is_logged_as_warning(node: ergopy.Node, caplog: pytest.LogCaptureFixture) -> None:
    pid = await node.spawn(act.Actor)
    q: asyncio.Queue[Any] = asyncio.Queue()
    probe = await node.spawn(Probe, None, q)
    node.send(pid, "stray")
    node.send(probe, "after")  # the actor's drain was scheduled first
    await receive(q)
    assert any(r.levelname == "WARNING" and "unhandled message" in r.getMessage() for r in caplog.records)


async def test_handle_inspect_answers_inspect(node: ergopy.Node) -> None:
    class Inspectable(act.Actor):
        def handle_inspect(self, from_: gen.PID, *items: str) -> dict[str, str]:
            return {"items": ",".join(items), "from": str(from_)}

    pid = await node.spawn(Inspectable)
    assert await node.inspect(pid, "a", "b") == {"items": "a,b", "from": str(node.pid)}


# ---- robustness (issue 9 §5) -------------------------------------------------------------------------


class CancelledInside(act.Actor):
    """A sync callback whose code raises ``CancelledError`` (as ``fut.result()`` of a cancelled
    future does): a ``BaseException`` that is not an ``Exception``."""

    def init(self, queue: asyncio.Queue[Any]) -> None:
        self.queue = queue

    def handle_message(self, from_: gen.PID, message: Any) -> None:
        fut = asyncio.get_running_loop().create_future()
        fut.cancel()
        fut.result()

    def terminate(self, reason: BaseException) -> None:
        self.queue.put_nowait(("terminated", reason))


class AsyncCancelledInside(CancelledInside):
    async def handle_message(self, from_: gen.PID, message: Any) -> None:  # type: ignore[override]
        await asyncio.sleep(0)
        super().handle_message(from_, message)


@pytest.mark.parametrize("behavior", [CancelledInside, AsyncCancelledInside])
async def test_a_callback_raising_cancelled_error_terminates_its_process(
    node: ergopy.Node, behavior: type[act.Actor]
) -> None:
    """It used to wedge a sync process: state RUNNING for ever, mailbox never drained, left
    behind by node.stop(). An async one ended as if killed. Now both end with the error."""
    q: asyncio.Queue[Any] = asyncio.Queue()
    pid = await node.spawn(behavior, None, q)
    node.send(pid, "go")
    kind, reason = await receive(q)
    assert kind == "terminated" and isinstance(reason, asyncio.CancelledError)
    assert pid not in node.processes()
    node.send(pid, "after")  # a dead letter now, not a message into a wedged mailbox
    assert node.stats()["dead_letters_pid_unknown"] == 1


class Recording(act.Actor):
    """Overrides the three send methods: each records, then sends for real."""

    def init(self, queue: asyncio.Queue[Any]) -> None:
        self.queue = queue
        self.sent: list[str] = []

    def send(self, to: gen.SendTarget, message: Any) -> None:
        self.sent.append("send")
        super().send(to, message)

    def send_pid(self, to: gen.PID, message: Any) -> None:
        self.sent.append("send_pid")
        super().send_pid(to, message)

    def send_alias(self, to: gen.Alias, message: Any) -> None:
        self.sent.append("send_alias")
        super().send_alias(to, message)

    def handle_message(self, from_: gen.PID, message: Any) -> None:
        if message == "go":
            alias = self.create_alias()
            self.send(self.pid, "via send")
            self.send_pid(self.pid, "via send_pid")
            self.send_alias(alias, "via send_alias")
            return
        if message == "bound":  # the methods bound straight to the router on this instance
            self.queue.put_nowait(sorted(n for n in ("send", "send_pid", "send_alias") if n in vars(self)))
            return
        self.queue.put_nowait((message, list(self.sent)))


class RecordingSendOnly(Recording):
    """Overrides ``send`` only (through Recording); ``send_pid`` keeps the fast path."""

    send_pid = act.Actor.send_pid  # type: ignore[assignment]
    send_alias = act.Actor.send_alias  # type: ignore[assignment]


async def test_an_actor_that_overrides_its_send_methods_is_not_bypassed(node: ergopy.Node) -> None:
    """The fast path bound ``send``/``send_pid``/``send_alias`` straight to the router on every
    instance, so an override was silently never called."""
    q: asyncio.Queue[Any] = asyncio.Queue()
    pid = await node.spawn(Recording, None, q)
    node.send(pid, "go")
    assert await receive(q) == ("via send", ["send", "send_pid", "send_alias"])
    assert await receive(q) == ("via send_pid", ["send", "send_pid", "send_alias"])
    assert await receive(q) == ("via send_alias", ["send", "send_pid", "send_alias"])
    node.send(pid, "bound")
    assert await receive(q) == []


async def test_the_fast_path_is_kept_for_the_send_methods_not_overridden(node: ergopy.Node) -> None:
    q: asyncio.Queue[Any] = asyncio.Queue()
    pid = await node.spawn(RecordingSendOnly, None, q)
    node.send(pid, "go")
    assert await receive(q) == ("via send", ["send"])
    assert await receive(q) == ("via send_pid", ["send"])
    assert await receive(q) == ("via send_alias", ["send"])
    node.send(pid, "bound")
    assert await receive(q) == ["send_alias", "send_pid"]


def test_system_exit_from_a_callback_ends_the_process_then_goes_on_up(tmp_path: Any) -> None:
    """Only ``KeyboardInterrupt``/``SystemExit`` leave the loop, and only after the process
    has been terminated (its ``terminate`` ran): the program exits with the code asked."""
    import subprocess
    import sys

    script = tmp_path / "exit.py"
    script.write_text(
        "import asyncio, ergopy\n"
        "from ergopy import act\n"
        "class Quitter(act.Actor):\n"
        "    def handle_message(self, from_, message):\n"
        "        raise SystemExit(7)\n"
        "    def terminate(self, reason):\n"
        "        print('terminated', type(reason).__name__, flush=True)\n"
        "async def main():\n"
        "    node = await ergopy.start_node('quit@localhost')\n"
        "    node.send(await node.spawn(Quitter), 'go')\n"
        "    await asyncio.sleep(30)\n"  # never reached: SystemExit ends the program first
        "asyncio.run(main())\n"
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 7, done.stderr
    assert done.stdout.splitlines() == ["terminated SystemExit"]

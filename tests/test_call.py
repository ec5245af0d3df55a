"""Synchronous requests: call, its replies, timeouts and errors."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from conftest import receive

import ergopy
from ergopy import act, gen


class Echo(act.Actor):
    """Replies ``("echo", request)``; replies later to ``"later"``; never replies to ``"ignore"``."""

    def init(self, queue: asyncio.Queue[Any] | None = None) -> None:
        self.queue = queue
        self.pending: list[tuple[gen.PID, gen.Ref]] = []

    def handle_call(self, from_: gen.PID, ref: gen.Ref, request: Any) -> Any:
        match request:
            case "later" | "ignore":
                self.pending.append((from_, ref))
                if self.queue is not None:
                    self.queue.put_nowait(("pending", request))
                return None
            case ("stop", value):
                return gen.ReplyAndStop(value)
            case ("stop_with", value, reason):
                return gen.ReplyAndStop(value, reason)
        return ("echo", request)

    def handle_message(self, from_: gen.PID, message: Any) -> None:
        match message:
            case ("respond", value):
                to, ref = self.pending.pop(0)
                self.send_response(to, ref, value)
            case ("respond_error", err):
                to, ref = self.pending.pop(0)
                self.send_response_error(to, ref, err)

    def terminate(self, reason: BaseException) -> None:
        if self.queue is not None:
            self.queue.put_nowait(("terminated", reason))


class Caller(act.Actor):
    """Runs ``("call", to, request, timeout)`` and reports the result or the exception."""

    def init(self, queue: asyncio.Queue[Any]) -> None:
        self.queue = queue

    async def handle_message(self, from_: gen.PID, message: Any) -> None:
        match message:
            case ("call", to, request, timeout):
                try:
                    self.queue.put_nowait(("result", await self.call(to, request, timeout)))
                except gen.Error as e:
                    self.queue.put_nowait(("error", e))
            case other:
                self.queue.put_nowait(other)


async def test_call_returns_what_handle_call_returns(node: ergopy.Node) -> None:
    pid = await node.spawn(Echo)
    assert await node.call(pid, 42) == ("echo", 42)


async def test_call_by_name_processid_and_alias(node: ergopy.Node) -> None:
    q: asyncio.Queue[Any] = asyncio.Queue()

    class Aliased(Echo):
        def init(self, queue: asyncio.Queue[Any] | None = None) -> None:
            super().init(None)
            queue.put_nowait(self.create_alias())  # type: ignore[union-attr]

    pid = await node.spawn_register("echo", Aliased, None, q)
    alias = await receive(q)
    assert await node.call("echo", 1) == ("echo", 1)
    assert await node.call(gen.ProcessID("echo", node.name), 2) == ("echo", 2)
    assert await node.call(alias, 3) == ("echo", 3)
    assert await node.call(pid, 4) == ("echo", 4)


async def test_process_calls_another_process(node: ergopy.Node) -> None:
    q: asyncio.Queue[Any] = asyncio.Queue()
    echo = await node.spawn(Echo)
    caller = await node.spawn(Caller, None, q)
    node.send(caller, ("call", echo, "ping", 1.0))
    assert await receive(q) == ("result", ("echo", "ping"))


async def test_async_handle_call_is_awaited(node: ergopy.Node) -> None:
    class AsyncEcho(act.Actor):
        async def handle_call(self, from_: gen.PID, ref: gen.Ref, request: Any) -> Any:
            await asyncio.sleep(0)
            return request * 2

    pid = await node.spawn(AsyncEcho)
    assert await node.call(pid, 21) == 42


async def test_exception_returned_by_handle_call_is_the_reply_value(node: ergopy.Node) -> None:
    err = ValueError("a value, not a failure")

    class ReturnsError(act.Actor):
        def handle_call(self, from_: gen.PID, ref: gen.Ref, request: Any) -> Any:
            return err

    pid = await node.spawn(ReturnsError)
    assert await node.call(pid, "x") is err
    assert pid in node.processes()


async def test_call_without_reply_raises_timeout(node: ergopy.Node) -> None:
    pid = await node.spawn(Echo)
    with pytest.raises(gen.TimeoutError):
        await node.call(pid, "ignore", timeout=0.05)


async def test_reply_after_timeout_is_discarded(node: ergopy.Node) -> None:
    q: asyncio.Queue[Any] = asyncio.Queue()
    pid = await node.spawn(Echo, None, q)
    with pytest.raises(gen.TimeoutError):
        await node.call(pid, "later", timeout=0.05)
    await receive(q)
    node.send(pid, ("respond", "too late"))
    assert await node.call(pid, "next") == ("echo", "next")


async def test_send_response_answers_a_call_later(node: ergopy.Node) -> None:
    q: asyncio.Queue[Any] = asyncio.Queue()
    pid = await node.spawn(Echo, None, q)
    call = asyncio.create_task(node.call(pid, "later", timeout=1.0))
    assert await receive(q) == ("pending", "later")
    node.send(pid, ("respond", "answer"))
    assert await call == "answer"


async def test_send_response_error_makes_call_raise_it(node: ergopy.Node) -> None:
    q: asyncio.Queue[Any] = asyncio.Queue()
    pid = await node.spawn(Echo, None, q)
    call = asyncio.create_task(node.call(pid, "later", timeout=1.0))
    await receive(q)
    err = gen.TakenError("already there")
    node.send(pid, ("respond_error", err))
    with pytest.raises(gen.TakenError) as info:
        await call
    assert info.value is err


async def test_response_may_come_from_another_process(node: ergopy.Node) -> None:
    q: asyncio.Queue[Any] = asyncio.Queue()

    class Delegating(act.Actor):
        def handle_call(self, from_: gen.PID, ref: gen.Ref, request: Any) -> Any:
            q.put_nowait((from_, ref))
            return None

    class Responder(act.Actor):
        def handle_message(self, from_: gen.PID, message: Any) -> None:
            to, ref = message
            self.send_response(to, ref, "from the responder")

    pid = await node.spawn(Delegating)
    responder = await node.spawn(Responder)
    call = asyncio.create_task(node.call(pid, "x", timeout=1.0))
    node.send(responder, await receive(q))
    assert await call == "from the responder"


async def test_reply_and_stop_replies_then_terminates_normally(node: ergopy.Node) -> None:
    q: asyncio.Queue[Any] = asyncio.Queue()
    pid = await node.spawn(Echo, None, q)
    assert await node.call(pid, ("stop", "bye")) == "bye"
    assert await receive(q) == ("terminated", gen.TERMINATE_REASON_NORMAL)
    assert pid not in node.processes()


async def test_reply_and_stop_with_a_reason_terminates_with_it(node: ergopy.Node) -> None:
    q: asyncio.Queue[Any] = asyncio.Queue()
    pid = await node.spawn(Echo, None, q)
    assert await node.call(pid, ("stop_with", "bye", gen.TERMINATE_REASON_SHUTDOWN)) == "bye"
    assert await receive(q) == ("terminated", gen.TERMINATE_REASON_SHUTDOWN)


@pytest.mark.parametrize("target", ["pid", "name", "process_id", "alias"])
async def test_calling_itself_raises_not_allowed(node: ergopy.Node, target: str) -> None:
    q: asyncio.Queue[Any] = asyncio.Queue()

    class SelfCaller(act.Actor):
        async def handle_message(self, from_: gen.PID, message: Any) -> None:
            to = {
                "pid": self.pid,
                "name": "me",
                "process_id": gen.ProcessID("me", self.node.name),
                "alias": self.create_alias(),
            }[message]
            try:
                await self.call(to, "x", timeout=0.5)
            except gen.Error as e:
                q.put_nowait(e)

    pid = await node.spawn_register("me", SelfCaller)
    node.send(pid, target)
    assert isinstance(await receive(q), gen.NotAllowedError)


async def test_call_to_unknown_process_raises_process_unknown(node: ergopy.Node) -> None:
    with pytest.raises(gen.ProcessUnknownError):
        await node.call("nobody", "x")
    with pytest.raises(gen.ProcessUnknownError):
        await node.call(gen.PID(node.name, 999_999, node.creation), "x")


async def test_process_call_to_unknown_raises_process_unknown(node: ergopy.Node) -> None:
    q: asyncio.Queue[Any] = asyncio.Queue()
    caller = await node.spawn(Caller, None, q)
    node.send(caller, ("call", "nobody", "x", 1.0))
    kind, err = await receive(q)
    assert kind == "error" and isinstance(err, gen.ProcessUnknownError)


async def test_call_to_full_mailbox_raises_mailbox_full(node: ergopy.Node) -> None:
    pid = await node.spawn(Echo, gen.ProcessOptions(mailbox_size=1))
    node.send(pid, "filler")
    with pytest.raises(gen.MailboxFullError):
        await node.call(pid, "x")


async def test_caller_handles_no_messages_while_it_waits(node: ergopy.Node) -> None:
    q: asyncio.Queue[Any] = asyncio.Queue()
    echo_q: asyncio.Queue[Any] = asyncio.Queue()
    echo = await node.spawn(Echo, None, echo_q)
    caller = await node.spawn(Caller, None, q)
    node.send(caller, ("call", echo, "later", 1.0))
    assert await receive(echo_q) == ("pending", "later")
    node.send(caller, "queued meanwhile")
    info = node.process_info(caller)
    assert info["state"] == "wait_response" and info["messages_mailbox"] == 1
    node.send(echo, ("respond", "done"))
    assert await receive(q) == ("result", "done")
    assert await receive(q) == "queued meanwhile"


async def test_caller_timeout_from_a_process_raises_timeout(node: ergopy.Node) -> None:
    q: asyncio.Queue[Any] = asyncio.Queue()
    echo = await node.spawn(Echo)
    caller = await node.spawn(Caller, None, q)
    node.send(caller, ("call", echo, "ignore", 0.05))
    kind, err = await receive(q)
    assert kind == "error" and isinstance(err, gen.TimeoutError)
    assert node.process_info(caller)["state"] == "sleep"


async def test_killing_a_waiting_caller_ends_it_and_its_call(node: ergopy.Node) -> None:
    q: asyncio.Queue[Any] = asyncio.Queue()
    echo_q: asyncio.Queue[Any] = asyncio.Queue()

    class ReportingCaller(Caller):
        def terminate(self, reason: BaseException) -> None:
            self.queue.put_nowait(("terminated", reason))

    echo = await node.spawn(Echo, None, echo_q)
    caller = await node.spawn(ReportingCaller, None, q)
    node.send(caller, ("call", echo, "later", 5.0))
    assert await receive(echo_q) == ("pending", "later")
    node.kill(caller)
    assert await receive(q) == ("terminated", gen.TERMINATE_REASON_KILL)
    assert node.stats()["calls"] == 0


# ---- stopping from handle_call (issue 9 §4) ----------------------------------------------------------


class Forwarder(act.Actor):
    """Go's idiom ``return nil, gen.TerminateReasonNormal``: pass the request on, then exit."""

    def init(self, to: gen.PID, queue: asyncio.Queue[Any], reason: BaseException) -> None:
        self.to = to
        self.queue = queue
        self.reason = reason

    def handle_call(self, from_: gen.PID, ref: gen.Ref, request: Any) -> Any:
        if self.to is not None:
            self.process.forward_call(self.to, from_, ref, request)
        return self.reason

    def terminate(self, reason: BaseException) -> None:
        self.queue.put_nowait(("terminated", reason))


async def test_handle_call_returning_normal_stops_without_replying_so_a_forwarded_call_is_answered(
    node: ergopy.Node,
) -> None:
    """Go: ``HandleCall`` returning ``(nil, TerminateReasonNormal)`` terminates the process and
    sends no reply; the process the request was forwarded to answers the caller."""
    q: asyncio.Queue[Any] = asyncio.Queue()
    echo = await node.spawn(Echo)
    pid = await node.spawn(Forwarder, None, echo, q, gen.TERMINATE_REASON_NORMAL)
    assert await node.call(pid, "question", timeout=2) == ("echo", "question")
    assert await receive(q) == ("terminated", gen.TERMINATE_REASON_NORMAL)
    assert pid not in node.processes()


async def test_handle_call_returning_shutdown_stops_and_the_caller_gets_no_reply(node: ergopy.Node) -> None:
    """Go: no reply is sent (the reason is not a value); a caller nobody answers times out."""
    q: asyncio.Queue[Any] = asyncio.Queue()
    pid = await node.spawn(Forwarder, None, None, q, gen.TERMINATE_REASON_SHUTDOWN)
    with pytest.raises(gen.TimeoutError):
        await node.call(pid, "question", timeout=0.3)
    assert await receive(q) == ("terminated", gen.TERMINATE_REASON_SHUTDOWN)


@pytest.mark.parametrize("where", ["handle_message", "handle_call"])
@pytest.mark.parametrize("reason", [gen.TERMINATE_REASON_NORMAL, gen.TERMINATE_REASON_SHUTDOWN])
async def test_raising_a_normal_reason_stops_quietly(
    node: ergopy.Node, caplog: pytest.LogCaptureFixture, where: str, reason: BaseException
) -> None:
    """Stopping normally by ``raise`` is a normal stop: watchers see the reason, nothing is
    logged at error level (Go only logs abnormal ends)."""
    caplog.set_level(logging.DEBUG, logger="ergopy")
    q: asyncio.Queue[Any] = asyncio.Queue()

    class Raiser(act.Actor):
        def handle_message(self, from_: gen.PID, message: Any) -> None:
            raise reason

        def handle_call(self, from_: gen.PID, ref: gen.Ref, request: Any) -> Any:
            raise reason

        def terminate(self, r: BaseException) -> None:
            q.put_nowait(("terminated", r))

    pid = await node.spawn(Raiser)
    if where == "handle_message":
        node.send(pid, "stop")
    else:
        with pytest.raises(gen.TimeoutError):
            await node.call(pid, "stop", timeout=0.3)
    assert await receive(q) == ("terminated", reason)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []

"""Meta-processes: an alias, a parent, a start() task and a mailbox handler running concurrently."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from conftest import receive, run_in

import ergopy
from ergopy import act, gen


class Host(act.Actor):
    """A parent process: runs callables sent to it (reporting ``("ok", result)`` or
    ``("error", exc)``), puts ``(from_, message)`` of any other message into its queue."""

    def init(self, queue: asyncio.Queue[Any]) -> None:
        self.queue = queue

    def handle_message(self, from_: gen.PID, message: Any) -> Any:
        if callable(message):
            try:
                result = message(self)
            except gen.Error as e:
                self.queue.put_nowait(("error", e))
                return None
            if isinstance(result, BaseException):
                return result  # ends the host with it
            self.queue.put_nowait(("ok", result))
            return None
        self.queue.put_nowait((from_, message))
        return None


class Meta(gen.MetaBehavior):
    """Reports to ``queue``. ``start`` waits for ``finish`` (set by ``terminate``), then
    returns, or raises ``start_error``. Callables sent to it run with the behaviour."""

    def __init__(self, queue: asyncio.Queue[Any], start_error: BaseException | None = None) -> None:
        self.queue = queue
        self.start_error = start_error
        self.finish = asyncio.Event()
        self.terminations: list[BaseException] = []

    def init(self, process: gen.MetaProcess) -> None:
        self.process = process

    async def start(self) -> None:
        self.queue.put_nowait("started")
        await self.finish.wait()
        if self.start_error is not None:
            raise self.start_error

    def handle_message(self, from_: gen.PID, message: Any) -> Any:
        if callable(message):
            return message(self)
        self.queue.put_nowait(("meta got", from_, message))
        return None

    def handle_call(self, from_: gen.PID, ref: gen.Ref, request: Any) -> Any:
        if request == "stop":
            return gen.ReplyAndStop("bye")
        return ("meta reply", request)

    def handle_inspect(self, from_: gen.PID, *items: str) -> dict[str, str]:
        return {"items": ",".join(items)}

    def terminate(self, reason: BaseException) -> None:
        self.terminations.append(reason)
        self.queue.put_nowait(("terminated", reason))
        self.finish.set()


async def host(node: ergopy.Node) -> tuple[gen.PID, asyncio.Queue[Any]]:
    q: asyncio.Queue[Any] = asyncio.Queue()
    return await node.spawn(Host, None, q), q


async def spawn_meta(
    node: ergopy.Node, behavior: gen.MetaBehavior, options: gen.MetaOptions | None = None
) -> tuple[gen.PID, asyncio.Queue[Any], gen.Alias]:
    """A host process and a meta-process it spawned."""
    pid, q = await host(node)
    alias = await run_in(node, q, pid, lambda a: a.spawn_meta(behavior, options or gen.MetaOptions()))
    return pid, q, alias


async def started(node: ergopy.Node, **kw: Any) -> tuple[gen.PID, asyncio.Queue[Any], gen.Alias, Meta]:
    """A host, a running ``Meta`` (its start() has begun) and the meta's queue."""
    mq: asyncio.Queue[Any] = asyncio.Queue()
    meta = Meta(mq, **kw)
    pid, q, alias = await spawn_meta(node, meta)
    assert await receive(mq) == "started"
    return pid, q, alias, meta


# ---- spawning ----------------------------------------------------------------------------------------


async def test_spawn_meta_returns_an_alias_owned_by_the_parent(node: ergopy.Node) -> None:
    pid, _, alias, _ = await started(node)
    assert type(alias) is gen.Alias
    assert str(alias).startswith("Alias#<")
    assert node.process_info(pid)["metas"] == [str(alias)]
    assert node.meta_info(alias)["parent"] == pid


async def test_init_gets_the_meta_process_with_id_and_parent(node: ergopy.Node) -> None:
    pid, _, alias, meta = await started(node)
    assert meta.process.id == alias
    assert meta.process.parent == pid


async def test_init_raising_makes_spawn_meta_raise_and_registers_nothing(node: ergopy.Node) -> None:
    class Refuses(gen.MetaBehavior):
        def init(self, process: gen.MetaProcess) -> None:
            raise gen.IncorrectError("no")

    pid, q = await host(node)
    with pytest.raises(gen.IncorrectError):
        await run_in(node, q, pid, lambda a: a.spawn_meta(Refuses(), gen.MetaOptions()))
    assert node.process_info(pid)["metas"] == []
    assert node.stats()["metas"] == 0 and node.stats()["aliases"] == 0


async def test_async_init_is_refused(node: ergopy.Node) -> None:
    class AsyncInit(gen.MetaBehavior):
        async def init(self, process: gen.MetaProcess) -> None:  # type: ignore[override]
            pass

    pid, q = await host(node)
    with pytest.raises(gen.UnsupportedError):
        await run_in(node, q, pid, lambda a: a.spawn_meta(AsyncInit(), gen.MetaOptions()))
    assert node.stats()["metas"] == 0


async def test_spawn_meta_of_non_meta_behaviour_raises_unsupported(node: ergopy.Node) -> None:
    pid, q = await host(node)
    with pytest.raises(gen.UnsupportedError):
        await run_in(node, q, pid, lambda a: a.spawn_meta(object(), gen.MetaOptions()))


async def test_meta_spawned_in_parent_init_runs(node: ergopy.Node) -> None:
    mq: asyncio.Queue[Any] = asyncio.Queue()

    class SpawnsInInit(act.Actor):
        def init(self) -> None:
            self.spawn_meta(Meta(mq))

    await node.spawn(SpawnsInInit)
    assert await receive(mq) == "started"


async def test_meta_spawn_makes_a_sibling_under_the_same_parent(node: ergopy.Node) -> None:
    pid, _, alias, meta = await started(node)
    mq: asyncio.Queue[Any] = asyncio.Queue()
    sibling = meta.process.spawn(Meta(mq))
    assert await receive(mq) == "started"
    assert node.meta_info(sibling)["parent"] == pid
    assert sorted(node.process_info(pid)["metas"]) == sorted([str(alias), str(sibling)])


# ---- start() and the mailbox handler -------------------------------------------------------------------


async def test_start_runs_concurrently_with_handle_message(node: ergopy.Node) -> None:
    _pid, _, alias, meta = await started(node)
    node.send(alias, "while start runs")
    assert await receive(meta.queue) == ("meta got", node.pid, "while start runs")
    assert not meta.terminations


async def test_start_returning_terminates_normally_once(node: ergopy.Node) -> None:
    _pid, _, alias, meta = await started(node)
    node.send(alias, lambda m: m.finish.set())
    assert await receive(meta.queue) == ("terminated", gen.TERMINATE_REASON_NORMAL)
    await node.stop()
    assert meta.terminations == [gen.TERMINATE_REASON_NORMAL]


async def test_start_raising_terminates_with_the_exception_once(node: ergopy.Node) -> None:
    err = RuntimeError("start failed")
    _pid, _, alias, meta = await started(node, start_error=err)
    node.send(alias, lambda m: m.finish.set())
    assert await receive(meta.queue) == ("terminated", err)
    await node.stop()
    assert meta.terminations == [err]


async def test_handle_message_returning_a_reason_terminates_once_and_ends_start(node: ergopy.Node) -> None:
    err = RuntimeError("never raised by start")
    _pid, _, alias, meta = await started(node, start_error=err)
    node.send(alias, lambda m: gen.TERMINATE_REASON_SHUTDOWN)
    assert await receive(meta.queue) == ("terminated", gen.TERMINATE_REASON_SHUTDOWN)
    await node.stop()
    assert meta.terminations == [gen.TERMINATE_REASON_SHUTDOWN]


async def test_handle_message_raising_terminates_with_the_exception(node: ergopy.Node) -> None:
    _pid, _, alias, meta = await started(node)
    err = ValueError("handler failed")

    def fail(m: Meta) -> None:
        raise err

    node.send(alias, fail)
    assert await receive(meta.queue) == ("terminated", err)
    await node.stop()
    assert meta.terminations == [err]


async def test_start_that_ignores_terminate_is_cancelled_after_stop_timeout() -> None:
    node = await ergopy.start_node("stubborn@localhost", gen.NodeOptions(stop_timeout=0.05))
    mq: asyncio.Queue[Any] = asyncio.Queue()

    class Stubborn(Meta):
        async def start(self) -> None:
            self.queue.put_nowait("started")
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.queue.put_nowait("cancelled")
                raise

    try:
        meta = Stubborn(mq)
        _pid, _, alias = await spawn_meta(node, meta)
        assert await receive(mq) == "started"
        node.send(alias, lambda m: gen.TERMINATE_REASON_NORMAL)
        assert await receive(mq) == ("terminated", gen.TERMINATE_REASON_NORMAL)
        assert await receive(mq) == "cancelled"
    finally:
        await node.stop()
    assert meta.terminations == [gen.TERMINATE_REASON_NORMAL]


async def test_start_may_await_after_terminate_before_it_returns(node: ergopy.Node) -> None:
    mq: asyncio.Queue[Any] = asyncio.Queue()

    class Lingering(Meta):
        async def start(self) -> None:
            await super().start()
            for _ in range(10):  # e.g. closing a socket, then telling the parent
                await asyncio.sleep(0)
            self.process.send(self.process.parent, "goodbye")

    pid, q, alias = await spawn_meta(node, Lingering(mq))
    assert await receive(mq) == "started"
    node.send_exit_meta(alias, gen.TERMINATE_REASON_SHUTDOWN)
    assert await receive(q) == (pid, "goodbye")


async def test_async_handle_message_is_awaited(node: ergopy.Node) -> None:
    mq: asyncio.Queue[Any] = asyncio.Queue()

    class AsyncMeta(Meta):
        async def handle_message(self, from_: gen.PID, message: Any) -> Any:  # type: ignore[override]
            await asyncio.sleep(0)
            self.queue.put_nowait(("async got", message))

    _pid, _, alias = await spawn_meta(node, AsyncMeta(mq))
    assert await receive(mq) == "started"
    node.send(alias, 1)
    node.send(alias, 2)
    assert [await receive(mq), await receive(mq)] == [("async got", 1), ("async got", 2)]


async def test_meta_mailbox_full_raises_meta_mailbox_full(node: ergopy.Node) -> None:
    mq: asyncio.Queue[Any] = asyncio.Queue()
    _pid, _, alias = await spawn_meta(node, Meta(mq), gen.MetaOptions(mailbox_size=1))
    node.send(alias, 1)
    with pytest.raises(gen.MetaMailboxFullError):
        node.send(alias, 2)


async def test_messages_to_a_terminated_meta_are_dead_letters(node: ergopy.Node) -> None:
    """Erlang's rule, and the only one that holds across nodes: a send to an alias that is
    gone drops the message and counts it, it does not raise."""
    _pid, _, alias, meta = await started(node)
    node.send(alias, lambda m: gen.TERMINATE_REASON_NORMAL)
    await receive(meta.queue)
    node.send(alias, "late")
    node.send_alias(alias, "later")
    assert node.stats()["dead_letters_alias_unknown"] == 2


async def test_a_call_to_a_terminated_meta_raises_process_unknown(node: ergopy.Node) -> None:
    _pid, _, alias, meta = await started(node)
    node.send(alias, lambda m: gen.TERMINATE_REASON_NORMAL)
    await receive(meta.queue)
    with pytest.raises(gen.ProcessUnknownError):
        await node.call(alias, "anyone?", timeout=1)


# ---- calls and inspect -----------------------------------------------------------------------------


async def test_handle_call_on_a_meta_replies(node: ergopy.Node) -> None:
    _pid, _, alias, _meta = await started(node)
    assert await node.call(alias, "ping") == ("meta reply", "ping")


async def test_default_meta_handle_call_replies_with_unsupported_as_value(node: ergopy.Node) -> None:
    class Plain(gen.MetaBehavior):
        pass

    _pid, _, alias = await spawn_meta(node, Plain())
    assert isinstance(await node.call(alias, "x"), gen.UnsupportedError)


async def test_reply_and_stop_from_a_meta_replies_then_terminates(node: ergopy.Node) -> None:
    _pid, _, alias, meta = await started(node)
    assert await node.call(alias, "stop") == "bye"
    assert await receive(meta.queue) == ("terminated", gen.TERMINATE_REASON_NORMAL)


async def test_inspect_meta_returns_handle_inspect(node: ergopy.Node) -> None:
    _pid, _q, alias, _meta = await started(node)
    assert await node.inspect_meta(alias, "a", "b") == {"items": "a,b"}


async def test_inspect_meta_of_a_process_alias_raises_meta_unknown(node: ergopy.Node) -> None:
    pid, q = await host(node)
    alias = await run_in(node, q, pid, lambda a: a.create_alias())
    with pytest.raises(gen.MetaUnknownError):
        await node.inspect_meta(alias)


# ---- sending from a meta ----------------------------------------------------------------------------


async def test_meta_sends_with_its_parent_pid_as_from(node: ergopy.Node) -> None:
    pid, q, _alias, meta = await started(node)
    meta.process.send(pid, "to my parent")
    assert await receive(q) == (pid, "to my parent")


async def test_meta_sends_to_other_processes_as_its_parent(node: ergopy.Node) -> None:
    pid, _, _alias, meta = await started(node)
    other, other_q = await host(node)
    meta.process.send(other, "hello")
    assert await receive(other_q) == (pid, "hello")


# ---- ending -------------------------------------------------------------------------------------------


async def test_send_exit_meta_terminates_with_exactly_that_reason(node: ergopy.Node) -> None:
    pid, q, alias, meta = await started(node)
    err = RuntimeError("ttt")
    await run_in(node, q, pid, lambda a: a.send_exit_meta(alias, err))
    assert await receive(meta.queue) == ("terminated", err)


async def test_send_exit_meta_errors(node: ergopy.Node) -> None:
    pid, q, alias, _meta = await started(node)
    err = gen.TERMINATE_REASON_NORMAL
    with pytest.raises(gen.IncorrectError):
        await run_in(node, q, pid, lambda a: a.send_exit_meta(alias, None))
    with pytest.raises(gen.AliasUnknownError):
        await run_in(node, q, pid, lambda a: a.send_exit_meta(gen.Alias(node.name, node.creation, (1, 2, 3)), err))
    own = await run_in(node, q, pid, lambda a: a.create_alias())
    with pytest.raises(gen.MetaUnknownError):
        await run_in(node, q, pid, lambda a: a.send_exit_meta(own, err))


@pytest.mark.parametrize(
    "reason", [gen.TERMINATE_REASON_NORMAL, gen.TERMINATE_REASON_SHUTDOWN, RuntimeError("parent failed")]
)
async def test_parent_termination_terminates_metas_with_its_reason(node: ergopy.Node, reason: BaseException) -> None:
    pid, _q, alias, meta = await started(node)
    node.send(pid, lambda a: reason)
    assert await receive(meta.queue) == ("terminated", reason)
    node.send(alias, "late")  # gone with its parent: a dead letter
    assert node.stats()["dead_letters_alias_unknown"] == 1


async def test_parent_kill_terminates_metas_with_kill(node: ergopy.Node) -> None:
    pid, _q, _alias, meta = await started(node)
    node.kill(pid)
    assert await receive(meta.queue) == ("terminated", gen.TERMINATE_REASON_KILL)


async def test_parent_exit_signal_terminates_metas_with_the_unwrapped_reason(node: ergopy.Node) -> None:
    pid, _q, _alias, meta = await started(node)
    err = RuntimeError("exit")
    node.send_exit(pid, err)
    assert await receive(meta.queue) == ("terminated", err)


async def test_metas_of_a_failed_init_are_terminated_with_its_error(node: ergopy.Node) -> None:
    mq: asyncio.Queue[Any] = asyncio.Queue()
    err = ValueError("init failed")

    class SpawnsThenFails(act.Actor):
        def init(self) -> None:
            self.spawn_meta(Meta(mq))
            raise err

    with pytest.raises(ValueError):
        await node.spawn(SpawnsThenFails)
    assert await receive(mq) == ("terminated", err)


async def test_node_stop_terminates_metas_with_shutdown(node: ergopy.Node) -> None:
    _pid, _q, _alias, meta = await started(node)
    await node.stop()
    assert meta.terminations == [gen.TERMINATE_REASON_SHUTDOWN]


# ---- watchers of the alias ----------------------------------------------------------------------------


async def test_monitor_of_meta_alias_gets_down_alias_with_the_reason(node: ergopy.Node) -> None:
    _pid, _q, alias, _meta = await started(node)
    watcher, wq = await host(node)
    await run_in(node, wq, watcher, lambda a: a.monitor(alias))
    err = RuntimeError("ttt")
    node.send_exit_meta(alias, err)
    assert await receive(wq) == (node.pid, gen.MessageDownAlias(alias, err))


async def test_monitor_of_meta_alias_gets_normal_when_start_returns(node: ergopy.Node) -> None:
    _pid, _q, alias, _meta = await started(node)
    watcher, wq = await host(node)
    await run_in(node, wq, watcher, lambda a: a.monitor(alias))
    node.send(alias, lambda m: m.finish.set())
    assert await receive(wq) == (node.pid, gen.MessageDownAlias(alias, gen.TERMINATE_REASON_NORMAL))


async def test_trapped_link_to_meta_alias_gets_exit_alias(node: ergopy.Node) -> None:
    _pid, _q, alias, _meta = await started(node)
    watcher, wq = await host(node)
    await run_in(node, wq, watcher, lambda a: a.set_trap_exit(True))
    await run_in(node, wq, watcher, lambda a: a.link(alias))
    node.send(alias, lambda m: m.finish.set())
    assert await receive(wq) == (node.pid, gen.MessageExitAlias(alias, gen.TERMINATE_REASON_NORMAL))


async def test_parent_may_link_to_its_own_meta(node: ergopy.Node) -> None:
    pid, q, alias, _meta = await started(node)
    await run_in(node, q, pid, lambda a: a.set_trap_exit(True))
    await run_in(node, q, pid, lambda a: a.link(alias))
    err = RuntimeError("meta failed")
    node.send_exit_meta(alias, err)
    assert await receive(q) == (node.pid, gen.MessageExitAlias(alias, err))


async def test_untrapped_link_to_meta_alias_terminates_the_watcher(node: ergopy.Node) -> None:
    pid, q, alias, _meta = await started(node)
    watcher, wq = await host(node)
    await run_in(node, wq, watcher, lambda a: a.link(alias))
    await run_in(node, q, pid, lambda a: a.monitor(watcher))
    err = RuntimeError("meta failed")
    node.send_exit_meta(alias, err)
    assert await receive(q) == (watcher, gen.MessageDownPID(watcher, err))


async def test_a_start_that_terminate_does_not_wake_is_cancelled_and_stop_stays_prompt(node: ergopy.Node) -> None:
    mq: asyncio.Queue[Any] = asyncio.Queue()

    class Sleeper(gen.MetaBehavior):
        def init(self, process: gen.MetaProcess) -> None:
            self.process = process

        async def start(self) -> None:
            mq.put_nowait("sleeping")
            try:
                await asyncio.sleep(3600)  # terminate() below does not wake this
            except asyncio.CancelledError:
                mq.put_nowait("cancelled")
                raise

        def terminate(self, reason: BaseException) -> None:
            mq.put_nowait(("terminate", reason))

    class Owner(act.Actor):
        def init(self) -> None:
            self.spawn_meta(Sleeper(), gen.MetaOptions())

    await node.spawn(Owner)
    assert await receive(mq) == "sleeping"
    async with asyncio.timeout(2):  # well under stop_timeout (5 s): the grace is short
        await node.stop()
    assert await receive(mq) == ("terminate", gen.TERMINATE_REASON_SHUTDOWN)
    assert await receive(mq) == "cancelled"


# ---- robustness (issue 9 §4/§5) ----------------------------------------------------------------------


def cancelled_result(m: Meta) -> None:
    """What ``fut.result()`` of a cancelled future does: raise ``CancelledError``."""
    fut = asyncio.get_running_loop().create_future()
    fut.cancel()
    fut.result()


class AsyncMeta(Meta):
    async def handle_message(self, from_: gen.PID, message: Any) -> Any:  # type: ignore[override]
        await asyncio.sleep(0)
        return super().handle_message(from_, message)


@pytest.mark.parametrize("behavior", [Meta, AsyncMeta])
async def test_a_meta_handler_raising_cancelled_error_terminates_the_meta_process(
    node: ergopy.Node, behavior: type[Meta]
) -> None:
    """A sync handler raising a BaseException that is not an Exception left the meta-process
    RUNNING with its mailbox never drained; an async one ended as if killed."""
    mq: asyncio.Queue[Any] = asyncio.Queue()
    _pid, _q, alias = await spawn_meta(node, behavior(mq))
    assert await receive(mq) == "started"
    node.send(alias, cancelled_result)
    kind, reason = await receive(mq)
    assert kind == "terminated" and isinstance(reason, asyncio.CancelledError)
    with pytest.raises(gen.MetaUnknownError):
        node.meta_info(alias)


@pytest.mark.parametrize("reason", [gen.TERMINATE_REASON_NORMAL, gen.TERMINATE_REASON_SHUTDOWN])
async def test_a_meta_handler_raising_a_normal_reason_stops_quietly(
    node: ergopy.Node, caplog: pytest.LogCaptureFixture, reason: BaseException
) -> None:
    caplog.set_level(logging.DEBUG, logger="ergopy")
    _pid, _q, alias, meta = await started(node)

    def stop(m: Meta) -> None:
        raise reason

    node.send(alias, stop)
    assert await receive(meta.queue) == ("terminated", reason)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_a_meta_handle_call_returning_normal_stops_without_replying(node: ergopy.Node) -> None:
    """As for a process (Go's ``return nil, gen.TerminateReasonNormal``): no reply, a stop."""

    class Quitter(Meta):
        def handle_call(self, from_: gen.PID, ref: gen.Ref, request: Any) -> Any:
            return gen.TERMINATE_REASON_NORMAL

    mq: asyncio.Queue[Any] = asyncio.Queue()
    _pid, _q, alias = await spawn_meta(node, Quitter(mq))
    assert await receive(mq) == "started"
    with pytest.raises(gen.TimeoutError):
        await node.call(alias, "bye", timeout=0.3)
    assert await receive(mq) == ("terminated", gen.TERMINATE_REASON_NORMAL)


# ---- a message handled in the sender's call --------------------------------------------------------


class Recorder(gen.MetaBehavior):
    """Records what it handles; a ``("self", n)`` message makes it send ``n - 1`` to itself,
    ``("forward", alias, hops)`` passes ``hops - 1`` on to ``alias`` (another ``Recorder``)."""

    def __init__(self, queue: asyncio.Queue[Any]) -> None:
        self.queue = queue
        self.log: list[Any] = []
        self.depth = 0
        self.next: gen.Alias | None = None

    def init(self, process: gen.MetaProcess) -> None:
        self.process = process

    def handle_message(self, from_: gen.PID, message: Any) -> Any:
        self.depth += 1
        assert self.depth == 1, "a meta-process handler ran inside its own handler"
        self.log.append(message)
        try:
            if type(message) is tuple and message[0] == "self" and message[1] > 0:
                self.process.send(self.process.id, ("self", message[1] - 1))
                self.log.append(("sent", message[1] - 1))
            elif type(message) is tuple and message[0] == "hop":
                if self.next is not None:
                    self.process.send(self.next, message)
                else:
                    self.queue.put_nowait(("end of chain", message))
                return None
            elif message == "boom":
                raise ValueError("boom")
            self.queue.put_nowait(("handled", message))
        finally:
            self.depth -= 1
        return None

    def terminate(self, reason: BaseException) -> None:
        self.queue.put_nowait(("terminated", reason))


class Sender(act.Actor):
    """Sends what it is told to an alias, and reports what followed the send."""

    def init(self, queue: asyncio.Queue[Any]) -> None:
        self.queue = queue

    def handle_message(self, from_: gen.PID, message: Any) -> Any:
        alias, what, meta = message
        self.send_alias(alias, what)
        self.queue.put_nowait(("sent", what, list(meta.log)))
        return None


async def recorder_and_sender(
    node: ergopy.Node,
) -> tuple[gen.Alias, Recorder, asyncio.Queue[Any], gen.PID, asyncio.Queue[Any]]:
    """A ``Recorder`` meta-process (with its queue) and a ``Sender`` process (with its queue)."""
    mq: asyncio.Queue[Any] = asyncio.Queue()
    meta = Recorder(mq)
    _pid, _, alias = await spawn_meta(node, meta)
    sq: asyncio.Queue[Any] = asyncio.Queue()
    return alias, meta, mq, await node.spawn(Sender, None, sq), sq


async def test_an_idle_sync_meta_handles_a_message_within_the_senders_call(node: ergopy.Node) -> None:
    """The fast path of every WebSocket reply: a worker's send to an asleep, sync, unbounded
    meta-process is handled before the send returns (what it sees after the send proves it)."""
    alias, meta, mq, sender, sq = await recorder_and_sender(node)
    node.send(sender, (alias, "one", meta))
    assert await receive(sq) == ("sent", "one", ["one"])
    assert await receive(mq) == ("handled", "one")
    assert node.meta_info(alias)["state"] == "sleep"


async def test_a_meta_sending_to_itself_handles_it_after_the_current_message_in_order(node: ergopy.Node) -> None:
    mq: asyncio.Queue[Any] = asyncio.Queue()
    meta = Recorder(mq)
    _pid, _, alias = await spawn_meta(node, meta)
    node.send(alias, ("self", 3))
    for n in (3, 2, 1, 0):
        assert await receive(mq) == ("handled", ("self", n))
    assert meta.log == [("self", 3), ("sent", 2), ("self", 2), ("sent", 1), ("self", 1), ("sent", 0), ("self", 0)]


async def test_a_long_chain_of_metas_forwarding_is_queued_past_the_nesting_bound(node: ergopy.Node) -> None:
    """Meta-processes forwarding to each other nest at most ``INLINE_DEPTH`` handlers in one
    call: a chain far longer than the recursion limit still delivers, with no RecursionError."""
    import sys

    mq: asyncio.Queue[Any] = asyncio.Queue()
    hops = sys.getrecursionlimit() + 100
    metas = [Recorder(mq) for _ in range(hops)]
    pid, q = await host(node)
    aliases = [await run_in(node, q, pid, lambda a, m=m: a.spawn_meta(m, gen.MetaOptions())) for m in metas]
    for m, nxt in zip(metas, aliases[1:], strict=False):
        m.next = nxt
    node.send(aliases[0], ("hop",))
    assert await receive(mq, timeout=30) == ("end of chain", ("hop",))
    assert all(m.log == [("hop",)] for m in metas)
    assert all(node.meta_info(a)["state"] == "sleep" for a in aliases)


async def test_a_meta_raising_in_the_senders_call_ends_the_meta_not_the_sender(node: ergopy.Node) -> None:
    alias, meta, mq, sender, sq = await recorder_and_sender(node)
    node.send(sender, (alias, "boom", meta))
    kind, reason = await receive(mq)
    assert kind == "terminated" and isinstance(reason, ValueError)
    assert await receive(sq) == ("sent", "boom", ["boom"])
    assert node.process_info(sender)["state"] == "sleep"
    node.send(alias, "late")  # gone: a dead letter, not an error
    assert node.stats()["dead_letters_alias_unknown"] == 1


async def test_an_actor_reaches_a_meta_by_a_copy_of_its_alias_and_its_mailbox_rules_hold(node: ergopy.Node) -> None:
    """An actor's send to a meta-process's alias (the sender's alias branch, beside the
    router's): a copy of the alias, as EDF decodes one off the network, reaches it; a full
    bounded mailbox raises to the actor; a meta-process that ended is a dead letter."""
    pid, q, alias, meta = await started(node)
    copy = gen.Alias(alias.node, alias.creation, alias.id)
    assert copy is not alias
    await run_in(node, q, pid, lambda a: a.send_alias(copy, "by a copy"))
    assert await receive(meta.queue) == ("meta got", pid, "by a copy")
    earlier = gen.Alias(alias.node, alias.creation - 1, alias.id)  # the same ID on an earlier node
    await run_in(node, q, pid, lambda a: (a.send_alias(earlier, "not for it"), a.send_alias(alias, "marker")))
    assert await receive(meta.queue) == ("meta got", pid, "marker")
    assert node.stats()["dead_letters_alias_unknown"] == 1

    bounded_pid, bq, bounded = await spawn_meta(node, Meta(asyncio.Queue()), gen.MetaOptions(mailbox_size=1))

    def two(a: act.Actor) -> None:
        a.send_alias(bounded, 1)
        a.send(bounded, 2)

    with pytest.raises(gen.MetaMailboxFullError):
        await run_in(node, bq, bounded_pid, two)

    node.send(alias, lambda m: gen.TERMINATE_REASON_NORMAL)
    assert (await receive(meta.queue))[0] == "terminated"
    await run_in(node, q, pid, lambda a: (a.send_alias(copy, "late"), a.send(alias, "later")))
    assert node.stats()["dead_letters_alias_unknown"] == 3

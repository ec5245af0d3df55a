"""Sending to something that is gone is not an error (issue 9 §1).

Erlang's rule, and the only one that holds once the target is on another node: a
``send`` / ``send_pid`` / ``send_alias`` to a PID or alias that no longer exists drops
the message, counts it in ``node.stats()`` under a ``dead_letters_*`` key per cause,
and logs it at debug level. What the sender must know still raises: a name that is
not registered (a programmer's contract, Erlang's badarg), a ``call`` (the caller
waits for an answer), a full mailbox, a target on another node (no network yet).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from conftest import Runner, receive, run_in

import ergopy
from ergopy import act, gen


async def dead_pid(node: ergopy.Node) -> gen.PID:
    """The PID of a process that has terminated."""
    q: asyncio.Queue[Any] = asyncio.Queue()
    pid = await node.spawn(Runner, None, q)
    node.send_exit(pid, gen.TERMINATE_REASON_NORMAL)
    assert (await receive(q))[0] == "terminated"
    return pid


async def dead_alias(node: ergopy.Node, host: gen.PID, q: asyncio.Queue[Any]) -> gen.Alias:
    """The alias of a meta-process (owned by ``host``, a Runner) that has terminated."""
    alias = await run_in(node, q, host, lambda a: a.spawn_meta(gen.MetaBehavior()))
    await run_in(node, q, host, lambda a: a.monitor(alias))
    node.send_exit_meta(alias, gen.TERMINATE_REASON_NORMAL)
    assert await receive(q) == gen.MessageDownAlias(alias, gen.TERMINATE_REASON_NORMAL)
    return alias


def dead_letters(node: ergopy.Node) -> dict[str, int]:
    return {k: v for k, v in node.stats().items() if k.startswith("dead_letters_")}


async def test_node_send_to_a_terminated_pid_is_dropped_and_counted(node: ergopy.Node) -> None:
    pid = await dead_pid(node)
    node.send(pid, "late")
    node.send_pid(pid, "later")
    node.send_with_priority(pid, "urgent", gen.MessagePriority.MAX)
    assert dead_letters(node) == {
        "dead_letters_pid_unknown": 3,
        "dead_letters_alias_unknown": 0,
        "dead_letters_terminated": 0,
    }
    assert node.dead_letters()["dead_letters_pid_unknown"] == 3


async def test_send_to_a_pid_never_spawned_or_of_an_earlier_incarnation_is_a_dead_letter(node: ergopy.Node) -> None:
    pid = await node.spawn(act.Actor)
    node.send(gen.PID(node.name, 999_999, node.creation), "x")
    node.send(gen.PID(node.name, pid.id, node.creation - 1), "x")  # same ID, an earlier node
    assert node.stats()["dead_letters_pid_unknown"] == 2


async def test_node_send_alias_to_an_alias_that_is_gone_is_dropped_and_counted(node: ergopy.Node) -> None:
    q: asyncio.Queue[Any] = asyncio.Queue()
    host = await node.spawn(Runner, None, q)
    alias = await dead_alias(node, host, q)
    node.send_alias(alias, "late")
    node.send(alias, "later")
    node.send(gen.Alias(node.name, node.creation, (1, 2, 3)), "never existed")
    assert node.stats()["dead_letters_alias_unknown"] == 3


async def test_an_actor_sending_to_a_closed_connection_keeps_running(node: ergopy.Node) -> None:
    """The README's trap: a worker echoing to a connection that has just closed was killed
    by the ProcessUnknownError its ``send_alias`` raised. Now every form of send from an
    actor (the router fast path and the slow one) drops it, and the actor lives on."""
    q: asyncio.Queue[Any] = asyncio.Queue()
    worker = await node.spawn(Runner, None, q)
    alias = await dead_alias(node, worker, q)
    gone = await dead_pid(node)

    def send_all(a: act.Actor) -> str:
        a.send_alias(alias, "echo")
        a.send(alias, "echo")
        a.send(gone, "hi")
        a.send_pid(gone, "hi")
        a.send_with_priority(gone, "hi", gen.MessagePriority.HIGH)
        a.send_after(gone, "hi", 0)  # dropped when the timer fires, also counted
        a.send_after(a.pid, "timers fired", 0)  # timers due at once fire in order
        return "still here"

    assert await run_in(node, q, worker, send_all) == "still here"
    assert await receive(q) == "timers fired"
    assert await run_in(node, q, worker, lambda a: a.pid) == worker
    assert node.stats()["dead_letters_alias_unknown"] == 2
    assert node.stats()["dead_letters_pid_unknown"] == 4


async def test_a_meta_process_sending_to_a_gone_pid_keeps_running(node: ergopy.Node) -> None:
    q: asyncio.Queue[Any] = asyncio.Queue()
    host = await node.spawn(Runner, None, q)
    gone = await dead_pid(node)
    sent: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    class Sender(gen.MetaBehavior):
        def init(self, process: gen.MetaProcess) -> None:
            self.process = process

        def handle_message(self, from_: gen.PID, message: Any) -> Any:
            self.process.send(gone, message)
            sent.set_result("sent")
            return None

    alias = await run_in(node, q, host, lambda a: a.spawn_meta(Sender()))
    node.send(alias, "hello")
    assert await asyncio.wait_for(sent, 5) == "sent"
    assert node.meta_info(alias)["state"] != "terminated"
    assert node.stats()["dead_letters_pid_unknown"] == 1


async def test_send_to_a_name_that_is_not_registered_still_raises(node: ergopy.Node) -> None:
    with pytest.raises(gen.ProcessUnknownError):
        node.send("nobody", "x")
    with pytest.raises(gen.ProcessUnknownError):
        node.send(gen.ProcessID("nobody", node.name), "x")
    q: asyncio.Queue[Any] = asyncio.Queue()
    pid = await node.spawn(Runner, None, q)
    with pytest.raises(gen.ProcessUnknownError):
        await run_in(node, q, pid, lambda a: a.send("nobody", "x"))
    assert not any(dead_letters(node).values())


async def test_a_call_to_a_pid_or_alias_that_is_gone_still_raises(node: ergopy.Node) -> None:
    q: asyncio.Queue[Any] = asyncio.Queue()
    host = await node.spawn(Runner, None, q)
    pid = await dead_pid(node)
    alias = await dead_alias(node, host, q)
    with pytest.raises(gen.ProcessUnknownError):
        await node.call(pid, "anyone?", timeout=1)
    with pytest.raises(gen.ProcessUnknownError):
        await node.call(alias, "anyone?", timeout=1)
    assert not any(dead_letters(node).values())


async def test_a_full_mailbox_still_raises_mailbox_full(node: ergopy.Node) -> None:
    """The target exists but can not take it: the sender must know."""
    q: asyncio.Queue[Any] = asyncio.Queue()
    host = await node.spawn(Runner, None, q)
    pid = await node.spawn(act.Actor, gen.ProcessOptions(mailbox_size=1))

    def flood(a: act.Actor) -> None:
        a.send(pid, 1)  # the receiver runs only once this callback returns
        a.send(pid, 2)

    with pytest.raises(gen.MailboxFullError):
        await run_in(node, q, host, flood)


async def test_a_pid_or_alias_on_another_node_still_raises_no_connection(node: ergopy.Node) -> None:
    """Remote routing belongs to the network layer; until then the sender is told."""
    with pytest.raises(gen.NoConnectionError):
        node.send(gen.PID(gen.Atom("other@localhost"), 1001, 1), "x")
    with pytest.raises(gen.NoConnectionError):
        node.send_alias(gen.Alias(gen.Atom("other@localhost"), 1, (1, 2, 3)), "x")


async def test_a_dead_letter_is_logged_at_debug_only(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="ergopy")
    for level, expected in ((gen.LogLevel.INFO, 0), (gen.LogLevel.DEBUG, 1)):
        caplog.clear()
        n = await ergopy.start_node(f"deadletters{level.name}@localhost", gen.NodeOptions(log_level=level))
        try:
            n.send(gen.PID(n.name, 999_999, n.creation), "x")
            records = [r for r in caplog.records if "dead letter" in r.getMessage()]
            assert len(records) == expected
            assert all(r.levelno == logging.DEBUG for r in records)
        finally:
            await n.stop()


async def test_dead_letters_are_not_left_behind_things(node: ergopy.Node) -> None:
    """``stats()`` keeps live counts apart: a node that only dropped letters has nothing alive."""
    node.send(gen.PID(node.name, 999_999, node.creation), "x")
    await node.stop()
    live = {k: v for k, v in node.stats().items() if not k.startswith("dead_letters_")}
    assert not any(live.values())
    assert node.stats()["dead_letters_pid_unknown"] == 1


async def test_a_send_after_the_node_stopped_raises_node_terminated(node: ergopy.Node) -> None:
    """Not the target but the sender's own node is gone: that is the caller's error."""
    pid = await node.spawn(act.Actor)
    await node.stop()
    with pytest.raises(gen.NodeTerminatedError):
        node.send(pid, "x")


async def test_an_actor_streaming_to_a_pid_that_terminates_gets_dead_letters_and_lets_the_record_go(
    node: ergopy.Node,
) -> None:
    """An actor's send keeps the last PID it sent to and that process's record (one lookup for a
    stream of sends). Once the process has terminated, the very same PID object is a dead letter,
    the record is not used and not kept; a bounded mailbox of the next target is still enforced."""
    import gc
    import weakref

    q: asyncio.Queue[Any] = asyncio.Queue()
    sender = await node.spawn(Runner, None, q)
    target_q: asyncio.Queue[Any] = asyncio.Queue()
    target = await node.spawn(Runner, None, target_q)

    def stream(a: act.Actor) -> int:
        for i in range(3):
            a.send(target, i)
        return 3

    assert await run_in(node, q, sender, stream) == 3
    assert [await receive(target_q) for _ in range(3)] == [0, 1, 2]
    # the record the sender's send now keeps (slots: no weak reference), seen through its behaviour
    record = weakref.ref(node._procs[target.id].behavior)
    node.send_exit(target, gen.TERMINATE_REASON_NORMAL)
    assert (await receive(target_q))[0] == "terminated"
    assert await run_in(node, q, sender, stream) == 3
    assert target_q.empty()
    assert dead_letters(node)["dead_letters_pid_unknown"] == 3
    gc.collect()
    assert record() is None, "the sender still holds the record of a process that has terminated"

    bounded = await node.spawn(Runner, gen.ProcessOptions(mailbox_size=1), target_q)

    def overfill(a: act.Actor) -> str:
        a.send(bounded, "first")  # queued: the bounded process runs after this callback
        try:
            a.send(bounded, "second")
        except gen.MailboxFullError:
            return "full"
        return "not full"

    assert await run_in(node, q, sender, overfill) == "full"
    assert await receive(target_q) == "first"

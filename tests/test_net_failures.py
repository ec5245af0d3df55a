"""Failures of the network layer: simultaneous connects that must converge, peers
killed with ``kill -9`` (real OS processes, ``tests/net_node_proc.py``), many
connect/kill cycles, and the wire shape of answers Go checks strictly."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest
from conftest import Runner, receive, run_in
from test_net_connection import HOST, Seam, options
from test_net_enp import ATOMS_OF_SENDER, DECODE, ENCODE, FRAMES

import ergopy
from ergopy import act, gen
from ergopy.net import edf, enp, proto_types
from ergopy.net.connection import Endpoint


async def _dial_while_accepting() -> None:
    a_seam, b_seam = Seam(), Seam()
    a = Endpoint(options("a@localhost", pool_size=1), a_seam)
    b = Endpoint(options("b@localhost", pool_size=1), b_seam)
    links_to_b = 0
    new_link = b._new_link

    def counted() -> Any:
        nonlocal links_to_b
        links_to_b += 1
        return new_link()

    b._new_link = counted  # type: ignore[method-assign]
    crossing: list[asyncio.Task[Any]] = []
    checked = a._taken
    try:
        port_a = await a.listen(HOST, 0)
        port_b = await b.listen(HOST, 0)

        def taken(peer: str) -> bool:
            refused = checked(peer)
            if not crossing:  # b's link is past the check: now a dials b
                crossing.append(asyncio.get_running_loop().create_task(a.connect(HOST, port_b, "b@localhost")))
            return refused

        a._taken = taken  # type: ignore[method-assign]
        conn_b = await b.connect(HOST, port_a, "a@localhost")
        async with asyncio.timeout(5):
            while not crossing:
                await a.changes.wait()
            conn_a = await crossing[0]
        assert conn_a.id == conn_b.id
        assert a.connections == {"b@localhost": conn_a} and b.connections == {"a@localhost": conn_b}
        assert a_seam.lost.empty() and b_seam.lost.empty()
        assert links_to_b == 0  # a never dialled: no second connection was started
    finally:
        for task in crossing:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        await b.close()
        await a.close()


async def test_a_dial_started_while_the_peers_link_is_being_accepted_waits_for_it() -> None:
    """a (the smaller name) accepts b's first link past its check *before* it starts
    dialling b itself: a must not open a second connection (each side could keep a
    different one, or a's dial be refused and a left with none) but use b's."""
    for _ in range(20):
        await _dial_while_accepting()


# ---- the answer to an event link/monitor: Go's own bytes ------------------------------------


class _Ticker(act.Actor):
    """Registers the event "ticks" with no buffer (no history to send)."""

    def init(self) -> None:
        self.register_event("ticks", gen.EventOptions())


@pytest.mark.parametrize("relation", ["link", "monitor"])
async def test_an_event_without_history_is_answered_with_gos_typed_nil_slice(
    net_pair: tuple[ergopy.Node, ergopy.Node], relation: str
) -> None:
    """Go checks ``MessageResult.Result.([]gen.MessageEvent)`` and answers ErrMalformed
    to a bare nil: b's answer must be the typed nil slice Go itself sent (transcript
    step 21, F55), byte for byte once encoded with alpha's tables and F55's ref."""
    a, b = net_pair
    await b.spawn_register("ticker", _Ticker)
    answers: asyncio.Queue[Any] = asyncio.Queue()
    send_any = b.network._send_any

    def spy(conn: Any, value: Any, order: int, key: int) -> None:
        if isinstance(value, proto_types.MessageResult):
            answers.put_nowait(value)
        send_any(conn, value, order, key)

    b.network._send_any = spy  # type: ignore[method-assign]
    q: asyncio.Queue[Any] = asyncio.Queue()
    pid = await a.spawn(Runner, None, q, True)
    event = gen.Event("ticks", b.name)
    await run_in(a, q, pid, lambda p: (p.link_event if relation == "link" else p.monitor_event)(event))
    ours = await receive(answers)
    f55 = next(f for s, f in FRAMES if s == "alpha" and f[13:21] == b"\x82\x00\x04\x9d\x83\x10\x2a\xff")
    go = edf.decode(enp.decode_frame(f55, ATOMS_OF_SENDER["alpha"]).payload, DECODE["alpha"])
    same = proto_types.MessageResult(error=ours.error, result=ours.result, ref=go.ref)
    assert edf.encode(same, ENCODE["alpha"]) == enp.decode_frame(f55, ATOMS_OF_SENDER["alpha"]).payload

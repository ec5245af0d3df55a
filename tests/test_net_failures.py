"""Failures of the network layer: simultaneous connects that must converge, peers
killed with ``kill -9`` (real OS processes, ``tests/net_node_proc.py``), many
connect/kill cycles, and the wire shape of answers Go checks strictly."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from test_net_connection import HOST, Seam, options

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

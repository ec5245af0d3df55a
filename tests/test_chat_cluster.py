"""The chat across nodes (``ChatOptions.cluster``): rooms on their home node, members on any.

Node "a" runs in the test's own process (its network stats are read directly); the
other nodes are OS processes (``tests/chat_node_proc.py``) so that they can be
killed with ``kill -9``. Every node has a static route to every other, on ports
chosen up front, so that a killed node restarts where the others look for it.
Clients are real ``websockets`` connections to each node's own web port.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from asyncio.subprocess import PIPE
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
import websockets
from conftest import free_port
from websockets.asyncio.client import ClientConnection

import ergopy
from ergopy import gen
from ergopy.examples.chat import Chat, ChatOptions, start_chat
from ergopy.examples.chat.cluster import rendezvous

PROC = Path(__file__).with_name("chat_node_proc.py")
TIMEOUT = 10.0  # seconds for a frame we expect: far above any figure here, bounded
TOLD = 2.0  # seconds: the bound for "members are told" after a kill -9
A = "a@localhost"


class Cluster:
    """Node "a" in this process, the others as processes; all on fixed ENP ports."""

    def __init__(self, names: list[str], stack: AsyncExitStack) -> None:
        self.names = names
        self.ports = {n: free_port() for n in names}
        self.stack = stack
        self.procs: dict[str, asyncio.subprocess.Process] = {}
        self.urls: dict[str, str] = {}
        self.node: ergopy.Node | None = None
        self.chat: Chat | None = None

    def _routes(self, name: str) -> dict[str, gen.NetworkRoute]:
        return {n: gen.NetworkRoute(host="127.0.0.1", port=p) for n, p in self.ports.items() if n != name}

    async def start_a(self) -> ergopy.Node:
        options = gen.NetworkOptions(
            cookie="secret",
            acceptors=[gen.AcceptorOptions(host="127.0.0.1", port=self.ports[A])],
            registrar=False,
            routes=self._routes(A),
        )
        self.node = await ergopy.start_node(A, gen.NodeOptions(network=options, stop_timeout=5.0))
        self.chat = await start_chat(self.node, ChatOptions(port=0, workers=3, cluster=tuple(self.names)))
        self.urls[A] = self.chat.ws_url
        return self.node

    async def start(self, name: str) -> None:
        """Start node ``name`` as a process; returns once it is connected to every other node."""
        peers = [arg for n, p in self.ports.items() if n != name for arg in ("--peer", n, str(p))]
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(PROC), name, "secret", str(self.ports[name]), *peers, stdin=PIPE, stdout=PIPE
        )
        self.procs[name] = proc
        assert proc.stdout is not None
        async with asyncio.timeout(60):
            line = await proc.stdout.readline()
        assert line, f"node {name} ended before it was ready"
        self.urls[name] = json.loads(line)["ws_url"]

    def kill(self, name: str) -> None:
        self.procs[name].kill()  # SIGKILL: no goodbye on any socket

    def stop(self, name: str) -> None:
        """A graceful stop: ``node.stop()`` there (its stdin closes)."""
        stdin = self.procs[name].stdin
        assert stdin is not None
        stdin.close()

    async def reap(self, name: str) -> None:
        async with asyncio.timeout(10):
            await self.procs[name].wait()

    async def connected(self) -> None:
        """Until node "a" is connected to every node of the cluster that runs."""
        assert self.node is not None
        want = {n for n, p in self.procs.items() if p.returncode is None}
        async with asyncio.timeout(30):
            while not want <= set(self.node.network.nodes()):
                await self.node.network._endpoint.changes.wait()

    async def client(self, name: str) -> ClientConnection:
        # close_timeout: a client of a killed node gets no closing handshake; do not wait 10 s for one
        ws = websockets.connect(self.urls[name], open_timeout=TIMEOUT, close_timeout=1)
        return await self.stack.enter_async_context(ws)

    async def close(self) -> None:
        for proc in self.procs.values():
            if proc.returncode is None:
                proc.kill()
            async with asyncio.timeout(10):
                await proc.wait()
        if self.node is not None:
            await self.node.stop()


@pytest.fixture
async def cluster() -> AsyncIterator[Callable[[int], Any]]:
    """``await cluster(n)``: nodes a, b, c... (a here, the rest processes), all connected."""
    async with AsyncExitStack() as stack:
        made: list[Cluster] = []

        async def make(n: int) -> Cluster:
            c = Cluster([A, *(f"{chr(ord('b') + i)}@localhost" for i in range(n - 1))], stack)
            made.append(c)
            await c.start_a()
            await asyncio.gather(*(c.start(name) for name in c.names[1:]))
            await c.connected()
            return c

        try:
            yield make
        finally:
            await stack.aclose()  # the clients first
            for c in made:
                await c.close()


def room_on(home: str, names: list[str], then: str = "") -> str:
    """A room name whose home over ``names`` is ``home`` (and, with ``then``, whose home
    is ``then`` once ``home`` is gone)."""
    for i in range(10_000):
        room = f"room{i}"
        if rendezvous(room, names) == home and (not then or rendezvous(room, set(names) - {home}) == then):
            return room
    raise AssertionError("no such room name")


async def recv(ws: ClientConnection, timeout: float = TIMEOUT) -> dict[str, Any]:
    try:
        async with asyncio.timeout(timeout):
            frame = await ws.recv()
    except TimeoutError:
        pytest.fail(f"no frame within {timeout} s")
    assert isinstance(frame, str)
    result: dict[str, Any] = json.loads(frame)
    return result


async def until(ws: ClientConnection, done: Callable[[dict[str, Any]], bool], timeout: float = TIMEOUT) -> list[Any]:
    """Frames until (and including) the first for which ``done`` is true."""
    frames: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(timeout):
            while True:
                frames.append(json.loads(await ws.recv()))
                if done(frames[-1]):
                    return frames
    except TimeoutError:
        pytest.fail(f"not within {timeout} s; got {frames}")


async def send(ws: ClientConnection, **frame: Any) -> None:
    await ws.send(json.dumps(frame))


async def join_all(members: list[tuple[ClientConnection, str]], room: str) -> None:
    """Join one by one; each gets ``joined`` with the count so far, and everyone before
    it the join notice with that count."""
    for i, (ws, nick) in enumerate(members):
        await send(ws, type="join", nick=nick, room=room)
        assert await recv(ws) == {"type": "joined", "nick": nick, "room": room, "count": i + 1}
        notice = {"type": "presence", "event": "join", "nick": nick, "room": room, "count": i + 1}
        for earlier, _ in members[: i + 1]:
            assert await recv(earlier) == notice


def moved_back(count: int) -> Callable[[dict[str, Any]], bool]:
    """Done when the member is back in the room (``joined`` with ``moved``) and the room
    announced ``count`` members (a member that follows its room is announced with a
    ``count`` line, to itself too, not as a new join)."""
    state = {"back": False}

    def done(frame: dict[str, Any]) -> bool:
        if frame["type"] == "joined":
            assert frame.get("moved") is True, frame
            state["back"] = True
        else:
            assert frame["type"] == "presence" and frame["event"] == "count", frame
        return state["back"] and frame["type"] == "presence" and frame["count"] == count

    return done


async def lines_reach_everyone(members: list[tuple[ClientConnection, str]], room: str) -> None:
    """Each member says a line; every member gets every line exactly once (the next frame
    after them is a leave notice, not a copy)."""
    for ws, nick in members:
        await send(ws, type="say", text=f"hi from {nick}")
    expected = sorted(f"hi from {nick}" for _, nick in members)
    for ws, _ in members:
        got = [await recv(ws) for _ in members]
        assert all(f["type"] == "message" and f["room"] == room for f in got), got
        assert sorted(f["text"] for f in got) == expected
    last, last_nick = members[-1]
    await send(last, type="leave")
    assert await recv(last) == {"type": "left", "room": room}
    notice = {"type": "presence", "event": "leave", "nick": last_nick, "room": room, "count": len(members) - 1}
    for ws, _ in members[:-1]:
        assert await recv(ws) == notice


# ---- (a) members on different nodes, one room ---------------------------------------------------


@pytest.mark.parametrize("nodes", [2, 3])
async def test_members_on_every_node_get_every_line_once_with_right_counts(
    cluster: Callable[[int], Any], nodes: int
) -> None:
    c: Cluster = await cluster(nodes)
    for home in c.names:  # a room on each node in turn
        room = room_on(home, c.names)
        members = [(await c.client(n), f"{n[0]}{i}-{room}") for i in range(2) for n in c.names]
        await join_all(members, room)
        await lines_reach_everyone(members, room)


# ---- (b) one event frame per subscribing node ---------------------------------------------------


async def test_a_line_crosses_to_a_node_as_one_event_frame_whatever_its_members(
    cluster: Callable[[int], Any],
) -> None:
    """Room on a, one member on a and six on b (over b's three workers, so three
    subscribing processes there): each line is ONE frame from a to b."""
    c: Cluster = await cluster(2)
    assert c.node is not None
    b = c.names[1]
    room = room_on(A, c.names)
    speaker = await c.client(A)
    members = [(speaker, "speaker")] + [(await c.client(b), f"b{i}") for i in range(6)]
    await join_all(members, room)
    to_b = c.node.network.node(b)
    before = to_b.stats()["frames_out"]
    lines = 20
    for i in range(lines):
        await send(speaker, type="say", text=f"line {i}")
    for ws, _ in members:
        got = [await recv(ws) for _ in range(lines)]
        assert [f["text"] for f in got] == [f"line {i}" for i in range(lines)]
    assert to_b.stats()["frames_out"] - before == lines  # not 3 x (workers) nor 6 x (members)


# ---- (c) kill -9 of the node that holds the room ---------------------------------------------


async def test_kill_9_of_the_rooms_node_tells_its_members_within_2s_and_the_room_comes_back(
    cluster: Callable[[int], Any],
) -> None:
    c: Cluster = await cluster(3)
    b, cc = c.names[1], c.names[2]
    room = room_on(b, c.names)
    members = [(await c.client(A), "a0"), (await c.client(cc), "c0"), (await c.client(A), "a1")]
    doomed = await c.client(b)  # a member whose connection dies with b
    await join_all([*members, (doomed, "b0")], room)
    start = time.monotonic()
    c.kill(b)
    for ws, _ in members:
        assert await recv(ws, TOLD) == {"type": "moved", "room": room}
    told = time.monotonic() - start
    assert told < TOLD
    for ws, _ in members:  # the same connections: nobody reconnected
        await until(ws, moved_back(3))
    print(f"members told in {told * 1000:.0f} ms, room back in {(time.monotonic() - start) * 1000:.0f} ms")
    await c.reap(b)
    await lines_reach_everyone(members, room)


async def test_a_graceful_stop_of_the_rooms_node_moves_the_room_too(cluster: Callable[[int], Any]) -> None:
    """A node that stops ends its rooms first (reason ``shutdown``, while its connections
    are still up and its rooms supervisor may be gone): the members still follow the
    room to a live node."""
    c: Cluster = await cluster(3)
    b, cc = c.names[1], c.names[2]
    room = room_on(b, c.names)
    members = [(await c.client(A), "a0"), (await c.client(cc), "c0")]
    await join_all(members, room)
    start = time.monotonic()
    c.stop(b)
    for ws, _ in members:
        assert await recv(ws, TOLD) == {"type": "moved", "room": room}
    for ws, _ in members:
        await until(ws, moved_back(2))
    print(f"room back {(time.monotonic() - start) * 1000:.0f} ms after the stop began")
    await c.reap(b)
    await lines_reach_everyone(members, room)


async def test_a_room_of_30_over_three_nodes_moves_whole_after_a_kill_9(cluster: Callable[[int], Any]) -> None:
    """Ten members per node, room on b: b dies with its ten; the twenty others are told,
    all come back (the count says 20 to each), and a line reaches each of them once."""
    c: Cluster = await cluster(3)
    b = c.names[1]
    room = room_on(b, c.names)
    everyone = [(await c.client(n), f"{n[0]}{i}") for i in range(10) for n in c.names]
    await join_all(everyone, room)
    survivors = [(ws, nick) for ws, nick in everyone if not nick.startswith("b")]
    start = time.monotonic()
    c.kill(b)
    for ws, _ in survivors:
        assert await recv(ws, TOLD) == {"type": "moved", "room": room}
    told = time.monotonic() - start
    for ws, _ in survivors:
        await until(ws, moved_back(20))
    print(f"20 members told in {told * 1000:.0f} ms, all back in {(time.monotonic() - start) * 1000:.0f} ms")
    await c.reap(b)
    await lines_reach_everyone(survivors, room)


async def test_joins_racing_a_kill_9_of_the_rooms_node_all_end_in_one_room(cluster: Callable[[int], Any]) -> None:
    """Six members on a and c; b, the room's node, is killed while six more join on a
    and c at the same moment: everyone ends in one room of twelve, and a line from each
    reaches each once."""
    c: Cluster = await cluster(3)
    b, cc = c.names[1], c.names[2]
    room = room_on(b, c.names)
    first = [(await c.client(n), f"{n[0]}{i}") for i in range(3) for n in (A, cc)]
    await join_all(first, room)
    late = [(await c.client(n), f"{n[0]}late{i}") for i in range(3) for n in (A, cc)]
    c.kill(b)
    await asyncio.gather(*(send(ws, type="join", nick=nick, room=room) for ws, nick in late))
    everyone = first + late
    for ws, _ in everyone:
        frames = await until(ws, lambda f: f["type"] == "presence" and f["count"] == len(everyone))
        assert not [f for f in frames if f["type"] == "error"], frames
    await c.reap(b)
    await lines_reach_everyone(everyone, room)


# ---- (d) kill -9 of a node holding connections ------------------------------------------------


async def test_kill_9_of_a_node_with_members_drops_them_within_2s(cluster: Callable[[int], Any]) -> None:
    c: Cluster = await cluster(3)
    b, cc = c.names[1], c.names[2]
    room = room_on(A, c.names)
    stay = [(await c.client(A), "a0"), (await c.client(cc), "c0")]
    gone = [(await c.client(b), "b0"), (await c.client(b), "b1")]
    await join_all(stay + gone, room)
    start = time.monotonic()
    c.kill(b)
    for ws, _ in stay:
        frames = [await recv(ws, TOLD), await recv(ws, TOLD)]
        assert {(f["event"], f["nick"]) for f in frames} == {("leave", "b0"), ("leave", "b1")}
        assert sorted(f["count"] for f in frames) == [2, 3]
    told = time.monotonic() - start
    assert told < TOLD
    print(f"leaves told in {told * 1000:.0f} ms")
    await c.reap(b)
    await lines_reach_everyone(stay, room)


# ---- (e) the killed node comes back -----------------------------------------------------------


@pytest.mark.parametrize("nodes", [2, 3])
async def test_a_restarted_node_takes_its_rooms_back_and_nothing_is_lost_after(
    cluster: Callable[[int], Any], nodes: int
) -> None:
    """Room on b, members on a (and c); b is killed (the room moves to a), then started
    again: the room moves back to b, its members follow, and a newcomer on b joins them."""
    c: Cluster = await cluster(nodes)
    assert c.node is not None
    b = c.names[1]
    room = room_on(b, c.names, then=A)
    members = [(await c.client(A), "a0"), (await c.client(c.names[-1] if nodes > 2 else A), "x1")]
    await join_all(members, room)
    c.kill(b)
    for ws, _ in members:
        assert await recv(ws, TOLD) == {"type": "moved", "room": room}
    for ws, _ in members:
        await until(ws, moved_back(2))
    await c.reap(b)
    assert c.node.lookup_name(f"room:{room}") is not None  # the room lives on a meanwhile
    await c.start(b)  # same name, same port: a's dialler finds it again
    started = time.monotonic()
    for ws, _ in members:
        assert await recv(ws) == {"type": "moved", "room": room}
    for ws, _ in members:
        await until(ws, moved_back(2))
    print(f"room back on the restarted node {(time.monotonic() - started) * 1000:.0f} ms after it was up")
    newcomer = await c.client(b)
    all3 = [*members, (newcomer, "b0")]
    await send(newcomer, type="join", nick="b0", room=room)
    assert await recv(newcomer) == {"type": "joined", "nick": "b0", "room": room, "count": 3}
    for ws, _ in all3:
        assert await recv(ws) == {"type": "presence", "event": "join", "nick": "b0", "room": room, "count": 3}
    assert c.node.lookup_name(f"room:{room}") is None, "the room still runs on a after its home came back"
    await lines_reach_everyone(all3, room)


# ---- the page: a move needs no reload ---------------------------------------------------------


async def test_the_page_follows_its_room_to_another_node_without_reloading(
    cluster: Callable[[int], Any], browser: Any
) -> None:
    from playwright.async_api import expect

    c: Cluster = await cluster(2)
    b = c.names[1]
    room = room_on(b, c.names)
    page = await browser.new_page()
    await page.goto(c.urls[A].replace("ws://", "http://").removesuffix("ws"))
    await expect(page.locator("#status")).to_have_text("connected", timeout=TIMEOUT * 1000)
    await page.fill("#nick", "alice")
    await page.fill("#room", room)
    await page.click("#join")
    await expect(page.locator("#count")).to_have_text("1 user online", timeout=TIMEOUT * 1000)
    bob = await c.client(A)
    await send(bob, type="join", nick="bob", room=room)
    assert (await recv(bob))["count"] == 2
    assert (await recv(bob))["event"] == "join"
    await expect(page.locator("#count")).to_have_text("2 users online", timeout=TIMEOUT * 1000)
    loads: list[Any] = []
    page.on("load", lambda p: loads.append(p))
    c.kill(b)
    notices = page.locator("#messages li.presence")
    await expect(notices.filter(has_text="is moving to another server")).to_have_count(1, timeout=TOLD * 1000)
    await expect(notices.filter(has_text=f"the room is back: rejoined {room} as alice")).to_have_count(
        1, timeout=TIMEOUT * 1000
    )
    assert await recv(bob) == {"type": "moved", "room": room}
    await until(bob, moved_back(2))
    await expect(page.locator("#count")).to_have_text("2 users online", timeout=TIMEOUT * 1000)
    await page.fill("#text", "still here")
    await page.press("#text", "Enter")
    line = await recv(bob)
    assert (line["type"], line["nick"], line["text"]) == ("message", "alice", "still here")
    await expect(page.locator("#status")).to_have_text("connected")  # the same connection throughout
    assert loads == []  # and no reload
    await c.reap(b)


# ---- nodes that disagree on the live set ----------------------------------------------------


async def test_a_join_between_nodes_that_disagree_on_the_live_set_ends_in_an_error_not_a_loop(
    net_cluster: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Misconfigured: a's service is (a, b), b's is (b, c). For a room whose home is b by
    a's view and c by b's, b's rooms supervisor answers "not mine" and a's worker asks
    again every RETRY_INTERVAL, a bounded number of times, then tells the member."""
    from ergopy.examples.chat import worker

    monkeypatch.setattr(worker, "RETRY_LIMIT", 3)
    a = await net_cluster("a@localhost")
    b = await net_cluster("b@localhost")
    c = await net_cluster("c@localhost")
    chat_a = await start_chat(a, ChatOptions(port=0, workers=1, cluster=("a@localhost", "b@localhost")))
    await start_chat(b, ChatOptions(port=0, workers=1, cluster=("b@localhost", "c@localhost")))
    await start_chat(c, ChatOptions(port=0, workers=1, cluster=("b@localhost", "c@localhost")))
    async with asyncio.timeout(TIMEOUT):  # the diallers connect a to b and b to c
        for node, peer in ((a, "b@localhost"), (b, "c@localhost")):
            while peer not in node.network.nodes():
                await node.network._endpoint.changes.wait()
    room = next(
        f"room{i}"
        for i in range(10_000)
        if rendezvous(f"room{i}", ["a@localhost", "b@localhost"]) == "b@localhost"
        and rendezvous(f"room{i}", ["b@localhost", "c@localhost"]) == "c@localhost"
    )
    async with websockets.connect(chat_a.ws_url, open_timeout=TIMEOUT) as ws:
        start = time.monotonic()
        await send(ws, type="join", nick="alice", room=room)
        reply = await recv(ws)
        assert reply == {"type": "error", "error": f"cannot place room {room!r}: no node of the service takes it"}
        assert time.monotonic() - start >= 3 * worker.RETRY_INTERVAL  # it did ask again
        await send(ws, type="say", text="anyone?")
        assert await recv(ws) == {"type": "error", "error": "join a room first"}


async def test_a_room_whose_node_never_answers_ends_in_an_error_not_a_wait(
    net_cluster: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """b is in a's service and connected, but runs no chat: nothing answers a's OpenRoom
    there. a's worker asks again after OPEN_TIMEOUT, a bounded number of times."""
    from ergopy.examples.chat import worker

    monkeypatch.setattr(worker, "RETRY_LIMIT", 2)
    monkeypatch.setattr(worker, "OPEN_TIMEOUT", 0.2)
    a = await net_cluster("a@localhost")
    await net_cluster("b@localhost")
    chat_a = await start_chat(a, ChatOptions(port=0, workers=1, cluster=("a@localhost", "b@localhost")))
    await a.network.get_node("b@localhost")
    room = room_on("b@localhost", ["a@localhost", "b@localhost"])
    async with websockets.connect(chat_a.ws_url, open_timeout=TIMEOUT) as ws:
        start = time.monotonic()
        await send(ws, type="join", nick="alice", room=room)
        reply = await recv(ws)
        assert reply == {"type": "error", "error": f"cannot place room {room!r}: no node of the service takes it"}
        assert time.monotonic() - start >= 3 * worker.OPEN_TIMEOUT  # it waited for an answer each time


async def test_two_nodes_that_meet_late_merge_their_copies_of_a_room(net_cluster: Callable[..., Any]) -> None:
    """a and b serve the chat before they can reach each other (no route yet: a node
    started before its peers, or a healed partition), so each runs its own copy of the
    room. Once a can dial b, the copy that is not at its home ends and its members
    follow it: one room, every count right, every line to every member."""
    a = await net_cluster("a@localhost", registrar=False)
    b = await net_cluster("b@localhost", registrar=False)
    names = ("a@localhost", "b@localhost")
    chat_a = await start_chat(a, ChatOptions(port=0, workers=2, cluster=names))
    chat_b = await start_chat(b, ChatOptions(port=0, workers=2, cluster=names))
    room = room_on("b@localhost", list(names))
    async with AsyncExitStack() as stack:

        async def client(chat: Chat) -> ClientConnection:
            ws = websockets.connect(chat.ws_url, open_timeout=TIMEOUT, close_timeout=1)
            return await stack.enter_async_context(ws)

        on_a = [(await client(chat_a), f"a{i}") for i in range(2)]
        on_b = [(await client(chat_b), f"b{i}") for i in range(2)]
        await join_all(on_a, room)  # a's own copy of the room
        await join_all(on_b, room)  # and b's
        a.network.add_route("b@localhost", gen.NetworkRoute(host="127.0.0.1", port=b.network.acceptors()[0].port))
        for ws, _ in on_a:  # the copy on a is not at home: its members follow it to b
            assert await recv(ws) == {"type": "moved", "room": room}
        for ws, _ in on_a:
            await until(ws, moved_back(4))
        for ws, _ in on_b:
            await until(ws, lambda f: f["type"] == "presence" and f["count"] == 4)
        assert a.lookup_name(f"room:{room}") is None
        await lines_reach_everyone(on_a + on_b, room)

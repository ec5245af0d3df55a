"""The chat example (``python -m ergopy.examples.chat``) against real WebSocket clients.

Each test starts the chat's supervision tree on a fresh node, on a free port, and
talks to it with the ``websockets`` client, as a browser would.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from typing import Any

import aiohttp
import pytest
import websockets
from conftest import receive
from websockets.asyncio.client import ClientConnection

import ergopy
from ergopy import act, gen
from ergopy.examples.chat import Chat, ChatOptions, protocol, start_chat

TIMEOUT = 5.0


@pytest.fixture
async def chat(node: ergopy.Node) -> Chat:
    return await start_chat(node, ChatOptions(host="127.0.0.1", port=0, workers=3))


@pytest.fixture
async def clients(chat: Chat) -> AsyncIterator[Callable[[], Any]]:
    """``await clients()`` connects one more client; all are closed at the end."""
    async with AsyncExitStack() as stack:

        async def connect() -> ClientConnection:
            return await stack.enter_async_context(websockets.connect(chat.ws_url, open_timeout=TIMEOUT))

        yield connect


async def recv(ws: ClientConnection) -> dict[str, Any]:
    """The next frame, decoded; fails the test if none arrives in time."""
    try:
        async with asyncio.timeout(TIMEOUT):
            frame = await ws.recv()
    except TimeoutError:
        pytest.fail(f"no frame within {TIMEOUT} s")
    assert isinstance(frame, str), "the chat sends text frames"
    result: dict[str, Any] = json.loads(frame)
    return result


async def send(ws: ClientConnection, **frame: Any) -> None:
    await ws.send(json.dumps(frame))


async def join(ws: ClientConnection, nick: str, room: str = "lobby") -> dict[str, Any]:
    """Join, and return the ``joined`` reply after consuming one's own join notice."""
    await send(ws, type="join", nick=nick, room=room)
    joined = await recv(ws)
    assert joined["type"] == "joined", joined
    own = await recv(ws)
    assert own == {"type": "presence", "event": "join", "nick": nick, "room": room, "count": joined["count"]}
    return joined


async def test_join_replies_joined_with_the_room_count(clients: Callable[[], Any]) -> None:
    alice = await clients()
    assert await join(alice, "alice") == {"type": "joined", "nick": "alice", "room": "lobby", "count": 1}


async def test_a_join_is_announced_to_the_members_with_the_new_count(clients: Callable[[], Any]) -> None:
    alice, bob = await clients(), await clients()
    await join(alice, "alice")
    assert (await join(bob, "bob"))["count"] == 2
    assert await recv(alice) == {"type": "presence", "event": "join", "nick": "bob", "room": "lobby", "count": 2}


async def test_say_reaches_every_member_including_the_sender(clients: Callable[[], Any]) -> None:
    members = [await clients() for _ in range(5)]  # spread over the 3 workers
    for i, ws in enumerate(members):
        await join(ws, f"user{i}")
        for earlier in members[:i]:
            assert (await recv(earlier))["event"] == "join"
    await send(members[2], type="say", text="hello, room")
    for ws in members:
        line = await recv(ws)
        assert line["type"] == "message"
        assert (line["nick"], line["text"], line["room"]) == ("user2", "hello, room", "lobby")
        assert isinstance(line["ts"], int)


async def test_lines_stay_in_their_room(clients: Callable[[], Any]) -> None:
    alice, bob = await clients(), await clients()
    await join(alice, "alice", "red")
    await join(bob, "bob", "blue")
    await send(alice, type="say", text="only red")
    assert (await recv(alice))["text"] == "only red"
    await send(bob, type="say", text="only blue")
    assert (await recv(bob))["text"] == "only blue"  # and not "only red" first


async def test_leave_replies_left_and_tells_the_others(clients: Callable[[], Any]) -> None:
    alice, bob = await clients(), await clients()
    await join(alice, "alice")
    await join(bob, "bob")
    await recv(alice)  # bob's join
    await send(bob, type="leave")
    assert await recv(bob) == {"type": "left", "room": "lobby"}
    assert await recv(alice) == {"type": "presence", "event": "leave", "nick": "bob", "room": "lobby", "count": 1}
    await send(bob, type="say", text="still there?")
    assert await recv(bob) == {"type": "error", "error": "join a room first"}


async def test_a_disconnect_leaves_the_room_with_a_leave_notice(clients: Callable[[], Any]) -> None:
    alice, bob = await clients(), await clients()
    await join(alice, "alice")
    await join(bob, "bob")
    await recv(alice)
    await bob.close()
    assert await recv(alice) == {"type": "presence", "event": "leave", "nick": "bob", "room": "lobby", "count": 1}


async def test_joining_another_room_leaves_the_first(clients: Callable[[], Any]) -> None:
    alice, bob = await clients(), await clients()
    await join(alice, "alice")
    await join(bob, "bob")
    await recv(alice)
    await send(bob, type="join", nick="bob", room="other")
    assert await recv(bob) == {"type": "left", "room": "lobby"}  # said before the new room's joined
    assert await recv(bob) == {"type": "joined", "nick": "bob", "room": "other", "count": 1}
    assert await recv(alice) == {"type": "presence", "event": "leave", "nick": "bob", "room": "lobby", "count": 1}


async def test_a_taken_nick_is_refused_whatever_its_case(clients: Callable[[], Any]) -> None:
    alice, other = await clients(), await clients()
    await join(alice, "alice")
    await send(other, type="join", nick="ALICE", room="lobby")
    reply = await recv(other)
    assert reply["type"] == "error" and "taken" in reply["error"]
    await send(other, type="say", text="hi")
    assert await recv(other) == {"type": "error", "error": "join a room first"}
    assert (await join(other, "alice2"))["count"] == 2


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        ("not json", "not valid JSON"),
        ("[1, 2]", "a message is a JSON object with a 'type'"),
        ('{"type": "dance"}', "unknown message type 'dance': use join, say or leave"),
        ('{"type": "join", "room": "lobby"}', "'nick' must be a non-empty string"),
        ('{"type": "join", "nick": "   ", "room": "lobby"}', "'nick' must be a non-empty string"),
        ('{"type": "join", "nick": 7, "room": "lobby"}', "'nick' must be a non-empty string"),
        ('{"type": "join", "nick": "' + "n" * 33 + '", "room": "lobby"}', "'nick' is longer than 32 characters"),
        ('{"type": "join", "nick": "a\\u0007b", "room": "lobby"}', "'nick' contains control characters"),
        ('{"type": "join", "nick": "alice"}', "'room' must be a non-empty string"),
        ('{"type": "join", "nick": "alice", "room": "' + "r" * 33 + '"}', "'room' is longer than 32 characters"),
        (
            '{"type": "join", "nick": "alice", "room": "a b"}',
            "'room' may contain only letters, digits, '_', '.' and '-'",
        ),
        ('{"type": "say", "text": "hi"}', "join a room first"),
        ('{"type": "leave"}', "not in a room"),
    ],
)
async def test_bad_input_gets_an_error_and_the_connection_stays_usable(
    clients: Callable[[], Any], frame: str, error: str
) -> None:
    ws = await clients()
    await ws.send(frame)
    assert await recv(ws) == {"type": "error", "error": error}
    assert (await join(ws, "alice"))["count"] == 1


async def test_a_too_long_text_is_refused(clients: Callable[[], Any]) -> None:
    ws = await clients()
    await join(ws, "alice")
    await send(ws, type="say", text="x" * (protocol.MAX_TEXT + 1))
    assert await recv(ws) == {"type": "error", "error": "'text' is longer than 2000 characters"}


async def test_a_binary_frame_gets_an_error(clients: Callable[[], Any]) -> None:
    ws = await clients()
    await ws.send(b'{"type": "leave"}')
    assert await recv(ws) == {"type": "error", "error": "send JSON in text frames"}


async def test_a_frame_over_the_limit_closes_with_1009(clients: Callable[[], Any]) -> None:
    ws = await clients()
    await ws.send("x" * (protocol.MAX_FRAME + 1))
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await recv(ws)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


class Watcher(act.Actor):
    """Monitors the names it is sent and reports their ``MessageDownProcessID``."""

    def init(self, queue: asyncio.Queue[Any]) -> None:
        self.queue = queue

    def handle_message(self, from_: gen.PID, message: Any) -> None:
        if isinstance(message, str):
            self.monitor(message)
            self.queue.put_nowait("monitoring")
        else:
            self.queue.put_nowait(message)


async def test_a_room_process_ends_with_its_last_member(node: ergopy.Node, clients: Callable[[], Any]) -> None:
    alice = await clients()
    await join(alice, "alice", "tiny")
    q: asyncio.Queue[Any] = asyncio.Queue()
    watcher = await node.spawn(Watcher, None, q)
    node.send(watcher, "room:tiny")
    assert await receive(q) == "monitoring"
    await send(alice, type="leave")
    assert await recv(alice) == {"type": "left", "room": "tiny"}
    down = await receive(q)
    assert isinstance(down, gen.MessageDownProcessID) and down.process_id.name == "room:tiny"
    assert gen.is_normal(down.reason)
    assert (await join(alice, "alice", "tiny"))["count"] == 1  # a new room process


async def test_concurrent_joins_and_leaves_across_workers_keep_the_count(clients: Callable[[], Any]) -> None:
    """Rooms end and restart under the churn; joins caught in an ending room's mailbox are retried."""
    users = [await clients() for _ in range(12)]

    async def churn(i: int, ws: ClientConnection) -> None:
        for _ in range(10):
            await send(ws, type="join", nick=f"u{i}", room="busy")
            while (await recv(ws))["type"] != "joined":
                pass
            await send(ws, type="leave")
            while (await recv(ws))["type"] != "left":
                pass

    await asyncio.gather(*(churn(i, ws) for i, ws in enumerate(users)))
    observer = await clients()
    assert (await join(observer, "observer", "busy"))["count"] == 1


async def test_node_stop_closes_every_client_with_1001(node: ergopy.Node, clients: Callable[[], Any]) -> None:
    alice, bob = await clients(), await clients()
    await join(alice, "alice")
    await join(bob, "bob")
    await node.stop()
    for ws in (alice, bob):
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:
                await recv(ws)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001


async def test_the_page_is_served_at_the_root(chat: Chat) -> None:
    async with aiohttp.ClientSession() as http, http.get(chat.url) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/html")
        body = await resp.text()
    assert "ergopy chat" in body
    assert "http://" not in body and "https://" not in body  # no external URLs


async def test_a_second_chat_on_the_same_node_is_refused(node: ergopy.Node, chat: Chat) -> None:
    with pytest.raises(gen.TakenError):
        await start_chat(node, ChatOptions(port=0))


def test_the_command_prints_the_url_and_stops_on_sigint() -> None:
    """``python -m ergopy.examples.chat --port 0``: serves, prints where, and Ctrl-C closes clients with 1001."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "ergopy.examples.chat", "--port", "0", "--workers", "2"]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line.startswith("open http://127.0.0.1:"), line
            url = line.split()[1]

            async def client() -> int | None:
                async with websockets.connect(url.replace("http://", "ws://") + "ws") as ws:
                    assert (await join(ws, "alice"))["count"] == 1
                    proc.send_signal(signal.SIGINT)
                    with pytest.raises(websockets.ConnectionClosed) as closed:
                        await recv(ws)
                    return closed.value.rcvd.code if closed.value.rcvd else None

            assert asyncio.run(client()) == 1001
            out, err = proc.communicate(timeout=TIMEOUT)
        finally:
            proc.kill()
    assert proc.returncode == 0, err
    assert "chat: stopped" in out
    assert "Traceback" not in err and "error" not in err.lower(), err


def test_the_command_reports_a_busy_port(unused_tcp_port: int) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", unused_tcp_port))
        taken.listen()
        cmd = [sys.executable, "-m", "ergopy.examples.chat", "--port", str(unused_tcp_port)]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    assert done.stderr.startswith(f"chat: cannot start on 127.0.0.1:{unused_tcp_port}: the port is in use")
    assert len(done.stderr.splitlines()) == 1, done.stderr


async def test_node_stop_closes_an_idle_keep_alive_http_connection(node: ergopy.Node, chat: Chat) -> None:
    """A browser keeps the page's connection open; stopping must not wait for it."""
    async with aiohttp.ClientSession() as http:
        async with http.get(chat.url) as resp:
            await resp.read()
        async with asyncio.timeout(3):
            await node.stop()
    assert node.stats()["metas"] == 0


async def test_a_room_over_the_presence_limit_announces_counts_not_each_join(node: ergopy.Node) -> None:
    chat = await start_chat(node, ChatOptions(port=0, workers=2, presence_limit=2))
    async with websockets.connect(chat.ws_url) as a, websockets.connect(chat.ws_url) as b:
        await join(a, "a")
        await join(b, "b")
        assert (await recv(a))["nick"] == "b"  # the 2nd join is still announced
        async with websockets.connect(chat.ws_url) as c:
            await send(c, type="join", nick="c", room="lobby")
            assert (await recv(c))["count"] == 3  # joined; no presence line for "c"
            for ws in (a, b, c):
                assert await recv(ws) == {"type": "presence", "event": "count", "nick": "", "room": "lobby", "count": 3}


def test_the_fanout_benchmark_quick_runs() -> None:
    """``benchmarks/chat_fanout.py --quick`` runs and prints both paths (a smoke run: figures are not tests)."""
    script = os.path.join(os.path.dirname(__file__), "..", "benchmarks", "chat_fanout.py")
    cmd = [sys.executable, script, "--quick", "--server-cpu", "-1", "--client-cpu", "-1"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=50, check=True).stdout
    assert "N = 200 members in one room" in out
    assert "room: say -> send_event -> workers" in out
    assert "direct: N x node.send_alias" in out


# ---- what the chat across nodes builds on (tests/test_chat_cluster.py runs the nodes) -----------


def test_every_message_that_crosses_nodes_comes_back_equal_from_edf() -> None:
    """OpenRoom, RoomOpened, RoomJoin, RoomLeave, RoomSay, RoomJoined, RoomRefused and the
    line bytes are registered EDF types: encoded and decoded they are what was sent."""
    from ergopy.examples.chat import room
    from ergopy.net import edf

    alias = gen.Alias("a@localhost", 7, (1, 2, 3))
    samples = [
        room.OpenRoom("lobby"),
        room.RoomOpened("lobby"),
        room.RoomOpened("lobby", "no room for it", elsewhere=True),
        room.RoomJoin(alias, "alice"),
        room.RoomJoin(alias, "alice", moved=True),
        room.RoomLeave(alias),
        room.RoomSay(alias, "héllo"),
        room.RoomJoined("lobby", alias, "alice", 3),
        room.RoomRefused("lobby", alias, "taken"),
        protocol.message("lobby", "alice", "héllo"),
    ]
    assert {type(s) for s in samples} >= set(room.WIRE_TYPES)
    for sample in samples:
        assert edf.decode(edf.encode(sample)) == sample


def test_a_rooms_home_moves_only_when_its_own_node_comes_or_goes() -> None:
    """Rendezvous hashing: with a node gone, only the rooms that lived on it move (and
    they spread over the others); every process computes the same homes."""
    from ergopy.examples.chat.cluster import rendezvous

    nodes = ["n1@h", "n2@h", "n3@h", "n4@h"]
    rooms = [f"room{i}" for i in range(400)]
    homes = {r: rendezvous(r, nodes) for r in rooms}
    assert set(homes.values()) == set(nodes)  # every node holds some
    for gone in nodes:
        rest = [n for n in nodes if n != gone]
        after = {r: rendezvous(r, rest) for r in rooms}
        assert {r for r in rooms if after[r] != homes[r]} == {r for r in rooms if homes[r] == gone}
        assert len({after[r] for r in rooms if homes[r] == gone}) == 3
    assert homes == {r: rendezvous(r, reversed(nodes)) for r in rooms}  # order does not matter
    out = subprocess.run(
        [sys.executable, "-c", "from ergopy.examples.chat.cluster import rendezvous as r; print(r('room7', "
         f"{nodes!r}))"],
        capture_output=True, text=True, check=True, timeout=30,
    )  # fmt: skip
    assert out.stdout.strip() == homes["room7"]  # not Python's salted hash()


async def test_a_cluster_needs_the_node_network(node: ergopy.Node) -> None:
    with pytest.raises(gen.NotAllowedError):
        await start_chat(node, ChatOptions(port=0, cluster=(str.__str__(node.name), "other@localhost")))


async def test_reuse_port_lets_two_chats_listen_on_one_port(node: ergopy.Node) -> None:
    first = await start_chat(node, ChatOptions(port=0, reuse_port=True))
    other = await ergopy.start_node("reuse-port-peer@localhost")
    try:
        second = await start_chat(other, ChatOptions(port=first.port, reuse_port=True))
        assert second.port == first.port
        async with websockets.connect(first.ws_url, open_timeout=TIMEOUT) as ws:
            assert (await join(ws, "alice"))["count"] == 1
    finally:
        await other.stop()

"""The embedded registrar: the Go transcript's four packets byte for byte, and ergopy
nodes registering, resolving and taking over the server role for real on 127.0.0.1
(on a free port, never 4499)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ergopy import gen
from ergopy.net import handshake, registrar
from ergopy.net.registrar import (
    MessageRegisterReply,
    MessageRegisterRoutes,
    MessageResolveReply,
    MessageResolveRoutes,
    Registrar,
    RegistrarError,
)
from ergopy.net.types import Route

DATA = Path(__file__).parent / "data" / "ergo-wire"


def read_hex(name: str) -> bytes:
    return bytes.fromhex((DATA / name).read_text().replace("\n", ""))


def route(port: int, tls: bool = False) -> Route:
    return Route(
        host="",
        port=port,  # type: ignore[arg-type]
        tls=tls,
        handshake_version=handshake.HANDSHAKE_VERSION,
        proto_version=handshake.PROTO_VERSION,
    )


# ---- the transcript ------------------------------------------------------------------

F1 = read_hex("registrar-TCP-beta-to-alpha.hex")
F2 = read_hex("registrar-TCP-alpha-to-beta.hex")
F3 = read_hex("registrar-UDP-beta-to-alpha.hex")
F4 = read_hex("registrar-UDP-alpha-to-beta.hex")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (F1, MessageRegisterRoutes(node=gen.Atom("beta@localhost"), routes=[route(11145)])),
        (F2, MessageRegisterReply(error=None)),
        (F3, MessageResolveRoutes(node=gen.Atom("alpha@localhost"))),
        (F4, MessageResolveReply(routes=[route(11144)], error=None)),
    ],
    ids=["register", "register-reply", "resolve", "resolve-reply"],
)
def test_ergopy_writes_gos_registrar_packets_byte_exact(raw: bytes, message: object) -> None:
    assert registrar.encode_packet(message) == raw
    assert registrar.decode_packet(raw) == message


def test_packet_types_and_lengths_as_in_the_transcript() -> None:
    assert [p[1] for p in (F1, F2, F3, F4)] == [44, 45, 46, 47]
    assert [len(p) for p in (F1, F2, F3, F4)] == [120, 63, 78, 104]


def test_taken_and_unknown_errors_travel_as_gos_texts() -> None:
    taken = registrar.encode_packet(MessageRegisterReply(error=gen.TakenError("resource is taken")))
    assert taken.endswith(b"\x00\x11resource is taken")
    reply = registrar.decode_packet(taken, registrar.REGISTER_REPLY)
    assert isinstance(reply.error, gen.TakenError)


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (b"\x01\x2c\x00", "shorter"),
        (b"\x02" + F1[1:], "version"),
        (F1[:1] + b"\x30" + F1[2:], "type 48"),
        (F1[:-1], "truncated"),
        (F1[:4] + b"\x8d" + F1[5:], "malformed"),
    ],
)
def test_malformed_packets_are_refused(raw: bytes, match: str) -> None:
    with pytest.raises(RegistrarError, match=match):
        registrar.decode_packet(raw)


def test_a_packet_of_the_wrong_kind_is_refused_where_another_is_expected() -> None:
    with pytest.raises(RegistrarError, match="type 44"):
        registrar.decode_packet(F1, registrar.RESOLVE)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_random_packets_end_in_a_registrar_error(data: bytes) -> None:
    try:
        registrar.decode_packet(b"\x01\x2e" + data)
    except RegistrarError:
        pass


# ---- real sockets ----------------------------------------------------------------------


def free_port() -> int:
    """A port free for TCP and UDP on 127.0.0.1 (checked both ways)."""
    for _ in range(50):
        with socket.socket() as t:
            t.bind(("127.0.0.1", 0))
            port = int(t.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                try:
                    u.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port")


async def eventually(check: Callable[[], bool], changes: registrar.Changes, timeout: float = 5.0) -> None:
    """Wait until ``check()`` holds, re-checking at each change the registrar reports."""
    async with asyncio.timeout(timeout):
        while not check():
            await changes.wait()


@pytest.fixture
def port() -> int:
    return free_port()


@contextlib.asynccontextmanager
async def running(name: str, port: int, acceptor_port: int, **kw: float) -> AsyncIterator[Registrar]:
    r = Registrar(name, [route(acceptor_port)], port=port, **kw)
    await r.start()
    try:
        yield r
    finally:
        await r.stop()


async def test_first_node_serves_the_second_registers_and_both_resolve(port: int) -> None:
    async with running("a@localhost", port, 11144) as a, running("b@localhost", port, 11145) as b:
        assert a.is_server and not b.is_server
        got = await b.resolve("a@localhost")  # UDP to localhost:port
        assert [(r.host, r.port, r.tls) for r in got] == [("localhost", 11144, False)]
        assert got[0].handshake_version == handshake.HANDSHAKE_VERSION
        assert [r.port for r in await a.resolve("b@localhost")] == [11145]
        assert [r.port for r in await b.resolve("b@localhost")] == [11145]


async def test_resolver_binds_the_nodes_host_not_every_interface(port: int) -> None:
    async with running("a@localhost", port, 11144) as a:
        assert a.server is not None
        assert a.server.udp_addresses() == [("127.0.0.1", port)]


async def test_unknown_name(port: int) -> None:
    async with running("a@localhost", port, 11144), running("b@localhost", port, 11145) as b:
        with pytest.raises(registrar.UnknownNodeError, match="nobody@localhost"):
            await b.resolve("nobody@localhost")


async def test_taken_name_is_refused(port: int) -> None:
    async with running("a@localhost", port, 11144), running("b@localhost", port, 11145):
        with pytest.raises(gen.TakenError):
            await Registrar("b@localhost", [route(1)], port=port).start()
        with pytest.raises(gen.TakenError):
            await Registrar("a@localhost", [route(1)], port=port).start()


async def test_no_routes_is_refused(port: int) -> None:
    async with running("a@localhost", port, 11144):
        with pytest.raises(gen.IncorrectError):
            await Registrar("b@localhost", [], port=port).start()


async def test_registration_lives_as_long_as_its_socket(port: int) -> None:
    async with running("a@localhost", port, 11144) as a:
        b = Registrar("b@localhost", [route(11145)], port=port)
        await b.start()
        assert await a.resolve("b@localhost")
        await b.stop()
        assert a.server is not None
        table = a.server.table
        await eventually(lambda: "b@localhost" not in table.routes, table.changes)
        with pytest.raises(registrar.UnknownNodeError):
            await a.resolve("b@localhost")


async def test_client_takes_over_the_server_role_when_the_server_goes(port: int) -> None:
    a = Registrar("a@localhost", [route(11144)], port=port)
    await a.start()
    async with running("b@localhost", port, 11145, retry_interval=0.05) as b:
        assert not b.is_server
        await a.stop()
        await eventually(lambda: b.is_server, b.changes)
        assert b.registered.is_set()
        async with running("c@localhost", port, 11146) as c:
            assert not c.is_server
            assert [r.port for r in await c.resolve("b@localhost")] == [11145]


async def test_client_registers_again_with_a_new_server(port: int) -> None:
    a = Registrar("a@localhost", [route(11144)], port=port)
    await a.start()
    async with running("b@localhost", port, 11145, retry_interval=0.5) as b:
        await a.stop()
        # another node grabs the port before b retries: b must register with it
        server = registrar.Server("localhost", port)
        await server.start()
        try:
            await eventually(lambda: "b@localhost" in server.table.routes, server.table.changes)
            assert [r.port for r in server.table.routes["b@localhost"]] == [11145]
            assert not b.is_server
        finally:
            await server.close()


async def test_resolve_without_a_registrar_fails_within_its_timeout(port: int) -> None:
    r = Registrar("a@localhost", [route(1)], port=port, resolve_timeout=0.3)
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(RegistrarError):
        await r.resolve("b@localhost")
    assert loop.time() - start < 2


async def test_garbage_and_silence_on_the_register_socket_are_cut(port: int) -> None:
    async with running("a@localhost", port, 11144):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"\x01\x2c\xff\xff")  # announces more than one 4096-byte read
        async with asyncio.timeout(3):
            assert await reader.read() == b""
        writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        loop = asyncio.get_running_loop()
        start = loop.time()
        async with asyncio.timeout(3):
            assert await reader.read() == b""  # silent client: cut after the 1 s deadline
        assert 0.5 < loop.time() - start < 2.5
        writer.close()


class _Collect(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.got: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: object) -> None:
        self.got.put_nowait(data)


async def test_garbage_datagrams_do_not_stop_the_resolver(port: int) -> None:
    async with running("a@localhost", port, 11144):
        loop = asyncio.get_running_loop()
        transport, proto = await loop.create_datagram_endpoint(_Collect, remote_addr=("127.0.0.1", port))
        try:
            for junk in (b"", b"\x01", b"\x01\x2e\x00\x05abc", b"\x01\x2c" + F1[2:], F3[:-3], bytes(2000)):
                transport.sendto(junk)
            transport.sendto(registrar.encode_packet(MessageResolveRoutes(node=gen.Atom("a@localhost"))))
            reply = registrar.decode_packet(await asyncio.wait_for(proto.got.get(), 3), registrar.RESOLVE_REPLY)
            assert [r.port for r in reply.routes] == [11144]
        finally:
            transport.close()


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback")
async def test_resolver_of_an_ipv6_host_binds_that_address_only(port: int) -> None:
    server = registrar.Server("::1", port)
    await server.start()
    try:
        assert [a[:2] for a in server.udp_addresses()] == [("::1", port)]
    finally:
        await server.close()

"""Shared probes for the WebSocket tests: recording workers, a server process, a raw client.

* :class:`Probe` is a worker that puts ``Got(at, message)`` for everything it
  receives into an ``asyncio.Queue`` (``at`` is its registered name), echoes
  ``websocket.Message`` back to the connection, and runs :class:`Run` requests
  (a callable with the probe, from inside the process) for the test.
* :func:`serve` starts workers and a server process that spawns a handler and a
  web server on 127.0.0.1 port 0; :class:`Served` holds the port and the queue.
* :class:`RawClient` speaks WebSocket by hand over an asyncio stream, so tests
  can send what no library client would (unmasked frames, bad UTF-8, reserved
  opcodes, huge length headers) and stop reading or answering pings.
* :func:`expect` waits for the next item of a probe queue and checks its kind.
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import os
import socket
import struct
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import pytest
from conftest import receive

import ergopy
from ergopy import act, gen
from ergopy.meta import web, websocket

T = TypeVar("T")

HOST = "127.0.0.1"


class Got(NamedTuple):
    """One thing a probe received: ``at`` is the probe's registered name."""

    at: str
    message: Any


@dataclass
class Run:
    """Ask a probe to run ``fn(probe)`` in its process; the result (or exception) lands in ``done``."""

    fn: Callable[[Probe], Any]
    done: asyncio.Future[Any] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class Probe(act.Actor):
    """A recording worker. ``echo``: send every ``websocket.Message`` back as it came."""

    def init(self, queue: asyncio.Queue[Got], echo: bool = True) -> None:
        self.queue = queue
        self.echo = echo

    async def handle_message(self, from_: gen.PID, message: Any) -> None:
        if isinstance(message, Run):
            try:
                result = message.fn(self)
                if inspect.isawaitable(result):
                    result = await result
            except BaseException as e:
                if not message.done.done():
                    message.done.set_exception(e)
                return
            if not message.done.done():
                message.done.set_result(result)
            return
        self.queue.put_nowait(Got(self.name.text if self.name else str(self.pid), message))
        if self.echo and isinstance(message, websocket.Message):
            self.send_alias(message.id, websocket.Message(type=message.type, body=message.body))  # type: ignore[arg-type]


async def run(node: ergopy.Node, at: str | gen.PID, fn: Callable[[Probe], Any], timeout: float = 5.0) -> Any:
    """Run ``fn(probe)`` inside probe ``at`` and return its result (raising what it raised)."""
    r = Run(fn)
    node.send(at, r)
    async with asyncio.timeout(timeout):
        return await r.done


async def expect(queue: asyncio.Queue[Got], kind: type[T], at: str | None = None, timeout: float = 5.0) -> T:
    """The next probe item; fails unless it is a ``kind`` (received at ``at`` if given)."""
    got = await receive(queue, timeout)
    assert isinstance(got, Got), got
    assert isinstance(got.message, kind), f"expected {kind.__name__}, got {got.message!r} at {got.at}"
    if at is not None:
        assert got.at == at, f"{kind.__name__} arrived at {got.at}, expected {at}"
    return got.message


class ServerProbe(Probe):
    """The handler's parent: spawns the handler meta (unless told not to) and a web server."""

    async def init(  # type: ignore[override]
        self,
        queue: asyncio.Queue[Got],
        options: websocket.HandlerOptions,
        spawn_handler: bool,
        mux_static: bytes | None,
        server_kwargs: dict[str, Any],
    ) -> None:
        super().init(queue)
        self.handler = websocket.create_handler(options)
        self.handler_alias: gen.Alias | None = None
        if spawn_handler:
            self.handler_alias = self.spawn_meta(self.handler, gen.MetaOptions())
        target: Any = self.handler
        if mux_static is not None:
            target = web.Mux()
            target.handle("/ws", self.handler)
            target.handle("/", web.StaticContent(mux_static))
        self.server = await web.create_web_server(
            web.WebServerOptions(host=HOST, port=0, handler=target, **server_kwargs)
        )
        self.server_alias = self.spawn_meta(self.server, gen.MetaOptions())


@dataclass
class Served:
    """A running server: its port, the probes' queue, the server process and its handler."""

    node: ergopy.Node
    queue: asyncio.Queue[Got]
    port: int
    server: gen.PID
    probe: ServerProbe
    scheme: str = "ws"

    def url(self, path: str = "/ws") -> str:
        return f"{self.scheme}://{HOST}:{self.port}{path}"

    @property
    def handler(self) -> websocket.Handler:
        return self.probe.handler

    @property
    def handler_alias(self) -> gen.Alias | None:
        return self.probe.handler_alias


async def serve(
    node: ergopy.Node,
    pool: Sequence[str] = ("w1", "w2"),
    options: websocket.HandlerOptions | None = None,
    *,
    spawn_handler: bool = True,
    mux_static: bytes | None = None,
    echo: bool = True,
    worker: type[act.Actor] | None = None,
    **server_kwargs: Any,
) -> Served:
    """Start probes named ``pool`` and a server process ``srv`` serving a handler over them.

    ``options`` defaults to ``HandlerOptions(process_pool=pool)``; its pool is set to ``pool``.
    ``worker``: another probe class (made with ``queue, echo`` as :class:`Probe`).
    """
    queue: asyncio.Queue[Got] = asyncio.Queue()
    for name in pool:
        await node.spawn_register(name, worker or Probe, None, queue, echo)
    options = options or websocket.HandlerOptions()
    options.process_pool = list(pool)
    probes: list[ServerProbe] = []

    def factory() -> ServerProbe:
        p = ServerProbe()
        probes.append(p)
        return p

    pid = await node.spawn_register("srv", factory, None, queue, options, spawn_handler, mux_static, server_kwargs)
    probe = probes[0]
    scheme = "wss" if server_kwargs.get("ssl") else "ws"
    return Served(node, queue, probe.server.port, pid, probe, scheme)


# ---- a hand-made WebSocket client ---------------------------------------------------------------


class RawClient:
    """A WebSocket client written by hand, to send what real clients never would."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int, *, rcvbuf: int | None = None) -> RawClient:
        """A TCP connection to 127.0.0.1:``port`` (``rcvbuf``: a small receive buffer, set before connecting)."""
        if rcvbuf is None:
            reader, writer = await asyncio.open_connection(HOST, port)
            return cls(reader, writer)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (HOST, port))
        reader, writer = await asyncio.open_connection(sock=sock)
        return cls(reader, writer)

    @classmethod
    async def connect(cls, port: int, path: str = "/ws", *, rcvbuf: int | None = None) -> RawClient:
        """Open and complete the opening handshake (fails the test unless the answer is 101)."""
        c = await cls.open(port, rcvbuf=rcvbuf)
        status, _ = await c.request(upgrade_request(port, path))
        assert status == 101, f"upgrade answered {status}"
        return c

    async def request(self, data: bytes, timeout: float = 5.0) -> tuple[int | None, bytes]:
        """Send raw bytes; return the HTTP status of the answer's head (None if the socket closed first)."""
        self.writer.write(data)
        async with asyncio.timeout(timeout):
            try:
                head = await self.reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                return None, b""
        return int(head.split(b" ", 2)[1]), head

    def send_frame(
        self, opcode: int, payload: bytes = b"", *, mask: bool = True, fin: bool = True, rsv: int = 0
    ) -> None:
        first = (0x80 if fin else 0) | (rsv << 4) | opcode
        n = len(payload)
        m = 0x80 if mask else 0
        if n < 126:
            header = struct.pack("!BB", first, m | n)
        elif n < 65536:
            header = struct.pack("!BBH", first, m | 126, n)
        else:
            header = struct.pack("!BBQ", first, m | 127, n)
        if mask:
            key = os.urandom(4)
            payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
            header += key
        self.writer.write(header + payload)

    def send_header(self, opcode: int, length: int) -> None:
        """Only a masked frame header announcing ``length`` payload bytes."""
        self.writer.write(struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length) + os.urandom(4))

    async def read_frame(self, timeout: float = 5.0) -> tuple[int, bytes] | None:
        """The next (opcode, payload) from the server, or None once the socket has closed."""
        async with asyncio.timeout(timeout):
            try:
                b1, b2 = await self.reader.readexactly(2)
                n = b2 & 0x7F
                if n == 126:
                    (n,) = struct.unpack("!H", await self.reader.readexactly(2))
                elif n == 127:
                    (n,) = struct.unpack("!Q", await self.reader.readexactly(8))
                assert not b2 & 0x80, "a server must not mask its frames"
                return b1 & 0x0F, await self.reader.readexactly(n)
            except (asyncio.IncompleteReadError, ConnectionError):
                return None

    async def read_close(self, timeout: float = 5.0) -> int | None:
        """Skip data frames until a close frame; its code (None if the socket closed without one)."""
        while (f := await self.read_frame(timeout)) is not None:
            if f[0] == 8:
                return struct.unpack("!H", f[1][:2])[0] if len(f[1]) >= 2 else 1005
        return None

    async def wait_eof(self, timeout: float = 5.0) -> None:
        """Read and discard until the server closes the socket."""
        async with asyncio.timeout(timeout):
            try:
                while await self.reader.read(65536):
                    pass
            except ConnectionError:
                pass

    def close(self) -> None:
        self.writer.transport.abort()


def upgrade_request(
    port: int,
    path: str = "/ws",
    *,
    method: str = "GET",
    key: str | None = None,
    version: str = "13",
    extra: Sequence[tuple[str, str]] = (),
    omit: Sequence[str] = (),
) -> bytes:
    """An HTTP/1.1 upgrade request; ``omit`` drops headers by name, ``extra`` adds some."""
    headers = [
        ("Host", f"{HOST}:{port}"),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", key if key is not None else base64.b64encode(os.urandom(16)).decode()),
        ("Sec-WebSocket-Version", version),
        *extra,
    ]
    lines = [f"{method} {path} HTTP/1.1"] + [f"{k}: {v}" for k, v in headers if k not in omit]
    if method != "GET":
        lines.append("Content-Length: 0")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def assert_empty(queue: asyncio.Queue[Got]) -> None:
    """Nothing more reached the probes (checked after the last expected item arrived)."""
    if not queue.empty():
        pytest.fail(f"unexpected: {queue.get_nowait()!r}")


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost (openssl CLI): (cert.pem, key.pem)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
            "-addext", f"subjectAltName=IP:{HOST},DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key

"""A service for ``tests/test_launcher.py``, started through ``ergopy.run(main, nodes=N)``.

    python tests/launcher_app.py NODES REGISTRAR_PORT [--crash INDEX] [--exit INDEX]
                                 [--stubborn INDEX] [--grace S] [--probe]

Each child prints one JSON line ``{"event": "up", "index", "count", "pid", "cookie"}``
(the cookie's SHA-256 prefix, and whether the cookie shows in its command line or
environment), then starts node ``n<index>@localhost`` (the service's cookie, an acceptor
on 127.0.0.1 port 0, the registrar on REGISTRAR_PORT) with a process "echo" that answers
a call with ``[its node's name, the OS pid]``, and prints ``{"event": "ready", ...}``.
``--crash INDEX``: child INDEX raises at start, every time. ``--exit INDEX``:
child INDEX returns 0 at once. ``--stubborn INDEX``: child INDEX ignores SIGTERM and
SIGINT and starts no node (the launcher must kill it after ``--grace`` seconds). ``--probe``: node 1 calls
n2's echo every 0.1 s (at most 3000 times) and prints ``{"event": "reached", "pid"}``
each time the answer comes from a new OS process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import hashlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import ergopy
from ergopy import act, gen


class Echo(act.Actor):
    def handle_call(self, from_: gen.PID, ref: gen.Ref, request: Any) -> Any:
        return [self.node.name.text, os.getpid()]


def say(**event: Any) -> None:
    sys.stdout.write(json.dumps(event) + "\n")  # one write: the children share the pipe
    sys.stdout.flush()


async def probe(node: ergopy.Node) -> None:
    last = None
    for _ in range(3000):  # bounded: 3000 tries, at least 5 minutes
        with contextlib.suppress(gen.Error, OSError):
            _, pid = await node.call(gen.ProcessID("echo", "n2@localhost"), "who", timeout=1)
            if pid != last:
                say(event="reached", pid=pid)
                last = pid
        await asyncio.sleep(0.1)  # a polling interval, not a synchronisation


async def main(registrar_port: int, crash: int, exit: int, stubborn: int, with_probe: bool) -> int:
    me = ergopy.member()
    cmdline = Path("/proc/self/cmdline").read_bytes()  # noqa: ASYNC240 - before any node runs
    exposed = me.cookie.encode() in cmdline or any(me.cookie in v for v in os.environ.values())
    digest = hashlib.sha256(me.cookie.encode()).hexdigest()[:16]
    say(event="up", index=me.index, count=me.count, pid=os.getpid(), cookie=digest, exposed=exposed)
    if me.index == crash:
        raise RuntimeError(f"node {me.index} crashes on purpose")
    if me.index == exit:
        return 0
    if me.index == stubborn:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        say(event="stubborn", index=me.index, pid=os.getpid())
        await asyncio.sleep(600)  # until the launcher kills it
        return 0
    network = gen.NetworkOptions(
        cookie=me.cookie,
        acceptors=[gen.AcceptorOptions(host="127.0.0.1", port=0)],
        registrar_port=registrar_port,
    )
    node = await ergopy.start_node(f"n{me.index}@localhost", gen.NodeOptions(network=network))
    await node.spawn_register("echo", Echo)
    say(event="ready", index=me.index, pid=os.getpid())
    if with_probe and me.index == 1:
        task = asyncio.create_task(probe(node))
        try:
            await node.wait()
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    else:
        await node.wait()
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("nodes", type=int)
    parser.add_argument("registrar_port", type=int)
    parser.add_argument("--crash", type=int, default=0)
    parser.add_argument("--exit", type=int, default=0)
    parser.add_argument("--stubborn", type=int, default=0)
    parser.add_argument("--grace", type=float, default=10.0)
    parser.add_argument("--probe", action="store_true")
    args = parser.parse_args()
    service = functools.partial(main, args.registrar_port, args.crash, args.exit, args.stubborn, args.probe)
    ergopy.run(service, nodes=args.nodes, grace=args.grace)

"""A chat member in its own OS process (run inside a network namespace by ``tests/test_chat_hosts.py``).

    python tests/chat_client_proc.py WS_URL NICK ROOM

Connects (retrying for up to 20 s while the server starts), joins ROOM as NICK and
prints every frame the server sends as one JSON line (and ``{"closed": code}`` at the
end). Each line read from stdin is said in the room; stdin's end closes the connection.
"""

from __future__ import annotations

import asyncio
import json
import sys

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

CONNECT_FOR = 20.0  # seconds of retries while the server is not listening yet


async def main(url: str, nick: str, room: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + CONNECT_FOR
    while True:
        try:
            ws = await connect(url, open_timeout=5)
            break
        except OSError:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.1)  # a retry interval, not a synchronisation: the server is starting
    await ws.send(json.dumps({"type": "join", "nick": nick, "room": room}))

    async def say() -> None:
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            await ws.send(json.dumps({"type": "say", "text": line.strip()}))
        await ws.close()

    async with asyncio.TaskGroup() as tg:
        sayer = tg.create_task(say())
        try:
            async for frame in ws:
                print(frame if isinstance(frame, str) else frame.decode(), flush=True)
        except ConnectionClosed:
            pass
        print(json.dumps({"closed": ws.close_code}), flush=True)
        sayer.cancel()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))

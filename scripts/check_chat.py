"""CI check of the README's first command: it starts, serves the page and the WebSocket, stops on Ctrl-C.

Usage: python scripts/check_chat.py -- ./scripts/chat --port 0
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
import urllib.request

import websockets


async def main(cmd: list[str]) -> int:
    # Popen only starts the child; its output is read in a thread below
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # noqa: ASYNC220
    assert proc.stdout is not None
    try:
        url = None
        for _ in range(200):  # bounded: pip set-up output, then the line with the URL
            line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 300)
            if not line:
                break
            print("  |", line.rstrip())
            m = re.search(r"open (http://\S+)", line)
            if m:
                url = m.group(1)
                break
        if url is None:
            print("chat did not print its URL", file=sys.stderr)
            return 1
        page = (await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=10).read())).decode()
        assert "<html" in page.lower(), "the page is not HTML"
        ws_url = url.replace("http://", "ws://").rstrip("/") + "/ws"
        async with websockets.connect(ws_url, origin=url.rstrip("/")) as ws:  # type: ignore[arg-type]
            await ws.send(json.dumps({"type": "join", "nick": "ci", "room": "lobby"}))
            reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
            print("  joined:", reply)
            proc.send_signal(signal.SIGINT)
            closed = None
            try:
                for _ in range(100):  # bounded: whatever the server still sends, then its close
                    await asyncio.wait_for(ws.recv(), 10)
            except websockets.ConnectionClosed as e:
                closed = e.rcvd.code if e.rcvd else None
            print("  closed by the server with", closed)
            assert closed == 1001, f"expected close 1001 on Ctrl-C, got {closed}"
        code = await asyncio.wait_for(asyncio.to_thread(proc.wait), 30)
        rest = proc.stdout.read()
        print("  |", rest.rstrip())
        print(f"chat exited with {code}")
        return 0 if code == 0 else 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[sys.argv.index("--") + 1 :])))

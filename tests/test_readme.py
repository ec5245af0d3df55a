"""The README's example runs as printed: the service echoes through a worker, then stops cleanly."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import websockets

import ergopy

README = Path(__file__).resolve().parent.parent / "README.md"


def _example() -> dict[str, Any]:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    code = blocks[0]
    assert "ergopy.run(main)" in code and "port=9898" in code
    code = code.replace("ergopy.run(main)", "").replace("port=9898", "port=0")
    # keep the bound port where the test can read it
    spawn = "self.spawn_meta(server, gen.MetaOptions())"
    code = code.replace(spawn, spawn + "; PORTS.append(server.port)")
    namespace: dict[str, Any] = {"PORTS": []}
    exec(compile(code, str(README), "exec"), namespace)
    return namespace


async def test_readme_example_echoes_and_stops(node: ergopy.Node) -> None:
    ns = _example()
    await node.spawn_register("w1", ns["Worker"])
    await node.spawn_register("w2", ns["Worker"])
    await node.spawn_register("web", ns["Web"])
    (port,) = ns["PORTS"]
    async with websockets.connect(f"ws://localhost:{port}/ws") as ws:
        await ws.send("hi")
        assert await ws.recv() == "echo: hi"

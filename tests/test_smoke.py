from __future__ import annotations

import ergopy
from ergopy import act, gen


class Echo(act.Actor):
    def handle_call(self, from_: gen.PID, ref: gen.Ref, request: object) -> object:
        return ("echo", request)


async def test_spawn_and_call(node: ergopy.Node) -> None:
    pid = await node.spawn_register("echo", Echo)
    assert str(pid).startswith("<") and str(pid).endswith(".0.1001>")
    assert await node.call("echo", 42) == ("echo", 42)

"""ergopy: the Ergo Framework's actor model and WebSocket meta-processes for asyncio.

    node = await ergopy.start_node("demo@localhost")

``ergopy.run(main)`` runs a coroutine on a new event loop (uvloop when installed)
with SIGINT/SIGTERM stopping every node it started; ``ergopy.run(main, nodes=N)``
runs N node processes as one service (``ergopy.member()`` tells each which it is).
"""

from __future__ import annotations

from ._launch import LaunchError, Member, member
from ._run import run
from .node import Node, start_node

__version__ = "0.1.0"
__all__ = ["LaunchError", "Member", "Node", "__version__", "member", "run", "start_node"]

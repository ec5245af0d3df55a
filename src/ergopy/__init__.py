"""ergopy: the Ergo Framework's actor model and WebSocket meta-processes for asyncio.

    node = await ergopy.start_node("demo@localhost")

``ergopy.run(main)`` runs a coroutine on a new event loop (uvloop when installed)
with SIGINT/SIGTERM stopping every node it started.
"""

from __future__ import annotations

from ._run import run
from .node import Node, start_node

__version__ = "0.1.0"
__all__ = ["Node", "__version__", "run", "start_node"]

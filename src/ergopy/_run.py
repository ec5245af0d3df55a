"""``ergopy.run``: the program runner (uvloop when installed, signals stop the node)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from .node.log import ErgoFormatter
from .node.node import signals_by_default

T = TypeVar("T")

__all__ = ["run", "use_uvloop"]


def use_uvloop() -> bool:
    """True if uvloop is installed (and so used by :func:`run`)."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def run(main: Callable[[], Coroutine[Any, Any, T]], *, debug: bool = False, log_level: int = logging.INFO) -> T:
    """Run ``main()`` to completion on a new event loop and return its result.

    Uses uvloop when installed. Nodes started inside with ``start_node`` stop
    gracefully on SIGINT/SIGTERM (``main`` typically ends with ``await node.wait()``).
    Configures logging with Ergo's format if the root logger has no handler.
    """
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(ErgoFormatter())
        root.addHandler(handler)
        root.setLevel(log_level)

    async def runner() -> T:
        signals_by_default.set(True)
        return await main()

    if use_uvloop():
        import uvloop

        return uvloop.run(runner(), debug=debug)
    return asyncio.run(runner(), debug=debug)

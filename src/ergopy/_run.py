"""``ergopy.run``: the program runner (uvloop when installed, signals stop the node); with
``nodes=N`` the launcher of N node processes (:mod:`ergopy._launch`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar, overload

from .node.log import ErgoFormatter
from .node.node import signals_by_default

T = TypeVar("T")

__all__ = ["configure_logging", "run", "use_uvloop"]


def use_uvloop() -> bool:
    """True if uvloop is installed (and so used by :func:`run`)."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def configure_logging(log_level: int) -> None:
    """Log with Ergo's format at ``log_level`` if the root logger has no handler yet. Raises nothing."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(ErgoFormatter())
        root.addHandler(handler)
        root.setLevel(log_level)


@overload
def run(main: Callable[[], Coroutine[Any, Any, T]], *, debug: bool = False, log_level: int = logging.INFO) -> T: ...


@overload
def run(
    main: Callable[[], Coroutine[Any, Any, T]],
    *,
    nodes: int,
    grace: float = 10.0,
    intensity: int = 5,
    period: float = 30.0,
    debug: bool = False,
    log_level: int = logging.INFO,
) -> T | None: ...


def run(
    main: Callable[[], Coroutine[Any, Any, T]],
    *,
    nodes: int = 1,
    grace: float = 10.0,
    intensity: int = 5,
    period: float = 30.0,
    debug: bool = False,
    log_level: int = logging.INFO,
) -> T | None:
    """Run ``main()`` to completion on a new event loop and return its result.

    Uses uvloop when installed. Nodes started inside with ``start_node`` stop
    gracefully on SIGINT/SIGTERM (``main`` typically ends with ``await node.wait()``).
    Configures logging with Ergo's format if the root logger has no handler.

    ``nodes`` above 1 starts one service of that many node processes instead and
    returns None once they all stopped (see :mod:`ergopy._launch`): this process
    supervises N children, each running ``main()`` as above, with
    :func:`ergopy.member` telling each its index, N and the service's cookie; Ctrl-C
    or SIGTERM stops them all within ``grace`` seconds; a child that dies is restarted
    (at most ``intensity`` times within ``period`` seconds). The script needs the
    ``if __name__ == "__main__":`` guard and ``main`` must be picklable (a module-level
    function). Raises ``ergopy.LaunchError`` when the service stopped because a node
    failed, ``ValueError`` for ``nodes`` < 1; with ``nodes=1`` (the default: no child
    process, the other launcher arguments unused) whatever ``main()`` raises.
    """
    if nodes != 1:
        from ._launch import launch

        launch(main, nodes, grace=grace, intensity=intensity, period=period, debug=debug, log_level=log_level)
        return None
    configure_logging(log_level)

    async def runner() -> T:
        signals_by_default.set(True)
        return await main()

    if use_uvloop():
        import uvloop

        return uvloop.run(runner(), debug=debug)
    return asyncio.run(runner(), debug=debug)

"""Small ASGI pieces shared by the handlers that serve under a foreign ASGI server."""

from __future__ import annotations

from typing import Any

__all__ = ["lifespan"]


async def lifespan(receive: Any, send: Any) -> None:
    """Answer an ASGI ``lifespan`` scope: nothing to start or stop, so just acknowledge."""
    while True:
        event = await receive()
        if event["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif event["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return

"""Runnable examples built on ergopy; each is a package started with ``python -m``.

- ``python -m ergopy.examples.chat``: a WebSocket chat service with rooms.
"""

"""A WebSocket chat with rooms, built only from ergopy's processes, events and meta-processes.

Run it with ``python -m ergopy.examples.chat`` and open the printed URL. Start it
from code with :func:`start_chat`. The modules, in reading order:

- :mod:`.protocol`: the JSON frames between the page and the server;
- :mod:`.room`: a process per room, publishing its lines as an Ergo event;
- :mod:`.worker`: the pool of processes serving the WebSocket connections;
- :mod:`.app`: the supervision tree and the web server;
- :mod:`.cluster`: the chat across nodes (``ChatOptions.cluster``): each room on one
  home node, members on any, rooms that follow their node's loss or return;
- ``page.html``: the browser side.
"""

from .app import Chat, ChatOptions, start_chat

__all__ = ["Chat", "ChatOptions", "start_chat"]

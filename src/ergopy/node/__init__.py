"""The engine: node, process table, names, aliases, mailboxes, scheduler, meta-process runner."""

from .node import Node, start_node

__all__ = ["Node", "start_node"]

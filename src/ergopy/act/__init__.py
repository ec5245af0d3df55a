"""Behaviours users subclass: ``Actor``, ``Supervisor``, ``Pool``."""

from .actor import Actor

__all__ = ["Actor"]

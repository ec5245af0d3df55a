"""Behaviours users subclass: ``Actor``, ``Supervisor``, ``Pool``."""

from .actor import Actor
from .pool import Pool, PoolOptions
from .supervisor import (
    Supervisor,
    SupervisorChild,
    SupervisorChildSpec,
    SupervisorRestart,
    SupervisorSpec,
    SupervisorStrategy,
    SupervisorType,
)

__all__ = [
    "Actor",
    "Pool",
    "PoolOptions",
    "Supervisor",
    "SupervisorChild",
    "SupervisorChildSpec",
    "SupervisorRestart",
    "SupervisorSpec",
    "SupervisorStrategy",
    "SupervisorType",
]

"""Behaviours users subclass: ``Actor``, ``Supervisor``, ``Pool``."""

from .actor import Actor
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
    "Supervisor",
    "SupervisorChild",
    "SupervisorChildSpec",
    "SupervisorRestart",
    "SupervisorSpec",
    "SupervisorStrategy",
    "SupervisorType",
]

"""Applications: a named group of processes started, watched and stopped together.

An application is an :class:`ApplicationBehavior`: ``load`` describes it with an
:class:`ApplicationSpec`, the node spawns the spec's ``group`` (its members, with
the node as parent and the application's ``env``), calls ``start``, and calls
``terminate`` once the last member has ended. The mode decides what a member's
end does to the others:

- ``TEMPORARY``: nothing; the application ends when its last member ends.
- ``TRANSIENT``: an abnormal end (not normal/shutdown) stops every other member
  with ``TERMINATE_REASON_SHUTDOWN``.
- ``PERMANENT``: any end does.

The node itself is never stopped by an application.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .identifiers import PID, Atom
from .options import LogLevel, ProcessOptions

if TYPE_CHECKING:
    from .process import Factory, Node

__all__ = [
    "ApplicationBehavior",
    "ApplicationDepends",
    "ApplicationInfo",
    "ApplicationMemberSpec",
    "ApplicationMode",
    "ApplicationSpec",
    "ApplicationState",
]


class ApplicationMode(enum.IntEnum):
    """What a member's end does to the application (Ergo's values)."""

    TEMPORARY = 1
    TRANSIENT = 2
    PERMANENT = 3


class ApplicationState(enum.IntEnum):
    """Where an application is in its life (Ergo's values)."""

    LOADED = 1
    RUNNING = 2
    STOPPING = 3


@dataclass(slots=True)
class ApplicationMemberSpec:
    """One member: ``factory`` spawned with ``args``, registered as ``name`` unless it is empty."""

    factory: Factory
    options: ProcessOptions = field(default_factory=ProcessOptions)
    name: str = ""
    args: list[Any] = field(default_factory=list)


@dataclass(slots=True)
class ApplicationDepends:
    """Applications that must run before this one (started first if only loaded)."""

    applications: list[str] = field(default_factory=list)
    network: bool = False


@dataclass(slots=True)
class ApplicationSpec:
    """What ``ApplicationBehavior.load`` returns.

    ``depends`` may also be given as a plain list of application names. ``env``
    is every member's environment; ``log_level`` the members' default level.
    """

    name: str
    description: str = ""
    version: str = ""
    depends: ApplicationDepends | list[str] = field(default_factory=ApplicationDepends)
    env: dict[str, Any] = field(default_factory=dict)
    group: list[ApplicationMemberSpec] = field(default_factory=list)
    mode: ApplicationMode = ApplicationMode.TEMPORARY
    weight: int = 0
    log_level: LogLevel = LogLevel.DEFAULT

    def __post_init__(self) -> None:
        if not isinstance(self.depends, ApplicationDepends):
            self.depends = ApplicationDepends(list(self.depends))


@dataclass(frozen=True, slots=True)
class ApplicationInfo:
    """What ``node.application_info`` reports."""

    name: Atom
    description: str
    version: str
    depends: ApplicationDepends
    mode: ApplicationMode
    state: ApplicationState
    group: list[PID]
    env: dict[str, Any]
    weight: int
    uptime: float  # seconds since start; 0 when not running


class ApplicationBehavior:
    """Base class of applications. Override ``load``; ``start`` and ``terminate`` are optional.

    ``load`` is a plain ``def``; ``start`` and ``terminate`` may be ``async def``.
    """

    def load(self, node: Node, *args: Any) -> ApplicationSpec:
        """Describe the application; raise to refuse ``application_load``."""
        raise NotImplementedError(f"{type(self).__name__}.load must return a gen.ApplicationSpec")

    def start(self, mode: ApplicationMode) -> Any:
        """Called once every member has been spawned."""
        return None

    def terminate(self, reason: BaseException) -> Any:
        """Called once the last member has ended, with the application's reason (may be ``async def``)."""
        return None

"""The exception hierarchy and the terminate reasons.

Every exception ergopy raises derives from :class:`Error`. Ergo's sentinel
errors (``gen.ErrProcessUnknown`` ...) become exception classes here; a
process's *termination reason* is any ``BaseException`` instance, and the four
standard reasons are the singletons ``TERMINATE_REASON_NORMAL``, ``..._SHUTDOWN``,
``..._KILL`` and ``..._PANIC`` (compare them with ``is``).
"""

from __future__ import annotations

__all__ = [
    "TERMINATE_REASON_KILL",
    "TERMINATE_REASON_NORMAL",
    "TERMINATE_REASON_PANIC",
    "TERMINATE_REASON_SHUTDOWN",
    "AliasUnknownError",
    "ApplicationError",
    "Error",
    "EventUnknownError",
    "ExitSignal",
    "IncorrectError",
    "MailboxFullError",
    "MetaMailboxFullError",
    "MetaUnknownError",
    "NameUnknownError",
    "NoConnectionError",
    "NodeTerminatedError",
    "NotAllowedError",
    "ProcessIncarnationError",
    "ProcessTerminatedError",
    "ProcessUnknownError",
    "ResponseIgnoredError",
    "SupervisorError",
    "TakenError",
    "TargetExistError",
    "TargetUnknownError",
    "TerminateReason",
    "TimeoutError",
    "UnregisteredError",
    "UnsupportedError",
    "is_normal",
    "unwrap_reason",
]


class Error(Exception):
    """Base of every ergopy exception."""


class ProcessUnknownError(Error):
    """No such process (PID, name or alias), or a PID from an earlier incarnation."""


class ProcessTerminatedError(Error):
    """The target process (or the owner of the target alias) has terminated."""


class MailboxFullError(Error):
    """The target process's mailbox queue is at its ``mailbox_size`` limit."""


class MetaMailboxFullError(MailboxFullError):
    """The target meta-process's mailbox queue is at its ``mailbox_size`` limit."""


class NotAllowedError(Error):
    """The operation is not allowed in the caller's current state (or on itself)."""


class NodeTerminatedError(Error):
    """The node has stopped or is stopping."""


class TimeoutError(Error):  # noqa: A001 - Ergo's name; also an asyncio.TimeoutError below
    """A call or wait did not finish in time."""


class TakenError(Error):
    """The name (or another unique resource) is already taken."""


class NameUnknownError(Error):
    """The name is not registered."""


class AliasUnknownError(Error):
    """The alias is not known on this node."""


class MetaUnknownError(Error):
    """The alias does not belong to a meta-process."""


class EventUnknownError(Error):
    """No such event is registered."""


class TargetExistError(Error):
    """The link or monitor already exists."""


class TargetUnknownError(Error):
    """There is no such link or monitor to remove."""


class IncorrectError(Error, ValueError):
    """An argument is of the wrong value (for example a ``None`` exit reason)."""


class UnsupportedError(Error, TypeError):
    """The operation or target type is not supported."""


class UnregisteredError(Error):
    """The name, alias or event was unregistered (a reason in down/exit messages)."""


class NoConnectionError(Error):
    """No connection to the remote node (a reason in down/exit messages)."""


class ProcessIncarnationError(Error):
    """The PID, alias or ref belongs to a previous incarnation of its node (the node
    restarted since: its creation differs), so it can never be reached again."""


class ResponseIgnoredError(Error):
    """A response was sent to a caller that is no longer waiting for it."""


class SupervisorError(Error):
    """A supervisor spec is invalid, or its restart intensity was exceeded."""


class ApplicationError(Error):
    """An application could not be loaded, started or stopped."""


class TerminateReason(Error):
    """One of the standard termination reasons (compare with ``is``)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __repr__(self) -> str:
        return f"gen.TERMINATE_REASON_{self.name.upper()}"


TERMINATE_REASON_NORMAL = TerminateReason("normal")
TERMINATE_REASON_SHUTDOWN = TerminateReason("shutdown")
TERMINATE_REASON_KILL = TerminateReason("kill")
TERMINATE_REASON_PANIC = TerminateReason("panic")


class ExitSignal(Error):
    """The reason a process ends with when it receives an exit signal it does not trap.

    As Ergo's ``fmt.Errorf("%s: %w", source, reason)``: it prints ``"<source>: <reason>"``
    and ``.reason`` (also ``__cause__``) is the original reason, which is what
    links and monitors of the process receive.
    """

    def __init__(self, source: object, reason: BaseException) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason
        self.__cause__ = reason


def unwrap_reason(reason: BaseException) -> BaseException:
    """The reason with an exit-signal wrapper removed (what watchers are told)."""
    return reason.reason if isinstance(reason, ExitSignal) else reason


def is_normal(reason: BaseException | None) -> bool:
    """True for ``None``, normal and shutdown: reasons that are not failures."""
    r = unwrap_reason(reason) if reason is not None else None
    return r is None or r is TERMINATE_REASON_NORMAL or r is TERMINATE_REASON_SHUTDOWN

"""Logging through the standard ``logging`` module with Ergo's levels and sources.

Every record goes to the ``ergopy`` logger (children per kind: ``ergopy.node``,
``ergopy.process``, ``ergopy.meta``) and carries, as record attributes,
``ergo_source`` (the node CRC, a PID or an Alias as Ergo prints them),
``ergo_name`` (the registered name, or "") and ``ergo_behavior``. Formatting
happens only when the level is enabled, so a disabled ``debug`` costs one
comparison.
"""

from __future__ import annotations

import logging
from typing import Any

from ..gen import LogLevel

__all__ = ["TRACE", "ErgoFormatter", "SourceLog", "python_level"]

TRACE = 5
PANIC = logging.CRITICAL
logging.addLevelName(TRACE, "TRACE")

_PY_LEVELS = {
    LogLevel.SYSTEM: logging.DEBUG,
    LogLevel.TRACE: TRACE,
    LogLevel.DEBUG: logging.DEBUG,
    LogLevel.INFO: logging.INFO,
    LogLevel.WARNING: logging.WARNING,
    LogLevel.ERROR: logging.ERROR,
    LogLevel.PANIC: PANIC,
}


def python_level(level: LogLevel) -> int:
    """The ``logging`` level an Ergo level maps to (DISABLED: above CRITICAL)."""
    if level == LogLevel.DISABLED:
        return logging.CRITICAL + 10
    return _PY_LEVELS.get(level, logging.INFO)


class SourceLog:
    """A ``gen.Log`` bound to one source (node, process or meta-process)."""

    __slots__ = ("_extra", "_level", "_logger")

    def __init__(self, logger: logging.Logger, source: str, name: str, behavior: str, level: LogLevel) -> None:
        self._logger = logger
        self._level = level
        self._extra = {"ergo_source": source, "ergo_name": name, "ergo_behavior": behavior}

    def level(self) -> LogLevel:
        return self._level

    def set_level(self, level: LogLevel) -> None:
        """Set the level; ``DEFAULT`` is refused as in Ergo (``IncorrectError``)."""
        from ..gen import IncorrectError

        if level == LogLevel.DEFAULT:
            raise IncorrectError("log level DEFAULT can only be inherited, not set")
        self._level = level

    def set_name(self, name: str) -> None:
        self._extra["ergo_name"] = name

    def _emit(self, level: LogLevel, msg: str, args: tuple[Any, ...]) -> None:
        if level < self._level or self._level == LogLevel.DISABLED:
            return
        pylevel = _PY_LEVELS[level]
        if self._logger.isEnabledFor(pylevel):
            self._logger.log(pylevel, msg, *args, extra=self._extra)

    def trace(self, msg: str, *args: Any) -> None:
        self._emit(LogLevel.TRACE, msg, args)

    def debug(self, msg: str, *args: Any) -> None:
        self._emit(LogLevel.DEBUG, msg, args)

    def info(self, msg: str, *args: Any) -> None:
        self._emit(LogLevel.INFO, msg, args)

    def warning(self, msg: str, *args: Any) -> None:
        self._emit(LogLevel.WARNING, msg, args)

    def error(self, msg: str, *args: Any) -> None:
        self._emit(LogLevel.ERROR, msg, args)

    def panic(self, msg: str, *args: Any) -> None:
        self._emit(LogLevel.PANIC, msg, args)

    def failure(self, exc: BaseException, msg: str, *args: Any) -> None:
        """Log at Error with ``exc``'s traceback."""
        if self._level <= LogLevel.ERROR and self._logger.isEnabledFor(logging.ERROR):
            self._logger.error(msg, *args, exc_info=(type(exc), exc, exc.__traceback__), extra=self._extra)

    def exception(self, msg: str, *args: Any) -> None:
        """Log at Error with the current exception's traceback."""
        if self._level <= LogLevel.ERROR and self._logger.isEnabledFor(logging.ERROR):
            self._logger.error(msg, *args, exc_info=True, extra=self._extra)


class ErgoFormatter(logging.Formatter):
    """Ergo's plain format: ``<time> [<level>] <source>[ 'name'][ behavior]: <msg>``."""

    def __init__(self, include_behavior: bool = False) -> None:
        super().__init__()
        self.include_behavior = include_behavior

    def format(self, record: logging.LogRecord) -> str:
        source = getattr(record, "ergo_source", record.name)
        name = getattr(record, "ergo_name", "")
        parts = [self.formatTime(record, "%Y-%m-%d %H:%M:%S"), f"[{record.levelname.lower()}]", source]
        if name:
            parts.append(f"'{name}'")
        behavior = getattr(record, "ergo_behavior", "")
        if self.include_behavior and behavior:
            parts.append(behavior)
        text = " ".join(parts) + ": " + record.getMessage()
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text

"""The node's application table: load, start, watch and stop groups of processes.

An application's members are ordinary processes whose parent is the node. The
node tells this table when any process terminates (``member_terminated``, from
``Node.unregister_process``); the table applies the application's mode and,
once the last member has ended, returns the application to LOADED and calls its
``terminate``. Nothing here owns a task except an ``async def terminate``,
which runs as a task the node awaits on stop.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
from typing import TYPE_CHECKING, Any

from .. import gen
from ..gen import PID, ApplicationMode, ApplicationState, Atom

if TYPE_CHECKING:
    from .node import Node

__all__ = ["Applications"]

_LOADED = ApplicationState.LOADED
_RUNNING = ApplicationState.RUNNING
_STOPPING = ApplicationState.STOPPING


class _App:
    """One loaded application."""

    def __init__(self, behavior: gen.ApplicationBehavior, spec: gen.ApplicationSpec) -> None:
        self.behavior = behavior
        self.spec = spec
        self.name = Atom(spec.name)
        self.state = _LOADED
        self.mode = ApplicationMode(spec.mode or ApplicationMode.TEMPORARY)
        self.group: dict[PID, None] = {}  # the running members, in start order
        self.reason: BaseException | None = None
        self.started = 0.0
        self.starting = False
        self.stopped: asyncio.Future[None] | None = None
        self.terminating: asyncio.Task[None] | None = None  # an async def terminate, running


class Applications:
    """The applications loaded on one node."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self._apps: dict[Atom, _App] = {}
        self.members: dict[PID, _App] = {}  # every running member of every application

    def _get(self, name: str) -> _App:
        app = self._apps.get(Atom(name))
        if app is None:
            raise gen.ApplicationError(f"unknown application {Atom(name)}; load it first")
        return app

    # ---- load / unload ------------------------------------------------------------------------

    def load(self, behavior: gen.ApplicationBehavior, *args: Any) -> Atom:
        if not isinstance(behavior, gen.ApplicationBehavior):
            raise gen.UnsupportedError(f"{behavior!r} is not a gen.ApplicationBehavior")
        spec: Any = behavior.load(self._node, *args)
        if inspect.iscoroutine(spec):
            spec.close()
            raise gen.UnsupportedError(f"{type(behavior).__name__}.load must be a plain def, not async def")
        if not isinstance(spec, gen.ApplicationSpec):
            raise gen.ApplicationError(f"{type(behavior).__name__}.load returned {spec!r}, not a gen.ApplicationSpec")
        if not spec.name:
            raise gen.ApplicationError(f"{type(behavior).__name__}.load returned a spec with no name")
        if not spec.group:
            raise gen.ApplicationError(f"application {Atom(spec.name)} has an empty group")
        name = Atom(spec.name)
        if name in self._apps:
            raise gen.TakenError(f"application {name} is already loaded")
        self._apps[name] = _App(behavior, spec)
        return name

    def unload(self, name: str) -> None:
        app = self._get(name)
        if app.state is not _LOADED:
            raise gen.ApplicationError(f"application {app.name} is {app.state.name.lower()}; stop it first")
        del self._apps[app.name]

    # ---- start ----------------------------------------------------------------------------------

    async def start(self, name: str, mode: ApplicationMode | None, chain: tuple[Atom, ...] = ()) -> None:
        app = self._get(name)
        if app.state is not _LOADED:
            raise gen.ApplicationError(f"application {app.name} is already {app.state.name.lower()}")
        assert isinstance(app.spec.depends, gen.ApplicationDepends)
        for dep in app.spec.depends.applications:
            dep_app = self._apps.get(Atom(dep))
            if dep_app is None:
                raise gen.ApplicationError(f"application {app.name} depends on {Atom(dep)}, which is not loaded")
            if dep_app.name in chain or dep_app is app:
                raise gen.ApplicationError(f"application {app.name} has a circular dependency on {dep_app.name}")
            if dep_app.state is _LOADED:
                await self.start(dep_app.name, None, (*chain, app.name))
        node = self._node
        app.mode = ApplicationMode(mode or app.spec.mode or ApplicationMode.TEMPORARY)
        app.state = _RUNNING
        app.reason = None
        app.started = node.loop.time()
        app.stopped = node.loop.create_future()
        app.starting = True
        spec = app.spec
        try:
            for member in spec.group:
                if app.state is not _RUNNING:
                    break  # a member already ended and took the application down
                options = dataclasses.replace(
                    member.options,
                    env={**spec.env, **member.options.env},
                    log_level=member.options.log_level or spec.log_level,
                )
                pid = await node.spawn_process(member.factory, options, member.args, name=member.name or None)
                app.group[pid] = None
                self.members[pid] = app
        except BaseException as e:
            app.starting = False
            node.log.error("application %s: a member failed to start: %s", app.name, e)
            await self._stop_members(app, e, node.options.stop_timeout)
            raise
        app.starting = False
        if not app.group:
            self._finish(app)
            return
        if app.state is not _RUNNING:
            return
        node.log.info("application %s started (%s)", app.name, app.mode.name.lower())
        r = app.behavior.start(app.mode)
        if inspect.isawaitable(r):
            await r

    # ---- stop -----------------------------------------------------------------------------------

    async def stop(self, name: str, timeout: float) -> None:
        app = self._get(name)
        if app.state is _LOADED:
            return
        await self._stop_members(app, gen.TERMINATE_REASON_SHUTDOWN, timeout)

    async def _stop_members(self, app: _App, reason: BaseException, timeout: float) -> None:
        """Send every member a shutdown exit; wait until all have ended (``gen.TimeoutError``)."""
        node = self._node
        members = list(app.group)
        if app.state is _RUNNING or app.starting:
            app.state = _STOPPING
            app.reason = reason
            self._exit_members(app)
        if not app.group and app.state is not _LOADED:
            self._finish(app)
        deadline = node.loop.time() + timeout
        # the whole tree: members, their children (a supervisor's), async terminates included
        done = await node.wait_tree(members, timeout)
        waiting = [f for f in (app.stopped, app.terminating) if f is not None and not f.done()]
        if done and waiting:
            _, pending = await asyncio.wait(waiting, timeout=max(0.0, deadline - node.loop.time()))
            done = not pending
        if not done:
            raise gen.TimeoutError(f"application {app.name} did not stop within {timeout} s")

    def _exit_members(self, app: _App) -> None:
        for pid in reversed(app.group):
            try:
                self._node.send_exit(pid, gen.TERMINATE_REASON_SHUTDOWN)
            except gen.Error:
                pass  # already ending: member_terminated will see it

    def node_stopping(self) -> None:
        """The node is stopping and will send every process a shutdown exit: no mode applies now."""
        for app in self._apps.values():
            if app.state is _RUNNING:
                app.state = _STOPPING
                app.reason = gen.TERMINATE_REASON_SHUTDOWN

    # ---- members ending ---------------------------------------------------------------------------

    def member_terminated(self, pid: PID, reason: BaseException) -> None:
        """A process ended; if it was a member, apply its application's mode."""
        app = self.members.pop(pid, None)
        if app is None:
            return
        app.group.pop(pid, None)
        mode = app.mode
        if app.state is _RUNNING and (
            mode is ApplicationMode.PERMANENT or (mode is ApplicationMode.TRANSIENT and not gen.is_normal(reason))
        ):
            self._node.log.info("application %s: stopping, member %s ended: %s", app.name, pid, reason)
            app.state = _STOPPING
            app.reason = reason
            self._exit_members(app)
        if app.group or app.starting:
            return
        self._finish(app)

    def _finish(self, app: _App) -> None:
        """The last member has ended: back to LOADED, then ``terminate``."""
        reason = app.reason if app.reason is not None else gen.TERMINATE_REASON_NORMAL
        app.state = _LOADED
        app.started = 0.0
        if app.stopped is not None and not app.stopped.done():
            app.stopped.set_result(None)
        self._node.log.info("application %s stopped: %s", app.name, reason)
        try:
            r = app.behavior.terminate(reason)
        except Exception:
            self._node.log.exception("application %s: terminate raised", app.name)
            return
        if inspect.isawaitable(r):
            app.terminating = self._node.own_task(
                self._finish_terminate(app, r), f"ergopy application {app.name.text} terminate"
            )

    async def _finish_terminate(self, app: _App, awaitable: Any) -> None:
        try:
            await awaitable
        except Exception:
            self._node.log.exception("application %s: terminate raised", app.name)

    # ---- queries --------------------------------------------------------------------------------

    def names(self, state: ApplicationState | None = None) -> list[Atom]:
        return [a.name for a in self._apps.values() if state is None or a.state is state]

    def info(self, name: str) -> gen.ApplicationInfo:
        app = self._get(name)
        spec = app.spec
        assert isinstance(spec.depends, gen.ApplicationDepends)
        return gen.ApplicationInfo(
            name=app.name,
            description=spec.description,
            version=spec.version,
            depends=spec.depends,
            mode=app.mode,
            state=app.state,
            group=list(app.group),
            env=dict(spec.env),
            weight=spec.weight,
            uptime=self._node.loop.time() - app.started if app.started else 0.0,
        )

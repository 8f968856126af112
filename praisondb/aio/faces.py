"""The async faces of the sync API classes: each method is the sync method, bridged.

A table, not a copy: ``append = awaited(Messages.append)`` takes the signature, defaults and
docstring from ``Messages.append`` and runs it through the bridge. A test fails when a
public sync method has no async face here.
"""

from __future__ import annotations

import inspect
from typing import Any

from ..adapter import DbSessionAdapter, OnError
from ..core.locks import Lease
from ..core.multiagent import (
    TurnAgent,
    begin_exchange,
    check_run_agent,
    fail_exchange,
    finish_exchange,
)
from ..core.repositories import Checkpoints, Messages, Runs, Sessions, State
from ..core.session import Session
from ..core.state_view import StateView
from ..integrations.praisonai import LifecycleMixin
from ..model import Content, Message, SessionInfo
from .context import SessionContext, SyncContext
from .face import Face, Runner, awaited, direct, iterated, returning, returning_optional
from .memory import AsyncMemory


class AsyncSessions(Face[Sessions]):
    """``db.sessions``, awaited."""

    __slots__ = ()
    create = awaited(Sessions.create)
    get = awaited(Sessions.get)
    exists = awaited(Sessions.exists)
    get_or_create = awaited(Sessions.get_or_create)
    list = awaited(Sessions.list)
    iterate = iterated(Sessions.iterate)
    count = awaited(Sessions.count)
    update = awaited(Sessions.update)
    delete = awaited(Sessions.delete)
    cleanup = awaited(Sessions.cleanup)
    verify_token = direct(Sessions.verify_token)
    export = awaited(Sessions.export)
    import_session = awaited(Sessions.import_session)


class AsyncMessages(Face[Messages]):
    """``db.messages``, awaited; ``iter``/``iterate`` are async iterators."""

    __slots__ = ()
    append = awaited(Messages.append)
    extend = awaited(Messages.extend)
    list = awaited(Messages.list)
    iterate = iterated(Messages.iterate)
    iter = iterate
    count = awaited(Messages.count)
    delete = awaited(Messages.delete)


class AsyncState(Face[State]):
    """``db.state``, awaited."""

    __slots__ = ()
    get = awaited(State.get)
    get_entry = awaited(State.get_entry)
    set = awaited(State.set)
    compare_and_set = awaited(State.compare_and_set)
    delete = awaited(State.delete)
    incr = awaited(State.incr)
    list = awaited(State.list)
    items = awaited(State.items)
    clear = awaited(State.clear)


class AsyncCheckpoints(Face[Checkpoints]):
    """``db.checkpoints``, awaited."""

    __slots__ = ()
    create = awaited(Checkpoints.create)
    get = awaited(Checkpoints.get)
    list = awaited(Checkpoints.list)
    delete = awaited(Checkpoints.delete)


class AsyncRuns(Face[Runs]):
    """``db.runs``, awaited."""

    __slots__ = ()
    start = awaited(Runs.start)
    end = awaited(Runs.end)
    save = awaited(Runs.save)
    get = awaited(Runs.get)
    list = awaited(Runs.list)


class AsyncStateView(Face[StateView]):
    """A session's (or user's, app's) state: the methods of ``StateView``, awaited; no
    ``[]`` operators, which cannot be awaited."""

    __slots__ = ()
    entry = awaited(StateView.entry)
    get = awaited(StateView.get)
    set = awaited(StateView.set)
    delete = awaited(StateView.delete)
    compare_and_set = awaited(StateView.compare_and_set)
    modify = awaited(StateView.modify)
    update = awaited(StateView.update)
    incr = awaited(StateView.incr)
    entries = awaited(StateView.entries)
    to_dict = awaited(StateView.to_dict)
    clear = awaited(StateView.clear)

    @property
    def scope(self) -> str:
        return self._sync.scope


def _view(sync: StateView, runner: Runner) -> AsyncStateView:
    return AsyncStateView(sync, runner)


class AsyncLease(Face[Lease], SyncContext):
    """``async with session.lock(timeout=5) as lease:``; ``lease.token`` is the fencing token."""

    __slots__ = ()
    try_acquire = awaited(Lease.try_acquire)
    acquire = returning(lambda sync, runner: AsyncLease(sync, runner), Lease.acquire)
    extend = awaited(Lease.extend)
    release = awaited(Lease.release)

    @property
    def name(self) -> str:
        return self._sync.name

    @property
    def owner(self) -> str:
        return self._sync.owner

    @property
    def token(self) -> int | None:
        return self._sync.token

    @property
    def held(self) -> bool:
        return self._sync.held


class AsyncSession(Face[Session], SessionContext):
    """:class:`praisondb.Session`, awaited.

    ``await s.metadata()`` and ``await s.summary()`` are methods here (they read the store);
    ``s.state``/``s.user_state``/``s.app_state``/``s.temp`` are :class:`AsyncStateView`;
    ``async for message in s`` walks the history; ``async with s.lock():`` locks it."""

    __slots__ = ()
    refresh = awaited(Session.refresh)
    update = awaited(Session.update)
    add = awaited(Session.add)
    add_user = awaited(Session.add_user)
    add_assistant = awaited(Session.add_assistant)
    add_system = awaited(Session.add_system)
    add_tool = awaited(Session.add_tool)
    flush = awaited(Session.flush)
    history = awaited(Session.history)
    feedback = awaited(Session.feedback)
    feedback_records = awaited(Session.feedback_records)
    analyse = awaited(Session.analyse)
    build_context = awaited(Session.build_context)
    context = awaited(Session.context)
    recall = awaited(Session.recall)
    update_preference = awaited(Session.update_preference)
    preferences = awaited(Session.preferences)
    checkpoint = awaited(Session.checkpoint)
    checkpoints = awaited(Session.checkpoints)
    fork = returning(lambda sync, runner: AsyncSession(sync, runner), Session.fork)
    restore = returning_optional(lambda sync, runner: AsyncSession(sync, runner), Session.restore)
    branches = awaited(Session.branches)
    save_version = awaited(Session.save_version)
    list_versions = awaited(Session.list_versions)
    restore_version = returning_optional(
        lambda sync, runner: AsyncSession(sync, runner), Session.restore_version
    )
    compact = awaited(Session.compact)
    archived = awaited(Session.archived)
    rotate = returning(lambda sync, runner: AsyncSession(sync, runner), Session.rotate)
    token = direct(Session.token)
    export = awaited(Session.export)
    delete = awaited(Session.delete)
    close = awaited(Session.close)

    @property
    def id(self) -> str:
        return self._sync.id

    @property
    def user_id(self) -> str | None:
        return self._sync.user_id

    @property
    def agent(self) -> str | None:
        return self._sync.agent

    @property
    def info(self) -> SessionInfo | None:
        return self._sync.info

    async def metadata(self) -> dict[str, Any]:
        """The session's metadata, read from the store."""
        return await self._runner.run(lambda: self._sync.metadata)

    async def summary(self) -> Message | None:
        """The summary message of the last compaction, if any."""
        return await self._runner.run(lambda: self._sync.summary)

    @property
    def state(self) -> AsyncStateView:
        """This session's own state."""
        return _view(self._sync.state, self._runner)

    @property
    def user_state(self) -> AsyncStateView:
        """The user's state, shared by every session of ``user_id``."""
        return _view(self._sync.user_state, self._runner)

    @property
    def app_state(self) -> AsyncStateView:
        """Application-wide state."""
        return _view(self._sync.app_state, self._runner)

    @property
    def temp(self) -> AsyncStateView:
        """This process's scratch state for the session, never persisted."""
        return _view(self._sync.temp, self._runner)

    @property
    def memory(self) -> AsyncMemory:
        """The user's long-term memories (``db.session(..., memory=True)``)."""
        return AsyncMemory(self._sync.memory, self._runner)

    @property
    def shared_state(self) -> AsyncStateView:
        """State every agent of the session shares, across processes (``modify`` for CAS)."""
        return _view(self._sync.shared_state, self._runner)

    def lock(self, *args: Any, **kwargs: Any) -> AsyncLease:
        """A cross-process exclusive lease on this session (no I/O until entered):
        ``async with s.lock(timeout=5) as lease:``; the arguments of ``Session.lock``."""
        return AsyncLease(self._sync.lock(*args, **kwargs), self._runner)

    async def run_agent(self, name: str, prompt: str, agent: Any) -> Content:
        """Run one exchange of agent ``name`` and store it, attributed (``Session.run_agent``).

        An ``async def`` agent is awaited here on the loop with ``(async_session, prompt)``;
        anything else (a ManagedAgent, a sync callable) runs as in the sync face, on a
        worker thread (a callable then gets the sync :class:`Session`)."""
        if not inspect.iscoroutinefunction(agent) or isinstance(agent, TurnAgent):
            return await self._runner.run(self._sync.run_agent, name, prompt, agent)
        sync = self._sync
        name = check_run_agent(name, prompt)
        run_id, started = await self._runner.run(begin_exchange, sync, name, prompt)
        try:
            reply = await agent(self, prompt)
        except BaseException as exc:
            await self._runner.run(fail_exchange, sync, run_id, started, exc)
            raise
        return await self._runner.run(finish_exchange, sync, name, run_id, started, reply)

    async def merge(self, other: AsyncSession | str, session_id: str | None = None) -> AsyncSession:
        """A new session with both histories interleaved by time; sources untouched."""
        source = other._sync if isinstance(other, AsyncSession) else other
        merged = await self._runner.run(self._sync.merge, source, session_id)
        return AsyncSession(merged, self._runner)


class AsyncLifecycle(Face[LifecycleMixin]):
    """PraisonAI's agent-db hooks, awaited (mixed into ``AsyncPraisonDB``).

    praisonaiagents 1.7.17 awaits only ``aon_agent_start``/``aon_run_start``/``aon_run_end``
    and calls the message hooks without awaiting them, so an Agent's ``db`` must be a
    sync ``PraisonDB`` (whose ``aon_*`` hooks run on worker threads)."""

    __slots__ = ()
    on_agent_start = awaited(LifecycleMixin.on_agent_start)
    on_user_message = awaited(LifecycleMixin.on_user_message)
    on_agent_message = awaited(LifecycleMixin.on_agent_message)
    on_assistant_message = awaited(LifecycleMixin.on_assistant_message)
    on_tool_message = awaited(LifecycleMixin.on_tool_message)
    on_tool_call = awaited(LifecycleMixin.on_tool_call)
    on_agent_end = awaited(LifecycleMixin.on_agent_end)
    on_run_start = awaited(LifecycleMixin.on_run_start)
    on_run_end = awaited(LifecycleMixin.on_run_end)
    get_runs = awaited(LifecycleMixin.get_runs)
    export_session = awaited(LifecycleMixin.export_session)
    import_session = awaited(LifecycleMixin.import_session)
    on_trace_start = awaited(LifecycleMixin.on_trace_start)
    on_trace_end = awaited(LifecycleMixin.on_trace_end)
    on_span_start = awaited(LifecycleMixin.on_span_start)
    on_span_end = awaited(LifecycleMixin.on_span_end)
    get_traces = awaited(LifecycleMixin.get_traces)
    get_schema_version = awaited(LifecycleMixin.get_schema_version)
    check_schema_compatibility = awaited(LifecycleMixin.check_schema_compatibility)
    migrate_schema = awaited(LifecycleMixin.migrate_schema)
    # the awaited twins PraisonAI looks for are the same hooks here (already awaited)
    aon_agent_start = awaited(LifecycleMixin.on_agent_start)
    aon_run_start = awaited(LifecycleMixin.on_run_start)
    aon_run_end = awaited(LifecycleMixin.on_run_end)


class AsyncDbSessionAdapterBase(Face[DbSessionAdapter]):
    """The methods of :class:`~praisondb.DbSessionAdapter`, awaited (see aio/adapter.py)."""

    __slots__ = ()
    add_message = awaited(DbSessionAdapter.add_message)
    get_chat_history = awaited(DbSessionAdapter.get_chat_history)
    clear_session = awaited(DbSessionAdapter.clear_session)
    delete_session = awaited(DbSessionAdapter.delete_session)
    session_exists = awaited(DbSessionAdapter.session_exists)
    get_session = awaited(DbSessionAdapter.get_session)
    set_metadata = awaited(DbSessionAdapter.set_metadata)
    get_metadata = awaited(DbSessionAdapter.get_metadata)
    update_session_metadata = awaited(DbSessionAdapter.update_session_metadata)

    @property
    def on_error(self) -> OnError:
        return self._sync.on_error

    @property
    def agent(self) -> str | None:
        return self._sync.agent


__all__ = [
    "AsyncCheckpoints",
    "AsyncDbSessionAdapterBase",
    "AsyncLease",
    "AsyncLifecycle",
    "AsyncMessages",
    "AsyncRuns",
    "AsyncSession",
    "AsyncSessions",
    "AsyncState",
    "AsyncStateView",
]

"""Multi-agent sessions: which agent wrote a message, and one agent's turn as a record.

The writing agent travels in the message metadata under ``praisondb_agent``, so every
backend stores it as it stores any metadata: no schema change, older messages (without
the key) stay readable and simply have no agent, and copy/export/import carry it.

``run_agent`` records one exchange the way ``ManagedAgent`` records a turn: a ``Run``
(latency, status, error) and the prompt and reply as messages of the run, each carrying
the agent's name, so analytics and ``history(agent=...)`` see who said what.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ..errors import ConfigError, ValidationError
from ..model import AGENT_KEY, Content, Message
from ..urls import redact_text
from ..validation import check_id
from .arguments import check_limit
from .state_view import StateView

if TYPE_CHECKING:
    from .repositories import DataPort

SHARED_PREFIX = "shared:"
"""Key prefix of ``Session.shared_state`` inside the session's state scope."""

AgentCallable = Callable[[Any, str], Content]
"""A plain agent: gets the session and the prompt, returns the reply (text or blocks)."""


@runtime_checkable
class TurnAgent(Protocol):
    """An agent that records its own turns in a praisondb database (``ManagedAgent``)."""

    db: Any

    def run(self, prompt: str, session_id: str | None = None, *, agent: str | None = None) -> str:
        """Run one turn in local session ``session_id``, attributing it to ``agent``."""


class _Session(Protocol):
    """What running an agent needs of a :class:`~praisondb.Session`."""

    @property
    def id(self) -> str: ...

    @property
    def db(self) -> DataPort: ...

    def add(
        self,
        role: str,
        content: Content,
        metadata: dict[str, Any] | None = None,
        *,
        run_id: str | None = None,
    ) -> Message: ...

    def flush(self) -> list[Message]: ...


class MultiAgentSession:
    """The multi-agent part of :class:`~praisondb.Session` (mixed into it)."""

    id: str
    _db: DataPort

    @property
    def shared_state(self) -> StateView:
        """State every agent of this session reads and writes, from any process.

        Use :meth:`StateView.modify` (or ``compare_and_set``) for read-modify-write so
        concurrent agents never lose an update. It lives in the session's state scope
        under keys starting ``shared:``, so checkpoints, forks, export and delete carry it
        like the rest of the session's state."""
        return StateView(self._db, f"session:{self.id}", SHARED_PREFIX)

    def run_agent(self, name: str, prompt: str, agent: AgentCallable | TurnAgent) -> Content:
        """Run one exchange of agent ``name`` in this session and store it, attributed.

        ``agent`` is a :class:`~praisondb.ManagedAgent` (its turn is stored by it, in this
        session, every message carrying ``name``; it must use this session's database)
        or a plain callable ``agent(session, prompt) -> reply`` (text or content blocks):
        the prompt and reply are stored as a run with its latency, status and error.
        Returns the reply. On :class:`AsyncSession` an ``async def`` agent is awaited on
        the loop and gets the :class:`AsyncSession`; a sync callable runs on a worker
        thread and gets the sync :class:`Session`.
        """
        session: _Session = self  # type: ignore[assignment]
        name = check_run_agent(name, prompt)
        if isinstance(agent, TurnAgent):
            return run_managed(session, name, prompt, agent)
        if not callable(agent):
            raise ValidationError(
                f"agent for {name!r} must be a ManagedAgent or a callable(session, prompt), "
                f"not {type(agent).__name__}"
            )
        return run_callable(session, name, prompt, agent)


def check_agent(agent: object) -> str:
    return check_id(agent, "agent")


def attributed(metadata: dict[str, Any], agent: str | None) -> dict[str, Any]:
    """``metadata`` with the writing agent recorded (unchanged when ``agent`` is None)."""
    if agent is None:
        return metadata
    return {**metadata, AGENT_KEY: check_agent(agent)}


def agent_of(message: Message) -> str | None:
    """The agent that wrote ``message``, or None (a message stored without one)."""
    found = message.metadata.get(AGENT_KEY)
    return found if isinstance(found, str) else None


HISTORY_PAGE = 500
"""Messages read per round trip when ``history(agent=..., last=N)`` walks back from the end."""


def by_agent(db: DataPort, session_id: str, agent: str, last: int | None) -> list[Message]:
    """The messages of ``agent`` in session order; ``last`` keeps only its final N.

    With ``last``, pages are read from the end backwards until N are found, so a recent
    agent's last turns cost a page or two however long the session; without it, the
    whole session is read in pages. Memory stays bounded by the result either way."""
    check_agent(agent)
    check_limit(last, "last")
    if last is None:
        return [m for m in db.messages.iterate(session_id) if agent_of(m) == agent]
    found: list[Message] = []
    before: int | None = None
    while len(found) < last:
        page = db.messages.list(session_id, before_seq=before, last=HISTORY_PAGE)
        found = [m for m in page if agent_of(m) == agent] + found
        if len(page) < HISTORY_PAGE:
            break
        before = page[0].seq
    return found[len(found) - last :] if last else []


def _same_database(db: DataPort, other: Any) -> bool:
    """True when ``other`` (a ManagedAgent's db) writes where ``db`` does."""
    if getattr(other, "conversations", None) is getattr(db, "conversations", object()):
        return True
    mine = getattr(getattr(db, "database_url", None), "secret", None)
    theirs = getattr(getattr(other, "database_url", None), "secret", None)
    in_process = (
        mine is None or mine.startswith(("memory:", "sqlite://:memory:")) or mine == "sqlite://"
    )
    return mine == theirs and not in_process


def run_managed(session: _Session, name: str, prompt: str, agent: TurnAgent) -> str:
    """One turn of a :class:`~praisondb.ManagedAgent` in ``session``, attributed to ``name``."""
    if not _same_database(session.db, agent.db):
        raise ConfigError(
            f"the ManagedAgent for {name!r} writes to another database than session "
            f"{session.id!r}; build it with db= the session's database (or its URL)"
        )
    session.flush()
    reply: str = agent.run(prompt, session_id=session.id, agent=name)
    return reply


def run_callable(session: _Session, name: str, prompt: str, agent: AgentCallable) -> Content:
    """One exchange with a plain callable, recorded as a run with its prompt and reply."""
    run_id, started = begin_exchange(session, name, prompt)
    try:
        reply = agent(session, prompt)
    except BaseException as exc:
        fail_exchange(session, run_id, started, exc)
        raise
    return finish_exchange(session, name, run_id, started, reply)


def begin_exchange(session: _Session, name: str, prompt: str) -> tuple[str, float]:
    """Start the run and store the prompt; returns (run id, start on the perf clock)."""
    run = session.db.runs.start(session.id, metadata={"agent": name, "input": prompt})
    session.add("user", prompt, {AGENT_KEY: name}, run_id=run.id)
    return run.id, time.perf_counter()


def fail_exchange(session: _Session, run_id: str, started: float, exc: BaseException) -> None:
    """End the run as failed, with the (redacted) error."""
    session.db.runs.end(
        run_id,
        status="error",
        error=redact_text(f"{type(exc).__name__}: {exc}"),
        metadata={"latency_ms": _ms(started)},
    )


def finish_exchange(
    session: _Session, name: str, run_id: str, started: float, reply: object
) -> Content:
    """Store the reply and end the run; a reply that is not content fails the run."""
    if not isinstance(reply, (str, list)):
        error = ValidationError(
            f"agent {name!r} returned {type(reply).__name__}; an agent callable must "
            "return the reply text (str) or a list of content-block dicts"
        )
        fail_exchange(session, run_id, started, error)
        raise error
    try:
        session.add("assistant", reply, {AGENT_KEY: name}, run_id=run_id)
    except BaseException as exc:
        fail_exchange(session, run_id, started, exc)
        raise
    session.db.runs.end(run_id, metadata={"latency_ms": _ms(started)})
    return reply


def check_run_agent(name: object, prompt: object) -> str:
    if not isinstance(prompt, str) or not prompt:
        raise ValidationError("prompt must be a non-empty string")
    return check_agent(name)


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


__all__ = [
    "AGENT_KEY",
    "SHARED_PREFIX",
    "AgentCallable",
    "MultiAgentSession",
    "TurnAgent",
    "agent_of",
    "attributed",
    "begin_exchange",
    "by_agent",
    "fail_exchange",
    "finish_exchange",
    "run_callable",
    "run_managed",
]

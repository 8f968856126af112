"""``Session``: what people expect of a stateful agent session, on any backend.

Everything here is built on the public repositories (``db.sessions``,
``db.messages``, ``db.state``, ``db.checkpoints``) and the store protocols, never on a
particular backend, so it behaves the same on SQLite, PostgreSQL, MySQL, MongoDB,
Redis, JSON files and memory.

Sessions that praisondb derives from another one are ordinary sessions whose
``parent_id`` points at their origin; the ``praisondb_kind`` metadata key says what
they are:

``branch``
    a self-contained copy of the history up to ``forked_at_seq`` (``fork``), or the
    history that ``restore`` rolled back, so nothing is ever lost.
``archive``
    the original messages that ``compact`` replaced by a summary.
``successor``
    the session ``rotate`` started to continue a long conversation.

Message ids are globally unique, so copies get new ids; the original id is kept in
the copy's metadata under ``praisondb_origin_id``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ..errors import NotFound, ValidationError
from ..model import JSON, Checkpoint, Content, Message, SessionInfo
from ..validation import check_message, check_metadata
from .analysis import SessionAnalysis
from .arguments import TTL
from .copies import VERSION_LABEL, Version, chunks, copy_of, parse_version
from .locks import DEFAULT_LEASE, Lease, session_lock_name
from .multiagent import MultiAgentSession, attributed, by_agent
from .session_memory import MemorySession, SessionMemory
from .state_view import StateView
from .tokens import DEFAULT_TTL, issue_token

if TYPE_CHECKING:
    from .repositories import DataPort

log = logging.getLogger("praisondb.session")

KIND = "praisondb_kind"
SUMMARY = "praisondb_summary"
SUCCESSOR = "praisondb_successor"
PREFERENCE_PREFIX = "pref:"

Summary = str | Callable[[list[Message]], str]


class Session(MultiAgentSession, SessionAnalysis, MemorySession):
    """A conversation with its history, scoped state, checkpoints and branches.

    Get one with ``db.session(session_id, user_id=None, agent=None)`` (get-or-create).
    Use it as a context manager to flush deferred writes and release locks on exit.
    """

    def __init__(
        self,
        db: DataPort,
        session_id: str,
        user_id: str | None = None,
        agent: str | None = None,
        *,
        info: SessionInfo | None = None,
        memory: SessionMemory = False,
    ) -> None:
        self._db = db
        self.info = info or db.sessions.get_or_create(session_id, user_id=user_id, agent=agent)
        self.id = self.info.id
        self.user_id = self.info.user_id or user_id
        self.agent = self.info.agent or agent
        self._pending: list[Message] = []
        self._leases: list[Lease] = []
        self._bind_memory(memory)

    def __repr__(self) -> str:
        return f"Session({self.id!r}, user_id={self.user_id!r}, agent={self.agent!r})"

    @property
    def db(self) -> DataPort:
        return self._db

    def refresh(self) -> SessionInfo:
        """Re-read the session record (counters, metadata) from the store."""
        self.info = self._db.sessions.get(self.id)
        return self.info

    @property
    def metadata(self) -> dict[str, Any]:
        return dict(self.refresh().metadata)

    def update(self, /, *, title: str | None = None, **metadata: JSON) -> SessionInfo:
        """Merge ``metadata`` into the session's (top-level keys win); set ``title`` if given."""
        if title is not None:
            self.info = self._db.sessions.update(self.id, title=title, metadata=metadata)
        else:
            self.info = self._db.sessions.update(self.id, metadata=metadata)
        return self.info

    # -- history ------------------------------------------------------------------
    def add(
        self,
        role: str,
        content: Content,
        metadata: dict[str, Any] | None = None,
        *,
        run_id: str | None = None,
        defer: bool = False,
        id: str | None = None,
        agent: str | None = None,
    ) -> Message:
        """Append a message. ``defer=True`` queues it for the next :meth:`flush`
        (one round trip for many messages); reads flush first, so they always see it.
        ``id`` makes a retry safe (see :meth:`praisondb.core.repositories.Messages.append`).
        ``agent`` records which agent of a multi-agent session wrote it."""
        message = Message(
            self.id, role, content, attributed(dict(check_metadata(metadata)), agent), run_id
        )
        if id is not None:
            message.id = id
        check_message(message)
        if defer:
            self._pending.append(message)
            return message
        self.flush()
        (stored,) = self._db.messages.extend(self.id, [message])
        return stored

    def add_user(
        self, /, content: Content, metadata: dict[str, Any] | None = None, **kw: Any
    ) -> Message:
        return self.add("user", content, metadata, **kw)

    def add_assistant(
        self, /, content: Content, metadata: dict[str, Any] | None = None, **kw: Any
    ) -> Message:
        return self.add("assistant", content, metadata, **kw)

    def add_system(
        self, /, content: Content, metadata: dict[str, Any] | None = None, **kw: Any
    ) -> Message:
        return self.add("system", content, metadata, **kw)

    def add_tool(
        self,
        /,
        content: Content,
        metadata: dict[str, Any] | None = None,
        *,
        tool_name: str | None = None,
        tool_call_id: str | None = None,
        **kw: Any,
    ) -> Message:
        """A tool result; ``tool_name``/``tool_call_id`` go into the metadata."""
        meta = dict(check_metadata(metadata))
        if tool_name is not None:
            meta["tool_name"] = tool_name
        if tool_call_id is not None:
            meta["tool_call_id"] = tool_call_id
        return self.add("tool", content, meta, **kw)

    def flush(self) -> list[Message]:
        """Write deferred messages in one batch; returns them with their seq."""
        if not self._pending:
            return []
        pending, self._pending = self._pending, []
        try:
            return self._db.messages.extend(self.id, pending)
        except BaseException:
            self._pending = pending + self._pending
            raise

    def history(self, last: int | None = None, *, agent: str | None = None) -> list[Message]:
        """Messages in order; ``last`` keeps only the final N; ``agent`` only that agent's."""
        self.flush()
        if agent is not None:
            return by_agent(self._db, self.id, agent, last)
        return self._db.messages.list(self.id, last=last)

    def __iter__(self) -> Iterator[Message]:
        self.flush()
        return self._db.messages.iterate(self.id)

    @property
    def summary(self) -> Message | None:
        """The summary message left by the latest :meth:`compact`, if any."""
        marker = self.refresh().metadata.get(SUMMARY)
        if not isinstance(marker, dict) or not isinstance(marker.get("seq"), int):
            return None
        seq = marker["seq"]
        found = self._db.messages.list(self.id, after_seq=seq - 1, before_seq=seq + 1)
        return found[0] if found else None

    def context(self, last: int = 20) -> list[Message]:
        """What to send a model: with ``memory=True`` first a system message of the user's
        best memories (not stored; see :meth:`recall`), then the summary of older turns
        (if any), then the last N messages."""
        window = self.history(last=last)
        summary = self.summary
        if summary is not None and all(m.seq != summary.seq for m in window):
            window = [summary, *window]
        remembered = self._memory_message(window)
        return window if remembered is None else [remembered, *window]

    # -- state ------------------------------------------------------------------------
    @property
    def state(self) -> StateView:
        """Session-scoped state: copied by checkpoints, forks and restores."""
        return StateView(self._db, f"session:{self.id}")

    @property
    def user_state(self) -> StateView:
        """State shared by every session of this user."""
        if not self.user_id:
            raise ValidationError(f"session {self.id!r} has no user_id, so it has no user state")
        return StateView(self._db, f"user:{self.user_id}")

    @property
    def app_state(self) -> StateView:
        """State shared by the whole application."""
        return StateView(self._db, "app")

    @property
    def temp(self) -> StateView:
        """Scratch values for this session that live in this process only, never persisted."""
        return StateView(self._db, "temp", f"{len(self.id)}:{self.id}:")

    def update_preference(self, key: str, value: JSON, *, ttl: TTL = None) -> None:
        """A user preference (user scope, so every session of the user sees it)."""
        StateView(self._db, self.user_state.scope, PREFERENCE_PREFIX).set(key, value, ttl=ttl)

    def preferences(self) -> dict[str, JSON]:
        return StateView(self._db, self.user_state.scope, PREFERENCE_PREFIX).to_dict()

    # -- checkpoints, branches, versions --------------------------------------------
    def checkpoint(self, label: str | None = None) -> Checkpoint:
        """Remember the current history position and session state."""
        self.flush()
        return self._db.checkpoints.create(self.id, label)

    def checkpoints(self) -> list[Checkpoint]:
        return self._db.checkpoints.list(self.id)

    def _checkpoint(self, checkpoint: Checkpoint | str) -> Checkpoint:
        if isinstance(checkpoint, Checkpoint):
            found = checkpoint
        else:
            try:
                found = self._db.checkpoints.get(checkpoint)
            except NotFound:
                labelled = [c for c in self.checkpoints() if c.label == checkpoint]
                if not labelled:
                    raise NotFound(f"no checkpoint {checkpoint!r} in session {self.id!r}") from None
                found = labelled[-1]
        if found.session_id != self.id:
            raise ValidationError(
                f"checkpoint {found.id!r} belongs to session {found.session_id!r}, not {self.id!r}"
            )
        return found

    def _copy_messages(self, target: str, *, through_seq: int) -> int:
        def upto() -> Iterator[Message]:
            for message in self._db.messages.iterate(self.id):
                if message.seq > through_seq:
                    return
                yield message

        copied = 0
        for batch in chunks(upto()):
            copied += self._db.conversations.put_messages(
                target, [copy_of(m, target) for m in batch]
            )
        return copied

    def _copy_state(self, target: str, snapshot: dict[str, Any] | None) -> None:
        scope = f"session:{target}"
        if snapshot is not None:
            for key, value in snapshot.items():
                self._db.state.set(key, value, scope=scope)
            return
        entries = [replace(e, scope=scope) for e in self.state.entries()]
        if entries:
            self._db.state_store.put_entries(entries)

    def _child(
        self,
        kind: str,
        *,
        forked_at_seq: int,
        session_id: str | None = None,
        title: str | None = None,
        **metadata: JSON,
    ) -> SessionInfo:
        return self._db.sessions.create(
            session_id,
            user_id=self.info.user_id,
            agent=self.info.agent,
            title=title if title is not None else self.info.title,
            metadata={KIND: kind, **metadata},
            parent_id=self.id,
            forked_at_seq=forked_at_seq,
        )

    def _children(self, kind: str) -> list[SessionInfo]:
        return [
            s for s in self._db.sessions.iterate(parent_id=self.id) if s.metadata.get(KIND) == kind
        ]

    def fork(
        self,
        checkpoint: Checkpoint | str | None = None,
        session_id: str | None = None,
        *,
        title: str | None = None,
    ) -> Session:
        """A new branch session holding the history (and state) up to ``checkpoint``,
        or everything so far; this session is untouched."""
        self.flush()
        if checkpoint is None:
            seq, snapshot, cp_id = self.refresh().last_seq, None, None
        else:
            cp = self._checkpoint(checkpoint)
            seq, snapshot, cp_id = cp.seq, cp.state, cp.id
        child = self._child(
            "branch",
            forked_at_seq=seq,
            session_id=session_id,
            title=title,
            praisondb_checkpoint=cp_id,
        )
        self._copy_messages(child.id, through_seq=seq)
        self._copy_state(child.id, snapshot)
        return Session(self._db, child.id, info=self._db.sessions.get(child.id))

    def restore(self, checkpoint: Checkpoint | str) -> Session | None:
        """Roll history and session state back to ``checkpoint`` without losing anything.

        The current history and state are first copied to a new branch session
        (``parent_id`` = this session, ``forked_at_seq`` = the checkpoint), which is
        returned; then messages after the checkpoint are removed here and the state
        is reset to the snapshot. Messages appended concurrently while restoring are
        kept. Returns None when there was nothing to roll back.
        """
        self.flush()
        cp = self._checkpoint(checkpoint)
        last_seq = self.refresh().last_seq
        current_state = self.state.to_dict()
        has_tail = bool(self._db.messages.list(self.id, after_seq=cp.seq, limit=1))
        if not has_tail and current_state == cp.state:
            return None
        branch = self._child(
            "branch",
            forked_at_seq=cp.seq,
            praisondb_checkpoint=cp.id,
            praisondb_reason="restore",
        )
        self._copy_messages(branch.id, through_seq=last_seq)
        self._copy_state(branch.id, None)
        if has_tail:
            self._db.messages.delete(self.id, from_seq=cp.seq + 1, to_seq=last_seq)
        for key in current_state.keys() - cp.state.keys():
            self.state.delete(key)
        for key, value in cp.state.items():
            if current_state.get(key, _MISSING) != value:
                self.state.set(key, value)
        self.refresh()
        return Session(self._db, branch.id, info=self._db.sessions.get(branch.id))

    def branches(self) -> list[SessionInfo]:
        """Branch sessions made from this one (by ``fork`` or ``restore``), oldest first."""
        return sorted(self._children("branch"), key=lambda s: (s.created_at, s.id))

    def save_version(self, description: str = "") -> int:
        """Save a numbered snapshot (1, 2, ...); numbers are unique across processes."""
        with self._exclusive():
            number = max((v.number for v in self.list_versions()), default=0) + 1
            self.checkpoint(f"{VERSION_LABEL}{number}:{description}")
        return number

    def list_versions(self) -> list[Version]:
        found = [v for v in map(parse_version, self.checkpoints()) if v is not None]
        return sorted(found, key=lambda v: v.number)

    def restore_version(self, number: int) -> Session | None:
        """Restore version ``number``; like :meth:`restore`, nothing is lost."""
        for version in self.list_versions():
            if version.number == number:
                return self.restore(version.checkpoint)
        raise NotFound(f"session {self.id!r} has no version {number}")

    # -- merge, compact, rotate ---------------------------------------------------------
    def merge(self, other: Session | str, session_id: str | None = None) -> Session:
        """A new session with both histories interleaved by time; sources untouched.

        Ties in time keep this session's message first. State precedence: the new
        session gets ``other``'s session state overlaid by this session's, so on a
        key present in both, **this** session's value wins.
        """
        self.flush()
        if isinstance(other, Session):
            other.flush()
        other_id = other.id if isinstance(other, Session) else other
        other_info = self._db.sessions.get(other_id)
        ordered = sorted(
            [(m.created_at, 0, m.seq, m) for m in self._db.messages.iterate(self.id)]
            + [(m.created_at, 1, m.seq, m) for m in self._db.messages.iterate(other_id)],
            key=lambda item: item[:3],
        )
        merged = self._db.sessions.create(
            session_id,
            user_id=self.info.user_id or other_info.user_id,
            agent=self.info.agent or other_info.agent,
            title=self.info.title,
            metadata={KIND: "merge", "praisondb_sources": [self.id, other_id]},
        )
        copies = [copy_of(item[3], merged.id, seq) for seq, item in enumerate(ordered, start=1)]
        for batch in chunks(iter(copies)):
            self._db.conversations.put_messages(merged.id, batch)
        state = {**self._db.state.items(f"session:{other_id}"), **self.state.to_dict()}
        self._copy_state(merged.id, state)
        return Session(self._db, merged.id, info=self._db.sessions.get(merged.id))

    def compact(self, keep_last: int = 20, summary: Summary = "") -> Message | None:
        """Replace all but the last ``keep_last`` messages by one summary message.

        The originals move to an ``archive`` child session (same seq values, see
        :meth:`archived`); the summary takes the seq and time of the newest archived
        message, so history stays in order. ``summary`` is the text, or a function
        of the archived messages that returns it. Returns the summary message, or
        None when there was nothing to compact.
        """
        if not isinstance(keep_last, int) or keep_last < 0:
            raise ValidationError(f"keep_last must be a non-negative integer, not {keep_last!r}")
        self.flush()
        with self._exclusive():
            kept = self._db.messages.list(self.id, last=keep_last) if keep_last else []
            before = kept[0].seq if kept else None
            old = self._db.messages.list(self.id, before_seq=before)
            if not old:
                return None
            text = summary(old) if callable(summary) else summary
            if not isinstance(text, str) or not text:
                raise ValidationError("compact needs a non-empty summary text")
            first, last = old[0], old[-1]
            archive = self._child(
                "archive", forked_at_seq=last.seq, praisondb_range=[first.seq, last.seq]
            )
            for batch in chunks(iter(old)):
                self._db.conversations.put_messages(
                    archive.id, [copy_of(m, archive.id) for m in batch]
                )
            self._db.messages.delete(self.id, from_seq=first.seq, to_seq=last.seq)
            note = Message(
                self.id,
                "system",
                text,
                {
                    SUMMARY: {
                        "archive_id": archive.id,
                        "from_seq": first.seq,
                        "through_seq": last.seq,
                        "count": len(old),
                    }
                },
                seq=last.seq,
                created_at=last.created_at,
            )
            self._db.conversations.put_messages(self.id, [check_message(note)])
            marker = {"seq": note.seq, "message_id": note.id, "archive_id": archive.id}
            self.info = self._db.sessions.update(self.id, metadata={SUMMARY: marker})
            return note

    def archived(self) -> list[Message]:
        """Every message ``compact`` archived, oldest first (with their original seq)."""
        found: list[Message] = []
        for archive in self._children("archive"):
            found.extend(self._db.messages.iterate(archive.id))
        return sorted(found, key=lambda m: (m.seq, m.created_at))

    def rotate(self, summary: Summary = "", session_id: str | None = None) -> Session:
        """Start a linked successor session that begins with ``summary`` and this
        session's state; this session records its successor and stays readable."""
        self.flush()
        info = self.refresh()
        text = summary(list(self._db.messages.iterate(self.id))) if callable(summary) else summary
        successor = self._child(
            "successor",
            forked_at_seq=info.last_seq,
            session_id=session_id,
            praisondb_previous=self.id,
        )
        nxt = Session(self._db, successor.id, info=successor, memory=self._memory or False)
        if text:
            nxt.add(
                "system", text, {SUMMARY: {"previous_id": self.id, "through_seq": info.last_seq}}
            )
        self._copy_state(successor.id, None)
        self.info = self._db.sessions.update(self.id, metadata={SUCCESSOR: successor.id})
        return nxt

    # -- locks, tokens, export ----------------------------------------------------------
    def lock(
        self, timeout: float | timedelta | None = 10.0, *, ttl: float | timedelta = DEFAULT_LEASE
    ) -> Lease:
        """A cross-process exclusive lease on this session: ``with session.lock(timeout=5) as lease:``.

        ``lease.token`` is a fencing token that grows with every new holder. Leases
        still held when the session's context manager exits are released.
        """
        lease = Lease(self._db, session_lock_name(self.id), timeout=timeout, ttl=ttl)
        self._leases = [held for held in self._leases if held.token is not None]
        self._leases.append(lease)
        return lease

    def _exclusive(self) -> Lease | _Held:
        """The session lock, unless this Session object already holds it (no self-deadlock)."""
        if any(lease.held for lease in self._leases):
            return _Held()
        return self.lock(timeout=30.0)

    def token(self, secret: str | bytes, ttl: float | timedelta = DEFAULT_TTL) -> str:
        """An HMAC-SHA256 signed token naming this session; check it with
        ``db.sessions.verify_token(token, secret)``."""
        return issue_token(self.id, secret, ttl=ttl, user_id=self.user_id)

    def export(self) -> dict[str, Any]:
        """The session as a JSON-safe, versioned document (see ``db.sessions.import_session``)."""
        self.flush()
        return self._db.sessions.export(self.id)

    def delete(self) -> bool:
        """Delete the session with its messages, runs, checkpoints and session state."""
        self._pending.clear()
        return self._db.sessions.delete(self.id)

    # -- lifecycle ----------------------------------------------------------------------
    def close(self) -> None:
        """Flush deferred messages and release every lease this object took."""
        try:
            self.flush()
        finally:
            leases, self._leases = self._leases, []
            for lease in leases:
                lease.release()

    def __enter__(self) -> Session:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.close()
            return
        try:
            self.close()
        except Exception:
            log.exception("closing session %r after an error failed", self.id)


class _Held:
    """A no-op context manager standing in for a lock this Session already holds."""

    def __enter__(self) -> _Held:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


_MISSING = object()

"""The OpenAI Agents SDK's ``Session`` protocol on praisondb: ``PraisonDBSession``.

``Runner.run(agent, "hi", session=PraisonDBSession("user-42", db="postgresql://..."))``
keeps the conversation in an ordinary praisondb session, so ``praisondb sessions``,
``copy``/``export``/``import``/``verify``, retention cleanup and analytics see it like
any other. How the SDK's items are stored:

- one SDK item is one message of the session, in order (``seq``: one atomic append per
  ``add_items`` call, so items added in the same millisecond never swap);
- an item that is just ``{"role": "user"|"assistant"|"system", "content": "<text>"}`` is
  stored as that plain text message (readable by every praisondb face); any other item
  is stored whole as the message's one content block, so fields a newer SDK adds
  survive, with metadata ``{"openai_agents": "item"}``. Its role: the item's role
  (``developer`` becomes ``system``), ``tool`` for tool outputs (``*_output`` types),
  ``assistant`` for the rest (function calls, reasoning, ...). Messages written by other
  faces are read back as ``{"role", "content": text}`` items;
- the SDK's item ids stay inside the items: they are not unique in a session (every
  Chat Completions item carries ``__fake_id__``), so praisondb makes the message ids;
- a session id praisondb refuses (empty, longer than 255 characters, control
  characters) or one starting with ``oa~`` is stored as ``oa~`` + its SHA-256, the
  original kept in the session's metadata (``{"openai_agents": {"session_id": ...}}``);
- a session this module creates carries ``{"framework": "openai-agents"}`` in its metadata
  (see :mod:`praisondb.integrations.labels`).

``pop_item`` claims the newest message by deleting exactly its ``seq``: of two poppers
racing for one item only one deletes it, the other takes the next, so N concurrent pops
return N distinct items on every backend. ``_atomic_replace_items`` (the compaction hook)
appends a *replaced-here* marker and the new items in one atomic append, then deletes
everything before the marker: a reader, or a crash, between the two steps sees the new
history and never a gap (readers ignore what precedes a marker).
"""

from __future__ import annotations

import asyncio
import hashlib
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from ..errors import ConfigError, NotFound, ValidationError
from ..gc_pause import no_gc_pauses
from ..model import Message
from ..validation import check_id
from ._runners import make_runner, settle
from .labels import OPENAI_AGENTS, stamped

try:
    from agents.memory.session_settings import (
        SessionSettings,
        coerce_session_settings,
        resolve_session_limit,
    )
except ImportError as exc:  # pragma: no cover - the extra is not installed
    raise ConfigError(
        f"praisondb.integrations.openai_agents needs the OpenAI Agents SDK ({exc}); "
        "run: pip install 'praisondb[openai-agents]'"
    ) from None

if TYPE_CHECKING:
    from agents.items import TResponseInputItem
    from agents.run_context import RunContextWrapper

    from ..aio import AsyncPraisonDB
    from ..facade import PraisonDB

T = TypeVar("T")

KEY = "openai_agents"
"""The metadata key that marks what this module wrote (items, markers, mapped ids)."""
ITEM = {KEY: "item"}
REPLACED = {KEY: "replaced"}
MARKER_TEXT = "openai-agents history replaced here; earlier messages are being removed"
MAPPED_PREFIX = "oa~"
_PLAIN_ROLES = frozenset({"user", "assistant", "system"})


# -- ids and items ------------------------------------------------------------------------
def storage_id(session_id: str) -> str:
    """The praisondb session id of an SDK session id: itself when praisondb accepts it
    (and it does not start with ``oa~``), else ``oa~`` + its SHA-256 hex digest."""
    if not isinstance(session_id, str):
        raise ValidationError(f"session_id must be a str, not {type(session_id).__name__}")
    try:
        check_id(session_id)
    except ValidationError:
        pass
    else:
        if not session_id.startswith(MAPPED_PREFIX):
            return session_id
    digest = hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).hexdigest()
    return MAPPED_PREFIX + digest


def item_role(item: dict[str, Any]) -> str:
    """The praisondb role of an SDK item (see the module docstring)."""
    role = item.get("role")
    if role in _PLAIN_ROLES:
        return str(role)
    if role == "developer":
        return "system"
    kind = item.get("type")
    if isinstance(kind, str) and kind.endswith("_output"):
        return "tool"
    return "assistant"


def to_message(session_id: str, item: TResponseInputItem) -> Message:
    """One SDK item as the praisondb message that stores it."""
    if not isinstance(item, dict):
        raise ValidationError(
            f"an OpenAI Agents session item must be a dict, not {type(item).__name__}"
        )
    fields: dict[str, Any] = dict(item)
    role, content = fields.get("role"), fields.get("content")
    if len(fields) == 2 and role in _PLAIN_ROLES and type(content) is str:
        return Message(session_id, str(role), content)
    return Message(session_id, item_role(fields), [fields], dict(ITEM))


def to_item(message: Message) -> TResponseInputItem:
    """The SDK item a stored message stands for."""
    content = message.content
    if message.metadata.get(KEY) == "item" and isinstance(content, list) and len(content) == 1:
        return cast("TResponseInputItem", content[0])
    role = message.role if message.role in _PLAIN_ROLES else "assistant"
    if not isinstance(content, str):
        content = "".join(str(block.get("text", "")) for block in content)
    return cast("TResponseInputItem", {"role": role, "content": content})


def is_marker(message: Message) -> bool:
    return message.metadata.get(KEY) == "replaced"


def live(messages: list[Message]) -> list[Message]:
    """What follows the last replaced-here marker: the messages before it are dead."""
    for index in range(len(messages) - 1, -1, -1):
        if is_marker(messages[index]):
            return messages[index + 1 :]
    return messages


# -- the operations, each one call into the sync core --------------------------------------
def _append(db: PraisonDB, sid: str, batch: list[Message], fields: dict[str, Any]) -> list[Message]:
    """Append, creating the session first when it does not exist (yet, or any more)."""
    try:
        return db.messages.extend(sid, batch)
    except NotFound:
        db.sessions.get_or_create(sid, **fields)
        return db.messages.extend(sid, batch)


def _read(db: PraisonDB, sid: str, limit: int | None) -> list[TResponseInputItem]:
    if limit is not None and limit <= 0:
        return []
    messages = db.messages.list(sid, last=limit)
    with no_gc_pauses():
        return [to_item(m) for m in live(messages)]


def _pop(db: PraisonDB, sid: str) -> TResponseInputItem | None:
    """Claim the newest message by deleting exactly its seq; a loser re-reads."""
    while True:
        tail = db.messages.list(sid, last=1)
        if not tail:
            return None
        newest = tail[0]
        if is_marker(newest):  # an interrupted replace with nothing after it: finish it
            db.messages.delete(sid, to_seq=newest.seq)
            return None
        if db.messages.delete(sid, from_seq=newest.seq, to_seq=newest.seq):
            return to_item(newest)


def _replace(db: PraisonDB, sid: str, batch: list[Message], fields: dict[str, Any]) -> bool:
    marker = Message(sid, "system", MARKER_TEXT, dict(REPLACED))
    stored = _append(db, sid, [marker, *batch], fields)
    db.messages.delete(sid, to_seq=stored[0].seq)
    return True


def _clear(db: PraisonDB, sid: str) -> None:
    db.messages.delete(sid)


# -- the session ---------------------------------------------------------------------------------
class PraisonDBSession:
    """An OpenAI Agents SDK ``Session`` kept in praisondb.

    ``db`` is a database URL (opened here, on the async face's native drivers, and
    closed by :meth:`close`), a :class:`~praisondb.PraisonDB` (operations run on worker
    threads) or an :class:`~praisondb.AsyncPraisonDB`. ``session_settings`` is the SDK's
    ``SessionSettings`` (or its dict): ``limit`` caps what ``get_items()`` returns.
    ``user_id`` and ``agent`` label the praisondb session when it is created (else the
    run context's ``user_id``, when the Runner passes one through ``wrapper``).
    ``options`` go to the database a URL opens.
    """

    session_settings: SessionSettings | None = None

    def __init__(
        self,
        session_id: str,
        db: str | PraisonDB | AsyncPraisonDB,
        session_settings: SessionSettings | dict[str, Any] | None = None,
        *,
        user_id: str | None = None,
        agent: str | None = None,
        **options: Any,
    ) -> None:
        self.session_id = session_id
        self.praisondb_session_id = storage_id(session_id)
        self.session_settings = (
            coerce_session_settings(session_settings)
            if session_settings is not None
            else SessionSettings()
        )
        if user_id is not None:
            check_id(user_id, "user id")
        if agent is not None:
            check_id(agent, "agent")
        self.user_id = user_id
        self.agent = agent
        self._runner = make_runner(db, options)
        self._pop_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    def __repr__(self) -> str:
        return f"PraisonDBSession({self.session_id!r})"

    def _fields(self, wrapper: RunContextWrapper[Any] | None) -> dict[str, Any]:
        """How the praisondb session is labelled when an append has to create it."""
        user_id = self.user_id if self.user_id is not None else _context_user(wrapper)
        mapped = {KEY: {"session_id": self.session_id}}
        original = mapped if self.praisondb_session_id != self.session_id else None
        return {
            "user_id": user_id,
            "agent": self.agent,
            "metadata": stamped(original, OPENAI_AGENTS),
        }

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await self._runner.run(fn, *args)

    async def _write(self, fn: Callable[..., T], *args: Any) -> T:
        return await settle(self._run(fn, *args))

    # -- the Session protocol -------------------------------------------------------------
    async def get_items(
        self, limit: int | None = None, *, wrapper: RunContextWrapper[Any] | None = None
    ) -> list[TResponseInputItem]:
        """The newest ``limit`` items (default: ``session_settings.limit``; None: all),
        oldest first."""
        resolved = resolve_session_limit(limit, self.session_settings)
        if resolved is not None and (type(resolved) is not int):
            raise ValidationError(f"limit must be an int or None, not {type(resolved).__name__}")
        return await self._run(_read, self.praisondb_session_id, resolved)

    async def add_items(
        self, items: list[TResponseInputItem], *, wrapper: RunContextWrapper[Any] | None = None
    ) -> None:
        """Append ``items`` in order, all or none, in one round trip."""
        if not items:
            return
        sid = self.praisondb_session_id
        batch = [to_message(sid, item) for item in items]
        await self._write(_append, sid, batch, self._fields(wrapper))

    async def pop_item(
        self, *, wrapper: RunContextWrapper[Any] | None = None
    ) -> TResponseInputItem | None:
        """Remove and return the newest item (None when empty); concurrent pops each get
        a different item. Pops of one session object queue here, so only pops from
        other objects (processes) race for the same message."""
        loop = asyncio.get_running_loop()
        lock = self._pop_locks.get(loop) or self._pop_locks.setdefault(loop, asyncio.Lock())
        async with lock:
            return await self._write(_pop, self.praisondb_session_id)

    async def clear_session(self, *, wrapper: RunContextWrapper[Any] | None = None) -> None:
        """Delete every item; the praisondb session (its state, runs, title) stays."""
        await self._write(_clear, self.praisondb_session_id)

    async def _atomic_replace_items(self, items: list[TResponseInputItem]) -> bool:
        """The SDK's compaction hook: the whole history becomes ``items`` at once.

        Returns False for a subclass, whose transforms of ``add_items`` this would bypass
        (the SDK then falls back to clear + add), as the SDK's own stores do."""
        if type(self) is not PraisonDBSession:
            return False
        sid = self.praisondb_session_id
        batch = [to_message(sid, item) for item in items]
        return await self._write(_replace, sid, batch, self._fields(None))

    async def close(self) -> None:
        """Close the database this session opened from a URL (not one it was handed)."""
        await self._runner.close()

    aclose = close

    async def __aenter__(self) -> PraisonDBSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _context_user(wrapper: RunContextWrapper[Any] | None) -> str | None:
    """``user_id`` from the run context (a dict key or an attribute), when it is an id."""
    context = getattr(wrapper, "context", None)
    value = (
        context.get("user_id") if isinstance(context, dict) else getattr(context, "user_id", None)
    )
    if isinstance(value, str):
        try:
            return check_id(value, "user id")
        except ValidationError:
            return None
    return None


__all__ = ["PraisonDBSession", "storage_id"]

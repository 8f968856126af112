"""Google ADK's session service on praisondb: ``PraisonDBSessionService``.

``Runner(agent=..., app_name="shop", session_service=PraisonDBSessionService(db))``
keeps every ADK session in an ordinary praisondb session, so ``praisondb sessions``,
``copy``/``export``/``import``/``verify``, retention cleanup and analytics see it like
any other. ``db`` is a database URL, a :class:`~praisondb.PraisonDB` or an
:class:`~praisondb.AsyncPraisonDB`. How ADK's data is stored:

- an ADK session ``(app_name, user_id, session_id)`` is the praisondb session
  ``session_id`` (labelled ``user_id``, agent ``app_name``). ADK keys a session by all
  three, praisondb by its id alone: when that id is taken by another app or user, or
  praisondb refuses it (longer than 255 characters, control characters) or it starts
  with ``adk~``, the session is stored as ``adk~`` + SHA-256 of the three. A user id or
  app name praisondb refuses is labelled the same way. The originals are kept in the
  session's metadata (``{"adk": {"app_name", "user_id", "session_id", ...}}``, beside
  ``"framework": "adk"``, see :mod:`praisondb.integrations.labels`). As ADK's
  own services do, a session id is stripped of surrounding whitespace;
- every event is one message, in order, its content the event's whole JSON as one
  content block (so fields a newer ADK adds survive), metadata ``{"adk": "event"}``, its
  id the event's id (an append retried after a lost reply is not stored twice). Role:
  ``user`` for the user's events, ``tool`` for function responses, else ``assistant``.
  Messages other faces add to the session are read back as text events;
- session state (keys without a prefix) is the state entry ``adk`` of the session's
  own scope (``session:{id}``): ``{"state": {...}, "update_time": <epoch seconds>}``. Its
  version is the revision a loaded ``Session`` carries: an ``append_event`` on a session
  object older than the stored one raises ``StaleSessionError`` (a compare-and-set, so
  two processes appending to one revision cannot both win). The metadata keeps a copy
  of the state for ``list_sessions``, which therefore reads one page of sessions per
  1,000 and no state entry per session;
- ``app:`` keys live in praisondb's ``app`` scope and ``user:`` keys in the user's scope
  (``user:{user_id}``), each key prefixed by its app (``shop/theme``), so apps sharing a
  database keep their state apart; ``temp:`` keys are never stored.

An append commits with one write, the compare-and-set of the session's state entry,
which carries the event and its ``app:``/``user:`` deltas as ``pending``. The writes
that follow (those deltas, the event as a message, the listing copy, which names the
revision it completes) are each idempotent. A crash between them leaves the append
committed but unfinished: the next ``append_event`` or ``get_session`` of the session
(from any process) finishes it first, and ADK re-sending the same event finishes it
too, so every event is stored exactly once with its state change.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from ..errors import ConfigError, Conflict, NotFound
from ..gc_pause import no_gc_pauses
from ..model import Message, SessionInfo
from ._adk_names import label, namespace, storage_ids
from ._runners import make_runner, settle
from .labels import ADK, stamped

try:
    from google.adk.errors import StaleSessionError
    from google.adk.errors.already_exists_error import AlreadyExistsError
    from google.adk.errors.session_not_found_error import SessionNotFoundError
    from google.adk.events.event import Event
    from google.adk.sessions import _session_util
    from google.adk.sessions.base_session_service import (
        BaseSessionService,
        GetSessionConfig,
        ListSessionsResponse,
    )
    from google.adk.sessions.session import Session
    from google.adk.sessions.state import State
except ImportError as exc:  # pragma: no cover - the extra is not installed
    raise ConfigError(
        f"praisondb.integrations.adk needs Google ADK 2.x ({exc}); "
        "run: pip install 'praisondb[adk]'"
    ) from None

if TYPE_CHECKING:
    from collections.abc import Callable

    from google.adk.cli.service_registry import ServiceRegistry

    from ..aio import AsyncPraisonDB
    from ..facade import PraisonDB

T = TypeVar("T")

KEY = "adk"
"""The metadata key of what this module wrote, and the session-scope state key."""
EVENT = {KEY: "event"}
SCHEME_PREFIX = "praisondb+"
"""``praisondb+<praisondb URL>`` names this service in ADK's service registry."""
PAGE = 1000
STALE = (
    "The session has been modified in storage since this Session object was loaded (by "
    "another append, perhaps in another process); reload it with get_session() and "
    "append the event again"
)


def _owner(info: SessionInfo) -> tuple[Any, Any, Any] | None:
    record = info.metadata.get(KEY)
    if not isinstance(record, dict):
        return None
    return record.get("app_name"), record.get("user_id"), record.get("session_id")


def _epoch(moment: datetime) -> float:
    return moment.timestamp()


# -- events ------------------------------------------------------------------------------
def event_role(event: Event) -> str:
    """The praisondb role of an event (see the module docstring)."""
    if event.author == "user":
        return "user"
    parts = event.content.parts if event.content is not None else None
    if parts and any(part.function_response is not None for part in parts):
        return "tool"
    return "assistant"


def to_event(message: Message) -> Event:
    """The ADK event a stored message stands for."""
    content = message.content
    if message.metadata.get(KEY) == "event" and isinstance(content, list) and len(content) == 1:
        return Event.model_validate(content[0])
    text = content if isinstance(content, str) else "".join(str(b.get("text", "")) for b in content)
    user = message.role == "user"
    return Event.model_validate(
        {
            "id": message.id,
            "invocation_id": message.run_id or "",
            "author": "user" if user else "praisondb",
            "content": {"role": "user" if user else "model", "parts": [{"text": text}]},
            "timestamp": _epoch(message.created_at),
        }
    )


# -- the operations, each one trip into the sync core -------------------------------------
def _find(db: PraisonDB, app: str, user: str, sid: str) -> SessionInfo | None:
    for pid in storage_ids(app, user, sid):
        try:
            info = db.sessions.get(pid)
        except NotFound:
            continue
        if _owner(info) == (app, user, sid):
            return info
    return None


def _scoped(db: PraisonDB, scope: str, prefix: str) -> dict[str, Any]:
    cut = len(prefix)
    return {e.key[cut:]: e.value for e in db.state.list(scope, prefix)}


def _merge(
    session_state: dict[str, Any], app: dict[str, Any], user: dict[str, Any]
) -> dict[str, Any]:
    merged = dict(session_state)
    merged.update({State.APP_PREFIX + k: v for k, v in app.items()})
    merged.update({State.USER_PREFIX + k: v for k, v in user.items()})
    return merged


def _write_scoped(db: PraisonDB, app: str, user: str, deltas: dict[str, dict[str, Any]]) -> None:
    prefix = namespace(app)
    for key, value in deltas["app"].items():
        db.state.set(prefix + key, value, scope="app")
    for key, value in deltas["user"].items():
        db.state.set(prefix + key, value, scope=f"user:{label(user)}")


def _exists(app: str, user: str, sid: str) -> str:
    return (
        f"ADK session {sid!r} of app {app!r}, user {user!r} already exists: load it with "
        "get_session(), or create the new one with another session_id"
    )


def _create(
    db: PraisonDB, app: str, user: str, sid: str, state: dict[str, Any], now: float
) -> Session:
    if _find(db, app, user, sid) is not None:
        raise SessionExists(_exists(app, user, sid))
    deltas = _session_util.extract_json_safe_state_delta(state)
    record = {"state": deltas["session"], "update_time": now}
    owner = {"app_name": app, "user_id": user, "session_id": sid, **record}
    metadata = stamped({KEY: owner}, ADK)
    for pid in storage_ids(app, user, sid):
        try:
            db.sessions.create(pid, user_id=label(user), agent=label(app), metadata=metadata)
            break
        except Conflict:
            if _find(db, app, user, sid) is not None:  # a racing create of the same one
                raise SessionExists(_exists(app, user, sid)) from None
    else:  # pragma: no cover - both ids held by other owners (a SHA-256 collision)
        raise SessionExists(f"no free praisondb id for ADK session {sid!r}; use another id")
    entry = db.state.set(KEY, record, scope=f"session:{pid}")
    _write_scoped(db, app, user, deltas)
    return _session(db, app, user, sid, record, entry.version, [])


def _session(
    db: PraisonDB,
    app: str,
    user: str,
    sid: str,
    record: dict[str, Any],
    version: int,
    events: list[Event],
) -> Session:
    prefix = namespace(app)
    app_state = _scoped(db, "app", prefix)
    user_state = _scoped(db, f"user:{label(user)}", prefix)
    session = Session(
        id=sid,
        app_name=app,
        user_id=user,
        state=_merge(record.get("state") or {}, app_state, user_state),
        events=events,
        last_update_time=float(record.get("update_time") or 0.0),
    )
    session._storage_update_marker = str(version)
    return session


def _record(db: PraisonDB, info: SessionInfo) -> tuple[dict[str, Any], int]:
    """The session's state entry as (value, version); a session without one (written
    by an older copy, say) reads as empty at version 0."""
    entry = db.state.get_entry(KEY, scope=f"session:{info.id}")
    if entry is None or not isinstance(entry.value, dict):
        return {"state": {}, "update_time": _epoch(info.updated_at)}, 0
    return entry.value, entry.version


def _events(db: PraisonDB, info: SessionInfo, config: GetSessionConfig | None) -> list[Event]:
    """The session's events oldest first, as ``config`` filters them; with a filter the
    messages are read newest first in pages, stopping at the first one filtered out."""
    recent = config.num_recent_events if config else None
    after = config.after_timestamp if config else None
    if recent == 0 or info.message_count == 0:
        return []
    if recent is None and after is None:
        messages = db.messages.list(info.id)
        with no_gc_pauses():  # an Event per message: pydantic builds many containers
            return [to_event(m) for m in messages]
    found: list[Event] = []
    before: int | None = None
    while True:
        size = PAGE if recent is None else min(PAGE, recent - len(found))
        chunk = db.messages.list(info.id, before_seq=before, last=size)
        for message in reversed(chunk):
            event = to_event(message)
            if after is not None and event.timestamp < after:
                return found[::-1]
            found.append(event)
            if recent is not None and len(found) >= recent:
                return found[::-1]
        if len(chunk) < size:
            return found[::-1]
        before = chunk[0].seq


def _get(
    db: PraisonDB, app: str, user: str, sid: str, config: GetSessionConfig | None
) -> Session | None:
    info = _find(db, app, user, sid)
    if info is None:
        return None
    record, version = _record(db, info)
    if _unfinished(info, record, version):
        _finish(db, (app, user, sid), info.id, record, version)
        info = db.sessions.get(info.id)
    return _session(db, app, user, sid, record, version, _events(db, info, config))


def _list(db: PraisonDB, app: str, user: str | None) -> list[Session]:
    """Every session of the app (and user): pages of 1,000 sessions, then the app's
    state and the users' state, each one query."""
    found: list[tuple[SessionInfo, dict[str, Any]]] = []
    cursor: str | None = None
    user_label = label(user) if user is not None else None
    while True:
        page = db.sessions.list(user_id=user_label, agent=label(app), limit=PAGE, cursor=cursor)
        for info in page.items:
            record = info.metadata.get(KEY)
            if not isinstance(record, dict) or record.get("app_name") != app:
                continue  # another face's session labelled with this agent name
            if user is None or record.get("user_id") == user:
                found.append((info, record))
        cursor = page.next_cursor
        if not cursor:
            break
    prefix = namespace(app)
    app_state = _scoped(db, "app", prefix)
    if user is not None:
        users = {user_label: _scoped(db, f"user:{user_label}", prefix)}
    else:
        users = {}
        for entry in db.state_store.list_entries(None, prefix):
            if entry.scope.startswith("user:"):
                users.setdefault(entry.scope[5:], {})[entry.key[len(prefix) :]] = entry.value
    sessions = [
        Session(
            id=record["session_id"],
            app_name=app,
            user_id=record["user_id"],
            state=_merge(record.get("state") or {}, app_state, users.get(info.user_id or "", {})),
            last_update_time=float(record.get("update_time") or 0.0),
        )
        for info, record in found
    ]
    sessions.sort(key=lambda s: (s.last_update_time, s.user_id, s.id))
    return sessions


def _delete(db: PraisonDB, app: str, user: str, sid: str) -> None:
    info = _find(db, app, user, sid)
    if info is not None:
        db.sessions.delete(info.id)


def _user_state(db: PraisonDB, app: str, user: str) -> dict[str, Any]:
    return _scoped(db, f"user:{label(user)}", namespace(app))


def _is_last(db: PraisonDB, info: SessionInfo, last_event: str | None) -> bool:
    """Whether the newest stored event is ``last_event`` (None: no event stored), for
    a Session without a revision marker whose time is behind the stored one."""
    tail = db.messages.list(info.id, last=1)
    if not tail:
        return last_event is None
    return last_event is not None and to_event(tail[0]).id == last_event


def _append(
    db: PraisonDB,
    owner: tuple[str, str, str],
    revision: tuple[str | None, float, str | None],
    event: dict[str, Any],
    deltas: dict[str, dict[str, Any]],
    role: str,
) -> int:
    """Claim the next revision (compare-and-set of the session's state entry), then
    write app/user state, the event and the listing copy. Returns the new revision."""
    app, user, sid = owner
    marker, last_update_time, last_event = revision
    info = _find(db, app, user, sid)
    if info is None:
        raise SessionMissing(
            f"ADK session {sid!r} of app {app!r}, user {user!r} not found: it was deleted "
            "(or created elsewhere); create_session() it again to go on"
        )
    record, version = _record(db, info)
    if _unfinished(info, record, version):  # an append that stopped half way: finish it
        _finish(db, owner, info.id, record, version)
    if marker is not None and marker.isdigit():  # not a marker another service set
        expected = int(marker)
    elif float(record.get("update_time") or 0.0) > last_update_time and not _is_last(
        db, info, last_event
    ):
        raise SessionStale(STALE)  # a Session this service did not load: events tell
    else:
        expected = version
    timestamp = float(event["timestamp"])
    state = {**(record.get("state") or {}), **deltas["session"]}
    pending = {
        "id": event.get("id") or uuid.uuid4().hex,
        "role": role,
        "event": event,
        "app": deltas["app"],
        "user": deltas["user"],
    }
    value = {"state": state, "update_time": timestamp, "pending": pending}
    token = hashlib.sha256(orjson.dumps(event, option=orjson.OPT_SORT_KEYS)).hexdigest()
    try:
        entry = db.state.set(
            KEY, value, scope=f"session:{info.id}", expected_version=expected, write_token=token
        )
    except Conflict:
        raise SessionStale(STALE) from None
    stored = entry.value if isinstance(entry.value, dict) else value  # a re-send: as stored
    _finish(db, owner, info.id, stored, entry.version)
    return entry.version


def _unfinished(info: SessionInfo, record: dict[str, Any], version: int) -> bool:
    """Whether the append that wrote revision ``version`` stopped before its last write
    (the listing copy names the revision it completed)."""
    copy = info.metadata.get(KEY)
    done = copy.get("revision") if isinstance(copy, dict) else None
    return isinstance(record.get("pending"), dict) and done != version


def _finish(
    db: PraisonDB, owner: tuple[str, str, str], pid: str, record: dict[str, Any], version: int
) -> None:
    """The writes that follow an append's commit (its compare-and-set, which stored the
    event as ``pending``): app/user state, the event, the listing copy. Each is
    idempotent, so finishing twice (a retry, or a reader finishing a crashed append)
    stores everything once."""
    app, user, sid = owner
    pending = record["pending"]
    _write_scoped(db, app, user, {"app": pending["app"], "user": pending["user"]})
    message = Message(pid, pending["role"], [pending["event"]], dict(EVENT), id=pending["id"])
    try:
        db.messages.extend(pid, [message])
    except Conflict:  # another event holds this id (ADK keeps both): a second id, the same
        digest = hashlib.sha256(f"{pending['id']}\x00{version}".encode(errors="surrogatepass"))
        message.id = "adk-" + digest.hexdigest()[:40]  # on every retry, so stored once
        db.messages.extend(pid, [message])
    copy = {
        "app_name": app,
        "user_id": user,
        "session_id": sid,
        "state": record.get("state") or {},
        "update_time": record.get("update_time"),
        "revision": version,
    }
    db.sessions.update(pid, metadata={KEY: copy})


# -- errors ADK's callers catch, and praisondb's --------------------------------------------
class SessionExists(AlreadyExistsError, Conflict):
    """``create_session`` with an id the app's user already has."""


class SessionMissing(SessionNotFoundError, NotFound):
    """``append_event`` on a session that was deleted (or never created here)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "session not found"


class SessionStale(StaleSessionError, Conflict):
    """``append_event`` on a ``Session`` older than the stored one."""


# -- the service ---------------------------------------------------------------------------
class PraisonDBSessionService(BaseSessionService):
    """ADK's ``BaseSessionService`` kept in praisondb.

    ``db`` is a database URL (opened here on the async face's native drivers and closed
    by :meth:`close`; a ``praisondb+`` prefix, as ADK's registry passes it, is dropped),
    a :class:`~praisondb.PraisonDB` (operations run on worker threads) or an
    :class:`~praisondb.AsyncPraisonDB`. ``uri`` is the same as a URL ``db`` (what ADK's
    ``services.yaml`` passes); ``agents_dir`` (from ADK's CLI) is ignored; other
    ``options`` go to the database a URL opens.
    """

    def __init__(
        self,
        db: str | PraisonDB | AsyncPraisonDB | None = None,
        *,
        uri: str | None = None,
        agents_dir: str | None = None,
        **options: Any,
    ) -> None:
        target: object = db if db is not None else uri
        if target is None:
            raise ConfigError(
                "PraisonDBSessionService needs db= (a URL, PraisonDB or AsyncPraisonDB)"
            )
        if isinstance(target, str):
            target = _without_registry_prefix(target)
        self._runner = make_runner(target, options)

    def __repr__(self) -> str:
        return "PraisonDBSessionService()"

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        return await self._runner.run(fn, *args)

    async def _write(self, fn: Callable[..., T], *args: Any) -> T:
        return await settle(self._runner.run(fn, *args))

    async def create_session(
        self,
        *,
        app_name: str,
        user_id: str,
        state: dict[str, Any] | None = None,
        session_id: str | None = None,
    ) -> Session:
        sid = (session_id or "").strip() or str(uuid.uuid4())
        now = datetime.now(timezone.utc).timestamp()
        return await self._write(_create, app_name, user_id, sid, dict(state or {}), now)

    async def get_session(
        self,
        *,
        app_name: str,
        user_id: str,
        session_id: str,
        config: GetSessionConfig | None = None,
    ) -> Session | None:
        sid = session_id.strip() if session_id else session_id
        if not sid:
            return None
        return await self._read(_get, app_name, user_id, sid, config)

    async def list_sessions(
        self, *, app_name: str, user_id: str | None = None
    ) -> ListSessionsResponse:
        """Oldest update first, as ADK documents; events are not loaded."""
        sessions = await self._read(_list, app_name, user_id)
        return ListSessionsResponse(sessions=sessions)

    async def delete_session(self, *, app_name: str, user_id: str, session_id: str) -> None:
        """Deletes the session with its events and session state (app and user state stay)."""
        sid = session_id.strip() if session_id else session_id
        if sid:
            await self._write(_delete, app_name, user_id, sid)

    async def get_user_state(self, *, app_name: str, user_id: str) -> dict[str, Any]:
        return await self._read(_user_state, app_name, user_id)

    async def append_event(self, session: Session, event: Event) -> Event:
        """Stores the event and its state delta; ``StaleSessionError`` when ``session``
        is older than the stored session (reload it and append again)."""
        if event.partial:
            return event
        self._apply_temp_state(session, event)
        event = self._trim_temp_delta_state(event)
        delta = event.actions.state_delta if event.actions and event.actions.state_delta else {}
        deltas = _session_util.extract_json_safe_state_delta(delta)
        owner = (session.app_name, session.user_id, session.id)
        last = session.events[-1].id if session.events else None
        revision = (session._storage_update_marker, session.last_update_time, last)
        data = event.model_dump(exclude_none=True, mode="json")
        version = await self._write(_append, owner, revision, data, deltas, event_role(event))
        session.last_update_time = event.timestamp
        session._storage_update_marker = str(version)
        return self._commit_event_to_session(session, event)

    async def close(self) -> None:
        """Close the database this service opened from a URL (not one it was handed)."""
        await self._runner.close()

    async def __aenter__(self) -> PraisonDBSessionService:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


# -- ADK's service registry ----------------------------------------------------------------------
def _without_registry_prefix(url: str) -> str:
    """``praisondb+sqlite:///x`` -> ``sqlite:///x``; a praisondb URL whose own scheme
    starts with the prefix (``praisondb+http://``) is kept as it is."""
    from ..urls import SCHEMES

    scheme = url.split("://", 1)[0].lower()
    if scheme.startswith(SCHEME_PREFIX) and scheme not in SCHEMES:
        return url[len(SCHEME_PREFIX) :]
    return url


def _factory(uri: str, **kwargs: Any) -> PraisonDBSessionService:
    kwargs.pop("agents_dir", None)
    return PraisonDBSessionService(uri, **kwargs)


def register(registry: ServiceRegistry | None = None) -> list[str]:
    """Name this service in ADK's registry: ``praisondb+<URL>`` for every URL scheme
    praisondb opens (``praisondb+sqlite:///app.db``, ``praisondb+postgresql://...``).
    Importing this module does it for ADK's global registry; returns the schemes."""
    from google.adk.cli.service_registry import get_service_registry

    from ..urls import BACKENDS, SCHEMES

    target = registry if registry is not None else get_service_registry()
    schemes = [
        SCHEME_PREFIX + scheme
        for scheme, backend in SCHEMES.items()
        if "conversations" in BACKENDS[backend].roles
    ]
    for scheme in schemes:
        target.register_session_service(scheme, _factory)
    return schemes


register()

__all__ = ["PraisonDBSessionService", "register", "storage_ids"]

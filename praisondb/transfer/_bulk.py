"""Copy's fast path: sessions the target lacks go in whole, many per transaction.

When the target is a :class:`~praisondb.stores.base.BulkSessionLoader`, the listing is
cut into *units* of consecutive sessions holding about ``batch_size`` messages
(``message_count`` from the listing). A worker takes a unit and, for each session:

- if the target already holds it, or it is bigger than a batch, hands it to the
  per-session :class:`~._sync.SessionSyncer` (which resumes, compares, reports
  conflicts);
- otherwise reads its runs, checkpoints and spans (written at once, as the syncer
  does) and its messages, and keeps them for the unit's single ``put_session_batch``.

That call writes the exact source records and every message in one transaction, so
a session is either absent from the target or complete: a killed copy re-run finds
complete sessions equal to their source (unchanged) and loads the rest again. The
copy's cursor advances over a unit only after its transaction committed. Memory: one
unit's messages per worker (at most ``batch_size``; a session that grew past that
since the listing is re-routed to the per-session path).

A target where every call is a round trip (the HTTP store) is a
:class:`~praisondb.stores.base.WholeSessionLoader` instead: the unit's sessions go with
their runs, checkpoints and spans in one ``load_sessions`` call, without asking the
target about each first; those it already held come back as ``present`` and take the
per-session path (which finds a re-sent session complete and leaves it unchanged).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TypeVar

from ..errors import Conflict, NotFound
from ..model import Message, SessionInfo
from ..stores.base import BulkSessionLoader, ConversationStore, WholeSession, WholeSessionLoader
from ._reports import Tracker
from ._sources import StoreSession
from ._sync import SessionSyncer

P = TypeVar("P")


def bulk_units(
    items: Iterator[tuple[SessionInfo, P]], batch_size: int
) -> Iterator[tuple[list[SessionInfo], list[P]]]:
    """Consecutive sessions grouped to about ``batch_size`` messages (at least one each)."""
    infos: list[SessionInfo] = []
    positions: list[P] = []
    size = 0
    for info, position in items:
        cost = max(1, info.message_count)
        if infos and size + cost > batch_size:
            yield infos, positions
            infos, positions, size = [], [], 0
        infos.append(info)
        positions.append(position)
        size += cost
    if infos:
        yield infos, positions


class BulkCopier:
    """Runs one unit; safe to call from several threads (each call is independent)."""

    def __init__(
        self,
        source: ConversationStore,
        loader: BulkSessionLoader | WholeSessionLoader,
        syncer: SessionSyncer,
        tracker: Tracker,
        batch_size: int,
        on_batch: Callable[[str, int], None] | None = None,
    ) -> None:
        self.source = source
        self.loader = loader
        self.syncer = syncer
        self.tracker = tracker
        self.batch_size = batch_size
        self.on_batch = on_batch

    def copy_unit(self, infos: list[SessionInfo]) -> list[str]:
        """Copy the unit's sessions; returns the ids that ended up conflicting."""
        loader = self.loader
        if isinstance(loader, WholeSessionLoader):
            return self._copy_whole(loader, infos)
        conflicting: list[str] = []
        pending: list[tuple[SessionInfo, list[Message]]] = []
        for info in infos:
            src = StoreSession(self.source, info)
            whole = self._whole(src)
            if whole is None:
                if self.syncer.sync(src) == "conflicting":
                    conflicting.append(info.id)
                continue
            self.syncer.children(src, fresh=True)
            pending.append((info, whole))
        if pending:
            conflicting += self._load(loader, pending)
        return conflicting

    def _whole(self, src: StoreSession) -> list[Message] | None:
        """All the session's messages if it is new to the target and fits a batch, else None."""
        if src.info.message_count > self.batch_size:
            return None
        try:
            self.syncer.target.get_session(src.info.id)
        except NotFound:
            return self._read(src)
        return None

    def _read(self, src: StoreSession) -> list[Message] | None:
        """All the session's messages if they fit a batch, else None."""
        if src.info.message_count > self.batch_size:
            return None
        found: list[Message] = []
        for page in src.messages(0, self.batch_size):
            found += page
            if len(found) > self.batch_size:
                return None
        return found

    def _load(
        self, loader: BulkSessionLoader, pending: list[tuple[SessionInfo, list[Message]]]
    ) -> list[str]:
        try:
            inserted = loader.put_session_batch(pending)
        except Conflict:
            # Someone wrote one of these sessions since we looked: let the per-session
            # path decide for each one (it resumes, or reports the conflict).
            return [
                info.id
                for info, _ in pending
                if self.syncer.sync(StoreSession(self.source, info)) == "conflicting"
            ]
        self.tracker.add(messages_copied=inserted)
        for info, _ in pending:
            self.syncer.session_state(info.id)
            self.tracker.session_done("created")
        if self.on_batch is not None:
            last, messages = pending[-1]
            self.on_batch(last.id, messages[-1].seq if messages else 0)
        return []

    def _copy_whole(self, loader: WholeSessionLoader, infos: list[SessionInfo]) -> list[str]:
        conflicting: list[str] = []
        pending: list[WholeSession] = []
        for info in infos:
            src = StoreSession(self.source, info)
            messages = self._read(src)
            if messages is None:
                if self.syncer.sync(src) == "conflicting":
                    conflicting.append(info.id)
                continue
            pending.append(WholeSession(info, messages, src.runs(), src.checkpoints(), src.spans()))
        if not pending:
            return conflicting
        try:
            loaded = loader.load_sessions(pending)
        except Conflict:
            present = {whole.info.id for whole in pending}  # each decided on its own below
        else:
            present = set(loaded.present)
            self.tracker.add(messages_copied=loaded.inserted)
        done = [whole for whole in pending if whole.info.id not in present]
        if done:
            self.tracker.add(
                runs_copied=sum(len(w.runs) for w in done),
                checkpoints_copied=sum(len(w.checkpoints) for w in done),
                spans_copied=sum(len(w.spans) for w in done),
            )
        for whole in pending:
            if whole.info.id in present:
                src = StoreSession(self.source, whole.info)
                if self.syncer.sync(src) == "conflicting":
                    conflicting.append(whole.info.id)
            else:
                self.syncer.session_state(whole.info.id)
                self.tracker.session_done("created")
        if self.on_batch is not None:
            last = pending[-1]
            self.on_batch(last.info.id, last.messages[-1].seq if last.messages else 0)
        return conflicting

"""One session as a transfer reads it, from a live store or from an archive block.

Both kinds stream messages in ``seq`` order, one batch at a time, so neither side
ever holds a whole session in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from ..model import Checkpoint, Message, Run, SessionInfo, Span
from ..stores.base import ConversationStore
from .archive import SessionBlock


class SourceSession(Protocol):
    info: SessionInfo

    def runs(self) -> list[Run]: ...

    def checkpoints(self) -> list[Checkpoint]: ...

    def spans(self) -> list[Span]: ...

    def messages(
        self, after_seq: int, batch_size: int, upto: int | None = None
    ) -> Iterator[list[Message]]:
        """Batches of messages with ``after_seq < seq <= upto`` (default: ``info.last_seq``)."""
        ...


class StoreSession:
    """A session of a live store, bounded to the ``last_seq`` it had when it was listed.

    The bound is what makes a copy of a store that keeps receiving appends well
    defined: it carries everything that was there when the copy reached the session;
    later appends are for the next (incremental) run.
    """

    def __init__(self, store: ConversationStore, info: SessionInfo) -> None:
        self.store = store
        self.info = info

    def runs(self) -> list[Run]:
        return self.store.list_runs(self.info.id)

    def checkpoints(self) -> list[Checkpoint]:
        return self.store.list_checkpoints(self.info.id)

    def spans(self) -> list[Span]:
        return self.store.list_spans(session_id=self.info.id)

    def messages(
        self, after_seq: int, batch_size: int, upto: int | None = None
    ) -> Iterator[list[Message]]:
        bound = self.info.last_seq if upto is None else upto
        return page_messages(self.store, self.info.id, after_seq, batch_size, bound)


def page_messages(
    store: ConversationStore, session_id: str, after_seq: int, batch_size: int, upto: int | None
) -> Iterator[list[Message]]:
    """Keyset pages of ``list_messages``; ``upto=None`` reads to the end."""
    cursor = after_seq
    while upto is None or cursor < upto:
        batch = store.list_messages(
            session_id,
            after_seq=cursor,
            before_seq=None if upto is None else upto + 1,
            limit=batch_size,
        )
        if not batch:
            return
        yield batch
        if len(batch) < batch_size:
            return
        cursor = batch[-1].seq


class ArchiveSession:
    """A session block of an archive; its messages can be streamed only once."""

    def __init__(self, block: SessionBlock) -> None:
        self.block = block
        self.info = block.info

    def runs(self) -> list[Run]:
        return self.block.runs

    def checkpoints(self) -> list[Checkpoint]:
        return self.block.checkpoints

    def spans(self) -> list[Span]:
        return self.block.spans

    def messages(
        self, after_seq: int, batch_size: int, upto: int | None = None
    ) -> Iterator[list[Message]]:
        batch: list[Message] = []
        for message in self.block.messages():
            if message.seq <= after_seq:
                continue
            if upto is not None and message.seq > upto:
                break
            batch.append(message)
            if len(batch) >= batch_size:
                yield batch
                batch = []
        if batch:
            yield batch

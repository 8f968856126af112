"""``PraisonDBSaver``: LangGraph's ``BaseCheckpointSaver`` on any praisondb backend."""

from __future__ import annotations

import random
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from functools import partial
from types import TracebackType
from typing import TYPE_CHECKING, Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
)
from langgraph.checkpoint.serde.base import SerializerProtocol
from langgraph.checkpoint.serde.encrypted import EncryptedSerializer
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from ...errors import ConfigError
from .._runners import Bridged, PerLoop, Runner, Threaded, make_runner
from . import _maintenance as ops
from ._records import PICKLE_REFUSED
from ._threads import Caches, Threads

if TYPE_CHECKING:
    from ...aio import AsyncPraisonDB
    from ...facade import PraisonDB


class PraisonDBSaver(BaseCheckpointSaver[str]):
    """A LangGraph checkpointer whose threads are praisondb sessions.

    ``db`` is a :class:`~praisondb.PraisonDB` (sync graphs: ``invoke``, ``stream``), an
    :class:`~praisondb.aio.AsyncPraisonDB` (async graphs: ``ainvoke``, ``astream``), or a
    URL, from which the saver opens whichever face a call needs (and closes them in
    :meth:`close`). Values go through ``serde`` (default: LangGraph's
    ``JsonPlusSerializer`` without pickle); a serializer that falls back to pickle is
    refused, and so is a value only pickle could store.

    A thread id is a praisondb session id (see :func:`~._records.session_id` for the ids
    praisondb refuses); checkpoints, blobs and pending writes are state entries of that
    session (layout in ``_records``). Two writers racing on one thread never fork it:
    the loser gets :class:`~praisondb.Conflict` (``_threads`` says which puts are fenced).
    """

    def __init__(
        self,
        db: str | PraisonDB | AsyncPraisonDB,
        *,
        serde: SerializerProtocol | None = None,
    ) -> None:
        _refuse_pickle(serde)
        super().__init__(serde=serde or JsonPlusSerializer(pickle_fallback=False))
        from ...aio import AsyncPraisonDB
        from ...facade import PraisonDB

        self._url: str | None = None
        self._sync: PraisonDB | None = None
        self._runner: Runner | None = None
        """How async calls reach the database: per event loop for a URL (its drivers
        belong to the loop that opened them, and ``asyncio.run`` makes a new loop each
        time), the bridge of a given AsyncPraisonDB, or inline for memory://."""
        if isinstance(db, str):
            self._url = db
        elif isinstance(db, AsyncPraisonDB):
            self._runner = Bridged(db)
        elif isinstance(db, PraisonDB):
            self._sync = db
        else:
            raise ConfigError(
                f"PraisonDBSaver(db) takes a URL, a PraisonDB or an AsyncPraisonDB, "
                f"not {type(db).__name__}"
            )
        self._caches = Caches()  # the sync face's; each face may be a store of its own
        self._async_caches = Caches()
        self._opening = threading.Lock()

    # -- the faces ------------------------------------------------------------------------
    def _threads(self) -> Threads:
        return Threads(self.serde, self._caches)  # self.serde: with_allowlist swaps it

    def _athreads(self) -> Threads:
        return Threads(self.serde, self._async_caches)

    def _db(self) -> PraisonDB:
        if self._sync is None:
            if self._url is None:
                raise ConfigError(
                    "this PraisonDBSaver was given an AsyncPraisonDB, so it serves async "
                    "graphs (ainvoke, astream, aget_state); for invoke/stream give it a "
                    "PraisonDB, or a URL to serve both"
                )
            from ...facade import PraisonDB

            with self._opening:
                if self._sync is None:
                    inline = self._runner if isinstance(self._runner, Threaded) else None
                    self._sync = inline.db if inline else PraisonDB(self._url)
        return self._sync

    async def _run(self, fn: Any, *args: Any) -> Any:
        """``fn(core, *args)`` in one trip, without blocking the event loop."""
        if self._runner is None:
            if self._url is None:
                raise ConfigError(
                    "this PraisonDBSaver was given a sync PraisonDB, so it serves invoke/"
                    "stream; for ainvoke/astream give it an AsyncPraisonDB, or a URL to "
                    "serve both"
                )
            with self._opening:
                if self._runner is None:
                    self._runner = make_runner(self._url, {})
                    if isinstance(self._runner, Threaded) and self._sync is not None:
                        # memory:// is private to one database object: both faces share it
                        self._runner = Threaded(self._sync, inline=True)
        return await self._runner.run(fn, *args)

    def close(self) -> None:
        """Close the databases this saver opened from a URL (not ones it was given).

        An async face opened on an event loop that is still running must be closed on
        it: ``await saver.aclose()``; those of loops that have ended close here."""
        if self._url is None:
            return
        runner = self._runner
        if isinstance(runner, PerLoop) and not runner.release_ended():
            raise ConfigError(
                "this saver serves async calls on an event loop that is still open: "
                "close it with `await saver.aclose()` on that loop (its drivers belong "
                "to it)"
            )
        self._close_sync()

    async def aclose(self) -> None:
        """``close`` for async code."""
        if self._url is None:
            return
        if isinstance(self._runner, PerLoop):
            runner, self._runner = self._runner, None
            await runner.close()
        self._close_sync()

    def _close_sync(self) -> None:
        runner, self._runner = self._runner, None
        if isinstance(runner, Threaded) and runner.db is not self._sync:
            runner.db.close()
        if self._sync is not None:
            database, self._sync = self._sync, None
            database.close()

    def __enter__(self) -> PraisonDBSaver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> PraisonDBSaver:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- sync ---------------------------------------------------------------------------
    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return self._threads().get_tuple(self._db(), config)

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        return iter(self._threads().list(self._db(), config, filter, before, limit))

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return self._threads().put(self._db(), config, checkpoint, metadata, new_versions)

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        self._threads().put_writes(self._db(), config, writes, task_id, task_path)

    def delete_thread(self, thread_id: str) -> None:
        ops.delete_thread(self._threads(), self._db(), thread_id)

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        ops.delete_for_runs(self._threads(), self._db(), run_ids)

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        ops.copy_thread(self._threads(), self._db(), source_thread_id, target_thread_id)

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        ops.prune(self._threads(), self._db(), thread_ids, strategy)

    # -- async --------------------------------------------------------------------------
    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        found: CheckpointTuple | None = await self._run(self._athreads().get_tuple, config)
        return found

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        found = await self._run(self._athreads().list, config, filter, before, limit)
        for item in found:
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        stored: RunnableConfig = await self._run(
            self._athreads().put, config, checkpoint, metadata, new_versions
        )
        return stored

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        await self._run(self._athreads().put_writes, config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        await self._run(partial(ops.delete_thread, self._athreads()), thread_id)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        await self._run(partial(ops.delete_for_runs, self._athreads()), run_ids)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await self._run(
            partial(ops.copy_thread, self._athreads()), source_thread_id, target_thread_id
        )

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        await self._run(partial(ops.prune, self._athreads()), thread_ids, strategy)

    def get_next_version(self, current: str | None, channel: None) -> str:
        """Zero-padded counter plus a random fraction, as LangGraph's SQL savers do: a
        fork's versions never collide with the branch it left, so blobs are immutable."""
        if current is None:
            number = 0
        elif isinstance(current, int):
            number = current
        else:
            number = int(str(current).split(".")[0])
        return f"{number + 1:032}.{random.random():016}"


def _refuse_pickle(serde: SerializerProtocol | None) -> None:
    """A serializer that falls back to pickle would store code that runs when loaded."""
    inner = serde.serde if isinstance(serde, EncryptedSerializer) else serde
    if getattr(inner, "pickle_fallback", False):
        raise ConfigError(
            f"PraisonDBSaver refuses a serializer with pickle_fallback=True: {PICKLE_REFUSED}. "
            "Pass JsonPlusSerializer() (or leave serde unset)"
        )

"""A native async client, shaped like its sync twin, for core code running in a greenlet.

``redis.asyncio`` and pymongo's ``AsyncMongoClient`` mirror their sync APIs name for
name; what differs is that calls return awaitables, iteration is ``async for`` and
context managers are ``async with``. :class:`Awaiting` wraps such an object and turns
each of those back into the sync form by handing the awaitable to the event loop
through ``await_only`` (see :mod:`praisondb.aio.bridge`). The store code that drives the
sync client drives this one unchanged, so there is one implementation of each store.

Only objects of the wrapped driver's async classes are wrapped again (a pipeline, a
cursor, a collection); results (dicts, lists, bytes, pymongo's result objects) pass as
they are.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy.util.concurrency import await_only

ASYNC_MODULES = ("redis.asyncio", "redis.commands", "pymongo.asynchronous")
"""Modules whose classes are the async drivers' objects (everything else is a result)."""
BATCH = 1000
"""Documents a pymongo async cursor hands over per await (``to_list(BATCH)``)."""


def _is_driver_object(value: Any) -> bool:
    module = type(value).__module__
    return module.startswith(ASYNC_MODULES) and not isinstance(value, (BaseException, type))


def resolve(value: Any) -> Any:
    """Await ``value`` if it is a coroutine or future; wrap it if it is one of the driver's
    objects or an async generator (``redis.asyncio``'s ``scan_iter``).

    A driver object is wrapped even when awaitable: awaiting a ``redis.asyncio`` pipeline,
    which a queued command returns, would initialise it and drop the commands queued."""
    if _is_driver_object(value) or inspect.isasyncgen(value):
        return Awaiting(value)
    if inspect.isawaitable(value):
        value = wait(value)
        if _is_driver_object(value):
            return Awaiting(value)
    return value


def wait(awaitable: Any) -> Any:
    """``await_only(awaitable)``, raising a cancellation the driver swallowed.

    Before Python 3.12 ``asyncio.wait_for`` returns its inner result when the task is
    cancelled just as that result arrives, dropping the cancellation; pymongo's socket
    writes and pool waits use it, so ``task.cancel()`` could be lost and the call run on
    (a cancelled append stored). The task's count of cancellation requests tells: one
    made during this await that never came out as CancelledError is raised here, when
    the driver call ends, so the core unwinds (aborts its transaction) as for any other.
    """
    task = asyncio.current_task()
    asked = getattr(task, "cancelling", None)  # Python 3.11+
    if asked is None:
        return await_only(awaitable)
    before = asked()
    try:
        value = await_only(awaitable)
    except asyncio.CancelledError:
        raise
    except BaseException as exc:
        if asked() > before:
            raise asyncio.CancelledError() from exc
        raise
    if asked() > before:
        raise asyncio.CancelledError()
    return value


class Awaiting:
    """The sync face of one async driver object (see the module docstring)."""

    __slots__ = ("_target",)

    def __init__(self, target: Any) -> None:
        object.__setattr__(self, "_target", target)

    @property
    def unwrapped(self) -> Any:
        """The async object itself."""
        return self._target

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if callable(value) and not isinstance(value, type) and not _is_driver_object(value):
            return _method(value)
        return resolve(value)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._target, name, value)

    def __getitem__(self, key: Any) -> Any:
        return resolve(self._target[key])

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return _method(self._target)(*args, **kwargs)

    def __iter__(self) -> Iterator[Any]:
        target = self._target
        if not hasattr(target, "__aiter__"):
            yield from iter(target)
            return
        if hasattr(target, "to_list"):  # pymongo: one await per batch, not one per document
            while True:
                batch = wait(target.to_list(BATCH))
                yield from batch
                if len(batch) < BATCH:
                    return
        iterator = target.__aiter__()
        while True:
            try:
                item = wait(iterator.__anext__())
            except StopAsyncIteration:
                return
            yield resolve(item)

    def __enter__(self) -> Any:
        target = self._target
        aenter = getattr(target, "__aenter__", None)
        entered = target.__enter__() if aenter is None else wait(aenter())
        return self if entered is target else resolve(entered)

    def __exit__(self, *exc: Any) -> Any:
        target = self._target
        if hasattr(target, "__aexit__"):
            return wait(target.__aexit__(*exc))
        return target.__exit__(*exc)

    def __len__(self) -> int:
        return len(self._target)

    def __bool__(self) -> bool:
        return bool(self._target)

    def __repr__(self) -> str:
        return f"Awaiting({self._target!r})"


def _unwrap(value: Any) -> Any:
    return value._target if isinstance(value, Awaiting) else value


def _method(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` with wrapped arguments unwrapped (``session=`` of pymongo) and its result
    resolved."""

    def call(*args: Any, **kwargs: Any) -> Any:
        args = tuple(_unwrap(a) for a in args)
        kwargs = {k: _unwrap(v) for k, v in kwargs.items()}
        return resolve(fn(*args, **kwargs))

    return call


__all__ = ["Awaiting", "resolve", "wait"]

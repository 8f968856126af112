"""Compare the two sides record by record, streaming, and say how each session differs.

Per session: the record's fields, the message count, the last ``seq``, a digest of
the canonical messages (see :func:`praisondb.archive.canonical_message`) and the first
message that differs; then runs, checkpoints and spans by id. State is compared by
``(scope, key)`` on value, version and absolute expiry.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..archive import (
    MessageDigest,
    canonical_message,
    checkpoint_record,
    message_record,
    run_record,
    span_record,
)
from ..errors import NotFound
from ..model import Message, SessionInfo, StateEntry, utcnow
from ..stores.base import ConversationStore, StateStore
from ._endpoints import Endpoint, is_reserved_scope
from ._reports import SessionDiff, Tracker, VerifyReport
from ._sources import SourceSession, page_messages
from ._sync import SESSION_FIELDS, state_equal

MUTABLE_FIELDS = frozenset({"title", "metadata", "updated_at", "message_count", "last_seq"})


@dataclass(frozen=True)
class CompareOptions:
    batch_size: int = 1000
    live: bool = False
    """Tolerate a source that moved on after the copy: compare up to the target's last seq."""
    session_state: bool = False


def compare_session(
    src: SourceSession,
    target: ConversationStore,
    options: CompareOptions,
    source_state: StateStore | None = None,
    target_state: StateStore | None = None,
) -> tuple[SessionDiff | None, int]:
    """The differences of one session (None when equal) and how many messages were read."""
    source = src.info
    diff = SessionDiff(source.id)
    try:
        current = target.get_session(source.id)
    except NotFound:
        diff.problems.append(
            f"missing in target (source has {source.message_count} messages, last seq "
            f"{source.last_seq})"
        )
        return diff, 0
    moved_on = options.live and (
        source.last_seq > current.last_seq or source.updated_at > current.updated_at
    )
    for name in SESSION_FIELDS:
        if moved_on and name in MUTABLE_FIELDS:
            continue
        a, b = getattr(source, name), getattr(current, name)
        if a != b:
            diff.problems.append(f"{name}: source {_show(a)}, target {_show(b)}")
    upto = current.last_seq if moved_on else None
    checked = _compare_messages(src, target, upto, options.batch_size, diff)
    _compare_children(src, target, diff)
    if options.session_state and source_state is not None:
        _compare_state_scope(f"session:{source.id}", source_state, target_state, diff)
    return (diff if diff.problems else None), checked


def _compare_messages(
    src: SourceSession, target: ConversationStore, upto: int | None, batch: int, diff: SessionDiff
) -> int:
    ours = _flatten(src.messages(0, batch, upto))
    theirs = _flatten(page_messages(target, src.info.id, 0, batch, upto))
    a_digest, b_digest = MessageDigest(), MessageDigest()
    missing: list[int] = []
    extra: list[int] = []
    changed: list[tuple[int, list[str]]] = []
    a, b = next(ours, None), next(theirs, None)
    while a is not None or b is not None:
        if b is None or (a is not None and a.seq < b.seq):
            assert a is not None
            a_digest.add(a)
            missing.append(a.seq)
            a = next(ours, None)
        elif a is None or b.seq < a.seq:
            b_digest.add(b)
            extra.append(b.seq)
            b = next(theirs, None)
        else:
            ca, cb = canonical_message(a), canonical_message(b)
            a_digest.add(a, ca)
            b_digest.add(b, cb)
            if ca != cb:
                changed.append((a.seq, _message_fields(a, b)))
            a, b = next(ours, None), next(theirs, None)
    if a_digest.count != b_digest.count:
        diff.problems.append(f"message count: source {a_digest.count}, target {b_digest.count}")
    if a_digest.last_seq != b_digest.last_seq:
        diff.problems.append(f"last seq: source {a_digest.last_seq}, target {b_digest.last_seq}")
    if missing:
        diff.problems.append(f"{len(missing)} message(s) missing in target{_seqs(missing)}")
    if extra:
        diff.problems.append(f"{len(extra)} message(s) only in target{_seqs(extra)}")
    if changed:
        seq, names = changed[0]
        diff.problems.append(
            f"{len(changed)} message(s) differ{_seqs([s for s, _ in changed])}; "
            f"first at seq {seq}: {', '.join(names)}"
        )
    if a_digest.hexdigest() != b_digest.hexdigest():
        diff.problems.append(
            f"digest: source {a_digest.hexdigest()[:19]}..., target {b_digest.hexdigest()[:19]}..."
        )
    return a_digest.count


def _compare_children(src: SourceSession, target: ConversationStore, diff: SessionDiff) -> None:
    sid = src.info.id
    pairs: list[tuple[str, list[Any], list[Any], Any]] = [
        ("runs", src.runs(), target.list_runs(sid), run_record),
        ("checkpoints", src.checkpoints(), target.list_checkpoints(sid), checkpoint_record),
        ("spans", src.spans(), target.list_spans(session_id=sid), span_record),
    ]
    for what, ours, theirs, record in pairs:
        mine = {item.id: record(item) for item in ours}
        other = {item.id: record(item) for item in theirs}
        missing = sorted(mine.keys() - other.keys())
        extra = sorted(other.keys() - mine.keys())
        changed = sorted(k for k in mine.keys() & other.keys() if mine[k] != other[k])
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing in target (first {missing[0]})")
        if extra:
            parts.append(f"{len(extra)} only in target (first {extra[0]})")
        if changed:
            first = changed[0]
            names = [k for k in mine[first] if mine[first][k] != other[first].get(k)]
            parts.append(f"{len(changed)} differ (first {first}: {', '.join(names)})")
        if parts:
            diff.problems.append(f"{what}: " + "; ".join(parts))


def _compare_state_scope(
    scope: str, source: StateStore, target: StateStore | None, diff: SessionDiff
) -> None:
    texts: list[str] = []
    for ours, theirs in merge_entries(
        source.list_entries(scope), target.list_entries(scope) if target else []
    ):
        text = state_problem(ours, theirs)
        if text:
            texts.append(text)
    if texts:
        diff.problems.append(
            f"state: {len(texts)} entr{'y' if len(texts) == 1 else 'ies'} differ ({texts[0]})"
        )


def iter_entries(store: StateStore, scope: str | None, batch: int) -> Iterator[StateEntry]:
    """Every live entry (of one scope or all), by (scope, key), skipping transfer cursors."""
    after: tuple[str, str] | None = None
    while True:
        page = store.list_entries(scope, limit=batch, after=after)
        for entry in page:
            if not is_reserved_scope(entry.scope):
                yield entry
        if len(page) < batch:
            return
        after = (page[-1].scope, page[-1].key)


def merge_entries(
    ours: Iterable[StateEntry], theirs: Iterable[StateEntry]
) -> Iterator[tuple[StateEntry | None, StateEntry | None]]:
    """Pairs by (scope, key) from two sorted streams; one side is None where it lacks one."""
    a_iter, b_iter = iter(ours), iter(theirs)
    a, b = next(a_iter, None), next(b_iter, None)
    while a is not None or b is not None:
        ka = (a.scope, a.key) if a is not None else None
        kb = (b.scope, b.key) if b is not None else None
        if kb is None or (ka is not None and ka < kb):
            yield a, None
            a = next(a_iter, None)
        elif ka is None or kb < ka:
            yield None, b
            b = next(b_iter, None)
        else:
            yield a, b
            a, b = next(a_iter, None), next(b_iter, None)


def state_problem(ours: StateEntry | None, theirs: StateEntry | None) -> str | None:
    """Why an entry differs, or None. Entries only in the target are not a difference."""
    if ours is None:
        return None
    name = f"{ours.scope}/{ours.key}"
    if theirs is None:
        if ours.expires_at is not None and ours.expires_at <= utcnow() + timedelta(seconds=1):
            return None  # expired while we looked
        return f"{name} missing in target"
    if state_equal(ours, theirs):
        return None
    what = [
        label
        for label, x, y in (
            ("value", ours.value, theirs.value),
            ("version", ours.version, theirs.version),
            ("expires_at", ours.expires_at, theirs.expires_at),
        )
        if x != y
    ]
    return f"{name}: {', '.join(what) or 'value'} differ"


def compare_all_state(
    source: StateStore, target: StateStore, scope: str | None, batch: int, report: VerifyReport
) -> None:
    for ours, theirs in merge_entries(
        iter_entries(source, scope, batch), iter_entries(target, scope, batch)
    ):
        if ours is not None:
            report.state_checked += 1
        text = state_problem(ours, theirs)
        if text:
            report.add_state_difference(text)


def session_created_after(info: SessionInfo, moment: datetime | None) -> bool:
    return moment is not None and info.created_at > moment


def _flatten(batches: Iterable[list[Message]]) -> Iterator[Message]:
    for batch in batches:
        yield from batch


def _message_fields(a: Message, b: Message) -> list[str]:
    ra, rb = message_record(a), message_record(b)
    return [k for k in ra if k not in ("type", "session_id") and ra[k] != rb[k]] or ["encoding"]


def _seqs(seqs: list[int]) -> str:
    shown = ", ".join(str(s) for s in seqs[:5])
    return f" (seq {shown}{', ...' if len(seqs) > 5 else ''})"


def _show(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_one(
    src: SourceSession,
    tgt: Endpoint,
    options: CompareOptions,
    source_state: StateStore | None,
    report: VerifyReport,
    tracker: Tracker,
) -> None:
    diff, checked = compare_session(src, tgt.conversations, options, source_state, tgt.state)
    report.sessions_checked += 1
    report.messages_checked += checked
    if diff is None:
        report.sessions_ok += 1
    else:
        report.add_difference(diff)
    tracker.add(messages_copied=checked)
    tracker.session_done("unchanged")

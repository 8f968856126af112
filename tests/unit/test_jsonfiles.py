"""JSON-files store behaviour the generic conformance suite cannot see: the files.

Path safety (hostile ids, planted symlinks), crash recovery (torn lines, unfinished
batches, a writer killed between the log and the session file, SIGKILL mid-append),
atomic session-file replacement, cross-process locks and options.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import pytest

from praisondb import (
    BackendUnavailable,
    Checkpoint,
    ConfigError,
    Conflict,
    Message,
    PraisonDB,
    Run,
    SessionInfo,
    Span,
    StorageFull,
)
from praisondb.stores.base import SessionQuery
from praisondb.stores.jsonfiles import files as jsonfiles_io
from praisondb.stores.jsonfiles.files import safe_name
from praisondb.stores.jsonfiles.state import KEY_LOG
from praisondb.stores.jsonfiles.store import JsonFileStore
from praisondb.stores.memory import MemoryStore
from praisondb.urls import parse_url
from tests.waiting import eventually

REPO = Path(__file__).resolve().parents[2]
HOSTILE = [
    "../../etc/passwd",
    "../../../../tmp/escape",
    "a/b",
    "a\\b",
    "..",
    ".",
    "/abs/path",
    "CON",
    "nul.txt",
    "PRN.json",
    "Ünïcødé 🚀 中文",
    "x" * 255,
    "trailing dot.",
    "~user",
    "$HOME",
    ".hidden",
]


def open_store(root: Path, **options: object) -> JsonFileStore:
    return JsonFileStore(parse_url(f"json://{root}"), **options)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def store(root: Path) -> Iterator[JsonFileStore]:
    opened = open_store(root)
    yield opened
    opened.close()


def session_dir(root: Path, session_id: str) -> Path:
    return root / "sessions" / safe_name(session_id)


def log_file(root: Path, session_id: str) -> Path:
    head = orjson.loads((session_dir(root, session_id) / "session.json").read_bytes())
    return session_dir(root, session_id) / f"messages-{head['log']}.jsonl"


def append(store: JsonFileStore, sid: str, *texts: str) -> list[Message]:
    return store.append_messages(sid, [Message(sid, "user", t) for t in texts])


def run_python(code: str, *args: str, stdin: bool = False) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        stdin=subprocess.PIPE if stdin else None,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


# -- path safety ---------------------------------------------------------------------


def test_hostile_ids_never_leave_the_root(tmp_path: Path, root: Path, store: JsonFileStore) -> None:
    for raw in HOSTILE:
        store.create_session(SessionInfo(raw, user_id=raw, metadata={"raw": raw}))
        append(store, raw, raw)
        store.save_run(Run(raw, id=raw))
        store.save_checkpoint(Checkpoint(raw, 1, id=raw))
        store.save_span(Span(raw, raw, id=raw, session_id=raw))
        store.save_span(Span(raw, raw, id=raw + "-orphan"))
        store.set_entry(f"user:{raw}", raw, raw)
    assert sorted(os.listdir(tmp_path)) == ["store"], "something was written beside the root"
    for dirpath, dirs, files in os.walk(tmp_path):
        for name in dirs + files:
            path = Path(dirpath, name)
            assert not path.is_symlink()
            assert path.resolve().is_relative_to(root), path
            assert name.isascii() and len(name) < 130, name
    for raw in HOSTILE:
        assert store.get_session(raw).metadata == {"raw": raw}
        assert [m.content for m in store.list_messages(raw)] == [raw]
        assert store.get_run(raw).session_id == raw
        assert store.get_checkpoint(raw).session_id == raw
        entry = store.get_entry(f"user:{raw}", raw)
        assert entry is not None and entry.value == raw
    assert {s.id for s in store.list_sessions(SessionQuery(limit=100)).items} == set(HOSTILE)
    for raw in HOSTILE:
        assert store.delete_session(raw)
    assert os.listdir(root / "sessions") == []


def test_names_are_distinct_for_case_and_safe_for_any_filesystem() -> None:
    names = {safe_name(raw) for raw in [*HOSTILE, "Case", "case", "CASE"]}
    assert len(names) == len(HOSTILE) + 3
    for name in names:
        assert jsonfiles_io.SAFE_NAME.match(name), name
        assert name == name.lower() and name not in {".", ".."}


def test_a_planted_symlink_is_refused(tmp_path: Path, root: Path, store: JsonFileStore) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    store.create_session(SessionInfo("victim"))
    target = session_dir(root, "victim")
    for name in os.listdir(target):
        os.rename(target / name, outside / name)
    target.rmdir()
    target.symlink_to(outside, target_is_directory=True)
    before = sorted(os.listdir(outside))
    with pytest.raises(ConfigError, match="symlink"):
        append(store, "victim", "must not land outside")
    with pytest.raises(ConfigError, match="symlink"):
        store.update_session("victim", title="nope")
    assert sorted(os.listdir(outside)) == before


# -- crash recovery -------------------------------------------------------------------


def test_a_torn_last_line_is_ignored_then_cut(root: Path, store: JsonFileStore) -> None:
    store.create_session(SessionInfo("s"))
    append(store, "s", "one", "two", "three")
    log = log_file(root, "s")
    with open(log, "ab") as handle:
        handle.write(b'{"id":"torn","seq":4,"role":"user","content":"half a mess')
    assert [m.content for m in store.list_messages("s")] == ["one", "two", "three"]
    assert [m.seq for m in store.list_messages("s", last=2)] == [2, 3]
    assert store.count_messages("s") == 3
    assert append(store, "s", "four")[0].seq == 4
    lines = log.read_bytes().split(b"\n")
    assert lines[-1] == b"" and all(orjson.loads(line) for line in lines[:-1])
    assert [m.content for m in store.list_messages("s")] == ["one", "two", "three", "four"]


def test_an_unfinished_batch_is_invisible_and_removed(root: Path, store: JsonFileStore) -> None:
    store.create_session(SessionInfo("s"))
    append(store, "s", "kept")
    log = log_file(root, "s")
    partial = [
        {"id": f"b{i}", "seq": 2 + i, "role": "user", "content": f"b{i}", "metadata": {},
         "run_id": None, "created_at": "2024-01-01T00:00:00.000000+00:00", "more": 1}
        for i in range(2)
    ]  # fmt: skip
    with open(log, "ab") as handle:
        handle.write(b"".join(orjson.dumps(r) + b"\n" for r in partial))
    assert [m.content for m in store.list_messages("s")] == ["kept"]
    assert [m.content for m in store.list_messages("s", last=5)] == ["kept"]
    info = store.get_session("s")
    assert (info.message_count, info.last_seq) == (1, 1)
    assert [m.seq for m in append(store, "s", "next")] == [2]
    assert b'"b0"' not in log.read_bytes()


def test_counters_heal_when_a_writer_died_before_the_session_file(
    root: Path, store: JsonFileStore
) -> None:
    """Lines that reached the log count, even though session.json never heard of them."""
    store.create_session(SessionInfo("s"))
    append(store, "s", "one")
    head_path = session_dir(root, "s") / "session.json"
    stale_head = head_path.read_bytes()
    append(store, "s", "two", "three")
    head_path.write_bytes(stale_head)  # as if the process died right after the log write
    other = open_store(root)  # a fresh process has no cache to hide behind
    info = other.get_session("s")
    assert (info.message_count, info.last_seq) == (3, 3)
    assert orjson.loads(head_path.read_bytes())["log_size"] == log_file(root, "s").stat().st_size
    assert append(other, "s", "four")[0].seq == 4
    assert [m.seq for m in other.list_messages("s")] == [1, 2, 3, 4]


def test_a_log_shorter_than_the_session_file_says_is_recounted(
    root: Path, store: JsonFileStore
) -> None:
    store.create_session(SessionInfo("s"))
    append(store, "s", *[str(i) for i in range(5)])
    log = log_file(root, "s")
    data = log.read_bytes()
    log.write_bytes(data[: data.index(b"\n", len(data) // 2) + 1] + b'{"id": "cut')
    info = open_store(root).get_session("s")
    listed = store.list_messages("s")
    assert info.message_count == len(listed) < 5
    assert info.last_seq == 5, "seq values are never handed out twice"
    assert append(store, "s", "next")[0].seq == 6


def test_sigkill_mid_batch_append_leaves_whole_batches(root: Path, store: JsonFileStore) -> None:
    store.create_session(SessionInfo("s"))
    store.close()
    code = """
        import sys
        from praisondb import Message
        from praisondb.stores.jsonfiles.store import JsonFileStore
        from praisondb.urls import parse_url
        store = JsonFileStore(parse_url("json://" + sys.argv[1]))
        print("ready", flush=True)
        n = 0
        while True:
            store.append_messages("s", [Message("s", "user", f"{n + i}", {"batch": n}) for i in range(5)])
            n += 5
    """
    proc = run_python(code, str(root))
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    reader = open_store(root)
    eventually(lambda: reader.count_messages("s") >= 100, 30, "100 messages from the writer")
    proc.kill()
    proc.wait(timeout=30)
    reopened = open_store(root)
    messages = reopened.list_messages("s")
    assert len(messages) >= 100 and len(messages) % 5 == 0, "a batch was cut in half"
    assert [m.seq for m in messages] == list(range(1, len(messages) + 1))
    assert [m.content for m in messages] == [str(i) for i in range(len(messages))]
    info = reopened.get_session("s")
    assert (info.message_count, info.last_seq) == (len(messages), len(messages))
    assert append(reopened, "s", "after")[0].seq == len(messages) + 1


def test_a_batch_cut_by_a_failing_write_is_all_or_nothing(
    root: Path, store: JsonFileStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disk that fills up mid-write leaves whole lines of half a batch: none may show."""
    store.create_session(SessionInfo("s"))
    append(store, "s", "before")
    real_write = os.write

    def half_then_full(fd: int, data: bytes | memoryview) -> int:
        real_write(fd, bytes(data)[: len(data) * 2 // 3])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(jsonfiles_io.os, "write", half_then_full)
    with pytest.raises(StorageFull, match="No space"):
        append(store, "s", "b1", "b2", "b3", "b4")
    monkeypatch.undo()
    assert b'"b1"' in log_file(root, "s").read_bytes(), "the simulated write did not happen"
    for reader in (store, open_store(root)):
        assert [m.content for m in reader.list_messages("s")] == ["before"]
        assert [m.content for m in reader.list_messages("s", last=3)] == ["before"]
    assert store.get_session("s").message_count == 1
    assert [m.seq for m in append(store, "s", "after")] == [2]
    assert [m.content for m in store.list_messages("s")] == ["before", "after"]
    assert b'"b1"' not in log_file(root, "s").read_bytes()


def test_session_file_is_replaced_atomically(
    root: Path, store: JsonFileStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.create_session(SessionInfo("s", title="before"))
    head_path = session_dir(root, "s") / "session.json"
    original = head_path.read_bytes()

    def crash(*_args: object) -> None:
        raise OSError(5, "simulated crash before the rename")

    monkeypatch.setattr(jsonfiles_io.os, "replace", crash)
    with pytest.raises(BackendUnavailable):
        store.update_session("s", title="after")
    monkeypatch.undo()
    assert head_path.read_bytes() == original
    assert [n for n in os.listdir(head_path.parent) if n.startswith(".tmp")] == []
    assert store.get_session("s").title == "before"


def test_readers_never_see_a_half_written_session_file(root: Path, store: JsonFileStore) -> None:
    store.create_session(SessionInfo("s", metadata={"pad": "x" * 200_000}))
    head_path = session_dir(root, "s") / "session.json"
    stop = threading.Event()
    bad: list[bytes] = []

    def read() -> None:
        while not stop.is_set():
            raw = head_path.read_bytes()
            try:
                orjson.loads(raw)
            except orjson.JSONDecodeError:
                bad.append(raw[:100])

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(60):
            store.update_session("s", metadata={"i": i})
    finally:
        stop.set()
        reader.join()
    assert bad == []


# -- locks and concurrency --------------------------------------------------------------


def waiting_on_a_file_lock(thread: threading.Thread) -> bool:
    """Whether ``thread`` is inside filelock's acquire (polling a lock another holds)."""
    frame = sys._current_frames().get(thread.ident or -1)
    while frame is not None:
        code = frame.f_code
        if code.co_name == "acquire" and "filelock" in code.co_filename:
            return True
        frame = frame.f_back
    return False


def test_the_session_lock_excludes_other_processes(root: Path, store: JsonFileStore) -> None:
    """The other process holds the lock until told (a line on its stdin) to let go."""
    store.create_session(SessionInfo("s"))
    code = """
        import sys
        from praisondb.stores.jsonfiles.store import JsonFileStore
        from praisondb.stores.jsonfiles.files import safe_name
        from praisondb.urls import parse_url
        store = JsonFileStore(parse_url("json://" + sys.argv[1]))
        with store._locks("s-" + safe_name("s")):
            print("locked", flush=True)
            sys.stdin.readline()
    """
    proc = run_python(code, str(root), stdin=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    impatient = open_store(root, lock_timeout=0.2)
    with pytest.raises(BackendUnavailable, match="lock"):
        append(impatient, "s", "blocked")
    seqs: list[int] = []
    waiter = threading.Thread(target=lambda: seqs.extend(m.seq for m in append(store, "s", "w")))
    waiter.start()
    eventually(lambda: waiting_on_a_file_lock(waiter), 10, "the append waiting for the lock")
    assert not seqs and store.count_messages("s") == 0
    assert proc.stdin is not None
    proc.stdin.write("release\n")
    proc.stdin.flush()
    waiter.join(timeout=30)
    assert seqs == [1], "the waiting append never went through"
    proc.wait(timeout=30)
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""


def test_readers_see_only_whole_batches_while_another_process_writes(
    root: Path, store: JsonFileStore
) -> None:
    store.create_session(SessionInfo("s"))
    code = """
        import sys
        from praisondb import Message
        from praisondb.stores.jsonfiles.store import JsonFileStore
        from praisondb.urls import parse_url
        store = JsonFileStore(parse_url("json://" + sys.argv[1]), fsync=False)
        print("ready", flush=True)
        for n in range(100):
            store.append_messages("s", [Message("s", "user", "y" * 3000) for _ in range(3)])
    """
    proc = run_python(code, str(root))
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    observed = 0
    while proc.poll() is None or observed < 300:
        whole = [m.seq for m in store.list_messages("s")]
        assert whole == list(range(1, len(whole) + 1)) and len(whole) % 3 == 0
        tail = [m.seq for m in store.list_messages("s", last=4)]
        if tail:
            assert tail == list(range(tail[0], tail[-1] + 1)) and tail[-1] % 3 == 0
        info = store.get_session("s")
        assert info.message_count == info.last_seq and info.last_seq % 3 == 0
        observed = len(whole)
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
    assert observed == 300


def test_duplicate_ids_are_seen_across_processes(root: Path, store: JsonFileStore) -> None:
    plain, quoted, escaped = "m-1", 'm-"2"', "m\\3 ü"
    store.create_session(SessionInfo("s"))
    store.append_messages("s", [Message("s", "user", "a", id=plain)])
    other = open_store(root)  # another process: its id index starts from the file
    with pytest.raises(Conflict):
        other.append_messages("s", [Message("s", "user", "again", id=plain)])
    other.append_messages("s", [Message("s", "user", "b", id=quoted)])
    other.append_messages("s", [Message("s", "user", "c", id=escaped)])
    for writer in (store, open_store(root)):  # catching up, and loading from scratch
        for taken in (plain, quoted, escaped):
            with pytest.raises(Conflict):
                writer.append_messages("s", [Message("s", "user", "again", id=taken)])
    with pytest.raises(Conflict):
        store.append_messages("s", [Message("s", "user", "x", id="m-4")] * 2)
    assert [m.id for m in store.list_messages("s")] == [plain, quoted, escaped]


# -- reading windows match the reference --------------------------------------------------


def test_windows_match_the_memory_store_on_a_large_log(store: JsonFileStore) -> None:
    reference = MemoryStore(parse_url("memory://"))
    for target in (store, reference):
        target.create_session(SessionInfo("s"))
        batch = [Message("s", "user", f"{i} " + "x" * 150, id=f"m{i}") for i in range(1500)]
        target.append_messages("s", batch)
        target.delete_messages("s", from_seq=700, to_seq=720)
    rng = random.Random(7)
    for _ in range(120):
        window = {
            "after_seq": rng.choice([None, rng.randint(0, 1600)]),
            "before_seq": rng.choice([None, rng.randint(0, 1600)]),
            "last": rng.choice([None, rng.randint(0, 40)]),
            "limit": rng.choice([None, rng.randint(0, 40)]),
        }
        got = [m.seq for m in store.list_messages("s", **window)]
        assert got == [m.seq for m in reference.list_messages("s", **window)], window


def test_put_messages_out_of_order_rewrites_the_log(root: Path, store: JsonFileStore) -> None:
    store.create_session(SessionInfo("s"))
    first = [Message("s", "user", f"m{i}", seq=i, id=f"id{i}") for i in (5, 6)]
    earlier = [Message("s", "user", f"m{i}", seq=i, id=f"id{i}") for i in (1, 3)]
    assert store.put_messages("s", first) == 2
    old_log = log_file(root, "s")
    assert store.put_messages("s", earlier) == 2
    assert not old_log.exists()
    assert [n for n in os.listdir(session_dir(root, "s")) if n.startswith("messages-")] == [
        log_file(root, "s").name
    ]
    assert [m.seq for m in store.list_messages("s")] == [1, 3, 5, 6]
    with pytest.raises(Conflict, match="held by"):
        store.put_messages("s", [Message("s", "user", "clash", seq=3, id="other")])
    info = store.get_session("s")
    assert (info.message_count, info.last_seq) == (4, 6)


# -- runs, spans, checkpoints ---------------------------------------------------------------


def test_records_follow_their_session_and_deletes_clean_the_index(
    root: Path, store: JsonFileStore
) -> None:
    for sid in ("a", "b"):
        store.create_session(SessionInfo(sid))
    store.save_run(Run("a", id="r"))
    store.save_run(Run("b", id="r", status="moved"))
    assert store.list_runs("a") == [] and [r.status for r in store.list_runs("b")] == ["moved"]
    store.save_span(Span("t", "orphan", id="sp"))
    store.save_span(Span("t", "adopted", id="sp", session_id="a"))
    assert [s.name for s in store.list_spans(trace_id="t")] == ["adopted"]
    store.save_checkpoint(Checkpoint("b", 0, id="cp"))
    assert store.delete_session("b")
    assert os.listdir(root / "index" / "runs") == []
    assert os.listdir(root / "index" / "checkpoints") == []
    assert os.listdir(root / "trash") == []
    assert not session_dir(root, "b").exists()


def test_files_are_readable_json_with_iso_timestamps(root: Path, store: JsonFileStore) -> None:
    moment = datetime(2024, 2, 29, 12, 0, 0, 0, tzinfo=timezone(timedelta(hours=2)))
    store.create_session(SessionInfo("s", created_at=moment, updated_at=moment))
    store.append_messages("s", [Message("s", "user", "hi", created_at=moment)])
    head = orjson.loads((session_dir(root, "s") / "session.json").read_bytes())
    assert head["created_at"] == "2024-02-29T10:00:00.000000+00:00"
    (line,) = log_file(root, "s").read_bytes().splitlines()
    assert orjson.loads(line)["created_at"] == "2024-02-29T10:00:00.000000+00:00"
    assert store.get_session("s").created_at == moment


# -- state -------------------------------------------------------------------------------------


def test_state_lives_in_one_file_per_key_and_expired_entries_vanish(
    root: Path, store: JsonFileStore
) -> None:
    past = datetime.now(timezone.utc) - timedelta(seconds=1)
    store.set_entry("app", "gone", 1, expires_at=past)
    store.set_entry("app", "kept", {"a.b": ["$x"]})
    files = os.listdir(root / "state" / safe_name("app"))
    assert KEY_LOG in files  # the scope's key log, beside one file per key
    files.remove(KEY_LOG)
    assert len(files) == 2 and all(f.endswith(".json") for f in files)
    assert store.get_entry("app", "gone") is None
    assert [e.key for e in store.list_entries("app")] == ["kept"]
    assert store.set_entry("app", "gone", 2, expected_version=0).version == 1
    assert store.delete_scope("app") == 2
    assert not (root / "state" / safe_name("app")).exists()


# -- configuration and errors -------------------------------------------------------------------


def test_options_and_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="bogus"):
        open_store(tmp_path / "a", bogus=1)
    with pytest.raises(ConfigError, match="fsync"):
        JsonFileStore(parse_url(f"json://{tmp_path / 'b'}?fsync=maybe"))
    fast = JsonFileStore(parse_url(f"json://{tmp_path / 'c'}?fsync=false&lock_timeout=2"))
    fast.create_session(SessionInfo("s"))
    assert (tmp_path / "c" / "praisondb-json.json").exists()
    monkeypatch.chdir(tmp_path)
    relative = JsonFileStore(parse_url("json://rel/dir"), auto_migrate=True)
    relative.create_session(SessionInfo("s"))
    assert (tmp_path / "rel" / "dir" / "sessions").is_dir()
    (tmp_path / "bare").mkdir()
    with PraisonDB(str(tmp_path / "bare")) as db:
        assert isinstance(db.conversations, JsonFileStore)
        db.sessions.create("x")
    assert (tmp_path / "bare" / "sessions").is_dir()


def test_unusable_roots_are_config_errors(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("not a directory")
    with pytest.raises(ConfigError, match="not a directory"):
        open_store(a_file)
    newer = tmp_path / "newer"
    newer.mkdir()
    (newer / "praisondb-json.json").write_bytes(b'{"format": "praisondb-json", "version": 99}')
    with pytest.raises(ConfigError, match="version 99"):
        open_store(newer)


def test_permission_problems_name_the_path(
    store: JsonFileStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.create_session(SessionInfo("s"))

    def denied(path: str, *_args: object, **_kwargs: object) -> int:
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr("praisondb.stores.jsonfiles.store.append_bytes", denied)
    with pytest.raises(ConfigError, match=r"messages-.*\.jsonl.*Permission denied"):
        append(store, "s", "x")
    monkeypatch.undo()
    assert store.count_messages("s") == 0 and append(store, "s", "x")[0].seq == 1

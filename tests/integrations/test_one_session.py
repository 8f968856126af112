"""One session, every face: what LangGraph, the OpenAI Agents SDK and Google ADK write
is a praisondb session that ``praisondb copy``/``export``/``import``/``verify`` move
between backends with its framework records, and each framework resumes on the copy.

The hops: SQLite -> PostgreSQL -> MongoDB by ``praisondb copy`` (each verified), and
PostgreSQL -> archive file -> a second MongoDB by ``export``/``import``. Resuming on a
copy must give exactly what resuming on the original gives (same state, same history
sent to the model, same next turn).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner, Result

from praisondb import PraisonDB
from praisondb.cli import cli
from tests.conftest import private_url
from tests.integrations import one_session_kit as kit
from tests.integrations.one_session_kit import (
    PraisonDBSaver,
    PraisonDBSession,
    PraisonDBSessionService,
)


def praisondb_cli(*args: str) -> Result:
    """``praisondb ARGS`` through the CLI's entry point; a failure shows its output."""
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.stdout + (result.stderr or "")
    return result


def copy_and_verify(source: str, target: str, *selection: str) -> dict[str, Any]:
    report = orjson.loads(
        praisondb_cli("copy", source, target, "--auto-migrate", "--json", *selection).stdout
    )
    assert report["ok"] and report["verify"]["ok"], report
    verified = praisondb_cli("verify", source, target, "--json", *selection)
    assert orjson.loads(verified.stdout)["ok"]
    return report  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from private_url("postgres", tmp_path_factory)


@pytest.fixture(scope="module")
def mongodb_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from private_url("mongodb", tmp_path_factory)


@pytest.fixture(scope="module")
def mongodb_url2(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from private_url("mongodb", tmp_path_factory)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'frameworks.db'}"
    kit.migrate(url)
    return url


@pytest.mark.slow
def test_sqlite_to_postgres_to_mongodb_and_each_framework_resumes(
    sqlite_url: str,
    postgres_url: str,
    mongodb_url: str,
    mongodb_url2: str,
    uid: str,
    tmp_path: Path,
) -> None:
    ids = kit.Ids.of(uid)
    kit.write_all(sqlite_url, ids)

    first = copy_and_verify(sqlite_url, postgres_url)
    assert first["sessions_created"] == 3
    assert first["state_copied"] > 0  # LangGraph checkpoints, ADK state: state entries
    copy_and_verify(postgres_url, mongodb_url)
    archive = tmp_path / "frameworks.jsonl.gz"
    praisondb_cli("export", postgres_url, str(archive), "--json")
    praisondb_cli("import", str(archive), mongodb_url2, "--json")
    praisondb_cli("verify", str(archive), mongodb_url2)

    on_copy = kit.resume_all(mongodb_url, ids)
    on_import = kit.resume_all(mongodb_url2, ids)
    on_source = kit.resume_all(sqlite_url, ids)  # the control: the original, resumed
    assert on_copy == on_source
    assert on_import == on_source

    graph = on_copy["langgraph"]
    assert graph["before"]["next"] == ("approve",)
    assert graph["before"]["interrupts"][0][1] == {"question": "ship the draft of spec?"}
    assert [w[1] for w in graph["before"]["pending_writes"]] == ["__interrupt__"]
    assert graph["after"]["verdict"] == "yes"  # continued from the interrupt
    agents = on_copy["openai"]
    assert [i.get("type", "message") for i in agents["model_input"]] == [
        "message",
        "function_call",
        "function_call_output",
        "message",
        "message",
    ]
    adk = on_copy["adk"]
    assert adk["before"]["state"] == {
        "app:plan": "pro",
        "app:last_tool": "remember",
        "user:likes": "jazz",
        "tier": 1,
        "turns": 1,
    }
    assert adk["model_input"][:2] == ["I like jazz", "remember({'likes': 'jazz'})"]
    assert adk["model_input"][-1] == "What do I like?"


def test_a_selection_carries_what_its_sessions_read(
    sqlite_url: str, tmp_path: Path, uid: str
) -> None:
    """``--session`` picks framework sessions out of a busy store: they move with their own
    scope (LangGraph checkpoints, writes and run index; ADK session state) and the ``app``
    and ``user:<id>`` scopes they read (ADK ``app:``/``user:`` keys); other users'
    sessions and state stay behind."""
    ids = kit.Ids.of(uid)
    kit.write_all(sqlite_url, ids)
    with PraisonDB(sqlite_url) as db:
        db.sessions.create("bystander", user_id="bo")
        db.state.set("theme", "dark", scope="user:bo")
    target = f"sqlite:///{tmp_path / 'picked.db'}"
    picked = [arg for sid in ids.all() for arg in ("--session", sid)]
    copy_and_verify(sqlite_url, target, *picked)
    archive = tmp_path / "picked.jsonl"
    praisondb_cli("export", sqlite_url, str(archive), *picked)
    imported = f"sqlite:///{tmp_path / 'imported.db'}"
    praisondb_cli("import", str(archive), imported, "--auto-migrate")

    for url in (target, imported):
        with PraisonDB(url) as db:
            assert sorted(s.id for s in db.sessions.iterate()) == sorted(ids.all())
            assert db.state.list("user:bo") == []
    resumed = kit.resume_all(target, ids)
    assert resumed == kit.resume_all(imported, ids)
    assert resumed["adk"]["before"]["state"]["app:plan"] == "pro"

    # the LangGraph run index came along: delete_for_runs finds the thread on the copy
    with PraisonDB(target) as db:
        saver = PraisonDBSaver(db)
        config = {"configurable": {"thread_id": ids.langgraph}}
        assert [e.key for e in db.state.list(f"session:{ids.langgraph}", "langgraph/run/")] == [
            f"langgraph/run/run-{ids.langgraph}"
        ]
        resumed_at = saver.get_tuple(config)
        saver.delete_for_runs([f"run-{ids.langgraph}"])
        remaining = saver.get_tuple(config)  # the resume's checkpoints had no run id
        assert remaining is not None and resumed_at is not None
        assert remaining.checkpoint["id"] == resumed_at.checkpoint["id"]
        assert all(t.metadata.get("run_id") is None for t in saver.list(config))
        assert db.state.list(f"session:{ids.langgraph}", "langgraph/run/") == []


def test_sessions_list_and_show_name_the_framework(sqlite_url: str, uid: str) -> None:
    ids = kit.Ids.of(uid)
    kit.write_all(sqlite_url, ids)
    with PraisonDB(sqlite_url) as db:
        db.sessions.create("plain", user_id=kit.USER)

    listed = orjson.loads(praisondb_cli("sessions", "list", "--url", sqlite_url, "--json").stdout)
    frameworks = {s["id"]: s["metadata"].get("framework") for s in listed["items"]}
    assert frameworks == {
        ids.langgraph: "langgraph",
        ids.openai: "openai-agents",
        ids.adk: "adk",
        "plain": None,
    }
    table = praisondb_cli("sessions", "list", "--url", sqlite_url).stdout.splitlines()
    assert table[0].split()[:4] == ["id", "user", "agent", "framework"]
    rows = {line.split()[0]: line.split() for line in table[1:]}
    assert rows[ids.adk][1:4] == [kit.USER, kit.APP, "adk"]
    assert rows[ids.openai][1:4] == [kit.USER, "forecaster", "openai-agents"]
    assert rows[ids.langgraph][1:4] == ["-", "langgraph", "langgraph"]
    assert rows["plain"][1:4] == [kit.USER, "-", "-"]

    adk = praisondb_cli("sessions", "show", ids.adk, "--url", sqlite_url).stdout
    assert "framework adk" in adk
    assert "user      I like jazz" in adk  # the event's text, not its JSON
    assert 'remember({"likes":"jazz"})' in adk
    assert 'remember -> {"result":"noted: jazz"}' in adk
    agents = praisondb_cli("sessions", "show", ids.openai, "--url", sqlite_url).stdout
    assert "framework openai-agents" in agents
    assert 'weather({"city": "Oslo"})' in agents and "-> sunny in Oslo" in agents
    graph = praisondb_cli("sessions", "show", ids.langgraph, "--url", sqlite_url).stdout
    assert "framework langgraph" in graph
    assert "(LangGraph: 3 checkpoints, 3 with pending writes)" in graph
    shown = orjson.loads(
        praisondb_cli("sessions", "show", ids.langgraph, "--url", sqlite_url, "--json").stdout
    )
    assert shown["framework"] == "langgraph" and shown["state_entries"] > 3


def test_retention_cleanup_removes_framework_sessions_whole(
    sqlite_url: str, uid: str, clock: Any
) -> None:
    ids = kit.Ids.of(uid)
    kit.write_all(sqlite_url, ids)
    with PraisonDB(sqlite_url) as db:
        assert db.state_store.list_entries(None, "langgraph/")
        clock.advance(3 * 86400)
        db.sessions.create("fresh")
        assert db.sessions.cleanup(older_than=timedelta(days=1)) == 3
        assert [s.id for s in db.sessions.iterate()] == ["fresh"]
        for sid in ids.all():
            assert db.state.list(f"session:{sid}") == []
            assert db.messages.list(sid) == []
        assert db.state_store.list_entries(None, "langgraph/") == []  # run index included
        # ADK's app: and user: state belongs to the app and the user, not the session
        assert db.state.get("shop/likes", scope=f"user:{kit.USER}") == "jazz"
    with PraisonDBSaver(sqlite_url) as saver:
        assert saver.get_tuple({"configurable": {"thread_id": ids.langgraph}}) is None

    async def gone() -> tuple[Any, list[Any]]:
        async with PraisonDBSessionService(sqlite_url) as service:
            session = await service.get_session(
                app_name=kit.APP, user_id=kit.USER, session_id=ids.adk
            )
        agents = PraisonDBSession(ids.openai, sqlite_url)
        try:
            return session, await agents.get_items()
        finally:
            await agents.close()

    assert asyncio.run(gone()) == (None, [])


def test_analytics_logs_every_framework_write(sqlite_url: str, uid: str, tmp_path: Path) -> None:
    """An event per stored message (ADK events, SDK items) and per LangGraph checkpoint,
    labelled with the session's user and agent, as for plain sessions."""
    ids = kit.Ids.of(uid)
    with PraisonDB(sqlite_url, analytics_url=f"chdb://{tmp_path / 'analytics'}") as db:
        kit.write_all(db, ids)
        assert db.analytics is not None
        db.analytics.flush()
        rows = db.analytics.query(
            "SELECT session_id, type, count(), any(agent), any(user_id) FROM praisondb.events "
            "GROUP BY session_id, type ORDER BY session_id, type"
        ).rows
        messages = {sid: db.sessions.get(sid).message_count for sid in ids.all()}
    logged = {(r[0], r[1]): (r[2], r[3], r[4]) for r in rows}
    assert logged == {
        (ids.adk, "message"): (messages[ids.adk], kit.APP, kit.USER),
        (ids.adk, "session_start"): (1, kit.APP, kit.USER),
        (ids.langgraph, "checkpoint"): (3, "langgraph", ""),
        (ids.langgraph, "session_start"): (1, "langgraph", ""),
        (ids.openai, "message"): (messages[ids.openai], "forecaster", kit.USER),
        (ids.openai, "session_start"): (1, "forecaster", kit.USER),
    }
    assert messages[ids.adk] == 4 and messages[ids.openai] == 4


def test_a_thread_in_use_is_never_taken_by_retention(sqlite_url: str, uid: str, clock: Any) -> None:
    """Checkpoints are state entries, which leave the session record alone: the saver
    moves the thread's ``updated_at`` at its first checkpoint, at each new run and at
    least once a minute, so a thread resumed days later (in a new process, or by a saver
    that stayed open) is not old for retention cleanup, nor for an incremental copy."""
    from tests.integrations.langgraph.graphs import chat_graph

    resumed, long_lived = f"lg-resumed-{uid}", f"lg-open-{uid}"
    kit.write_langgraph(sqlite_url, resumed)
    with PraisonDB(sqlite_url) as db:
        graph = chat_graph(PraisonDBSaver(db))
        config = {"configurable": {"thread_id": long_lived}}
        graph.invoke({"log": ["hello"]}, config)
        clock.advance(3 * 86400)
        kit.resume_langgraph(sqlite_url, resumed)  # a new saver, as in a new process
        graph.invoke({"log": ["again"]}, config)  # the same saver, three days on
        assert db.sessions.cleanup(older_than=timedelta(days=1)) == 0
        assert graph.get_state(config).values["turns"] == 2

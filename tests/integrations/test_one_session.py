"""One session, every face: what LangGraph, the OpenAI Agents SDK and Google ADK write
is a praisondb session that ``praisondb copy``/``export``/``import``/``verify`` move
between backends with its framework records, and each framework resumes on the copy.

The hops: SQLite -> PostgreSQL -> MongoDB by ``praisondb copy`` (each verified), and
PostgreSQL -> archive file -> a second MongoDB by ``export``/``import``. Resuming on a
copy must give exactly what resuming on the original gives (same state, same history
sent to the model, same next turn).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner, Result

from praisondb import PraisonDB
from praisondb.cli import cli
from tests.conftest import private_url
from tests.integrations import one_session_kit as kit


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
    from praisondb.integrations.langgraph import PraisonDBSaver

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

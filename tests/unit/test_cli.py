"""Every command documents itself; doctor and sessions work end to end on a real store."""

from __future__ import annotations

from pathlib import Path

import click
import orjson
import pytest
from click.testing import CliRunner

from praisondb import PraisonDB
from praisondb.cli import cli


def all_commands(
    group: click.Group, prefix: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], click.Command]]:
    found = []
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, name
        path = (*prefix, name)
        found.append((path, command))
        if isinstance(command, click.Group):
            found += all_commands(command, path)
    return found


COMMANDS = all_commands(cli)


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_every_command_has_help(path: tuple[str, ...], command: click.Command) -> None:
    assert (command.help or "").strip(), f"praisondb {' '.join(path)} has no help text"
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_doctor_reports_each_role_with_redacted_urls(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'doc.db'}"
    with PraisonDB(url) as db:  # doctor creates nothing: the file must exist
        db.ping()
    result = CliRunner().invoke(cli, ["doctor", "--url", url, "--json"])
    assert result.exit_code == 0, result.output
    (report,) = orjson.loads(result.output)
    assert report["ok"] is True and report["role"] == "conversations"
    assert report["schema"] and report["latency_ms"] >= 0

    bad = "postgresql://app:Sup3rSecret@127.0.0.1:1/app?connect_timeout=1"
    result = CliRunner().invoke(cli, ["doctor", "--url", bad])
    assert result.exit_code == 1
    assert "Sup3rSecret" not in result.output
    assert "FAIL" in result.output and "***" in result.output


def test_sessions_list_show_delete(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    with PraisonDB(url) as db:
        for i in range(3):
            db.sessions.create(f"s{i}", user_id="u1", agent="bot", title=f"title {i}")
        db.messages.append("s1", "user", "hello there")
    runner = CliRunner()
    listed = runner.invoke(
        cli, ["sessions", "list", "--url", url, "--user-id", "u1", "--json", "--limit", "2"]
    )
    assert listed.exit_code == 0, listed.output
    page = orjson.loads(listed.output)
    assert [s["id"] for s in page["items"]] == ["s2", "s1"] and page["next_cursor"]
    table = runner.invoke(cli, ["sessions", "list", "--url", url])
    assert "title 0" in table.output and "s2" in table.output
    shown = runner.invoke(cli, ["sessions", "show", "s1", "--url", url])
    assert shown.exit_code == 0 and "hello there" in shown.output
    deleted = runner.invoke(cli, ["sessions", "delete", "s1", "--url", url, "--yes"])
    assert deleted.exit_code == 0
    with PraisonDB(url) as db:
        assert not db.sessions.exists("s1") and db.sessions.exists("s0")
    missing = runner.invoke(cli, ["sessions", "show", "nope", "--url", url])
    assert missing.exit_code != 0


def test_sessions_list_filters_with_user_id_like_every_other_command(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'users.db'}"
    with PraisonDB(url) as db:
        db.sessions.create("mine", user_id="u1")
        db.sessions.create("theirs", user_id="u2")
    runner = CliRunner()
    listed = runner.invoke(cli, ["sessions", "list", "--url", url, "--user-id", "u1", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [s["id"] for s in orjson.loads(listed.stdout)["items"]] == ["mine"]
    help_text = runner.invoke(cli, ["sessions", "list", "--help"]).output
    assert "--user-id" in help_text and "--user " not in help_text
    old = runner.invoke(cli, ["sessions", "list", "--url", url, "--user", "u2", "--json"])
    assert old.exit_code == 0, old.output  # the old spelling still works, with a note
    assert [s["id"] for s in orjson.loads(old.stdout)["items"]] == ["theirs"]
    assert "deprecated" in old.stderr
    both = runner.invoke(cli, ["sessions", "list", "--url", url, "--user", "u2", "--user-id", "u1"])
    assert both.exit_code == 2 and "--user-id" in both.output


def test_a_ctrl_c_inside_driver_cleanup_is_not_logged_with_its_traceback() -> None:
    import logging

    from praisondb.cli import _drop_interrupted_cleanup

    def record(exc: BaseException) -> logging.LogRecord:
        return logging.LogRecord(
            "sqlalchemy.pool.impl.QueuePool",
            logging.ERROR,
            __file__,
            1,
            "Exception during reset or similar",
            (),
            (type(exc), exc, None),
        )

    assert _drop_interrupted_cleanup(record(KeyboardInterrupt())) is False
    assert _drop_interrupted_cleanup(record(OSError("disk"))) is True

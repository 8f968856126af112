"""``praisondb copy`` to and from a server, verified both ways."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result

from praisondb import PraisonDB
from praisondb.cli import cli
from tests.server.serving import Server


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_copy_to_and_from_the_server(server: Server, tmp_path: Path) -> None:
    source = f"sqlite:///{tmp_path / 'source.db'}"
    back = f"sqlite:///{tmp_path / 'back.db'}"
    with PraisonDB(source, auto_migrate=True) as db:
        for n in range(3):
            s = db.session(f"s{n}", user_id="u1")
            s.add_user(f"hello {n} 🚀", metadata={"a.b": {"$x": n}})
            s.add_assistant("hi")
            s.state["step"] = n
        db.checkpoints.create("s1", label="cp")
        db.state.set("theme", "dark", scope="user:u1")
    first = run("copy", source, server.client_url)
    assert first.exit_code == 0, first.output
    assert run("verify", source, server.client_url).exit_code == 0
    again = run("copy", source, server.client_url)  # re-running adds nothing
    assert again.exit_code == 0, again.output
    assert run("copy", server.client_url, back).exit_code == 0
    assert run("verify", source, back).exit_code == 0
    with PraisonDB(back) as db:
        assert db.messages.count("s2") == 2 and db.state.get("theme", scope="user:u1") == "dark"

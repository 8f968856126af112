"""README "Deploying the server" runs as written: its commands (with a private SQLite
store and a free port), its agent module, and its client from another process."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import httpx

from praisondb.server.keys import split_key
from tests.server.test_remote_agents import _free_port, _up
from tests.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
SECTION = README.split("## Deploying the server", 1)[1].split("\n## ", 1)[0]


def _blocks(kind: str) -> list[str]:
    return re.findall(rf"```{kind}\n(.*?)```", SECTION, re.S)


def test_the_deployment_example_runs(tmp_path: Path) -> None:
    (commands,) = _blocks("bash")
    agent_module, client = _blocks("python")
    create, serve = commands.replace("\\\n", " ").strip().splitlines()
    database_url = f"sqlite:///{tmp_path}/app.db"
    port = _free_port()

    def localised(line: str) -> list[str]:
        line = line.replace("postgresql://app@db/app", database_url)
        args = shlex.split(line.replace("--port 8787", f"--port {port}"))
        assert args[0] == "praisondb"
        return [sys.executable, "-m", "praisondb", *args[1:]]

    (tmp_path / "myapp").mkdir()
    (tmp_path / "myapp" / "__init__.py").write_text("")
    (tmp_path / "myapp" / "agents.py").write_text(agent_module)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run(
        [sys.executable, "-m", "praisondb", "db", "upgrade", "--url", database_url],
        env=env, check=True, capture_output=True, cwd=tmp_path,
    )  # fmt: skip
    made = subprocess.run(
        localised(create), env=env, capture_output=True, text=True, cwd=tmp_path, check=True
    )
    key = made.stdout.strip()
    server = subprocess.Popen(localised(serve), env=env, cwd=tmp_path, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        eventually(lambda: _up(url) or server.poll() is not None, 30, "server start")
        assert server.poll() is None
        assert httpx.get(f"{url}/sessions").status_code == 401
        script = client.replace("http://agents.internal:8787", url)
        ran = subprocess.run(
            [sys.executable, "-c", script],
            env={**env, "PRAISONDB_API_KEY": key},
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert ran.returncode == 0, ran.stderr
        assert ran.stdout.splitlines() == [
            "ticket noted (0 earlier turns): my order is late",
            "ticket noted (1 earlier turns): it was order 42",
            "['user', 'assistant', 'user', 'assistant']",
        ]
    finally:
        server.terminate()
        _, log = server.communicate(timeout=15)
    text = log.decode()
    assert "POST /agents/support/sessions/ticket-42/chat 200" in text
    assert "tenant=acme key=support-app" in text
    _, secret = split_key(key) or ("", "")  # the secret may itself hold "_"
    assert key not in text and secret not in text
    assert "my order is late" not in text

"""The README's Server example, run as written against a real server, in two processes:
the second (another machine, as far as it knows) resumes the first one's conversation."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from praisondb import PraisonDB
from tests.server.serving import ROOT, Server

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
BLOCK = next(
    b for b in re.findall(r"```python\n(.*?)```", README, re.S) if "praisondb+http://" in b
)


def test_the_readme_example_resumes_in_another_process(server: Server, tmp_path: Path) -> None:
    script = tmp_path / "agent.py"
    script.write_text(BLOCK.replace("praisondb+http://127.0.0.1:8787", server.client_url))
    outputs = [
        subprocess.run(
            [sys.executable, str(script)],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
            timeout=120,
        ).stdout
        for _ in range(2)
    ]
    assert outputs[0].startswith("2 ") and outputs[1].startswith("4 ")
    assert "It left the warehouse today." in outputs[1]
    with PraisonDB(server.client_url) as db:
        assert [m.seq for m in db.messages.list("support-42")] == [1, 2, 3, 4]

"""Google ADK's own session-service contract tests (the tests of
tests/unittests/sessions/test_session_service.py that take its ``session_service``
fixture), pointed at PraisonDBSessionService on every backend by the plugin in
adk_kit/praisondb_adk_kit.py.

ADK publishes its tests only in its repository (its sdist on PyPI has none), so they
run when ``PRAISONDB_ADK_SOURCE`` names a checkout of google/adk-python whose version
matches the installed google-adk; without it this test skips, saying so."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

KIT = Path(__file__).parent / "adk_kit"
ROOT = Path(__file__).parents[3]
FILE = "tests/unittests/sessions/test_session_service.py"
MINIMUM_PASSED = 30


@pytest.mark.slow
def test_adks_session_contract_tests_pass_on_praisondb(backend_url: str, backend: object) -> None:
    source = os.environ.get("PRAISONDB_ADK_SOURCE")
    if not source or not (Path(source) / FILE).exists():
        pytest.skip(f"set PRAISONDB_ADK_SOURCE to a google/adk-python checkout (with {FILE})")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(KIT), str(ROOT)]),
        "PRAISONDB_KIT_BACKEND": backend.name,  # type: ignore[attr-defined]
        "PRAISONDB_KIT_URL": backend_url,
    }
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "praisondb_adk_kit", "-p", "no:cacheprovider",
         "-q", "-o", "addopts=", "-W", "ignore::pytest.PytestConfigWarning",
         "--rootdir", source, "--noconftest", str(Path(source) / FILE)],
        cwd=source, env=env, capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    passed = int(re.search(r"(\d+) passed", summary).group(1))  # type: ignore[union-attr]
    assert passed >= MINIMUM_PASSED, summary
    assert "failed" not in summary and "error" not in summary, summary

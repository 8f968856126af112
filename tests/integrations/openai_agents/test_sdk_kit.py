"""The OpenAI Agents SDK's own session tests (tests/memory/test_session.py and
test_session_limit.py of its source distribution), pointed at PraisonDBSession on every
backend by the plugin in sdk_kit/praisondb_sdk_kit.py, which says which tests it leaves
out and why (they inspect SQLite itself).

The SDK's tests come from its sdist on PyPI, for the installed version, fetched once with
pip into ``$PRAISONDB_CACHE`` (default ``~/.cache/praisondb``)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.conftest import require_all_backends

KIT = Path(__file__).parent / "sdk_kit"
ROOT = Path(__file__).parents[3]
FILES = ["tests/memory/test_session.py", "tests/memory/test_session_limit.py"]
MINIMUM_PASSED = 40


def sdk_source() -> Path:
    """The SDK's unpacked sdist (tests and pytest config), downloaded on first use."""
    from importlib.metadata import version

    release = version("openai-agents")
    cache = Path(os.environ.get("PRAISONDB_CACHE", Path.home() / ".cache" / "praisondb"))
    root = cache / f"openai_agents-{release}"
    if (root / FILES[0]).exists():
        return root
    cache.mkdir(parents=True, exist_ok=True)
    fetched = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary",
         ":all:", f"openai-agents=={release}", "--dest", str(cache)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    archive = cache / f"openai_agents-{release}.tar.gz"
    if fetched.returncode or not archive.exists():
        message = f"cannot fetch the openai-agents {release} sdist: {fetched.stderr[-500:]}"
        if require_all_backends():
            pytest.fail(message)
        pytest.skip(message)
    prefix = f"openai_agents-{release}/"
    with tarfile.open(archive) as tar:
        wanted = [
            m for m in tar.getmembers()
            if m.name.startswith(prefix + "tests/") or m.name == prefix + "pyproject.toml"
        ]  # fmt: skip
        tar.extractall(cache, members=wanted, filter="data")
    return root


@pytest.mark.slow
def test_the_sdks_session_tests_pass_on_praisondb(backend_url: str, backend: object) -> None:
    source = sdk_source()
    env = {
        **os.environ,
        # the SDK's own `tests` package first; then the plugin; then this praisondb
        "PYTHONPATH": os.pathsep.join([str(source), str(KIT), str(ROOT)]),
        "PRAISONDB_KIT_BACKEND": backend.name,  # type: ignore[attr-defined]
        "PRAISONDB_KIT_URL": backend_url,
        # no installed pytest plugins (hypothesis, langsmith, anyio, xdist): the SDK's
        # session tests use none of them, and importing them is half of each run's time
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
    }
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "praisondb_sdk_kit", "-p", "no:cacheprovider",
         "-q", "-o", "addopts=", "-W", "ignore::pytest.PytestConfigWarning", *FILES],
        cwd=source, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    passed = int(re.search(r"(\d+) passed", summary).group(1))  # type: ignore[union-attr]
    assert passed >= MINIMUM_PASSED, summary
    assert "failed" not in summary and "error" not in summary, summary

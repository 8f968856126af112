"""What users may install and what the tests run on: the ``mongo`` extra allows current
pymongo (4.14+ for MongoDB 4.4+, as ``openai-agents[mongodb]`` needs), while the test
environment is held to tools/constraints.txt's pymongo 4.13.2, the newest that talks to
the MongoDB 4.0 the tests have here."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import tomllib
from packaging.requirements import Requirement

ROOT = Path(__file__).parents[2]


def _extra(name: str) -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(r) for r in project["optional-dependencies"][name]]


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "tools" / "constraints.txt").read_text().splitlines():
        text = line.split("#", 1)[0].strip()
        if text:
            name, _, pinned = text.partition("==")
            pins[name.strip().lower()] = pinned.strip()
    return pins


def test_the_mongo_extra_allows_current_pymongo_and_the_pinned_one() -> None:
    (pymongo,) = _extra("mongo")
    assert pymongo.name == "pymongo"
    for release in ("4.6.0", "4.13.2", "4.14.0", "4.20.1"):
        assert pymongo.specifier.contains(release), release
    assert not pymongo.specifier.contains("4.5.0")


def test_the_test_environment_runs_the_pinned_pymongo() -> None:
    pinned = _pins()["pymongo"]
    assert version("pymongo") == pinned, (
        f"the test environment has pymongo {version('pymongo')}, tools/constraints.txt pins "
        f"{pinned} (the MongoDB 4.0 test server needs it): run tools/test.sh, which "
        "installs within the constraints"
    )

from __future__ import annotations

import pytest

from praisondb import ConfigError
from praisondb.options import as_bool, as_seconds


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("on", True),
        ("TRUE", True),
        ("1", True),
        (True, True),
        ("off", False),
        ("no", False),
        ("0", False),
        (False, False),
    ],
)
def test_as_bool(text: object, expected: bool) -> None:
    assert as_bool("fsync", text) is expected


def test_bad_values_name_the_option() -> None:
    with pytest.raises(ConfigError, match="option fsync must be true or false"):
        as_bool("fsync", "maybe")
    with pytest.raises(ConfigError, match="option lock_timeout must be a number"):
        as_seconds("lock_timeout", "soon")
    with pytest.raises(ConfigError, match="must not be negative"):
        as_seconds("lock_timeout", "-1")
    assert as_seconds("lock_timeout", "2.5") == 2.5

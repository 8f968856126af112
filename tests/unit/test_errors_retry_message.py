"""The error Retry raises is whole: the driver's first line cut at a word, never mid-way,
followed by how many attempts were made and how long they took."""

from __future__ import annotations

import pytest

from praisondb import BackendUnavailable
from praisondb.retry import Retry


def test_long_driver_message_is_cut_at_a_word_and_the_summary_kept() -> None:
    words = " ".join(f"word{i:03d}" for i in range(80))  # 639 characters, one line

    def fail() -> None:
        raise ConnectionError(words + "\nsecond line")

    with pytest.raises(BackendUnavailable) as caught:
        Retry(attempts=2, base_delay=0.001).call(
            fail, transient=lambda e: True, url="x://db", action="connect"
        )
    message = str(caught.value)
    detail = message.split("ConnectionError: ", 1)[1].split(" (x://db)", 1)[0]
    assert detail.endswith(" ...") and len(detail) <= 310
    assert all(w in words.split() for w in detail[: -len(" ...")].split()), detail
    assert "second line" not in message
    assert caught.value.waited is not None and caught.value.waited >= 0
    assert message.endswith(f"(x://db) after 2 attempts over {caught.value.waited:.1f} s")

"""Every store reads its options from one table: the same merging, refusals and wording.

On the async face (``face``) each store is opened the way AsyncPraisonDB opens it,
``io="async"``: on its native async driver where it has one."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.util.concurrency import greenlet_spawn

from praisondb import ConfigError
from praisondb.stores import open_conversation_store, open_state_store
from praisondb.urls import parse_url


def test_an_unknown_option_is_refused_with_the_accepted_ones(backend_url: str, face: str) -> None:
    for opener in (open_conversation_store, open_state_store):
        with pytest.raises(ConfigError) as caught:
            opener(backend_url, io=face, no_such_option=1)
        text = str(caught.value)
        assert "no_such_option" in text and parse_url(backend_url).redacted in text
        assert "accepted: " in text and "auto_migrate" in text.split("accepted: ", 1)[1]


def test_a_bad_value_names_the_option_and_the_url(backend_url: str, face: str) -> None:
    with pytest.raises(ConfigError) as caught:
        open_conversation_store(backend_url, io=face, auto_migrate="sometimes")
    text = str(caught.value)
    assert "option auto_migrate must be true or false, not 'sometimes'" in text
    assert f"(for {parse_url(backend_url).redacted})" in text


@pytest.mark.backends("postgres", "mysql")
def test_a_url_option_the_driver_refuses_is_a_config_error(backend_url: str, face: str) -> None:
    """SQL URLs hand unknown query options to the driver; its refusal is ours to word."""
    url = backend_url + ("&" if "?" in backend_url else "?") + "retry_attempts=2"

    def open_() -> object:
        if face == "async":  # the SQL store connects while it opens: in a greenlet, on a loop
            return asyncio.run(greenlet_spawn(open_conversation_store, url, io=face))
        return open_conversation_store(url, io=face)

    with pytest.raises(ConfigError, match="the database driver refused an option") as caught:
        open_()
    assert "retry_attempts" in str(caught.value)

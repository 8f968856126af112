"""What PraisonDBSessionService promises beyond a Runner conversation, on every backend:
stale writers lose (also across service objects), list_sessions reads pages of
sessions and no state per session, ADK's keying by (app, user, id) survives
praisondb's global ids, num_recent_events/after_timestamp, whole events, and
ADK's service registry naming it by URI."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from google.adk.errors import StaleSessionError
from google.adk.errors.already_exists_error import AlreadyExistsError
from google.adk.errors.session_not_found_error import SessionNotFoundError
from google.adk.events.event import Event
from google.adk.events.event_actions import EventActions
from google.adk.sessions.base_session_service import GetSessionConfig
from google.genai import types

from praisondb import PraisonDB
from praisondb.errors import Conflict
from praisondb.integrations import adk
from praisondb.integrations.adk import PraisonDBSessionService, storage_ids
from tests.integrations.adk.conftest import VIA, Opener


def said(author: str, words: str, **fields: Any) -> Event:
    role = "user" if author == "user" else "model"
    return Event(
        author=author,
        invocation_id="inv",
        content=types.Content(role=role, parts=[types.Part(text=words)]),
        **fields,
    )


@pytest.mark.parametrize("via", VIA)
def test_of_two_writers_on_one_revision_exactly_one_wins(run_with: Any, uid: str, via: str) -> None:
    async def main(opener: Opener) -> None:
        one, other = opener.service(), opener.service()  # two processes, in real life
        await one.create_session(app_name="a", user_id="u", session_id=uid)
        for turn in range(6):
            loaded = [
                await service.get_session(app_name="a", user_id="u", session_id=uid)
                for service in (one, other)
            ]
            results = await asyncio.gather(
                *(
                    service.append_event(
                        session,  # type: ignore[arg-type]
                        said(
                            "user",
                            f"turn {turn} from {n}",
                            actions=EventActions(state_delta={f"k{turn}": n}),
                        ),
                    )
                    for n, (service, session) in enumerate(zip((one, other), loaded, strict=True))
                ),
                return_exceptions=True,
            )
            errors = [r for r in results if isinstance(r, BaseException)]
            assert len(errors) == 1, results
            assert isinstance(errors[0], StaleSessionError)
            assert isinstance(errors[0], Conflict)  # and a praisondb error
            assert "modified in storage" in str(errors[0])
        final = await one.get_session(app_name="a", user_id="u", session_id=uid)
        assert final is not None
        assert len(final.events) == 6
        assert all(final.state[f"k{turn}"] in (0, 1) for turn in range(6))
        # the loser's session object is stale for good; a reload appends fine
        stale = await other.get_session(app_name="a", user_id="u", session_id=uid)
        assert stale is not None
        await one.append_event(final, said("user", "one more"))
        with pytest.raises(StaleSessionError):
            await other.append_event(stale, said("user", "stale"))
        fresh = await other.get_session(app_name="a", user_id="u", session_id=uid)
        assert fresh is not None
        await other.append_event(fresh, said("user", "after reload"))

    run_with(main, via)


def test_a_retried_append_is_stored_once(run_with: Any, uid: str) -> None:
    async def main(opener: Opener) -> None:
        service = opener.service()
        session = await service.create_session(app_name="a", user_id="u", session_id=uid)
        event = said("user", "once", actions=EventActions(state_delta={"n": 1}))
        await service.append_event(session, event)
        await service.append_event(session, event.model_copy(deep=True))  # re-delivered
        shared = "shared-id"  # different events sharing an id are both kept, as ADK does
        await service.append_event(session, said("user", "first", id=shared))
        await service.append_event(session, said("agent", "second", id=shared))
        got = await service.get_session(app_name="a", user_id="u", session_id=uid)
        assert got is not None
        assert [e.content.parts[0].text for e in got.events] == ["once", "first", "second"]
        assert got.state == {"n": 1}

    run_with(main)


def test_sessions_are_keyed_by_app_user_and_id(run_with: Any, uid: str) -> None:
    async def main(opener: Opener) -> None:
        service = opener.service()
        owners = [("a", "u1"), ("a", "u2"), ("b", "u1")]
        for app, user in owners:
            session = await service.create_session(
                app_name=app, user_id=user, session_id=uid, state={"who": f"{app}/{user}"}
            )
            await service.append_event(session, said("user", f"hi from {app}/{user}"))
        with pytest.raises(AlreadyExistsError):
            await service.create_session(app_name="a", user_id="u2", session_id=f" {uid}\n")
        for app, user in owners:
            got = await service.get_session(app_name=app, user_id=user, session_id=uid)
            assert got is not None
            assert got.state["who"] == f"{app}/{user}"
            assert [e.content.parts[0].text for e in got.events] == [f"hi from {app}/{user}"]
        # the first owner has the plain id, the others adk~ + SHA-256 of the three
        ids = await opener.inspect(lambda db: [s.id for s in db.sessions.list(limit=1000).items])
        assert uid in ids
        assert storage_ids("a", "u2", uid)[1] in ids and storage_ids("b", "u1", uid)[1] in ids
        await service.delete_session(app_name="a", user_id="u1", session_id=uid)
        assert await service.get_session(app_name="a", user_id="u1", session_id=uid) is None
        assert await service.get_session(app_name="a", user_id="u2", session_id=uid) is not None

    run_with(main)


def test_ids_praisondb_refuses_are_mapped(run_with: Any, uid: str) -> None:
    async def main(opener: Opener) -> None:
        service = opener.service()
        odd = {"app_name": "my app/β" * 40, "user_id": "user\x00" + uid, "session_id": "s" * 300}
        session = await service.create_session(**odd, state={"user:x": 1, "app:y": 2})
        await service.append_event(session, said("user", "odd ids"))
        got = await service.get_session(**odd)
        assert got is not None
        assert (got.app_name, got.user_id, got.id) == tuple(odd.values())
        assert got.state == {"user:x": 1, "app:y": 2}
        listed = await service.list_sessions(app_name=odd["app_name"], user_id=odd["user_id"])
        assert [s.id for s in listed.sessions] == [odd["session_id"]]
        assert await service.get_user_state(app_name=odd["app_name"], user_id=odd["user_id"]) == {
            "x": 1
        }

    run_with(main)


def test_recent_events_and_after_timestamp(run_with: Any, uid: str) -> None:
    async def main(opener: Opener) -> None:
        service = opener.service()
        session = await service.create_session(app_name="a", user_id="u", session_id=uid)
        for n in range(1, 8):
            await service.append_event(session, said("user", f"e{n}", timestamp=1000.0 + n))

        async def texts(**config: Any) -> list[str]:
            got = await service.get_session(
                app_name="a", user_id="u", session_id=uid, config=GetSessionConfig(**config)
            )
            assert got is not None
            return [e.content.parts[0].text for e in got.events]

        assert await texts() == [f"e{n}" for n in range(1, 8)]
        assert await texts(num_recent_events=0) == []
        assert await texts(num_recent_events=3) == ["e5", "e6", "e7"]
        assert await texts(num_recent_events=30) == [f"e{n}" for n in range(1, 8)]
        assert await texts(after_timestamp=1005.0) == ["e5", "e6", "e7"]
        assert await texts(after_timestamp=1005.0, num_recent_events=2) == ["e6", "e7"]
        assert await texts(after_timestamp=2000.0) == []

    run_with(main)


def test_events_are_stored_whole(run_with: Any, uid: str) -> None:
    async def main(opener: Opener) -> None:
        service = opener.service()
        session = await service.create_session(app_name="a", user_id="u", session_id=uid)
        event = Event(
            invocation_id="inv",
            author="agent",
            content=types.Content(
                role="model",
                parts=[types.Part.from_bytes(data=b"\x89PNG", mime_type="image/png")],
            ),
            actions=EventActions(artifact_delta={"file": 0}, escalate=True),
            long_running_tool_ids={"tool1"},
            usage_metadata=types.GenerateContentResponseUsageMetadata(
                prompt_token_count=1, candidates_token_count=1, total_token_count=2
            ),
            custom_metadata={"nested": {"deep": [1, 2.5, None]}},
            timestamp=1700000000.123456,
        )
        await service.append_event(session, event)
        got = await service.get_session(app_name="a", user_id="u", session_id=uid)
        assert got == session

    run_with(main)


def test_other_faces_messages_read_as_events(run_with: Any, uid: str) -> None:
    async def main(opener: Opener) -> None:
        service = opener.service()
        session = await service.create_session(app_name="a", user_id="u", session_id=uid)
        await service.append_event(session, said("user", "from adk"))
        await opener.inspect(lambda db: db.messages.append(uid, "assistant", "from praisondb"))
        got = await service.get_session(app_name="a", user_id="u", session_id=uid)
        assert got is not None
        assert [(e.author, e.content.parts[0].text) for e in got.events] == [
            ("user", "from adk"),
            ("praisondb", "from praisondb"),
        ]
        await service.append_event(got, said("user", "after"))  # its revision is current

    run_with(main)


def test_appending_to_a_deleted_session_raises_not_found(run_with: Any, uid: str) -> None:
    async def main(opener: Opener) -> None:
        service = opener.service()
        session = await service.create_session(app_name="a", user_id="u", session_id=uid)
        await service.delete_session(app_name="a", user_id="u", session_id=uid)
        with pytest.raises(SessionNotFoundError):
            await service.append_event(session, said("user", "too late"))

    run_with(main)


@pytest.mark.parametrize("via", ["sync"])
def test_list_sessions_reads_pages_not_each_session(
    run_with: Any, uid: str, via: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stores' calls, counted: one sessions page per PAGE sessions, one read of
    the app's state and one of the user's, and no read per session (their #4621)."""
    monkeypatch.setattr(adk, "PAGE", 10)
    user = f"u-{uid}"

    async def main(opener: Opener) -> None:
        service = opener.service()
        for n in range(25):
            await service.create_session(
                app_name="lister", user_id=user, session_id=f"{uid}-{n}", state={"n": n}
            )
        db: PraisonDB = opener.sync_db
        calls: dict[str, int] = {}

        def counted(store: Any, name: str) -> None:
            method = getattr(store, name)

            def wrapper(*args: Any, **kwargs: Any) -> Any:
                calls[name] = calls.get(name, 0) + 1
                return method(*args, **kwargs)

            monkeypatch.setattr(store, name, wrapper)

        for name in ("list_sessions", "get_session", "list_messages"):
            counted(db.conversations, name)
        for name in ("get_entry", "list_entries"):
            counted(db.state_store, name)
        listed = await service.list_sessions(app_name="lister", user_id=user)
        assert [s.state["n"] for s in listed.sessions] == list(range(25))
        assert calls == {"list_sessions": 3, "list_entries": 2}, calls

    run_with(main, via)


def test_the_registry_names_it_by_uri(backend_url: str, backend: Any, uid: str) -> None:
    from google.adk.cli.service_registry import get_service_registry
    from google.adk.cli.utils.service_factory import create_session_service_from_options

    if backend.name == "memory":
        pytest.skip("memory:// is private to each database object")
    uri = "praisondb+" + backend_url

    async def main() -> None:
        made = get_service_registry().create_session_service(uri, agents_dir="/tmp")
        assert isinstance(made, PraisonDBSessionService)
        session = await made.create_session(app_name="reg", user_id="u", session_id=uid)
        await made.append_event(session, said("user", "by uri"))
        await made.close()
        # what `adk web --session_service_uri praisondb+...` builds
        cli = create_session_service_from_options(base_dir="/tmp", session_service_uri=uri)
        assert isinstance(cli, PraisonDBSessionService)
        # what a services.yaml entry builds: the class, called with uri= and agents_dir=
        yaml = PraisonDBSessionService(uri=uri, agents_dir="/tmp")
        for service in (cli, yaml):
            got = await service.get_session(app_name="reg", user_id="u", session_id=uid)
            assert got is not None and got.events[0].content.parts[0].text == "by uri"
            await service.close()

    asyncio.run(main())


def test_exported_session_resumes_on_another_database(
    run_with: Any, uid: str, tmp_path: Any
) -> None:
    async def main(opener: Opener) -> None:
        service = opener.service()
        session = await service.create_session(
            app_name="a", user_id="u", session_id=uid, state={"k": "v"}
        )
        await service.append_event(session, said("user", "moved"))
        exported = await opener.inspect(lambda db: db.sessions.export(uid))
        with PraisonDB(f"sqlite:///{tmp_path / 'target.db'}") as target:
            target.sessions.import_session(exported)
            moved = PraisonDBSessionService(target)
            got = await moved.get_session(app_name="a", user_id="u", session_id=uid)
            assert got is not None
            assert got.state == {"k": "v"}
            assert got.events == session.events
            await moved.append_event(got, said("user", "resumed"))

    run_with(main)


class Crash(Exception):
    """The process dies here: nothing after this write runs."""


@pytest.mark.parametrize("crash_at", ["append_messages", "update_session"])
def test_an_append_cut_short_is_finished_once_by_the_next_reader_or_retry(
    run_with: Any, uid: str, crash_at: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash after the append's commit (its compare-and-set) and before the event
    (or the listing copy) is written: a reader in another process sees the event with
    its state change, once, and ADK re-sending the event stores nothing twice."""

    async def main(opener: Opener) -> None:
        service = opener.service()
        session = await service.create_session(app_name="a", user_id="u", session_id=uid)
        await service.append_event(session, said("user", "before"))
        db: PraisonDB = opener.sync_db
        real = getattr(db.conversations, crash_at)
        fired: list[str] = []

        def crash_once(*args: Any, **kwargs: Any) -> Any:
            if not fired:
                fired.append(crash_at)
                raise Crash(crash_at)
            return real(*args, **kwargs)

        monkeypatch.setattr(db.conversations, crash_at, crash_once)
        delta = {"n": 1, "app:theme": "dark", "user:lang": "fr"}
        event = said("user", "cut short", actions=EventActions(state_delta=delta))
        with pytest.raises(Crash):
            await service.append_event(session, event.model_copy(deep=True))
        assert fired == [crash_at]
        stored = await opener.inspect(lambda d: d.messages.list(session.id))
        assert len(stored) == (1 if crash_at == "append_messages" else 2)  # half done

        other = opener.service()  # another process reads the session
        got = await other.get_session(app_name="a", user_id="u", session_id=uid)
        assert got is not None
        assert [e.content.parts[0].text for e in got.events] == ["before", "cut short"]
        assert got.state == {"n": 1, "app:theme": "dark", "user:lang": "fr"}
        listed = await other.list_sessions(app_name="a", user_id="u")
        mine = [s for s in listed.sessions if s.id == uid]
        assert [s.state.get("n") for s in mine] == [1]  # the listing copy too

        await service.append_event(session, event)  # ADK re-delivers the same event
        await other.append_event(got, said("user", "after"))
        final = await other.get_session(app_name="a", user_id="u", session_id=uid)
        assert final is not None
        assert [e.content.parts[0].text for e in final.events] == ["before", "cut short", "after"]
        assert final.state["n"] == 1

    run_with(main, "sync")


def test_an_append_cut_short_is_finished_by_the_next_append(
    run_with: Any, uid: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No reader came between: the next append (another process, a reloaded session)
    writes the unfinished event first, so the order of events is kept."""

    async def main(opener: Opener) -> None:
        service = opener.service()
        session = await service.create_session(app_name="a", user_id="u", session_id=uid)
        loaded = await opener.service().get_session(app_name="a", user_id="u", session_id=uid)
        assert loaded is not None
        db: PraisonDB = opener.sync_db
        real = db.conversations.append_messages
        fired: list[bool] = []

        def crash_once(*args: Any, **kwargs: Any) -> Any:
            if not fired:
                fired.append(True)
                raise Crash("append_messages")
            return real(*args, **kwargs)

        monkeypatch.setattr(db.conversations, "append_messages", crash_once)
        with pytest.raises(Crash):
            await service.append_event(
                session, said("user", "first", actions=EventActions(state_delta={"k": 1}))
            )
        # a writer holding the revision before the crash is stale: the crashed append committed
        with pytest.raises(StaleSessionError):
            await opener.service().append_event(loaded, said("user", "stale"))
        other = opener.service()
        fresh = await other.get_session(
            app_name="a", user_id="u", session_id=uid, config=GetSessionConfig(num_recent_events=0)
        )
        assert fresh is not None
        await other.append_event(fresh, said("user", "second"))
        texts = [
            m.content[0]["content"]["parts"][0]["text"]
            for m in await opener.inspect(lambda d: d.messages.list(session.id))
        ]
        assert texts == ["first", "second"]

    run_with(main, "sync")

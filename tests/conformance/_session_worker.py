"""A separate process for the cross-process session tests.

Usage: python _session_worker.py lock URL SESSION_ID ROUNDS
         (per round: take the session lock, read-modify-write a counter non-atomically,
          print the fencing token; exactness of the counter proves mutual exclusion)
       python _session_worker.py read URL SESSION_ID
         (print what a new process sees: runs, traces, messages, adapter metadata, as JSON)
       python _session_worker.py shared URL SESSION_ID ROUNDS
         (per round: add one to the session's shared counter with modify, compare-and-set)
       python _session_worker.py agent URL SESSION_ID NAME SERVER_URL
         (one turn of ManagedAgent NAME against the managed-agents server SERVER_URL:
          the researcher stores its reply in shared state, the writer is prompted with it)
The face it runs on (sync, or AsyncPraisonDB under asyncio.run) is named by
PRAISONDB_TEST_FACE.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import orjson

from tests.faces import FACE_ENV, run_on_face, session_adapter


def main(argv: list[str]) -> None:
    action, url, session_id = argv[0], argv[1], argv[2]
    face = os.environ.get(FACE_ENV, "sync")
    if action == "lock":
        run_on_face(face, url, lambda db: lock(db, session_id, int(argv[3])))
    elif action == "read":
        run_on_face(face, url, lambda db: read(db, session_id))
    elif action == "shared":
        run_on_face(face, url, lambda db: shared(db, session_id, int(argv[3])))
    elif action == "agent":
        run_on_face(face, url, lambda db: agent(db, url, session_id, argv[3], argv[4]))
    else:
        raise SystemExit(f"unknown action {action}")


def lock(db: Any, session_id: str, rounds: int) -> None:
    session = db.session(session_id)
    for _ in range(rounds):
        with session.lock(timeout=60, ttl=30) as lease:
            value = session.state.get("counter", 0)
            time.sleep(0.002)  # widens the read-modify-write window under test
            session.state.set("counter", value + 1)
            print(lease.token, flush=True)


def shared(db: Any, session_id: str, rounds: int) -> None:
    state = db.session(session_id).shared_state
    for _ in range(rounds):
        state.modify("counter", lambda n: n + 1, 0, attempts=10_000)


def agent(db: Any, url: str, session_id: str, name: str, server_url: str) -> None:
    from praisondb import ManagedAgent, ManagedConfig
    from tests.fakes.anthropic_server import FAKE_API_KEY

    session = db.session(session_id)
    config = ManagedConfig(model="claude-sonnet-4-5", system=f"You are the {name}.", name=name)
    with ManagedAgent(config=config, api_key=FAKE_API_KEY, db=url, base_url=server_url) as bot:
        if name == "researcher":
            reply = session.run_agent(name, "find three facts about otters", agent=bot)
            session.shared_state.set("findings", reply)
        else:
            findings = session.shared_state.get("findings")
            reply = session.run_agent(name, f"write a paragraph from: {findings}", agent=bot)
        session.shared_state.modify("authors", lambda done: [*done, name], [])
    sys.stdout.write(orjson.dumps(reply).decode())


def read(db: Any, session_id: str) -> None:
    adapter = session_adapter(db)
    out = {
        "runs": [
            [r.id, r.status, r.input_tokens, r.output_tokens, r.metadata]
            for r in db.get_runs(session_id)
        ],
        "traces": [
            [t.trace_id, t.status, [s.name for s in t.spans]]
            for t in db.get_traces(session_id=session_id)
        ],
        "messages": [[m.role, m.content, m.metadata] for m in db.messages.list(session_id)],
        "history": adapter.get_chat_history(session_id),
        "metadata": adapter.get_metadata(session_id),
    }
    sys.stdout.write(orjson.dumps(out).decode())


if __name__ == "__main__":
    main(sys.argv[1:])

"""Bulk reads hold off the cyclic collector and leave its setting as they found it."""

from __future__ import annotations

import gc

import pytest

from praisondb.gc_pause import no_gc_pauses


def test_collection_is_held_off_inside_and_restored_after() -> None:
    assert gc.isenabled()
    with no_gc_pauses():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), no_gc_pauses():
        raise RuntimeError("a failed decode")
    assert gc.isenabled()


def test_a_caller_who_turned_collection_off_keeps_it_off() -> None:
    gc.disable()
    try:
        with no_gc_pauses():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_overlapping_blocks_of_two_threads_resume_collection_only_when_both_end() -> None:
    import threading

    inside, leave = threading.Event(), threading.Event()

    def other() -> None:
        with no_gc_pauses():
            inside.set()
            leave.wait(10)

    thread = threading.Thread(target=other)
    with no_gc_pauses():
        thread.start()
        assert inside.wait(10)
    assert not gc.isenabled()  # the other thread's block is still decoding
    leave.set()
    thread.join(10)
    assert gc.isenabled()

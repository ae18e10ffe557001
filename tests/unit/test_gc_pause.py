"""``collection_paused``: the cycle collector is off inside, back as it was after, whatever
happens inside and however many threads pause it at once."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from icsflow.workflow.gc_pause import collection_paused


@pytest.fixture(autouse=True)
def _collector_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if was:
        gc.enable()
    else:
        gc.disable()


def test_paused_inside_and_back_after() -> None:
    with collection_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_back_after_an_exception() -> None:
    with pytest.raises(RuntimeError), collection_paused():
        raise RuntimeError("a firing failed")
    assert gc.isenabled()


def test_nested_pauses_resume_at_the_outermost() -> None:
    with collection_paused():
        with collection_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer pause still holds
    assert gc.isenabled()


def test_a_host_that_turned_collection_off_keeps_it_off() -> None:
    gc.disable()
    with collection_paused():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_overlapping_pauses_from_two_threads() -> None:
    """Thread A pauses, B pauses, A ends: still paused until B ends too."""
    a_in, b_in, a_done, b_may_end = (threading.Event() for _ in range(4))
    seen: dict[str, bool] = {}

    def a() -> None:
        with collection_paused():
            a_in.set()
            b_in.wait(5)
        a_done.set()

    def b() -> None:
        a_in.wait(5)
        with collection_paused():
            b_in.set()
            a_done.wait(5)
            seen["after A ended"] = gc.isenabled()
            b_may_end.wait(5)

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    a_done.wait(5)
    b_may_end.set()
    for t in threads:
        t.join(5)
    assert seen == {"after A ended": False}
    assert gc.isenabled()

"""Every cache icsflow keeps, of one bounded kind, listed in one place.

A daemon runs for months and a library lives inside someone else's program: nothing it
remembers may grow without bound, and whoever embeds it must be able to see what it holds and
let it go. So a cache is never a bare module-level dict or an unbounded ``lru_cache``: it is a
``Memo`` (a dict that forgets its oldest entries past its limit) or a function wrapped by
``memoized`` (``functools.lru_cache`` with a limit, for the hottest conversions, where its C
implementation matters), and both register here by name. ``memos()`` lists every cache with
its size and limit; ``clear_memos()`` empties them all. tests/unit/test_memo.py checks that
no other kind of cache exists in the four rooms.

It lives in ``definitions``, the bottom room, so that every room may use it.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, ParamSpec, Protocol, TypeVar

K = TypeVar("K")
V = TypeVar("V")
P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class MemoState:
    """One cache as ``memos()`` reports it."""

    name: str
    size: int
    limit: int


class _Registered(Protocol):
    name: str
    limit: int

    def size(self) -> int: ...

    def clear(self) -> None: ...


_ALL: dict[str, _Registered] = {}
_REGISTER = threading.Lock()


def _register(cache: _Registered) -> None:
    with _REGISTER:
        if cache.name in _ALL:
            raise ValueError(f"a cache named {cache.name!r} is already registered")
        _ALL[cache.name] = cache


class Memo(Generic[K, V]):
    """A dict of at most ``limit`` entries: past it, the oldest put is forgotten first.

    Reads take no lock (a dict read is atomic under the GIL and hot paths read far more than
    they write); a put takes the memo's lock, so two threads never evict past each other."""

    def __init__(self, name: str, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"cache {name!r} needs a limit of at least 1, not {limit}")
        self.name = name
        self.limit = limit
        self._entries: dict[K, V] = {}
        self._lock = threading.Lock()
        self.get = self._entries.get  # the bound method itself: no Python frame per read
        _register(self)

    def put(self, key: K, value: V) -> V:
        """Remember ``value`` under ``key`` (forgetting the oldest entries past the limit);
        returns ``value``, so that ``memo.get(k) or memo.put(k, make())`` reads in one line."""
        with self._lock:
            entries = self._entries
            entries[key] = value
            while len(entries) > self.limit:
                del entries[next(iter(entries))]
        return value

    def size(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


class _Memoized:
    """A function under ``functools.lru_cache``, registered by name."""

    def __init__(self, name: str, limit: int, cached: functools._lru_cache_wrapper[object]
                 ) -> None:
        self.name = name
        self.limit = limit
        self._cached = cached
        _register(self)

    def size(self) -> int:
        return self._cached.cache_info().currsize

    def clear(self) -> None:
        self._cached.cache_clear()


def memoized(name: str, limit: int) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """``functools.lru_cache(maxsize=limit)``, registered as ``name``: for a pure function of
    hashable arguments on a hot path (the C implementation costs no Python frame)."""

    def wrap(function: Callable[P, R]) -> Callable[P, R]:
        cached = functools.lru_cache(maxsize=limit)(function)
        _Memoized(name, limit, cached)
        return cached  # type: ignore[return-value]  # lru_cache keeps the signature

    return wrap


def memos() -> tuple[MemoState, ...]:
    """Every cache icsflow keeps, with its size and limit, by name."""
    with _REGISTER:
        return tuple(MemoState(c.name, c.size(), c.limit)
                     for c in sorted(_ALL.values(), key=lambda c: c.name))


def clear_memos() -> None:
    """Forget everything every cache holds (each fills again on use)."""
    with _REGISTER:
        caches = list(_ALL.values())
    for cache in caches:
        cache.clear()


__all__ = ["Memo", "MemoState", "memoized", "memos", "clear_memos"]

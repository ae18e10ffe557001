"""Problems found in definition files, each naming the file, line and column a manager has to
edit, and the one "did you mean" rule every check uses."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from icsflow.definitions.model import Source


@dataclass(frozen=True, order=True)
class Problem:
    """One mistake in a definition: ``FILE:LINE:COLUMN: message`` (``FILE:LINE: message`` when
    the column is not known); the message carries its hint."""

    source: Source
    message: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.source.column}" if self.source.column else str(self.source)
        return f"{where}: {self.message}"


class DefinitionLoadError(ValueError):
    """A definition file (or a set of them) does not load; ``problems`` lists every mistake."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: list[Problem] = sorted(set(problems))
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass
class Places:
    """Where each value a check may refuse was written, beyond the source of the thing that
    holds it: ``(owner's source, key, value) -> source of the value``. The loader fills it in
    so that a transition's unknown ``to:`` is reported at the ``to:`` value, not at the line
    where the transition begins."""

    found: dict[tuple[Source, str, str], Source] = field(default_factory=dict)

    def note(self, owner: Source, key: str, value: object, source: Source) -> None:
        self.found.setdefault((owner, key, str(value)), source)

    def at(self, owner: Source, key: str, value: object = "") -> Source:
        """The value's own source, or the owner's when it was not noted."""
        return self.found.get((owner, key, str(value)), owner)


# --------------------------------------------------------------------------------------------
# "Did you mean": names are compared word by word, digits as numbers (``stage_1`` is
# ``stage1``, ``stage_one`` is ``stage1`` too, ``stage2`` is not ``stage1``), each word
# forgiving a typo (one edit in four letters); nothing is suggested when nothing is close.

_NUMBER_WORDS = {"zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
                 "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10",
                 "first": "1", "second": "2", "third": "3", "fourth": "4", "fifth": "5"}
_TOKEN = re.compile(r"[0-9]+|[a-z]+")
SUGGEST_AT = 0.65


def _word(token: str) -> str:
    if token.isdigit():
        return token.lstrip("0") or "0"
    return _NUMBER_WORDS.get(token, token)


def _words(name: str) -> list[str]:
    return [_word(t) for t in _TOKEN.findall(name.lower())]


def _edits(a: str, b: str) -> int:
    """Damerau-Levenshtein distance (a swap of two neighbours is one edit)."""
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[len(b)]


def _word_similarity(a: str, b: str) -> float:
    if a == b:
        return 1.0
    if a.isdigit() or b.isdigit():
        return 0.0  # 2 is not a typo of 1
    return max(0.0, 1.0 - _edits(a, b) / max(len(a), len(b)))


def similarity(wrong: str, candidate: str) -> float:
    """0..1: how likely ``candidate`` is the name meant by ``wrong``."""
    a, b = _words(wrong), _words(candidate)
    if not a or not b:
        return 0.0
    by_words = 0.0
    unused = list(b)
    for word in a:
        best = max(unused, key=lambda other: _word_similarity(word, other), default=None)
        if best is not None and _word_similarity(word, best) >= 0.75:
            by_words += _word_similarity(word, best)
            unused.remove(best)
    score = 2 * by_words / (len(a) + len(b))
    digits_a = [w for w in a if w.isdigit()]
    if digits_a == [w for w in b if w.isdigit()]:  # same numbers: compare the letters joined
        joined_a, joined_b = "".join(a), "".join(b)
        score = max(score, 1.0 - _edits(joined_a, joined_b) / max(len(joined_a), len(joined_b)))
    return score


def closest(wrong: str, candidates: Sequence[str]) -> str | None:
    """The candidate ``wrong`` most likely meant, or None when none is close enough."""
    scored = [(similarity(wrong, c), -i, c) for i, c in enumerate(candidates) if c != wrong]
    if not scored:
        return None
    score, _, best = max(scored)
    return best if score >= SUGGEST_AT else None


def did_you_mean(wrong: str, candidates: Sequence[str]) -> str:
    """``"; did you mean 'X'?"`` or nothing."""
    best = closest(wrong, candidates)
    return f"; did you mean '{best}'?" if best is not None else ""


__all__ = ["Problem", "DefinitionLoadError", "Places", "similarity", "closest", "did_you_mean"]

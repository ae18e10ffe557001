"""Benchmark: WorkingCalendar against numpy's business-day functions and a naive loop.

Run as ``python bench/calendar.py``. Scalar calls per second for "20 working days after D" and
"working days between A and B", on the same random dates, after checking all three agree.

Matching the semantics (D is day 0; a non-working D makes its next working day day 1):

* add, n > 0: ``numpy.busday_offset(d, n, roll="backward")`` (rolling a non-working D back to
  the previous working day P and counting n from P gives the n-th working day after D);
  for n < 0, ``roll="forward"``.
* between a <= b counts (a, b]; numpy counts [a, b), so numpy gets (a + 1, b + 1).
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is named calendar.py: drop its folder from the path (it would shadow the standard
# library's calendar module) and use the repository root instead.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import random  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from datetime import date, timedelta  # noqa: E402

import holidays as holidays_package  # noqa: E402
import numpy as np  # noqa: E402

from icsflow.workflow.calendar import WorkingCalendar  # noqa: E402

N = 20
SAMPLE = 2000
ONE = timedelta(days=1)


def build() -> tuple[WorkingCalendar, np.busdaycalendar, frozenset[date]]:
    cal = WorkingCalendar()
    holidays = [d for y in range(1990, 2101) for d, _ in cal.holidays_in(y)]
    busday = np.busdaycalendar(weekmask="1111100", holidays=holidays)
    return cal, busday, frozenset(holidays)


def naive_add(closed: frozenset[date], d: date, n: int) -> date:
    """The definition walked day by day."""
    while n:
        d += ONE
        if d.weekday() < 5 and d not in closed:
            n -= 1
    return d


def naive_add_holidays(gb: object, d: date, n: int) -> date:
    """The loop most code writes: day by day, asking the ``holidays`` package about each day."""
    while n:
        d += ONE
        if d.weekday() < 5 and d not in gb:  # type: ignore[operator]
            n -= 1
    return d


def naive_between(closed: frozenset[date], a: date, b: date) -> int:
    """Working days in (a, b], one day at a time (a <= b)."""
    count = 0
    while a < b:
        a += ONE
        if a.weekday() < 5 and a not in closed:
            count += 1
    return count


def rates(cases: list[Callable[[], object]], calls: int, rounds: int = 25) -> list[float]:
    """Calls per second of each case (each makes ``calls`` calls): best of interleaved rounds,
    so load from other processes hits every implementation alike."""
    best = [float("inf")] * len(cases)
    for _ in range(rounds):
        for k, fn in enumerate(cases):
            start = time.perf_counter()
            fn()
            best[k] = min(best[k], time.perf_counter() - start)
    return [calls / b for b in best]


def main() -> None:
    cal, busday, closed = build()
    rng = random.Random(2012)
    base = date(1991, 1, 1).toordinal()
    starts = [date.fromordinal(base + rng.randrange(0, 39000)) for _ in range(SAMPLE)]
    ends = [d + timedelta(days=rng.randrange(0, 60)) for d in starts]
    starts64_next = [np.datetime64(d + ONE, "D") for d in starts]
    ends64_next = [np.datetime64(d + ONE, "D") for d in ends]
    starts64_list = [np.datetime64(d, "D") for d in starts]
    add = cal.add_working_days
    between = cal.working_days_between
    offset = np.busday_offset
    count = np.busday_count

    # Agreement on the whole sample (and a few negative n) before timing anything.
    for d, e in zip(starts, ends, strict=True):
        ours = add(d, N)
        assert ours == offset(d, N, roll="backward", busdaycal=busday).item() == naive_add(
            closed, d, N), d
        assert add(d, -N) == offset(d, -N, roll="forward", busdaycal=busday).item(), d
        assert between(d, e) == int(count(d + ONE, e + ONE, busdaycal=busday)) == naive_between(
            closed, d, e), (d, e)
    for d, e in zip(starts, ends, strict=True):
        add(d, 1)  # every year's table built: measure steady state, not first use
        between(d, e)

    gb = holidays_package.country_holidays("GB", subdiv="ENG", years=range(1990, 2101))
    for d in starts:
        assert naive_add_holidays(gb, d, N) == add(d, N), d
    pairs = list(zip(starts, ends, strict=True))
    pairs64 = list(zip(starts64_next, ends64_next, strict=True))
    cases: list[tuple[str, str, Callable[[], object]]] = [
        ("add n=20", "ours", lambda: [add(d, N) for d in starts]),
        ("add n=20", "numpy (date in)",
         lambda: [offset(d, N, roll="backward", busdaycal=busday) for d in starts]),
        ("add n=20", "numpy (datetime64 in)",
         lambda: [offset(d, N, roll="backward", busdaycal=busday) for d in starts64_list]),
        ("add n=20", "naive loop (set)", lambda: [naive_add(closed, d, N) for d in starts]),
        ("add n=20", "naive loop (holidays)",
         lambda: [naive_add_holidays(gb, d, N) for d in starts]),
        ("between", "ours", lambda: [between(a, b) for a, b in pairs]),
        ("between", "numpy (date in)",
         lambda: [count(a + ONE, b + ONE, busdaycal=busday) for a, b in pairs]),
        ("between", "numpy (datetime64 in)",
         lambda: [count(a, b, busdaycal=busday) for a, b in pairs64]),
        ("between", "naive loop (set)", lambda: [naive_between(closed, a, b) for a, b in pairs]),
    ]
    measured = rates([fn for _, _, fn in cases], SAMPLE)
    rows = [(op, who, r) for (op, who, _), r in zip(cases, measured, strict=True)]

    ours = {op: r for op, who, r in rows if who == "ours"}
    print(f"{SAMPLE} random dates 1991-2097, spans 0-59 days; agreement checked on all.")
    print("naive loop (set): day by day over a prebuilt frozenset of holidays (the fastest naive);")
    print("naive loop (holidays): day by day asking the holidays package (the usual naive code).")
    print(f"{'operation':<10} {'implementation':<22} {'calls/s':>12} {'ours is x faster':>17}")
    for op, who, r in rows:
        ratio = "" if who == "ours" else f"{ours[op] / r:.1f}x"
        print(f"{op:<10} {who:<22} {r:>12,.0f} {ratio:>17}")


if __name__ == "__main__":
    main()

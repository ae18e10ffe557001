"""A synthetic county year in the canonical format, for tests and ``bench/import.py``.

Each child gets some of the four processes (looked-after reviews, child protection
conferences, Alerts, dual status); each case's events are chosen by walking the loaded
definitions on a scratch engine, with its timers run, so every generated row is allowed in the
state its case is in by then: the extract stays valid whatever the shipped rules become.
Deterministic for a given seed.
"""

from __future__ import annotations

import csv
import random
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from icsflow.definitions.model import DataField, Definition, FieldType, Transition
from icsflow.storage.repository import SqlStore
from icsflow.workflow.catalogue import DefinitionsArg
from icsflow.workflow.clock import LONDON, FakeClock
from icsflow.workflow.engine import Engine
from icsflow.workflow.errors import WorkflowError
from icsflow.workflow.instance import Actor
from icsflow.workflow.transfer.replay import ReplayStore
from icsflow.workflow.transfer.rows import CANONICAL

PROCESSES = ("initial_review", "cp_conference", "alert_dispute", "dual_status")
_SHARE = {"initial_review": 0.6, "cp_conference": 0.5, "alert_dispute": 0.2}
_FUTURE_WORDS = ("date", "_by", "due", "booked")


def generate_year(children: int, *, seed: int = 2011, first: date = date(2011, 4, 1),
                  last: date = date(2012, 3, 31), events_per_case: tuple[int, int] = (5, 13),
                  definitions: DefinitionsArg = None, with_ids: bool = True,
                  ) -> list[dict[str, str]]:
    """Canonical rows (text cells) for ``children`` children, in time order."""
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="icsflow-generate-") as folder:
        start_clock = datetime.combine(last + timedelta(days=2), time(12), tzinfo=LONDON)
        opened = Engine.open(db=f"sqlite:///{folder}/walk.db", definitions=definitions,
                             clock=FakeClock(start_clock))
        assert isinstance(opened.store, SqlStore)
        store = ReplayStore(opened.store, hold_emails=True)  # keeps its connection open
        engine = Engine(store, opened.definitions, clock=opened.clock, register=False)
        try:
            return _walk(engine, store, rng, children, first, last, events_per_case, with_ids)
        finally:
            store.close()
            opened.close()


def _walk(engine: Engine, store: ReplayStore, rng: random.Random, children: int, first: date,
          last: date,
          events_per_case: tuple[int, int], with_ids: bool) -> list[dict[str, str]]:
    # A process that starts by itself on another case's signal (dual status, from a plan and
    # a looked-after episode at once) is left to do so.
    available = [p for p in PROCESSES if p in engine.definitions
                 and not any(r.start for r in engine.definition(p).reactions)]
    plans: list[tuple[datetime, int, int]] = []  # (when, case index, step)
    cases: list[dict[str, Any]] = []
    span = (last - first).days
    for n in range(children):
        child = f"CH{n + 1:05d}"
        family = f"FA{n // 2 + 1:05d}"
        chosen = [p for p in available if p in _SHARE and rng.random() < _SHARE[p]]
        if not chosen:
            chosen = [rng.choice([p for p in available if p in _SHARE] or available)]
        if "dual_status" in available and {"initial_review", "cp_conference"} <= set(chosen) \
                and rng.random() < 0.5:  # started by hand when nothing starts it by itself
            chosen.append("dual_status")
        for process in chosen:
            index = len(cases)
            begin = first + timedelta(days=rng.randrange(max(1, span * 3 // 4)))
            cases.append({"definition": process, "ref": f"{child}-{process[:3].upper()}",
                          "child": child, "family": family, "id": None, "n": index})
            when = _at(engine, rng, begin)
            steps = rng.randint(*events_per_case)
            for step in range(steps):
                if when.date() > last:
                    break
                plans.append((when, index, step))
                when = _at(engine, rng, when.date() + timedelta(days=rng.randint(2, 30)))
    plans.sort(key=lambda p: (p[0], p[1], p[2]))
    rows: list[dict[str, str]] = []
    for when, index, _step in plans:
        case = cases[index]
        if case.get("closed"):
            continue
        if store.due_by(when):  # tick(now=when), skipped when nothing can be due
            engine.tick(now=when)
            store.passed(when)
        row = _start(engine, rng, case, when) if case["id"] is None \
            else _next_event(engine, rng, case, when)
        if row is not None:
            if with_ids:
                row["id"] = f"E{len(rows) + 1:06d}"
            rows.append(row)
    return rows


def _at(engine: Engine, rng: random.Random, day: date) -> datetime:
    """A time on the working day ``day`` (or the next one), in office hours."""
    while not engine.calendar.is_working_day(day):
        day += timedelta(days=1)
    return datetime.combine(day, time(rng.randint(9, 16), rng.choice((0, 15, 30, 45))),
                            tzinfo=LONDON)


def _start(engine: Engine, rng: random.Random, case: dict[str, Any],
           when: datetime) -> dict[str, str] | None:
    defn = engine.definition(case["definition"])
    role = rng.choice(defn.start_roles)
    data = {f.name: _value(f, rng, when, case, future=False) for f in defn.data
            if f.required or f.type is FieldType.EMAIL}
    actor = Actor(f"{role}-{rng.randint(1, 30)}", role)
    try:
        inst = engine.start(defn.name, case["ref"], data, actor, at=when, child=case["child"],
                            family=case["family"])
    except WorkflowError:
        case["closed"] = True
        return None
    case["id"] = inst.id
    return _row(case, "start", when, actor, data)


def _next_event(engine: Engine, rng: random.Random, case: dict[str, Any],
                when: datetime) -> dict[str, str] | None:
    inst = engine.get(case["id"])
    if inst.closed:
        case["closed"] = True
        return None
    defn = engine.definition(inst.definition, inst.version)
    options = [t for t in defn.transitions if inst.state in t.sources and t.roles]
    weights = [_weight(defn, t, inst.state) for t in options]
    while options:
        t = rng.choices(options, weights)[0]
        k = options.index(t)
        del options[k], weights[k]
        role = rng.choice(t.roles)
        data = {r.name: _value(defn.field_map[r.name], rng, when, case, future=True)
                for r in t.set if r.required and r.name in defn.field_map}
        actor = Actor(f"{role}-{rng.randint(1, 30)}", role)
        try:
            engine.fire(inst.id, t.event, actor, data=data or None, at=when)
        except WorkflowError:
            continue
        return _row(case, t.event, when, actor, data)
    return None


def _weight(defn: Definition, t: Transition, state: str) -> float:
    if t.to is not None and defn.is_final(t.to):
        return 0.08
    if t.to is None or t.to == state:
        return 0.3
    return 1.0


def _value(f: DataField, rng: random.Random, when: datetime, case: Mapping[str, Any],
           *, future: bool) -> str | bool | int:
    day = when.date()
    if f.type is FieldType.DATE:
        if future and any(w in f.name for w in _FUTURE_WORDS):
            return (day + timedelta(days=rng.randint(5, 40))).isoformat()
        return day.isoformat()
    if f.type is FieldType.DATETIME:
        return when.isoformat()
    if f.type is FieldType.EMAIL:
        return f"{f.name.removesuffix('_email')}.{case['n'] % 97}@example.org"
    if f.type is FieldType.BOOL:
        return rng.random() < 0.8
    if f.type is FieldType.INT:
        return rng.randint(1, 5)
    if f.type is FieldType.ENUM:
        return rng.choice(f.values)
    return f"{f.name.replace('_', ' ')} {case['n']}"


def _row(case: Mapping[str, Any], event: str, when: datetime, actor: Actor,
         data: Mapping[str, Any]) -> dict[str, str]:
    row = {"ref": case["ref"], "definition": case["definition"], "event": event,
           "at": when.isoformat(), "actor": actor.id, "role": actor.role,
           "child": case["child"], "family": case["family"], "note": ""}
    row.update({k: _cell(v) for k, v in data.items()})
    return row


def _cell(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def columns_of(rows: Iterable[Mapping[str, str]]) -> list[str]:
    """The canonical columns, then every data column in first-seen order."""
    extra: dict[str, None] = {}
    for row in rows:
        for key in row:
            if key not in CANONICAL:
                extra.setdefault(key, None)
    return [*CANONICAL, *extra]


def write_csv(rows: Sequence[Mapping[str, str]], path: str | Path,
              columns: Sequence[str] | None = None) -> Path:
    """Write canonical rows as a UTF-8 CSV with a header."""
    p = Path(path)
    header = list(columns) if columns is not None else columns_of(rows)
    with p.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=header, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k, "") for k in header})
    return p


__all__ = ["generate_year", "write_csv", "columns_of", "PROCESSES"]

"""The shared machine fires events on a plain per-call carrier, checking roles and conditions."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from icsflow.definitions.loader import load_file, load_text
from icsflow.definitions.machine import build_machine, fire, plain_choice
from icsflow.definitions.model import SYSTEM_ROLE, Expr, Transition

EXAMPLES = Path(__file__).resolve().parents[2] / "definitions" / "examples"


@dataclass
class TinyCarrier:
    state: str
    role: str
    truths: dict[str, bool] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)

    def condition_holds(self, expr: Expr) -> bool:
        return self.truths.get(expr.text, False)

    def exited(self, state: str) -> None:
        self.log.append(f"exit:{state}")

    def entered(self, state: str) -> None:
        self.log.append(f"enter:{state}")

    def transitioned(self, transition: Transition) -> None:
        self.log.append(f"done:{transition.event}")


@pytest.fixture(scope="module")
def alert_machine():
    defn = load_file(EXAMPLES / "alert_example.yaml")
    return build_machine(defn)


def test_allowed_role_moves_the_carrier_with_exit_entry_and_transitioned(alert_machine):
    c = TinyCarrier("alert", "team_manager")
    assert fire(alert_machine, c, "respond") is True
    assert c.state == "responded"
    assert c.log == ["exit:alert", "enter:responded", "done:respond"]


def test_trigger_works_without_add_model(alert_machine):
    c = TinyCarrier("alert", "team_manager")
    assert alert_machine.models == []
    assert alert_machine.events["respond"].trigger(c) is True
    assert c.state == "responded"
    assert alert_machine.models == []


def test_wrong_role_is_refused_and_nothing_changes(alert_machine):
    c = TinyCarrier("alert", "iro")
    assert fire(alert_machine, c, "respond") is False
    assert c.state == "alert" and c.log == []


def test_event_not_allowed_in_state_returns_false(alert_machine):
    c = TinyCarrier("resolved", "iro")
    assert fire(alert_machine, c, "respond") is False
    assert fire(alert_machine, c, "no_such_event") is False


def test_system_role_may_fire_timer_only_and_role_events(alert_machine):
    c = TinyCarrier("alert", SYSTEM_ROLE)
    assert fire(alert_machine, c, "no_response") is True
    assert c.state == "escalated"
    c2 = TinyCarrier("alert", SYSTEM_ROLE)
    assert fire(alert_machine, c2, "respond") is True


def test_a_role_cannot_fire_a_timer_only_event(alert_machine):
    c = TinyCarrier("alert", "iro")
    assert fire(alert_machine, c, "no_response") is False


WHEN_DEF = """
name: guarded
version: 1
roles: {worker: {}}
data:
  ok: {type: bool}
initial: open
states:
  open: {}
  done: {final: true}
  other: {final: true}
transitions:
  - {event: note, from: open, roles: [worker]}
  - {event: close, from: open, to: done, roles: [worker], when: "data.ok"}
  - {event: close, from: open, to: other, roles: [worker]}
"""


def test_when_conditions_pick_the_first_transition_that_holds():
    m = build_machine(load_text(WHEN_DEF, "guarded.yaml"))
    c = TinyCarrier("open", "worker", truths={"data.ok": True})
    assert fire(m, c, "close") and c.state == "done"
    c = TinyCarrier("open", "worker", truths={"data.ok": False})
    assert fire(m, c, "close") and c.state == "other"


def test_internal_event_keeps_state_without_exit_or_entry():
    m = build_machine(load_text(WHEN_DEF, "guarded.yaml"))
    c = TinyCarrier("open", "worker")
    assert fire(m, c, "note") is True
    assert c.state == "open"
    assert c.log == ["done:note"]


def test_fire_is_fast(alert_machine):
    # Measured: about 30 us per fire with callbacks (CPython 3.11).
    # The bound only catches an accidental O(cases) scan.
    n = 2000
    started = time.perf_counter()
    for _ in range(n):
        fire(alert_machine, TinyCarrier("alert", "team_manager"), "respond")
    per_fire = (time.perf_counter() - started) / n
    assert per_fire < 500e-6


def _every_definition() -> list:
    from icsflow.definitions.registry import DefinitionSet

    shipped = DefinitionSet.load_default()
    return [shipped.latest(n) for n in shipped.names()] + [
        load_file(p) for p in sorted(EXAMPLES.glob("*.yaml"))]


def test_plain_choice_is_what_the_machine_takes_for_every_state_event_and_role():
    """Where no candidate has a ``when``, the engine takes ``plain_choice`` instead of firing
    the machine: the same transition, the same exits and entries, for every state, event and
    role of the shipped and example definitions (and the system's role)."""
    compared = 0
    for defn in _every_definition():
        machine = build_machine(defn)
        roles = sorted({r for t in defn.transitions for r in t.roles} | {SYSTEM_ROLE, "nobody"})
        for state in (s.name for s in defn.states):
            for event in sorted({t.event for t in defn.transitions}):
                candidates = defn.transitions_for(event, state)
                if any(t.when for t in candidates):
                    assert plain_choice(candidates, "any") is None
                    continue
                for role in roles:
                    c = TinyCarrier(state, role)
                    took = fire(machine, c, event)
                    chosen = plain_choice(candidates, role)
                    taken = [e for e in c.log if e.startswith("done:")]
                    assert (chosen is not None) == took, (defn.name, state, event, role)
                    if chosen is None:
                        continue
                    expected = ([f"exit:{state}", f"enter:{chosen.to}"]
                                if chosen.to is not None else [])
                    assert c.log == [*expected, f"done:{chosen.event}"]
                    assert taken == [f"done:{event}"]
                    assert c.state == (chosen.to or state)
                    compared += 1
    assert compared > 100

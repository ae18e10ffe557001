"""A definition's grouped lookups give what scanning its lists gives, in written order."""

from pathlib import Path

from icsflow.definitions.loader import load_file
from icsflow.definitions.model import Definition
from icsflow.definitions.registry import DefinitionSet

EXAMPLES = Path(__file__).resolve().parents[2] / "definitions" / "examples"


def _every_definition() -> list[Definition]:
    shipped = DefinitionSet.load_default()
    return [shipped.latest(n) for n in shipped.names()] + [
        load_file(p) for p in sorted(EXAMPLES.glob("*.yaml"))]


def test_lookups_match_a_scan_of_the_definition() -> None:
    checked = 0
    for d in _every_definition():
        states = [s.name for s in d.states] + ["no-such-state"]
        events = [*d.events, "no-such-event"]
        for state in states:
            assert d.events_from(state) == tuple(dict.fromkeys(
                t.event for t in d.transitions if state in t.sources))
            assert d.deadlines_live_in(state) == tuple(
                x for x in d.deadlines if state in x.live_in)
            assert d.timers_of_state(state) == tuple(t for t in d.timers if t.state == state)
            for event in events:
                assert d.transitions_for(event, state) == tuple(
                    t for t in d.transitions if t.event == event and state in t.sources)
                checked += 1
        for name in [x.name for x in d.deadlines] + ["no-such-deadline"]:
            assert d.timers_of_deadline(name) == tuple(
                t for t in d.timers if t.deadline == name)
    assert checked > 500

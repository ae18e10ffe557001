"""One ``transitions.Machine`` per definition version, shared by every case of that version.

The machine holds no case: the engine fires an event on a short-lived ``Carrier`` (the case's
state and the actor's role) with ``machine.events[event].trigger(carrier)``. ``add_model`` per
case is never used: it scans a list and would keep every case alive. Measured with the tiny
carrier of tests/unit/test_machine.py: about 30 us per fire with the
exit, entry and after callbacks (CPython 3.11; ~7 us for a bare transition). When none of an
event's candidate transitions has a ``when``, ``plain_choice`` gives the machine's decision
without firing it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol, cast

from transitions import EventData, Machine

from icsflow.definitions.model import SYSTEM_ROLE, Definition, Expr, Transition

if TYPE_CHECKING:
    from transitions.core import Callback


class Carrier(Protocol):
    """What the engine hands to the machine for one fire.

    ``state`` is read and written by transitions; ``role`` is the actor's role (``SYSTEM_ROLE``
    for timers, which may fire any event). ``condition_holds`` evaluates a ``when`` on the data
    as the event would leave it. ``exited``/``entered`` are called on a real state change (not
    for internal events); ``transitioned`` after the state change, with the model transition
    taken, so the engine applies its record and notify effects.
    """

    state: str
    role: str

    def condition_holds(self, expr: Expr) -> bool: ...

    def exited(self, state: str) -> None: ...

    def entered(self, state: str) -> None: ...

    def transitioned(self, transition: Transition) -> None: ...


def _carrier(event: EventData) -> Carrier:
    return cast(Carrier, event.model)


# What transitions calls with ``send_event=True``: a condition, and a hook run for its effect.
_Condition = Callable[[EventData], bool]
_Hook = Callable[[EventData], None]


def _role_check(roles: tuple[str, ...]) -> _Condition:
    allowed = frozenset(roles) | {SYSTEM_ROLE}

    def check(event: EventData) -> bool:
        return _carrier(event).role in allowed

    return check


def _when(expr: Expr) -> _Condition:
    def check(event: EventData) -> bool:
        return bool(_carrier(event).condition_holds(expr))

    return check


def _after(transition: Transition) -> _Hook:
    def after(event: EventData) -> None:
        _carrier(event).transitioned(transition)

    return after


def _on_exit(state: str) -> _Hook:
    def exited(event: EventData) -> None:
        _carrier(event).exited(state)

    return exited


def _on_enter(state: str) -> _Hook:
    def entered(event: EventData) -> None:
        _carrier(event).entered(state)

    return entered


def build_machine(defn: Definition) -> Machine:
    """The machine of one definition version (build once, share between threads and cases).

    Transitions of one event are tried in written order; the first whose role check and every
    ``when`` hold is taken. Internal events (``to`` None) change no state and call no
    exit/entry.
    """
    machine = Machine(model=None, states=[], initial=None, auto_transitions=False,
                      send_event=True, ignore_invalid_triggers=True,
                      name=f"{defn.name}@{defn.version} ")
    for st in defn.states:
        machine.add_state(st.name, on_enter=[_on_enter(st.name)], on_exit=[_on_exit(st.name)],
                          final=st.final)
    machine.initial = defn.initial
    for t in defn.transitions:
        conditions: list[Callback] = [_role_check(t.roles), *(_when(e) for e in t.when)]
        for source in t.sources:
            machine.add_transition(t.event, source, t.to, conditions=conditions,
                                   after=[_after(t)])
    return machine


def plain_choice(candidates: Sequence[Transition], role: str) -> Transition | None:
    """The transition the machine takes among ``candidates`` (an event's transitions from one
    state, in written order) when none has a ``when``: the first whose roles admit ``role``.
    None when one has a condition to weigh (or none admits the role): then the machine decides.

    A flat machine exits the source and enters the destination on every transition but an
    internal one, and calls nothing else, so this is its decision without its call (about a
    fifth of planning a timer's firing); ``tests/unit/test_machine.py`` compares the two for
    every state, event and role of the shipped definitions."""
    if any(t.when for t in candidates):
        return None
    return next((t for t in candidates if role == SYSTEM_ROLE or role in t.roles), None)


def fire(machine: Machine, carrier: Carrier, event: str) -> bool:
    """Fire ``event`` on ``carrier``: True if a transition was taken, False if none applied
    (unknown event, not allowed in the carrier's state, role refused or a ``when`` failed)."""
    ev = machine.events.get(event)
    if ev is None:
        return False
    return bool(ev.trigger(carrier))


__all__ = ["Carrier", "build_machine", "fire", "plain_choice"]

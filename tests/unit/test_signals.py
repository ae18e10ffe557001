"""The signals language: sending, hearing, validation (unknown signals, loops) and atomicity."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from icsflow.definitions.errors import DefinitionLoadError
from icsflow.definitions.loader import load_paths, load_text
from icsflow.workflow import Actor, Engine, FakeClock
from icsflow.workflow.cli import cli
from icsflow.workflow.errors import DefinitionError

SENDER = """\
name: sender
version: 1
roles: {worker: {}}
initial: open
states:
  open: {}
  done: {final: true}
transitions:
  - event: finish
    from: open
    to: done
    roles: [worker]
    signal: finished
signals:
  finished: The sender finished
"""

LISTENER = """\
name: listener
version: 1
roles: {worker: {}}
data:
  heard_on: {type: date, required: true}
  n: {type: int}
initial: waiting
states:
  waiting: {}
  told: {final: true}
transitions:
  - {event: tell, from: waiting, to: told, roles: [worker]}
signals:
  finished: The sender finished
reactions:
  - signal: finished
    start: true
    set: {heard_on: "signal.date", n: "NUMBER"}
"""


def _write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(text)
    return path


def test_an_undeclared_signal_is_refused_with_its_line() -> None:
    text = SENDER.replace("signal: finished\n", "signal: finishd\n")
    with pytest.raises(DefinitionLoadError) as info:
        load_text(text, "sender.yaml")
    [problem] = info.value.problems
    assert str(problem.source) == "sender.yaml:13" and "unknown signal 'finishd'" in str(problem)


def test_a_reaction_must_start_or_fire_and_give_required_data() -> None:
    text = LISTENER.replace('set: {heard_on: "signal.date", n: "NUMBER"}', "fire: tell\n"
                            "    start: true")
    with pytest.raises(DefinitionLoadError, match="exactly one"):
        load_text(text, "listener.yaml")
    text = LISTENER.replace('heard_on: "signal.date", ', "")
    with pytest.raises(DefinitionLoadError, match="required data field.*heard_on"):
        load_text(text, "listener.yaml")


def test_a_loop_within_one_file_is_refused() -> None:
    loop = SENDER.replace("""signals:
  finished: The sender finished
""", """signals:
  finished: The sender finished
reactions:
  - {signal: finished, fire: finish}
""")
    with pytest.raises(DefinitionLoadError) as info:
        load_text(loop, "loop.yaml")
    assert any("signal loop" in str(p) and str(p).startswith("loop.yaml:") for p in
               info.value.problems)


def test_a_loop_across_files_is_refused_by_validate_with_file_and_line(tmp_path: Path) -> None:
    ping = SENDER.replace("name: sender", "name: ping").replace("""signals:
  finished: The sender finished
""", """signals:
  finished: The sender finished
  answered: The other one answered
reactions:
  - {signal: answered, start: true}
""").replace("roles: {worker: {}}", "roles: {worker: {}}\nstart_signals: [finished]")
    pong = SENDER.replace("name: sender", "name: pong").replace("signal: finished", "signal: x") \
        .replace("""signals:
  finished: The sender finished
""", """signals:
  x: unused
  finished: The other one finished
  answered: This one answered
reactions:
  - {signal: finished, start: true}
""").replace("roles: {worker: {}}", "roles: {worker: {}}\nstart_signals: [answered]")
    folder = tmp_path / "defs"
    _write(folder, "ping", ping)
    _write(folder, "pong", pong)
    with pytest.raises(DefinitionLoadError, match="signal loop"):
        load_paths(folder)
    result = CliRunner().invoke(cli, ["validate", str(folder)], env={"ICSFLOW_CONFIG": ""})
    assert result.exit_code == 1
    assert "signal loop" in result.output + result.stderr
    assert f"{folder / 'p'}" in result.output + result.stderr  # FILE:LINE names the file


def test_validate_refuses_an_unknown_signal_with_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "defs", "sender", SENDER.replace("signal: finished\n",
                                                              "signal: finishd\n"))
    result = CliRunner().invoke(cli, ["validate", str(path)], env={"ICSFLOW_CONFIG": ""})
    assert result.exit_code == 1
    assert f"{path}:13:" in result.output + result.stderr


def _engine(tmp_path: Path, listener: str) -> Engine:
    defs = [load_text(SENDER, "sender.yaml"), load_text(listener, "listener.yaml")]
    from datetime import UTC, datetime

    return Engine.open(db=f"sqlite:///{tmp_path / 's.db'}", definitions=defs,
                       clock=FakeClock(datetime(2011, 12, 19, 10, tzinfo=UTC)))


def test_a_signal_starts_a_case_of_the_same_child_only(tmp_path: Path) -> None:
    with _engine(tmp_path, LISTENER.replace("NUMBER", "3")) as engine:
        worker = Actor("w-1", "worker")
        a = engine.start("sender", ref="R-1", data=None, actor=worker, child="C-1")
        b = engine.start("sender", ref="R-2", data=None, actor=worker)  # no child: nobody hears
        engine.fire(b.id, "finish", worker)
        assert engine.list(definition="listener") == []
        engine.fire(a.id, "finish", worker)
        [heard] = engine.list(definition="listener")
        assert heard.child == "C-1" and heard.data == {"heard_on": "2011-12-19", "n": 3}
        assert heard.history[0].note == f"signal finished from sender {a.id}"


def test_a_failing_reaction_writes_nothing_not_even_the_senders_transition(
        tmp_path: Path) -> None:
    with _engine(tmp_path, LISTENER.replace("NUMBER", "1 // 0")) as engine:
        worker = Actor("w-1", "worker")
        a = engine.start("sender", ref="R-1", data=None, actor=worker, child="C-1")
        with pytest.raises(DefinitionError, match="set 'n'"):
            engine.fire(a.id, "finish", worker)
        assert engine.get(a.id).state == "open"
        assert engine.list(definition="listener") == []


def test_graph_draws_the_signals_sent_and_heard() -> None:
    from icsflow.definitions.graph import graph_text
    from icsflow.definitions.registry import DefinitionSet

    defs = DefinitionSet.load_default()
    dual = graph_text(defs.latest("dual_status"))
    assert "starts by itself on signal cp_plan_started" in dual
    assert "[on signal cp_plan_ended]" in dual
    conf = graph_text(defs.latest("cp_conference"), "dot")
    assert "sends cp_plan_started if data.plan_made" in conf
    assert "start sends looked_after_started" in graph_text(defs.latest("initial_review"))


def test_emails_say_the_duration_the_definition_says(tmp_path: Path) -> None:
    """Changing "10 working days" to 5 in the YAML changes the email; validate warns where
    text hard-codes a duration the definition no longer has."""
    from datetime import UTC, datetime

    from icsflow.definitions.registry import builtin_dir
    from icsflow.definitions.validate import duration_warnings

    text = (builtin_dir() / "alert_dispute.yaml").read_text()
    five = text.replace("      - {anchor: entry, after: 10 working days}",
                        "      - {anchor: entry, after: 5 working days}")
    assert five != text
    defn = load_text(five, "alert5.yaml")
    warned = [str(w) for w in duration_warnings(defn)]
    assert any("description of state 'alert' says '10 working days'" in w for w in warned)
    assert duration_warnings(load_text(text, "alert.yaml")) == []
    clock = FakeClock(datetime(2011, 12, 19, 10, tzinfo=UTC))
    with Engine.open(db=f"sqlite:///{tmp_path / 'd.db'}", definitions=[defn], clock=clock,
                     directory={"iro_service_manager": ["ism@example.org"]}) as engine:
        inst = engine.start("alert_dispute", ref="A-1", actor=Actor("iro-1", "iro"), data={
            "iro_email": "iro@example.org", "team_manager_email": "tm@example.org",
            "concern": "Plan drift"})
        engine.tick(datetime(2011, 12, 23, 12, tzinfo=UTC))
        [reminder] = [m for m in engine.outbox.list() if m.template == "response_reminder"]
        assert "You have 5 working days to respond" in reminder.body
        assert inst.deadlines["response_due"].isoformat() == "2011-12-28"  # 26, 27 Dec


TIMED_SENDER = SENDER.replace("""    signal: finished
signals:""", """    signal: finished
  - event: lapse
    from: open
    to: done
    signal: finished
signals:""").replace("initial: open", """deadlines:
  due: {live_in: open, anchor: entry, after: 2 working days}
timers:
  - {name: lapsed, deadline: due, at: breach, fire: lapse}
initial: open""")


def test_a_timer_fired_transition_sends_its_signal_in_the_tick(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    defs = [load_text(TIMED_SENDER, "sender.yaml"),
            load_text(LISTENER.replace("NUMBER", "1"), "listener.yaml")]
    clock = FakeClock(datetime(2011, 12, 22, 10, tzinfo=UTC))
    with Engine.open(db=f"sqlite:///{tmp_path / 't.db'}", definitions=defs,
                     clock=clock) as engine:
        worker = Actor("w-1", "worker")
        cases = [engine.start("sender", ref=f"R-{n}", data=None, actor=worker, child=f"C-{n}")
                 for n in range(3)]
        result = engine.tick(datetime(2012, 1, 10, tzinfo=UTC))
        assert result.fired == 3
        heard = engine.list(definition="listener")
        assert sorted(h.child or "" for h in heard) == ["C-0", "C-1", "C-2"]
        # Thursday 22 December + 2 working days = Wednesday 28th (26, 27 closed): breached on
        # the 29th, and the started case carries that date, not the tick's.
        assert {h.data["heard_on"] for h in heard} == {"2011-12-29"}
        assert all(engine.get(c.id).state == "done" for c in cases)

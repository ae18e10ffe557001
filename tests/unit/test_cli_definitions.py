"""icsflow validate and graph: exit codes and output managers rely on."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from icsflow.workflow.cli import cli

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "definitions" / "examples"
BROKEN = ROOT / "tests" / "broken"


def _run(*args: str):
    return CliRunner(mix_stderr=False).invoke(cli, list(args)) if "mix_stderr" in \
        CliRunner.__init__.__code__.co_varnames else CliRunner().invoke(cli, list(args))


def test_validate_good_folder_exits_0_with_count():
    result = _run("validate", str(EXAMPLES))
    assert result.exit_code == 0
    assert result.stdout.strip() == "4 definitions OK"


def test_validate_broken_file_exits_1_with_file_line_messages():
    path = BROKEN / "unknown_role.yaml"
    result = _run("validate", str(path))
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.strip() == (f"{path}:13:51: transition 'finish' allows unknown role "
                                      "'wroker' (known: worker); did you mean 'worker'?")


def test_validate_defaults_to_configured_folder():
    result = _run("--definitions", str(EXAMPLES), "validate")
    assert result.exit_code == 0 and "4 definitions OK" in result.stdout


def test_graph_by_name_prints_mermaid_with_deadline_notes():
    result = _run("--definitions", str(EXAMPLES), "graph", "alert_example")
    assert result.exit_code == 0
    assert result.stdout.startswith("stateDiagram-v2")
    assert "response_due - 10 working days after entry" in result.stdout


def test_graph_of_a_file_as_dot():
    result = _run("graph", str(EXAMPLES / "alert_example.yaml"), "--format", "dot")
    assert result.exit_code == 0 and result.stdout.startswith('digraph "alert_example"')


def test_graph_unknown_name_exits_1_listing_known_names():
    result = _run("--definitions", str(EXAMPLES), "graph", "nope")
    assert result.exit_code == 1
    assert ("known: alert_auto_escalation, alert_example, dual_example, review_example"
            in result.stderr)


def test_validate_an_empty_folder_is_refused(tmp_path: Path):
    result = _run("validate", str(tmp_path))
    assert result.exit_code == 1
    assert "no definitions (*.yaml, *.yml) found in" in result.output


def test_definitions_is_accepted_after_the_command_too():
    result = _run("validate", "--definitions", str(EXAMPLES))
    assert result.exit_code == 0 and "4 definitions OK" in result.stdout
    result = _run("graph", "alert_example", "--definitions", str(EXAMPLES))
    assert result.exit_code == 0 and "stateDiagram-v2" in result.stdout
    result = _run("simulate", "alert_example", "--start", "2011-12-19",
                  "--definitions", str(EXAMPLES))
    assert result.exit_code == 0 and "alert_example v1" in result.stdout

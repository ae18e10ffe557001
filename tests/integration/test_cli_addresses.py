"""Roles without an address are found at once (issue 28, item 6): ``start`` and ``fire`` warn
about a role the process emails that no address reaches, and ``tick`` counts the dead letters
it created, where "failed 0" used to hide them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from icsflow.workflow.cli import cli

DIRECTORY = ('[directory]\niro_service_manager = ["ism@example.org"]\n'
             'head_of_service = ["hos@example.org"]\ndirector = ["dir@example.org"]\n'
             'admin = ["admin@example.org"]\n')


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    config = tmp_path / "icsflow.toml"
    config.write_text('admin_address = "icsflow-admin@example.org"\n' + DIRECTORY)
    return {"ICSFLOW_DB": f"sqlite:///{tmp_path / 'c.db'}", "ICSFLOW_DEFINITIONS": "",
            "ICSFLOW_CONFIG": str(config), "ICSFLOW_MAILDIR": str(tmp_path / "mail")}


def run(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def start(env: dict[str, str], *extra: str) -> tuple[int, str, str]:
    return run(env, "start", "alert_dispute", "--ref", "C-1", "--actor", "iro-1", "--role",
               "iro", "--set", "team_manager_email=tm@example.org", "--set",
               "iro_email=iro@example.org", "--set", "concern=Plan drift", "--at",
               "2011-12-19", *extra)


def test_start_warns_of_a_role_with_no_address_and_says_how_to_give_one(
        env: dict[str, str]) -> None:
    code, out, err = start(env, "--json")
    assert code == 0 and json.loads(out)["ref"] == "C-1"  # started all the same; JSON clean
    [line] = err.strip().splitlines()
    assert line.startswith("warning: case C-1: emails to the service manager will fail")
    assert "icsflow fire C-1 update_addresses --actor ID --role admin " \
           "--set service_manager_email=ADDRESS" in line


def test_no_warning_when_every_role_has_an_address(env: dict[str, str]) -> None:
    code, _, err = start(env, "--set", "service_manager_email=sm@example.org")
    assert code == 0 and "warning" not in err


def test_a_missing_directory_entry_is_named_with_the_configuration_to_add(
        env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "icsflow.toml").write_text('[directory]\nadmin = ["admin@example.org"]\n')
    _, _, err = start(env, "--set", "service_manager_email=sm@example.org")
    [line] = err.strip().splitlines()
    assert "emails to IRO service manager, Head of service, Director will fail" in line
    assert "directory: {iro_service_manager: [ADDRESS]" in line


def test_fire_warns_too_and_update_addresses_closes_the_gap(env: dict[str, str]) -> None:
    start(env)
    _, _, err = run(env, "fire", "C-1", "extend", "--actor", "iro-1", "--role", "iro",
                    "--set", "extended_to=2012-01-20", "--at", "2012-01-03")
    assert "emails to the service manager will fail" in err
    code, _, err = run(env, "fire", "C-1", "update_addresses", "--actor", "admin-1", "--role",
                       "admin", "--set", "service_manager_email=sm@example.org")
    assert code == 0 and "warning" not in err


def test_tick_counts_the_dead_letters_it_created_and_retry_by_case_sends_them(
        env: dict[str, str]) -> None:
    start(env)
    code, out, _ = run(env, "tick", "--now", "2012-01-06T12:00")
    assert code == 0 and "dead letters: 1 new (cases C-1;" in out
    code, out, _ = run(env, "outbox", "--status", "failed", "--json")
    [dead] = json.loads(out)
    assert dead["template"] == "no_response" and dead["ref"] == "C-1"
    code, out, _ = run(env, "outbox", "--json")
    [notice] = [m for m in json.loads(out) if m["template"] == "admin_alert"]
    assert notice["subject"] == ("Case C-1: an email was not sent: the service manager has no "
                                 "email address on the case")
    code, _, err = run(env, "outbox", "retry", "--case", "C-1")
    assert code == 1 and "still has nobody to go to" in err
    run(env, "fire", "C-1", "update_addresses", "--actor", "admin-1", "--role", "admin",
        "--set", "service_manager_email=sm@example.org")
    code, out, _ = run(env, "outbox", "retry", "--case", "C-1")
    assert code == 0 and f"message {dead['id']} queued again for 1 recipient" in out
    code, out, _ = run(env, "tick", "--now", "2012-01-06T12:05")
    assert "dead letters: 0 new" in out

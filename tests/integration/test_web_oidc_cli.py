"""The command line with sign-in through the identity provider configured: passwords only for
break-glass use, and ``serve`` refusing, in one line, what it cannot serve with."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result
from sqlalchemy import create_engine

from icsflow.storage.oidc import NO_PASSWORD
from icsflow.storage.web_users import UserStore
from icsflow.workflow.cli import cli
from icsflow.workflow.web.auth import password_matches

PASSWORD = "a-long-enough-password"
SECTION = """
[web]
base_url = "https://icsflow.council.example"

[web.oidc]
issuer = "https://login.council.example"
client_id = "icsflow"
local_passwords = {local}

[web.oidc.role_map]
"icsflow-iro" = "{role}"
"""


def setup(tmp: Path, *, local: bool = False, role: str = "iro",
          text: str | None = None) -> tuple[str, str]:
    db = f"sqlite:///{tmp / 'u.db'}"
    config = tmp / "icsflow.toml"
    config.write_text(text if text is not None else
                      SECTION.format(local=str(local).lower(), role=role), encoding="utf-8")
    assert run(db, str(config), "db", "upgrade").exit_code == 0
    return db, str(config)


def run(db: str, config: str, *args: str, stdin: str | None = None,
        env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, ["--db", db, "--config", config, *args], input=stdin,
                              env={"ICSFLOW_OIDC_CLIENT_SECRET": "", **(env or {})})


def test_with_local_passwords_off_user_passwd_is_refused(tmp_path: Path) -> None:
    db, config = setup(tmp_path)
    added = run(db, config, "user", "add", "alice", "--role", "admin")
    assert added.exit_code == 0, added.output  # no password asked: she signs in at the provider
    record = UserStore(create_engine(db)).get("alice")
    assert record is not None and record.password_hash == NO_PASSWORD
    refused = run(db, config, "user", "passwd", "alice", "--password-stdin",
                  stdin=PASSWORD + "\n")
    assert refused.exit_code == 1
    assert "local_passwords = true" in refused.output
    record = UserStore(create_engine(db)).get("alice")
    assert record is not None and record.password_hash == NO_PASSWORD


def test_with_local_passwords_on_a_break_glass_password_can_be_set(tmp_path: Path) -> None:
    db, config = setup(tmp_path, local=True)
    assert run(db, config, "user", "add", "admin1", "--role", "admin", "--password-stdin",
               stdin=PASSWORD + "\n").exit_code == 0
    changed = run(db, config, "user", "passwd", "admin1", "--password-stdin",
                  stdin="another-password-2\n")
    assert changed.exit_code == 0, changed.output
    record = UserStore(create_engine(db)).get("admin1")
    assert record is not None and password_matches(record.password_hash, "another-password-2")


def test_serve_refuses_without_the_client_secret_naming_the_variable(tmp_path: Path) -> None:
    db, config = setup(tmp_path)
    refused = run(db, config, "serve", "--port", "1")
    assert refused.exit_code == 1
    assert "ICSFLOW_OIDC_CLIENT_SECRET (web.oidc.client_secret_env): not set" in refused.output


def test_serve_refuses_a_role_map_naming_a_role_no_definition_has(tmp_path: Path) -> None:
    db, config = setup(tmp_path, role="chief_iro")
    refused = run(db, config, "serve", "--port", "1",
                  env={"ICSFLOW_OIDC_CLIENT_SECRET": "s3cret-s3cret"})
    assert refused.exit_code == 1
    assert "web.oidc.role_map: 'icsflow-iro' -> 'chief_iro': not a role of the definitions" \
        in refused.output


def test_every_command_refuses_an_incomplete_oidc_section_in_one_line(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'u.db'}"
    config = tmp_path / "icsflow.toml"
    config.write_text('[web.oidc]\nissuer = "https://login.council.example"\n',
                      encoding="utf-8")
    refused = run(db, str(config), "calendar", "add", "2026-12-21", "5")
    assert refused.exit_code == 1
    lines = refused.output.strip().splitlines()
    assert len(lines) == 1 and "web.oidc.client_id: missing;" in lines[0]

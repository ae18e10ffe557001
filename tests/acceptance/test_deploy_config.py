"""deploy/icsflow.toml, the sample production configuration: it loads as shipped (sign-in
through the council's identity provider on), names every key the configuration knows, keeps
secrets out, stays valid with its optional settings switched on, and the commands of
docs/deploy.md that need no server run with it."""

from __future__ import annotations

import os
import re
import subprocess
from datetime import time
from pathlib import Path

import forked_cli
from acceptance_support import ROOT

from icsflow.workflow.config import KEYS, load_config

SAMPLE = ROOT / "deploy" / "icsflow.toml"
OIDC_MARK = "# -- Sign-in with the council's identity provider (OpenID Connect"
SETTING = re.compile(r"^#(\[[a-z_.]+\]|[a-z_]+ = .*)$")  # a commented-out setting


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ICSFLOW_")}
    return {**env, **extra}


def test_the_sample_configuration_loads_as_shipped() -> None:
    config = load_config(SAMPLE, env={})
    assert config.smtp.url == "smtp+starttls://icsflow@mail.council.example:587"
    assert config.smtp.password is None
    assert config.maildir == "/var/lib/icsflow/mail"
    assert config.office_hours.start == time(8, 0)
    assert config.directory["head_of_service"] == ("head-of-service@council.example",)
    assert config.admin_address == "iro-admin@council.example"
    assert config.intervals.sweep_seconds == 30
    assert config.digest.allocation_weekday == "tuesday"
    assert config.webhook is None
    assert config.web.base_url == "https://icsflow.council.example"
    oidc = config.web.oidc
    assert oidc is not None and oidc.client_id == "icsflow"
    assert oidc.client_secret_env == "ICSFLOW_OIDC_CLIENT_SECRET" and not oidc.local_passwords
    assert oidc.role_map["icsflow-iro"] == "iro"


def test_the_sample_names_every_configuration_key() -> None:
    named: set[str] = set()
    section = ""
    for raw in SAMPLE.read_text(encoding="utf-8").splitlines():
        line = raw.lstrip("#").strip()
        header = re.match(r"^\[([a-z_.]+)\]$", line)
        if header:
            section = header.group(1)
            named.add(section)  # `directory` is a key whose value is the whole section
            continue
        key = re.match(r"^([a-z_]+)(?: = |: )", line)
        if key:
            named.add(f"{section}.{key.group(1)}" if section else key.group(1))
    missing = sorted(k.path for k in KEYS if k.path not in named)
    assert missing == []


def test_the_sample_holds_no_secret_value() -> None:
    text = SAMPLE.read_text(encoding="utf-8")
    assert not re.search(r"^#?\s*(password|secret)\s*=", text, re.MULTILINE)
    # No password inside a URL but the placeholder of the ICSFLOW_DB example.
    assert re.findall(r"://[^/@\s]*:([^/@\s]+)@", text) == ["PASSWORD"]


def test_every_optional_setting_of_the_sample_loads_when_switched_on(tmp_path: Path) -> None:
    text = SAMPLE.read_text(encoding="utf-8")
    switched = "\n".join(line[1:] if SETTING.match(line) else line
                         for line in text.splitlines())
    assert switched != text  # there were commented settings to switch on
    on = tmp_path / "icsflow.toml"
    on.write_text(switched, encoding="utf-8")
    config = load_config(on, env={"ICSFLOW_WEBHOOK_SECRET": "a-long-webhook-secret"})
    assert config.webhook is not None
    assert config.definitions_dir == "/etc/icsflow/definitions"
    assert config.web.oidc is not None and config.web.oidc.team_claim == "team"


def test_the_oidc_section_names_only_roles_the_shipped_definitions_have() -> None:
    from icsflow.workflow import Engine
    from icsflow.workflow.identity import unknown_roles

    oidc = load_config(SAMPLE, env={}).web.oidc
    assert oidc is not None
    engine = Engine.open(db="sqlite://")
    try:
        roles = {r.name for d in engine.definitions for r in d.roles}
    finally:
        engine.close()
    assert unknown_roles(oidc, roles) is None


def test_without_its_oidc_section_the_sample_signs_in_with_passwords(tmp_path: Path) -> None:
    before = SAMPLE.read_text(encoding="utf-8").split(OIDC_MARK)[0]
    path = tmp_path / "icsflow.toml"
    path.write_text(before, encoding="utf-8")
    config = load_config(path, env={})
    assert config.web.oidc is None and config.web.base_url == "https://icsflow.council.example"


def test_commands_run_with_the_sample_configuration(tmp_path: Path) -> None:
    """docs/deploy.md's checks that need no server: the file loads, a scratch database
    upgrades, and a tick finds nothing to do (no SMTP connection is made without mail)."""
    env = _clean_env(ICSFLOW_CONFIG=str(SAMPLE),
                     ICSFLOW_DB=f"sqlite:///{tmp_path / 'scratch.db'}")

    def run(*args: str) -> str:
        done = forked_cli.run(args, env=env, capture_output=True, text=True,
                              timeout=120, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert run("calendar", "add", "2026-12-21", "5").strip() == "2026-12-30"
    assert "database upgraded from empty to" in run("db", "upgrade")
    assert "up to date" in run("db", "upgrade")
    assert "timers: fired 0" in run("tick", "--now", "2026-12-21T09:00")
    assert run("list").strip() == "no cases"


def test_no_unit_expands_a_secret_into_a_command_line() -> None:
    """systemd expands $VAR on Exec lines itself, putting the value in the arguments every
    process can read; "$$VAR" passes it on for the shell to read from the environment."""
    for unit in sorted((ROOT / "deploy" / "systemd").glob("*.service")):
        for line in unit.read_text(encoding="utf-8").splitlines():
            if line.startswith("Exec"):
                assert not re.search(r"(?<!\$)\$\{?ICSFLOW_", line), f"{unit.name}: {line}"


def test_every_shell_block_of_the_walk_through_parses() -> None:
    """A typo in a copied command (an unclosed quote, a stray parenthesis) is found here, not
    on the council's server; the commands themselves run in the other deploy tests."""
    text = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```sh\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    assert len(blocks) >= 10
    for block in blocks:
        done = subprocess.run(["bash", "-n"], input=block, capture_output=True, text=True)
        assert done.returncode == 0, f"{done.stderr}\n{block}"

"""Configuration: file formats, precedence, one-line errors naming file and key."""

from __future__ import annotations

from datetime import date, time
from pathlib import Path

import pytest

from icsflow.workflow.config import KEYS, Closure, Config, load_config
from icsflow.workflow.errors import ConfigurationError


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


FULL_YAML = """\
database_url: postgresql+psycopg://icsflow@db/icsflow
definitions_dir: /etc/icsflow/definitions
calendar:
  closures:
    - 2012-12-24
    - {date: 2012-12-31, name: Council closure}
  extra_working_days: [2012-06-05]
office_hours:
  start: 08:30
  end: 17:30
  timezone: Europe/London
smtp:
  url: smtp+starttls://icsflow@mail.example.org:587
  timeout: 10
  mail_from: icsflow@example.org
maildir: /var/lib/icsflow/mail
webhook:
  url: https://hooks.example.org/icsflow
  secret: s3cret
directory:
  iro_service_manager: [ism@example.org]
  head_of_service: [hos@example.org, deputy@example.org]
admin_address: iro-admin@example.org
intervals:
  sweep_seconds: 15
  dispatch_seconds: 5
  timer_batch: 10
  outbox_batch: 20
  outbox_max_attempts: 5
  backoff_base_seconds: 30
  lease_seconds: 120
  timer_lease_seconds: 12
digest:
  enabled: true
  roles: [iro_service_manager]
  due_within_working_days: 5
  allocation_enabled: false
  allocation_role: iro_service_manager
  allocation_definition: initial_review
  allocation_state: awaiting_allocation
"""


def test_a_full_yaml_file_sets_every_section(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "icsflow.yaml", FULL_YAML), env={})
    assert config.database_url.startswith("postgresql")
    assert config.calendar.closures == (Closure(date(2012, 12, 24)),
                                        Closure(date(2012, 12, 31), "Council closure"))
    assert config.calendar.extra_working_days == (date(2012, 6, 5),)
    assert config.office_hours.start == time(8, 30)
    assert config.office_hours.end == time(17, 30)
    assert config.smtp.timeout == 10.0
    assert config.webhook is not None and config.webhook.secret == "s3cret"
    assert config.directory["head_of_service"] == ("hos@example.org", "deputy@example.org")
    assert config.intervals.outbox_max_attempts == 5
    assert config.intervals.timer_lease_seconds == 12.0
    assert config.digest.allocation_enabled is False
    assert config.closures()[date(2012, 12, 31)] == "Council closure"


def test_every_key_in_the_table_appears_in_the_documented_example() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "configuration.md").read_text()
    for key in KEYS:
        assert key.path.split(".")[-1] in doc, key.path


def test_a_toml_file_is_read_by_extension(tmp_path: Path) -> None:
    path = write(tmp_path, "icsflow.toml", '[office_hours]\nstart = "09:00"\n'
                 '[calendar]\nclosures = [2012-12-24, {date = 2012-12-31, name = "Closed"}]\n')
    config = load_config(path, env={})
    assert config.office_hours.start == time(9, 0)
    assert config.calendar.closures[1].name == "Closed"


def test_no_file_gives_the_defaults() -> None:
    config = load_config(None, env={})
    assert config == Config(directory={})
    assert config.intervals.sweep_seconds == 30
    assert config.intervals.outbox_max_attempts == 8
    assert config.maildir == "./var/mail"


def test_a_bad_time_is_one_line_naming_file_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, "icsflow.yaml", "office_hours:\n  start: '25:00'\n")
    with pytest.raises(ConfigurationError) as caught:
        load_config(path, env={})
    assert str(caught.value) == f"{path}: office_hours.start: '25:00' is not a time (HH:MM)"


def test_an_unknown_key_is_refused_naming_the_known_ones(tmp_path: Path) -> None:
    path = write(tmp_path, "icsflow.yaml", "office_hour:\n  start: '09:00'\n")
    with pytest.raises(ConfigurationError, match="office_hour: unknown key; did you mean "
                       "office_hours[?] known keys: access, admin_address, calendar"):
        load_config(path, env={})


@pytest.mark.parametrize(("text", "says"), [
    ("office_hours:\n  strat: '09:00'\n", "office_hours.strat: unknown key; did you mean "
     "office_hours.start? known keys in office_hours: end, start, timezone"),
    ("sweep_seconds: 3\n", "sweep_seconds: unknown key; did you mean intervals.sweep_seconds? "
     "known keys: access, admin_address"),
    ("smtp:\n  mailfrom: a@example.org\n", "smtp.mailfrom: unknown key; did you mean "
     "smtp.mail_from? known keys in smtp: mail_from, password, timeout, url"),
    ("admin_adress: a@example.org\n", "admin_adress: unknown key; did you mean admin_address?"),
    ("colour: blue\n", "colour: unknown key; known keys: access, admin_address"),
])
def test_a_misspelt_key_gets_did_you_mean(tmp_path: Path, text: str, says: str) -> None:
    path = write(tmp_path, "icsflow.yaml", text)
    with pytest.raises(ConfigurationError) as caught:
        load_config(path, env={})
    assert str(caught.value).startswith(f"{path}: {says}")


def test_an_unknown_nested_key_names_the_known_keys_of_its_section(tmp_path: Path) -> None:
    path = write(tmp_path, "icsflow.yaml", "office_hours:\n  opens: '09:00'\n")
    with pytest.raises(ConfigurationError, match=r"office_hours.opens: unknown key; known keys "
                       r"in office_hours: end, start, timezone"):
        load_config(path, env={})


def test_environment_beats_file_and_option_beats_environment(tmp_path: Path) -> None:
    path = write(tmp_path, "icsflow.yaml", "database_url: sqlite:///file.db\n"
                 "office_hours: {start: '07:00'}\n")
    env = {"ICSFLOW_DB": "sqlite:///env.db", "ICSFLOW_OFFICE_HOURS_START": "09:15"}
    assert load_config(path, env=env).database_url == "sqlite:///env.db"
    assert load_config(path, env=env).office_hours.start == time(9, 15)
    option = load_config(path, env=env, overrides={"database_url": ("--db", "sqlite:///cli.db")})
    assert option.database_url == "sqlite:///cli.db"


def test_a_bad_environment_value_names_the_variable() -> None:
    with pytest.raises(ConfigurationError, match="^ICSFLOW_SWEEP_SECONDS: 'soon' is not a "
                       "positive number$"):
        load_config(None, env={"ICSFLOW_SWEEP_SECONDS": "soon"})


def test_the_config_path_comes_from_icsflow_config(tmp_path: Path) -> None:
    path = write(tmp_path, "c.yaml", "maildir: /tmp/m\n")
    assert load_config(None, env={"ICSFLOW_CONFIG": str(path)}).maildir == "/tmp/m"


def test_the_smtp_password_comes_from_the_environment_and_stays_out_of_repr() -> None:
    config = load_config(None, env={"ICSFLOW_SMTP_PASSWORD": "hunter2",
                                    "ICSFLOW_SMTP_URL": "smtp://localhost:25"})
    assert config.smtp.password == "hunter2"
    assert "hunter2" not in repr(config)


@pytest.mark.parametrize(("text", "message"), [
    ("office_hours: {start: '18:00', end: '08:00'}", "end 08:00 is not after start 18:00"),
    ("smtp: {url: 'http://mail'}", "smtp.url: 'http://mail' is not a URL starting smtp"),
    ("directory: {head_of_service: [not-an-address]}",
     "directory.head_of_service: 'not-an-address' is not an email address"),
    # The outbox would refuse these when queueing: the configuration refuses them first.
    ("directory: {head_of_service: ['hos@localhost']}",
     "directory.head_of_service: 'hos@localhost' is not an email address"),
    ("directory: {head_of_service: ['hos@ex_ample.org']}",
     "directory.head_of_service: 'hos@ex_ample.org' is not an email address"),
    ("calendar: {closures: [2012-13-01]}", "calendar.closures: '2012-13-01' is not a date"),
    ("intervals: {outbox_max_attempts: 0}", "intervals.outbox_max_attempts: 0 is not a "
     "positive number"),
    ("intervals: {timer_lease_seconds: 0.5}", "intervals.timer_lease_seconds: 0.5 is below "
     "the smallest allowed (1 s)"),
    ("intervals: {timer_lease_seconds: -3}", "intervals.timer_lease_seconds: -3 is not a "
     "positive number"),
    ("office_hours: {timezone: Mars/Olympus}", "'Mars/Olympus' is not a timezone"),
    ("database_url: icsflow.db", "database_url: 'icsflow.db' is not a database URL"),
    ("- a list", "the file must hold a mapping"),
    ("office_hours: [1, 2]", "office_hours: [1, 2] is not a mapping"),
    ("calendar: {closures: [2012-12-24], extra_working_days: [2012-12-24]}",
     "2012-12-24 is both a closure and an extra working day"),
])
def test_bad_values_are_refused_in_one_line(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_config(write(tmp_path, "icsflow.yaml", text + "\n"), env={})
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_an_unknown_extension_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="unknown configuration format '.ini'"):
        load_config(write(tmp_path, "icsflow.ini", "x=1"), env={})


def test_a_missing_file_is_one_line() -> None:
    with pytest.raises(ConfigurationError, match="nope.yaml: cannot read configuration file"):
        load_config("nope.yaml", env={})


def test_invalid_yaml_gives_the_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"line \d+: not valid YAML"):
        load_config(write(tmp_path, "icsflow.yaml", "a: [1,\nb: 2\n"), env={})


def test_yaml_keeps_18_00_a_time_and_no_a_string(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "icsflow.yaml",
                               "office_hours: {start: 07:00, end: 18:00}\n"), env={})
    assert config.office_hours.end == time(18, 0)


def test_a_secret_value_is_never_echoed() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_config(None, env={"ICSFLOW_WEBHOOK_SECRET": "x", "ICSFLOW_WEBHOOK_URL": "ftp://x"})
    assert "ICSFLOW_WEBHOOK_URL" in str(caught.value)


def test_the_allocation_meeting_weekday_is_a_setting_definitions_read(tmp_path: Path) -> None:
    from icsflow.workflow.commands import engine_settings

    path = write(tmp_path, "icsflow.yaml", "digest:\n  allocation_weekday: Thursday\n")
    config = load_config(path, env={})
    assert engine_settings(config) == {"allocation_weekday": "thursday"}
    assert engine_settings(load_config(None, env={}))["allocation_weekday"] == "tuesday"


def test_a_weekend_allocation_meeting_is_refused_in_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, "icsflow.yaml", "digest:\n  allocation_weekday: sunday\n")
    with pytest.raises(ConfigurationError, match="digest.allocation_weekday: 'sunday' is not a "
                       "weekday"):
        load_config(path, env={})


def test_an_smtp_timeout_that_can_outlast_half_the_lease_is_warned_about() -> None:
    from icsflow.workflow.config import config_warnings

    env = {"ICSFLOW_SMTP_URL": "smtp://mail.example.org:25"}
    assert config_warnings(load_config(env=env)) == []  # 30 s against 300 s
    assert config_warnings(load_config(env={})) == []  # the Maildir: no SMTP call to hang
    slow = load_config(env={**env, "ICSFLOW_SMTP_TIMEOUT": "150"})
    (warning,) = config_warnings(slow)
    assert "smtp.timeout (150 s)" in warning and "lease_seconds (300 s)" in warning
    short = load_config(env={**env, "ICSFLOW_LEASE_SECONDS": "40"})
    assert len(config_warnings(short)) == 1


def test_the_timer_lease_reaches_the_engine_the_daemon_and_the_cli_open(tmp_path: Path) -> None:
    from datetime import timedelta

    from icsflow.workflow.commands import Mode, open_engine
    from icsflow.workflow.engine import TIMER_LEASE

    url = f"sqlite:///{tmp_path / 'icsflow.db'}"
    configured = load_config(None, env={"ICSFLOW_DB": url,
                                        "ICSFLOW_TIMER_LEASE_SECONDS": "7.5"})
    with open_engine(configured, mode=Mode.CREATE) as engine:
        assert engine.lease == timedelta(seconds=7.5)
    with open_engine(load_config(None, env={"ICSFLOW_DB": url}), mode=Mode.WRITE) as engine:
        assert engine.lease == TIMER_LEASE == timedelta(seconds=30)


def test_a_clock_offset_runs_every_configured_clock_that_far_ahead(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from icsflow.workflow.daemon import system_clock

    config = load_config(None, env={"ICSFLOW_CLOCK_OFFSET_SECONDS": "31"})
    assert config.clock_offset_seconds == 31.0
    before = datetime.now(UTC)
    ahead = (system_clock(config).now() - before).total_seconds()
    assert 31 <= ahead < 41
    assert abs((system_clock(load_config(None, env={})).now() - datetime.now(UTC))
               .total_seconds()) < 10
    path = write(tmp_path, "icsflow.yaml", "clock_offset_seconds: -2.5\n")
    assert load_config(path, env={}).clock_offset_seconds == -2.5


@pytest.mark.parametrize("bad", ["nan", "soon", "1e300"])
def test_a_bad_clock_offset_is_one_line_naming_the_variable(bad: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_config(None, env={"ICSFLOW_CLOCK_OFFSET_SECONDS": bad})
    assert str(caught.value).startswith(f"ICSFLOW_CLOCK_OFFSET_SECONDS: '{bad}' is not a number")

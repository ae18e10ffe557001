"""Configuration: one frozen value built from a file, the environment and command-line options.

Why one place: the daemon and every command must agree on the calendar, office hours and role
directory, and an operator must learn of a bad value at start-up, in one line naming the file
(or variable, or option) and the key, not at 03:00 when the first email is due.

Precedence, highest first: command-line option > environment variable > file > default.
The file is YAML (safe loader; ``on``/``off``/``yes``/``no`` stay strings and ``18:00`` stays a
string, not sexagesimal 1080) or TOML, chosen by extension.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import date, time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml

from icsflow.workflow.access import DEFAULT_BREAK_GLASS, Relations, Scope
from icsflow.workflow.config_values import (
    BadSetting as _Bad,
)
from icsflow.workflow.config_values import (
    address as _address,
)
from icsflow.workflow.config_values import (
    at_least as _at_least,
)
from icsflow.workflow.config_values import (
    bool_value as _bool,
)
from icsflow.workflow.config_values import (
    database_url as _db_url,
)
from icsflow.workflow.config_values import (
    date_value as _date,
)
from icsflow.workflow.config_values import (
    list_of as _list,
)
from icsflow.workflow.config_values import (
    offset_seconds as _offset,
)
from icsflow.workflow.config_values import (
    parse_time,
)
from icsflow.workflow.config_values import (
    positive as _positive,
)
from icsflow.workflow.config_values import (
    recipient as _recipient,
)
from icsflow.workflow.config_values import (
    shown as _show,
)
from icsflow.workflow.config_values import (
    text_value as _str,
)
from icsflow.workflow.config_values import (
    timezone_name as _timezone,
)
from icsflow.workflow.config_values import (
    url_of as _url,
)
from icsflow.workflow.errors import ConfigurationError
from icsflow.workflow.identity import KEYS as OIDC_KEYS
from icsflow.workflow.identity import BadValue, OidcConfig, oidc_from, web_address

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    from icsflow.workflow.calendar import WorkingCalendar

DEFAULT_DB = "sqlite:///icsflow.db"
DEFAULT_MAILDIR = "./var/mail"
DEFAULT_MAIL_FROM = "icsflow@localhost"


@dataclass(frozen=True, slots=True)
class Closure:
    """A local closure day (a council's own non-working day) and its name."""

    day: date
    name: str = "local closure"


@dataclass(frozen=True, slots=True)
class CalendarConfig:
    """Local additions to the England and Wales working-day calendar."""

    closures: tuple[Closure, ...] = ()
    extra_working_days: tuple[date, ...] = ()


@dataclass(frozen=True, slots=True)
class OfficeHoursConfig:
    """When non-urgent messages may be delivered: [start, end) local time on working days."""

    start: time = time(8, 0)
    end: time = time(18, 0)
    timezone: str = "Europe/London"


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    """The SMTP channel; no URL means mail goes to the Maildir sink."""

    url: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 30.0
    mail_from: str = DEFAULT_MAIL_FROM


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    """An optional webhook that receives a copy of each message (signed with ``secret``)."""

    url: str
    secret: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class IntervalsConfig:
    """How often the daemon wakes, how much it takes at a time, and how hard it retries."""

    sweep_seconds: float = 30.0
    dispatch_seconds: float = 10.0
    timer_batch: int = 100
    outbox_batch: int = 50
    outbox_max_attempts: int = 8
    backoff_base_seconds: float = 60.0
    lease_seconds: float = 300.0
    timer_lease_seconds: float = 30.0


@dataclass(frozen=True, slots=True)
class DigestConfig:
    """The daily digest to service-level roles and the weekly allocation list."""

    enabled: bool = True
    roles: tuple[str, ...] = ("iro_service_manager", "head_of_service")
    due_within_working_days: int = 5
    allocation_enabled: bool = True
    allocation_role: str = "iro_service_manager"
    allocation_definition: str = "initial_review"
    allocation_state: str = "awaiting_allocation"
    allocation_weekday: str = "tuesday"  # the weekly allocation meeting (closures move it on)


_RELATIONS = Relations()


@dataclass(frozen=True, slots=True)
class AccessConfig:
    """Who reads and acts on which children (``workflow/access.py``): ``rules`` maps a role to
    its (read, act) scopes over the defaults; ``break_glass_roles`` None keeps the default
    managers; the ``*_fields`` name the case fields that carry each relationship."""

    rules: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    break_glass_roles: tuple[str, ...] = DEFAULT_BREAK_GLASS
    break_glass_minutes: int = 60
    allocation_fields: tuple[str, ...] = _RELATIONS.allocation_fields
    address_fields: tuple[str, ...] = _RELATIONS.address_fields
    team_fields: tuple[str, ...] = _RELATIONS.team_fields
    service_fields: tuple[str, ...] = _RELATIONS.service_fields
    team_services: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class WebConfig:
    """``icsflow serve``: which peers may speak for a client (X-Forwarded-For/-Proto and the
    single sign-on header; none by default), how long a session lives, the address users reach
    it at, and sign-in through the council's identity provider (``oidc``, ``identity.py``)."""

    trusted_proxies: tuple[str, ...] = ()
    session_idle_minutes: int = 30
    session_absolute_hours: int = 8
    base_url: str | None = None
    oidc: OidcConfig | None = None


@dataclass(frozen=True, slots=True)
class Config:
    """Everything the daemon and the commands need, resolved and checked."""

    source: str | None = None
    database_url: str = DEFAULT_DB
    definitions_dir: str | None = None
    calendar: CalendarConfig = CalendarConfig()
    office_hours: OfficeHoursConfig = OfficeHoursConfig()
    smtp: SmtpConfig = SmtpConfig()
    maildir: str = DEFAULT_MAILDIR
    webhook: WebhookConfig | None = None
    directory: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    admin_address: str | None = None
    intervals: IntervalsConfig = IntervalsConfig()
    digest: DigestConfig = DigestConfig()
    access: AccessConfig = AccessConfig()
    web: WebConfig = WebConfig()
    clock_offset_seconds: float = 0.0

    def closures(self) -> dict[date, str]:
        """Closure days as the mapping ``WorkingCalendar(closures=...)`` takes."""
        return {c.day: c.name for c in self.calendar.closures}


def _closure(value: object) -> Closure:
    if isinstance(value, Mapping):
        unknown = sorted(set(value) - {"date", "name"})
        if unknown or "date" not in value:
            raise _Bad(f"{dict(value)!r} is not a closure (a date, or {{date, name}})")
        return Closure(_date(value["date"]), _str(value.get("name", "local closure")))
    return Closure(_date(value))


# -- the key table: one row per scalar key, driving file, environment and docs -----------------

@dataclass(frozen=True, slots=True)
class Key:
    """One configuration key: where it lives, how it is parsed, which variable overrides it."""

    path: str
    parse: Callable[[Any], Any]
    env: str | None = None
    secret: bool = False


_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday")


def _weekday(value: object) -> str:
    """A working weekday by name (the weekly allocation meeting's day)."""
    name = str(value).strip().lower()
    if name not in _WEEKDAYS:
        raise _Bad(f"{_show(value)} is not a weekday (one of {', '.join(_WEEKDAYS)})")
    return name


_ROLE = re.compile(r"^[a-z][a-z0-9_]*$")


def _role(value: object) -> str:
    text = _str(value)
    if not _ROLE.match(text):
        raise _Bad(f"{_show(value)} is not a role name (snake_case, e.g. team_manager)")
    return text


def _scope(value: object) -> str:
    text = str(value).strip().lower() if isinstance(value, str) else value
    if text not in {s.value for s in Scope}:
        raise _Bad(f"{_show(value)} is not a scope (one of {', '.join(s.value for s in Scope)})")
    return str(text)


def _access_rules(value: object) -> dict[str, tuple[str, str]]:
    """role: scope, or role: {read: scope, act: scope}."""
    if not isinstance(value, Mapping):
        raise _Bad(f"{_show(value)} is not a mapping of role -> scope "
                   "(allocated, team, service, all, none)")
    out: dict[str, tuple[str, str]] = {}
    for role, rule in value.items():
        name = _role(role)
        try:
            if isinstance(rule, Mapping):
                unknown = sorted(set(map(str, rule)) - {"read", "act"})
                if unknown or "read" not in rule:
                    raise _Bad(f"{dict(rule)!r} is not a rule (a scope, or {{read, act}})")
                read = _scope(rule["read"])
                out[name] = (read, _scope(rule.get("act", read)))
            else:
                out[name] = (_scope(rule), _scope(rule))
        except _Bad as exc:
            raise _Bad(f"{name}: {exc}") from None
    return out


def _field_name(value: object) -> str:
    text = _str(value)
    if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", text):
        raise _Bad(f"{_show(value)} is not a field name")
    return text


def _team_services(value: object) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise _Bad(f"{_show(value)} is not a mapping of team -> service")
    return {_str(team): _str(service) for team, service in value.items()}


def _network(value: object) -> str:
    """An address or a network (192.0.2.10, 10.0.0.0/8, ::1)."""
    import ipaddress

    text = _str(value)
    try:
        return str(ipaddress.ip_network(text, strict=False))
    except ValueError:
        raise _Bad(f"{_show(value)} is not an IP address or network (e.g. 10.0.0.5 or "
                   "10.0.0.0/8)") from None


KEYS: tuple[Key, ...] = (
    Key("database_url", _db_url, "ICSFLOW_DB"),
    Key("definitions_dir", _str, "ICSFLOW_DEFINITIONS"),
    Key("calendar.closures", _list(_closure)),
    Key("calendar.extra_working_days", _list(_date)),
    Key("office_hours.start", parse_time, "ICSFLOW_OFFICE_HOURS_START"),
    Key("office_hours.end", parse_time, "ICSFLOW_OFFICE_HOURS_END"),
    Key("office_hours.timezone", _timezone, "ICSFLOW_OFFICE_HOURS_TIMEZONE"),
    Key("smtp.url", _url(("smtp", "smtps")), "ICSFLOW_SMTP_URL"),
    Key("smtp.password", _str, "ICSFLOW_SMTP_PASSWORD", secret=True),
    Key("smtp.timeout", _positive(float), "ICSFLOW_SMTP_TIMEOUT"),
    Key("smtp.mail_from", _address, "ICSFLOW_MAIL_FROM"),
    Key("maildir", _str, "ICSFLOW_MAILDIR"),
    Key("webhook.url", _url(("http", "https")), "ICSFLOW_WEBHOOK_URL"),
    Key("webhook.secret", _str, "ICSFLOW_WEBHOOK_SECRET", secret=True),
    Key("directory", lambda v: v),  # checked by _directory
    Key("admin_address", _recipient, "ICSFLOW_ADMIN_ADDRESS"),
    Key("intervals.sweep_seconds", _positive(float), "ICSFLOW_SWEEP_SECONDS"),
    Key("intervals.dispatch_seconds", _positive(float), "ICSFLOW_DISPATCH_SECONDS"),
    Key("intervals.timer_batch", _positive(int), "ICSFLOW_TIMER_BATCH"),
    Key("intervals.outbox_batch", _positive(int), "ICSFLOW_OUTBOX_BATCH"),
    Key("intervals.outbox_max_attempts", _positive(int), "ICSFLOW_OUTBOX_MAX_ATTEMPTS"),
    Key("intervals.backoff_base_seconds", _positive(float), "ICSFLOW_BACKOFF_BASE_SECONDS"),
    Key("intervals.lease_seconds", _positive(float), "ICSFLOW_LEASE_SECONDS"),
    Key("intervals.timer_lease_seconds", _at_least(1.0), "ICSFLOW_TIMER_LEASE_SECONDS"),
    Key("digest.enabled", _bool, "ICSFLOW_DIGEST_ENABLED"),
    Key("digest.roles", _list(_str)),
    Key("digest.due_within_working_days", _positive(int)),
    Key("digest.allocation_enabled", _bool),
    Key("digest.allocation_role", _str),
    Key("digest.allocation_definition", _str),
    Key("digest.allocation_state", _str),
    Key("digest.allocation_weekday", _weekday, "ICSFLOW_ALLOCATION_WEEKDAY"),
    Key("access.rules", _access_rules),
    Key("access.break_glass_roles", _list(_role)),
    Key("access.break_glass_minutes", _positive(int)),
    Key("access.allocation_fields", _list(_field_name)),
    Key("access.address_fields", _list(_field_name)),
    Key("access.team_fields", _list(_field_name)),
    Key("access.service_fields", _list(_field_name)),
    Key("access.team_services", _team_services),
    Key("web.trusted_proxies", _list(_network), "ICSFLOW_WEB_TRUSTED_PROXIES"),
    Key("web.session_idle_minutes", _positive(int), "ICSFLOW_WEB_SESSION_IDLE_MINUTES"),
    Key("web.session_absolute_hours", _positive(int), "ICSFLOW_WEB_SESSION_ABSOLUTE_HOURS"),
    Key("web.base_url", web_address, "ICSFLOW_WEB_BASE_URL"),
    *(Key(f"web.oidc.{name}", parse, env) for name, parse, env in OIDC_KEYS),
    Key("clock_offset_seconds", _offset, "ICSFLOW_CLOCK_OFFSET_SECONDS"),
)
_BY_PATH = {k.path: k for k in KEYS}
_SECTIONS = sorted({k.path.split(".")[0] for k in KEYS})


# -- reading files ----------------------------------------------------------------------------

class _YamlLoader(yaml.SafeLoader):
    """Safe YAML without YAML 1.1 surprises: 18:00 is not 1080, and no/on stay strings."""


_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"  # dates stay strings: we parse them, with our errors
_YamlLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_INT, _FLOAT, _BOOL, _TIMESTAMP)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_YamlLoader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
                                  list("tTfF"))
_YamlLoader.add_implicit_resolver(_INT, re.compile(r"^[-+]?(?:0|[1-9][0-9_]*)$"),
                                  list("-+0123456789"))
_YamlLoader.add_implicit_resolver(
    _FLOAT, re.compile(r"^[-+]?(?:[0-9][0-9_]*)?\.[0-9_]+(?:[eE][-+]?[0-9]+)?$"),
    list("-+0123456789."))


def read_file(path: str | Path) -> dict[str, Any]:
    """The raw mapping in a YAML or TOML file; any problem is one ConfigurationError line."""
    p = Path(path)
    name = str(path)
    suffix = p.suffix.lower()
    if suffix not in (".yaml", ".yml", ".toml"):
        raise ConfigurationError(f"{name}: unknown configuration format {p.suffix!r} "
                                 "(use .yaml, .yml or .toml)")
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"{name}: cannot read configuration file: "
                                 f"{exc.strerror or exc}") from None
    try:
        data = tomllib.loads(text) if suffix == ".toml" else yaml.load(text, _YamlLoader)  # noqa: S506
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{name}: not valid TOML: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigurationError(f"{name}: {where}not valid YAML: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigurationError(f"{name}: the file must hold a mapping of keys "
                                 f"(known keys: {', '.join(_SECTIONS)})")
    return data


def _flatten(data: Mapping[str, Any], origin: str, prefix: str = "") -> dict[str, Any]:
    """{'office_hours': {'start': ..}} -> {'office_hours.start': ..}, refusing unknown keys;
    a section may hold sections (``web.oidc``)."""
    flat: dict[str, Any] = {}
    section = prefix[:-1]
    for name, value in data.items():
        path = prefix + str(name)
        if path in _BY_PATH:
            flat[path] = value
            continue
        known = sorted({k.path[len(prefix):].split(".")[0] for k in KEYS
                        if k.path.startswith(prefix)})
        if not any(k.path.startswith(path + ".") for k in KEYS):
            if not prefix:
                raise ConfigurationError(f"{origin}: {path}: unknown key;"
                                         f"{_did_you_mean(path, _SECTIONS)} known keys: "
                                         f"{', '.join(_SECTIONS)}")
            raise ConfigurationError(f"{origin}: {path}: unknown key;"
                                     f"{_did_you_mean(str(name), known, section)} known keys "
                                     f"in {section}: {', '.join(known)}")
        if not isinstance(value, Mapping):
            inner = sorted({k.path[len(path) + 1:].split(".")[0] for k in KEYS
                            if k.path.startswith(path + ".")})
            raise ConfigurationError(f"{origin}: {path}: {_show(value)} is not a mapping "
                                     f"(keys: {', '.join(inner)})")
        flat.update(_flatten(value, origin, path + "."))
    return flat


def _did_you_mean(given: str, siblings: Sequence[str], section: str | None = None) -> str:
    """`` did you mean office_hours?`` for a misspelt key: a key beside it first, then a key
    of another section (``sweep_seconds`` at the top suggests ``intervals.sweep_seconds``)."""
    import difflib

    found = difflib.get_close_matches(given, list(siblings), n=1, cutoff=0.75)
    if found:
        return f" did you mean {section + '.' if section else ''}{found[0]}?"
    leaves = {k.path.rsplit(".", 1)[-1]: k.path for k in KEYS
              if "." in k.path and k.path.split(".")[0] != section}
    found = difflib.get_close_matches(given, list(leaves), n=1, cutoff=0.75)
    return f" did you mean {leaves[found[0]]}?" if found else ""


def _directory(value: object, origin: str) -> dict[str, tuple[str, ...]]:
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"{origin}: directory: {_show(value)} is not a mapping of "
                                 "role -> list of addresses")
    out: dict[str, tuple[str, ...]] = {}
    for role, addresses in value.items():
        if not isinstance(role, str) or not re.match(r"^[a-z][a-z0-9_]*$", role):
            raise ConfigurationError(f"{origin}: directory: {_show(role)} is not a role name "
                                     "(snake_case, e.g. iro_service_manager)")
        try:
            out[role] = _list(_recipient)(addresses)
        except _Bad as exc:
            raise ConfigurationError(f"{origin}: directory.{role}: {exc}") from None
    return out


# -- building the value -----------------------------------------------------------------------

def load_config(path: str | Path | None = None, *, env: Mapping[str, str] | None = None,
                overrides: Mapping[str, tuple[str, Any]] | None = None) -> Config:
    """Resolve the configuration: ``overrides`` (key path -> (option name, value)) beat
    ``env`` (default ``os.environ``), which beats the file at ``path`` (default
    ``ICSFLOW_CONFIG``), which beats the defaults. Raises ConfigurationError (one line)."""
    environ = os.environ if env is None else env
    if path is None:
        path = environ.get("ICSFLOW_CONFIG") or None
    # (value, origin) per key path, lowest precedence first.
    chosen: dict[str, tuple[Any, str]] = {}
    if path is not None:
        origin = str(path)
        for flat_key, value in _flatten(read_file(path), origin).items():
            chosen[flat_key] = (value, f"{origin}: {flat_key}")
    for key in KEYS:
        if key.env and environ.get(key.env, "").strip():
            chosen[key.path] = (environ[key.env], key.env)
    for key_path, (option, value) in (overrides or {}).items():
        if key_path not in _BY_PATH:
            raise ConfigurationError(f"{option}: unknown configuration key {key_path}")
        if value is not None:
            chosen[key_path] = (value, option)

    parsed: dict[str, Any] = {}
    for key_path, (value, where) in chosen.items():
        if key_path == "directory":
            parsed[key_path] = _directory(value, where.rsplit(": ", 1)[0])
            continue
        try:
            parsed[key_path] = _BY_PATH[key_path].parse(value)
        except (_Bad, BadValue) as exc:
            why = "invalid value (hidden: it is a secret)" if _BY_PATH[key_path].secret else exc
            raise ConfigurationError(f"{where}: {why}") from None
    return _assemble(parsed, chosen, str(path) if path is not None else None)


# One of the section dataclasses (OfficeHoursConfig, ...).
_Section = TypeVar("_Section", bound="DataclassInstance")


def _assemble(parsed: Mapping[str, Any], chosen: Mapping[str, tuple[Any, str]],
              source: str | None) -> Config:
    def section(cls: type[_Section], name: str) -> _Section:
        values = {f.name: parsed[f"{name}.{f.name}"] for f in fields(cls)
                  if f"{name}.{f.name}" in parsed}
        return cls(**values)

    office = section(OfficeHoursConfig, "office_hours")
    if office.end <= office.start:
        where = chosen.get("office_hours.end", chosen.get("office_hours.start", (None, "")))[1]
        raise ConfigurationError(
            f"{where or 'office_hours.end'}: office hours end {office.end:%H:%M} is not after "
            f"start {office.start:%H:%M}")
    webhook = None
    if "webhook.url" in parsed:
        if "webhook.secret" not in parsed:
            raise ConfigurationError(f"{chosen['webhook.url'][1]}: a webhook needs a secret to "
                                     "sign with (webhook.secret or ICSFLOW_WEBHOOK_SECRET)")
        webhook = WebhookConfig(parsed["webhook.url"], parsed.get("webhook.secret"))
    elif "webhook.secret" in parsed:
        raise ConfigurationError(f"{chosen['webhook.secret'][1]}: a webhook secret was given "
                                 "without webhook.url")
    config = Config(
        source=source,
        database_url=parsed.get("database_url", DEFAULT_DB),
        definitions_dir=parsed.get("definitions_dir"),
        calendar=section(CalendarConfig, "calendar"),
        office_hours=office,
        smtp=section(SmtpConfig, "smtp"),
        maildir=parsed.get("maildir", DEFAULT_MAILDIR),
        webhook=webhook,
        directory=parsed.get("directory", {}),
        admin_address=parsed.get("admin_address"),
        intervals=section(IntervalsConfig, "intervals"),
        digest=section(DigestConfig, "digest"),
        access=section(AccessConfig, "access"),
        web=_web(section(WebConfig, "web"), parsed, source),
        clock_offset_seconds=parsed.get("clock_offset_seconds", 0.0),
    )
    overlap = set(c.day for c in config.calendar.closures) & set(
        config.calendar.extra_working_days)
    if overlap:
        day = min(overlap).isoformat()
        raise ConfigurationError(f"{source or 'configuration'}: calendar: {day} is both a "
                                 "closure and an extra working day")
    return config


def _web(web: WebConfig, parsed: Mapping[str, Any], source: str | None) -> WebConfig:
    """The ``web`` section with its ``web.oidc`` section checked whole (a missing key named)."""
    values = {p.split(".", 2)[2]: v for p, v in parsed.items() if p.startswith("web.oidc.")}
    try:
        return replace(web, oidc=oidc_from(values, web.base_url))
    except BadValue as exc:
        raise ConfigurationError(f"{source or 'configuration'}: {exc}") from None


def config_warnings(config: Config) -> list[str]:
    """Settings that work but weaken a guarantee, one sentence each (the daemon logs them as
    ``config_warning`` when it starts)."""
    found: list[str] = []
    lease = config.intervals.lease_seconds
    if config.smtp.url and config.smtp.timeout >= lease / 2:
        found.append(
            f"smtp.timeout ({config.smtp.timeout:g} s) is not below half of "
            f"intervals.lease_seconds ({lease:g} s): an SMTP call that hangs that long can "
            "outlast its batch's lease, and another daemon may then send the same message "
            "again; lower smtp.timeout or raise intervals.lease_seconds")
    return found


def calendar_from(config: Config) -> WorkingCalendar:
    """The working-day calendar with the configured closures and extra days."""
    from icsflow.workflow.calendar import WorkingCalendar

    return WorkingCalendar(closures=config.closures(),
                           extra_working_days=config.calendar.extra_working_days,
                           timezone=config.office_hours.timezone)


__all__ = [
    "Config", "CalendarConfig", "Closure", "OfficeHoursConfig", "SmtpConfig", "WebhookConfig",
    "IntervalsConfig", "DigestConfig", "AccessConfig", "WebConfig", "KEYS", "Key",
    "load_config", "read_file", "parse_time",
    "calendar_from", "config_warnings", "DEFAULT_DB", "DEFAULT_MAILDIR", "DEFAULT_MAIL_FROM",
]

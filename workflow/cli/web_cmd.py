"""``icsflow serve`` (the web page and JSON API) and ``icsflow user`` (its users, their
relationships, sessions and tokens).

Passwords are read from a hidden prompt (or one line of standard input with
``--password-stdin``), hashed with argon2 and never echoed, logged or stored in clear. Every
change is written to the audit trail as the operating-system user who ran the command.
"""

from __future__ import annotations

import difflib
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import click

from icsflow.workflow.cli.common import (
    DATE,
    DATETIME,
    CliSettings,
    Mode,
    fail,
    opened,
    settings_of,
)
from icsflow.workflow.commands import sql_engine

if TYPE_CHECKING:
    from fastapi import FastAPI

    from icsflow.storage.web_users import TokenRecord, UserStore
    from icsflow.workflow.clock import Clock
    from icsflow.workflow.engine import Engine

_Command = TypeVar("_Command", bound=Callable[..., object])


def _settings(ctx: click.Context) -> CliSettings:
    return settings_of(ctx)


@contextmanager
def _opened(ctx: click.Context, clock: Clock | None = None) -> Iterator[Engine]:
    """The engine for a user or web command (a database must exist: ``db upgrade`` first)."""
    with opened(ctx, Mode.WRITE, clock) as engine:
        yield engine


def _roles(engine: Engine) -> list[str]:
    return sorted({r.name for d in engine.definitions for r in d.roles} - {"system"})


def _password(from_stdin: bool) -> str:
    from icsflow.workflow.web.auth import MIN_PASSWORD

    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True,
                                err=True)
    if len(password) < MIN_PASSWORD:
        fail(f"a password needs at least {MIN_PASSWORD} characters")
    return password


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535),
              help="Port to listen on.")
@click.option("--proxy-user-header", envvar="ICSFLOW_WEB_PROXY_HEADER", default=None,
              metavar="HEADER", help="Single sign-on: trust this header (set by a reverse proxy "
              "listed in web.trusted_proxies) to name the signed-in user [env "
              "ICSFLOW_WEB_PROXY_HEADER; off by default].")
@click.option("--secure-cookies/--no-secure-cookies", default=None,
              help="Mark cookies Secure [default: when the request came over HTTPS].")
@click.option("--now", "now", type=DATETIME, default=None,
              help="Show the pages as of this moment (replayed or demo data); events fired "
              "are recorded at it.")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, proxy_user_header: str | None,
          secure_cookies: bool | None, now: datetime | None) -> None:
    """Serve the web page and JSON API (/api, OpenAPI at /api/openapi.json) on HOST:PORT.

    Sessions live in the database (they survive a restart). ICSFLOW_WEB_SECRET (any long
    random text) keys the form tokens of single sign-on users; without it one is made at
    start-up."""
    from icsflow.storage.web_users import UserStore
    from icsflow.workflow.clock import FakeClock
    from icsflow.workflow.errors import ConfigurationError
    from icsflow.workflow.identity import unknown_roles
    from icsflow.workflow.web import WebSettings, create_app
    from icsflow.workflow.web.server import apply_config, run_server

    secret = os.environ.get("ICSFLOW_WEB_SECRET")
    settings = WebSettings(proxy_header=proxy_user_header, secure_cookies=secure_cookies)
    if secret:
        if len(secret) < 16:
            fail("ICSFLOW_WEB_SECRET must be at least 16 characters")
        settings.secret = secret.encode("utf-8")
    config = _settings(ctx).resolved()
    settings.allocation_definition = config.digest.allocation_definition
    settings.allocation_state = config.digest.allocation_state
    try:
        apply_config(settings, config)
    except ConfigurationError as error:
        fail(str(error))
    clock = FakeClock(now) if now is not None else None
    with _opened(ctx, clock) as engine:
        users = UserStore(sql_engine(engine))
        if settings.oidc is not None:
            problem = unknown_roles(settings.oidc, _roles(engine))
            if problem:
                fail(problem)
        elif not users.names():
            click.echo("no web users yet: add one with `icsflow user add NAME --role ROLE`",
                       err=True)
        app = create_app(engine, users, settings)
        _check_provider(app)
        click.echo(f"icsflow serving on http://{host}:{port}/ (Ctrl-C stops)", err=True)
        run_server(app, host, port)


def _check_provider(app: FastAPI) -> None:
    """Say at start-up when the identity provider cannot be reached or is mis-set (serving
    goes on: the provider may come back, and each sign-in says so clearly meanwhile)."""
    from icsflow.workflow.web.oidc import SignOnError

    signon = app.state.web.signon
    if signon is None:
        return
    try:
        signon.client.metadata()
    except SignOnError as error:
        click.echo(f"warning: sign-in through the identity provider will fail until this is "
                   f"fixed: {error.detail}", err=True)
        return
    click.echo(f"sign-in through {signon.config.issuer}; register the redirect address "
               f"{signon.client.redirect_uri} at the provider", err=True)


def _local_passwords(ctx: click.Context) -> bool:
    """Whether icsflow's own passwords are in use: always without web.oidc, with it only
    when web.oidc.local_passwords is true (a break-glass administrator's password)."""
    oidc = _settings(ctx).resolved().web.oidc
    return oidc is None or oidc.local_passwords


@click.group()
def user() -> None:
    """Web users: add, change, disable, passwords, sessions and API tokens."""


def _store(engine: Engine) -> UserStore:
    from icsflow.storage.web_users import UserStore

    return UserStore(sql_engine(engine))


def _audit(engine: Engine, purpose: str, detail: str | None = None) -> None:
    """An administrator's change, in the audit trail under the operating-system user."""
    from icsflow.storage.audit import ACCOUNT, AuditEntry, AuditStore
    from icsflow.workflow.cli.audit_cmd import CLI_ROLE, cli_user

    AuditStore(sql_engine(engine)).append(AuditEntry(
        datetime.now(UTC), cli_user(), CLI_ROLE, ACCOUNT, purpose, detail=detail))


def _check_role(engine: Engine, role: str) -> None:
    roles = _roles(engine)
    if role not in roles:
        near = difflib.get_close_matches(role, roles, n=1)
        fail(f"unknown role {role!r} (the definitions' roles: {', '.join(roles)})"
             + (f"; did you mean {near[0]!r}?" if near else ""))


def _attribute(name: str, value: str | None, limit: int = 200) -> str | None:
    """A relationship attribute as given: None (not given), '' (clear it) or one line."""
    if value is None:
        return None
    from icsflow.workflow.data import is_email

    text = value.strip()
    if len(text) > limit or not text.isprintable():
        fail(f"--{name}: at most {limit} printable characters on one line")
    if name == "email" and text and not is_email(text):
        fail(f"--email: {text!r} is not an email address (name@example.org)")
    return text.lower() if name == "email" else text


_RELATION_OPTIONS = (
    click.option("--team", default=None, help="The user's team (what case fields team, team_id "
                 "or team_manager_email hold for their children)."),
    click.option("--service", default=None, help="The user's service (a case's service field, "
                 "or access.team_services); managers without one see the whole service."),
    click.option("--email", default=None, help="The user's email address (matched against "
                 "iro_email, cpc_email: the IRO or CPC named on a child's case)."),
)


def _relations(command: _Command) -> _Command:
    for option in reversed(_RELATION_OPTIONS):
        command = option(command)
    return command


@user.command("add")
@click.argument("name")
@click.option("--role", required=True, help="One of the definitions' roles (iro, cpc, admin, "
              "team_manager, iro_service_manager, ...).")
@_relations
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.pass_context
def user_add(ctx: click.Context, name: str, role: str, team: str | None, service: str | None,
             email: str | None, password_stdin: bool) -> None:
    """Add user NAME with ROLE and their relationships (asks for the password twice; with
    sign-in through the identity provider and its local passwords off, asks for none: the
    user signs in there, and is linked to their account at the first sign-in)."""
    from icsflow.storage.oidc import NO_PASSWORD
    from icsflow.workflow.errors import ValidationError
    from icsflow.workflow.limits import identifier
    from icsflow.workflow.web.auth import hash_password

    try:  # a name is an actor id: normalised, visible, one script (no "аlice" beside alice)
        name = identifier(name, "user name", limit=100, spaces=False)
    except ValidationError as exc:
        fail(str(exc))
    values = {k: _attribute(k, v) or None for k, v in
              (("team", team), ("service", service), ("email", email))}
    with _opened(ctx) as engine:
        _check_role(engine, role)
        users = _store(engine)
        if users.get(name) is not None:
            fail(f"user {name!r} exists (icsflow user set {name} changes it)")
        stored = hash_password(_password(password_stdin)) if _local_passwords(ctx) \
            else NO_PASSWORD
        users.add(name, role, stored, datetime.now(UTC), **values)
        _audit(engine, f"user add {name}", f"role {role}" + "".join(
            f", {k} {v}" for k, v in values.items() if v))
    click.echo(f"user {name} added with role {role}")


@user.command("set")
@click.argument("name")
@click.option("--role", default=None, help="A new role (ends the user's sessions).")
@_relations
@click.pass_context
def user_set(ctx: click.Context, name: str, role: str | None, team: str | None,
             service: str | None, email: str | None) -> None:
    """Change NAME's role or relationships ('' clears one: --team '')."""
    from icsflow.storage.web_users import KEEP

    given = {k: _attribute(k, v) for k, v in
             (("team", team), ("service", service), ("email", email))}
    changes: dict[str, Any] = {k: (v or None) for k, v in given.items() if v is not None}
    if role is not None:
        changes["role"] = role
    if not changes:
        raise click.UsageError("give at least one of --role, --team, --service, --email")
    with _opened(ctx) as engine:
        if role is not None:
            _check_role(engine, role)
        users = _store(engine)
        before = users.get(name)
        if before is None:
            fail(f"no user {name!r}")
        users.change(name, datetime.now(UTC), **{k: changes.get(k, KEEP) for k in
                                                  ("role", "team", "service", "email")})
        _audit(engine, f"user set {name}", ", ".join(f"{k} {v or '(none)'}"
                                                     for k, v in changes.items()))
    ended = " (their sessions were ended)" if role is not None and role != before.role else ""
    click.echo(f"user {name} changed{ended}")


@user.command("disable")
@click.argument("name")
@click.pass_context
def user_disable(ctx: click.Context, name: str) -> None:
    """Disable user NAME at once (sessions end and API tokens are revoked)."""
    _set_disabled(ctx, name, True)


@user.command("enable")
@click.argument("name")
@click.pass_context
def user_enable(ctx: click.Context, name: str) -> None:
    """Enable user NAME again (old sessions and tokens stay ended)."""
    _set_disabled(ctx, name, False)


def _set_disabled(ctx: click.Context, name: str, disabled: bool) -> None:
    with _opened(ctx) as engine:
        if not _store(engine).set_disabled(name, disabled, datetime.now(UTC)):
            fail(f"no user {name!r}")
        _audit(engine, f"user {'disable' if disabled else 'enable'} {name}")
    click.echo(f"user {name} {'disabled' if disabled else 'enabled'}")


@user.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.pass_context
def user_passwd(ctx: click.Context, name: str, password_stdin: bool) -> None:
    """Set a new password for NAME (ends their sessions). With sign-in through the identity
    provider (web.oidc), only when web.oidc.local_passwords is true."""
    from icsflow.workflow.web.auth import hash_password

    if not _local_passwords(ctx):
        fail("icsflow passwords are off: users sign in through the identity provider "
             "(web.oidc); set web.oidc.local_passwords = true to keep a break-glass password")
    with _opened(ctx) as engine:
        users = _store(engine)
        if users.get(name) is None:
            fail(f"no user {name!r}")
        users.set_password(name, hash_password(_password(password_stdin)), datetime.now(UTC))
        _audit(engine, f"user passwd {name}")
    click.echo(f"password of {name} changed (their sessions were ended)")


@user.command("token")
@click.argument("name")
@click.option("--label", default="", help="What the token is for (its name in --list).")
@click.option("--expires", type=DATE, default=None,
              help="Last day the token works [default: 90 days from today].")
@click.option("--list", "list_", is_flag=True, help="List NAME's tokens instead.")
@click.option("--revoke", "revoke", default=None, metavar="ID",
              help="Revoke NAME's token with this id (from --list).")
@click.pass_context
def user_token(ctx: click.Context, name: str, label: str, expires: date | None, list_: bool,
               revoke: str | None) -> None:
    """Make an API token acting as NAME (printed once; only its digest is kept), or list or
    revoke NAME's tokens."""
    if list_ and revoke:
        raise click.UsageError("--list and --revoke: give one")
    with _opened(ctx) as engine:
        users = _store(engine)
        record = users.get(name)
        if record is None:
            fail(f"no user {name!r}")
        now = datetime.now(UTC)
        if list_:
            _list_tokens(users.tokens_of(name), now)
            return
        if revoke is not None:
            _revoke_token(engine, users, name, revoke.strip(), now)
            return
        if record.disabled:
            fail(f"user {name!r} is disabled")
        click.echo(_new_token(engine, users, name, label, expires, now))


def _list_tokens(found: list[TokenRecord], now: datetime) -> None:
    if not found:
        click.echo("no tokens")
        return
    click.echo(f"{'id':<13} {'label':<20} {'created':<11} {'expires':<11} {'last used':<17} "
               "status")
    for t in found:
        status = ("revoked" if t.revoked_at else "expired" if not t.live(now) else "live")
        click.echo(f"{t.id:<13} {t.label[:20]:<20} {t.created_at:%Y-%m-%d}  "
                   f"{f'{t.expires_at:%Y-%m-%d}' if t.expires_at else 'never':<11} "
                   f"{f'{t.last_used_at:%Y-%m-%d %H:%M}' if t.last_used_at else '-':<17} "
                   f"{status}")


def _revoke_token(engine: Engine, users: UserStore, name: str, token_id: str,
                  now: datetime) -> None:
    found = users.revoke_token(name, token_id, now)
    if not found:
        fail(f"no token of {name!r} has id {token_id!r} (icsflow user token {name} --list)")
    if len(found) > 1:
        fail(f"id {token_id!r} matches {len(found)} tokens of {name!r}: give more of it")
    if found[0].revoked_at is not None:
        fail(f"token {found[0].id} of {name!r} was already revoked")
    _audit(engine, f"user token {name} --revoke", f"token {found[0].id}")
    click.echo(f"token {found[0].id} of {name} revoked")


def _new_token(engine: Engine, users: UserStore, name: str, label: str, expires: date | None,
               now: datetime) -> str:
    from datetime import time, timedelta

    from icsflow.workflow.clock import LONDON
    from icsflow.workflow.web.auth import TOKEN_DAYS, new_token, token_digest

    last = expires or (now.astimezone(LONDON).date() + timedelta(days=TOKEN_DAYS))
    until = datetime.combine(last + timedelta(days=1), time(0), LONDON)
    if until <= now:
        fail(f"--expires {last.isoformat()} is in the past")
    token = new_token()
    digest = token_digest(token)
    users.add_token(digest, name, label[:200], now, until)
    _audit(engine, f"user token {name}", f"token {digest[:12]} until {last.isoformat()}")
    return token


@user.command("sessions")
@click.argument("name")
@click.option("--revoke", is_flag=True, help="End every live session of NAME.")
@click.pass_context
def user_sessions(ctx: click.Context, name: str, revoke: bool) -> None:
    """List NAME's sessions (when, from where, with what browser), or end them all."""
    from icsflow.storage.sessions import SessionStore

    with _opened(ctx) as engine:
        if _store(engine).get(name) is None:
            fail(f"no user {name!r}")
        sessions = SessionStore(sql_engine(engine))
        now = datetime.now(UTC)
        if revoke:
            ended = sessions.end_for_user(name, now, "revoked by an administrator")
            _audit(engine, f"user sessions {name} --revoke", f"{ended} sessions ended")
            click.echo(f"{ended} session(s) of {name} ended")
            return
        found = sessions.for_user(name)
    if not found:
        click.echo("no sessions")
        return
    click.echo(f"{'id':<13} {'began':<16} {'last seen':<16} {'from':<16} {'status':<34} browser")
    for s in found:
        status = f"ended: {s.end_reason}" if s.ended_at else "live"
        click.echo(f"{s.short_id:<13} {s.created_at:%Y-%m-%d %H:%M} "
                   f"{s.last_seen_at:%Y-%m-%d %H:%M} {s.ip[:16]:<16} {status[:34]:<34} "
                   f"{s.user_agent[:60]}")


@user.command("list")
@click.pass_context
def user_list(ctx: click.Context) -> None:
    """List users: role, relationships and whether they are disabled."""
    with _opened(ctx) as engine:
        users = _store(engine)
        for name in users.names():
            r = users.get(name)
            if r is None:
                continue
            status = "disabled" if r.disabled else "active"
            click.echo(f"{r.name:<24} {r.role:<22} {status:<9} team {r.team or '-'}, service "
                       f"{r.service or '-'}, email {r.email or '-'}")


commands = [serve, user]

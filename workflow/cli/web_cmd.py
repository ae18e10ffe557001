"""``icsflow serve`` (the web page and JSON API) and ``icsflow user`` (its users and tokens).

Passwords are read from a hidden prompt (or one line of standard input with
``--password-stdin``), hashed with argon2 and never echoed, logged or stored in clear.
"""

from __future__ import annotations

import difflib
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import click

from icsflow.workflow.cli.common import DATETIME, CliSettings, fail


def _settings(ctx: click.Context) -> CliSettings:
    return ctx.obj if isinstance(ctx.obj, CliSettings) else CliSettings()


@contextmanager
def _opened(ctx: click.Context, clock: Any = None) -> Iterator[Any]:
    from icsflow.workflow.errors import WorkflowError

    engine: Any = None
    try:
        engine = _settings(ctx).open_engine(clock=clock)
        yield engine
    except WorkflowError as error:
        fail(str(error).splitlines()[0])
    finally:
        if engine is not None:
            engine.close()


def _roles(engine: Any) -> list[str]:
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
              "on 127.0.0.1) to name the signed-in user [env ICSFLOW_WEB_PROXY_HEADER; off by "
              "default].")
@click.option("--secure-cookies/--no-secure-cookies", default=None,
              help="Mark cookies Secure [default: when the request came over HTTPS].")
@click.option("--now", "now", type=DATETIME, default=None,
              help="Show the pages as of this moment (replayed or demo data); events fired "
              "are recorded at it.")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, proxy_user_header: str | None,
          secure_cookies: bool | None, now: datetime | None) -> None:
    """Serve the web page and JSON API (/api, OpenAPI at /api/openapi.json) on HOST:PORT.

    Sessions are signed with ICSFLOW_WEB_SECRET (any long random text; without it a new
    secret is made at start-up and everyone signs in again after a restart)."""
    from icsflow.storage.web_users import UserStore
    from icsflow.workflow.clock import FakeClock
    from icsflow.workflow.web import WebSettings, create_app
    from icsflow.workflow.web.systemd_notify import serve_app

    secret = os.environ.get("ICSFLOW_WEB_SECRET")
    settings = WebSettings(proxy_header=proxy_user_header, secure_cookies=secure_cookies)
    if secret:
        if len(secret) < 16:
            fail("ICSFLOW_WEB_SECRET must be at least 16 characters")
        settings.secret = secret.encode("utf-8")
    config = _settings(ctx).resolved()
    settings.allocation_definition = config.digest.allocation_definition
    settings.allocation_state = config.digest.allocation_state
    clock = FakeClock(now) if now is not None else None
    with _opened(ctx, clock) as engine:
        users = UserStore(engine.store.engine)
        if not users.names():
            click.echo("no web users yet: add one with `icsflow user add NAME --role ROLE`",
                       err=True)
        app = create_app(engine, users, settings)
        click.echo(f"icsflow serving on http://{host}:{port}/ (Ctrl-C stops)", err=True)
        serve_app(app, host=host, port=port, log_level="warning", proxy_headers=True,
                  forwarded_allow_ips="127.0.0.1", server_header=False)


@click.group()
def user() -> None:
    """Web users: add, disable, change a password, make an API token."""


@user.command("add")
@click.argument("name")
@click.option("--role", required=True, help="One of the definitions' roles (iro, cpc, admin, "
              "team_manager, iro_service_manager, ...).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.pass_context
def user_add(ctx: click.Context, name: str, role: str, password_stdin: bool) -> None:
    """Add user NAME with ROLE (asks for the password twice)."""
    from icsflow.storage.web_users import UserStore
    from icsflow.workflow.web.auth import hash_password

    name = name.strip()
    if not name or len(name) > 100 or any(c.isspace() for c in name):
        fail("a user name is 1-100 characters without spaces")
    with _opened(ctx) as engine:
        roles = _roles(engine)
        if role not in roles:
            near = difflib.get_close_matches(role, roles, n=1)
            fail(f"unknown role {role!r} (the definitions' roles: {', '.join(roles)})"
                 + (f"; did you mean {near[0]!r}?" if near else ""))
        users = UserStore(engine.store.engine)
        if users.get(name) is not None:
            fail(f"user {name!r} exists (icsflow user passwd {name} changes the password)")
        users.add(name, role, hash_password(_password(password_stdin)), datetime.now(UTC))
    click.echo(f"user {name} added with role {role}")


@user.command("disable")
@click.argument("name")
@click.pass_context
def user_disable(ctx: click.Context, name: str) -> None:
    """Disable user NAME at once (sessions and API tokens stop working)."""
    _set_disabled(ctx, name, True)


@user.command("enable")
@click.argument("name")
@click.pass_context
def user_enable(ctx: click.Context, name: str) -> None:
    """Enable user NAME again (API tokens stay revoked)."""
    _set_disabled(ctx, name, False)


def _set_disabled(ctx: click.Context, name: str, disabled: bool) -> None:
    from icsflow.storage.web_users import UserStore

    with _opened(ctx) as engine:
        if not UserStore(engine.store.engine).set_disabled(name, disabled, datetime.now(UTC)):
            fail(f"no user {name!r}")
    click.echo(f"user {name} {'disabled' if disabled else 'enabled'}")


@user.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.pass_context
def user_passwd(ctx: click.Context, name: str, password_stdin: bool) -> None:
    """Set a new password for NAME (also lifts a lock-out)."""
    from icsflow.storage.web_users import UserStore
    from icsflow.workflow.web.auth import hash_password

    with _opened(ctx) as engine:
        users = UserStore(engine.store.engine)
        if users.get(name) is None:
            fail(f"no user {name!r}")
        users.set_password(name, hash_password(_password(password_stdin)), datetime.now(UTC))
    click.echo(f"password of {name} changed")


@user.command("token")
@click.argument("name")
@click.option("--label", default="", help="What the token is for.")
@click.pass_context
def user_token(ctx: click.Context, name: str, label: str) -> None:
    """Make an API token acting as NAME (printed once; only its digest is kept)."""
    from icsflow.storage.web_users import UserStore
    from icsflow.workflow.web.auth import new_token, token_digest

    with _opened(ctx) as engine:
        users = UserStore(engine.store.engine)
        record = users.get(name)
        if record is None or record.disabled:
            fail(f"no enabled user {name!r}")
        token = new_token()
        users.add_token(token_digest(token), name, label, datetime.now(UTC))
    click.echo(token)


@user.command("list")
@click.pass_context
def user_list(ctx: click.Context) -> None:
    """List users, their roles and whether they are disabled or locked."""
    from icsflow.storage.web_users import UserStore

    with _opened(ctx) as engine:
        users = UserStore(engine.store.engine)
        now = datetime.now(UTC)
        for name in users.names():
            r = users.get(name)
            if r is None:
                continue
            status = "disabled" if r.disabled else (
                "locked" if r.locked_until and r.locked_until > now else "active")
            click.echo(f"{r.name:<24} {r.role:<22} {status}")


commands = [serve, user]

"""A web user for ``icsflow demo``'s database, so the demo can end by pointing at the web page.

The demo user is an IRO service manager with no service set: access by relationship
(``workflow/access.py``) lets that role see every child of its service, which is then the
whole demo, so every demo child can be opened. (An IRO would see only the children allocated
to them.)
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

DEMO_USER = "demo-manager"
DEMO_ROLE = "iro_service_manager"


def add_demo_user(db_url: str) -> tuple[str, str]:
    """(name, password) of a fresh manager in the demo's database; the password is random per
    run and shown once (the demo's database is a scratch copy, nothing real is behind it)."""
    from icsflow.storage.db import create_db_engine
    from icsflow.storage.web_users import UserStore
    from icsflow.workflow.web.auth import hash_password

    sql = create_db_engine(db_url)
    try:
        users = UserStore(sql)
        password = "demo-" + secrets.token_urlsafe(9)
        now = datetime.now(UTC)
        if users.get(DEMO_USER) is None:
            users.add(DEMO_USER, DEMO_ROLE, hash_password(password), now)
        else:
            users.set_password(DEMO_USER, hash_password(password), now)
    finally:
        sql.dispose()
    return DEMO_USER, password


__all__ = ["add_demo_user", "DEMO_USER", "DEMO_ROLE"]

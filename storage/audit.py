"""The audit trail: who read or did what to which children, as a hash chain
(migration 0007_sessions_audit).

Each row carries the SHA-256 of its own canonical encoding, and that encoding includes the
previous row's hash; ``audit_head`` holds the last sequence number and hash. Changing a row
breaks its own hash; removing one leaves a gap in the sequence (or, at the end, a head that
no longer matches the last row); rewriting every hash after an edit is what an attacker with
write access to the database could still do, which is why ``icsflow audit verify`` prints the
head (to be kept elsewhere and checked with ``--anchor``).

Why a head row: every writer, in any process (two web workers, the CLI, PostgreSQL or SQLite),
appends under the head row's lock (``SELECT ... FOR UPDATE``; SQLite's ``BEGIN IMMEDIATE`` holds
the whole database), so two appends can never take the same predecessor and fork the chain.

Canonical encoding: JSON with sorted keys, no spaces, UTF-8, the time as UTC ISO 8601 with
microseconds, the children as a list in the order written. Texts are cut to their column sizes
before hashing, so what is stored is what was hashed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy import Engine as SqlEngine
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError

metadata = MetaData()

audit_log = Table(
    "audit_log", metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=False),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("user_name", String(200), nullable=False, index=True),
    Column("role", String(100), nullable=False),
    Column("kind", String(40), nullable=False, index=True),
    Column("purpose", String(200), nullable=False),
    Column("children", Text, nullable=False),
    Column("case_id", String(36), nullable=True),
    Column("detail", Text, nullable=True),
    Column("ip", String(64), nullable=True),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

audit_head = Table(
    "audit_head", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
)

GENESIS = "0" * 64
MAX_DETAIL = 2000

# What a row records (the ``kind`` column).
READ = "read"                    # a child's data was shown or sent (single or bulk)
ACT = "act"                      # an event was fired or a case started
REFUSED = "refused"              # a read or an act the policy or the engine refused
BREAK_GLASS = "break_glass"      # allowed only because a manager gave a reason
SIGN_IN = "sign_in"
SIGN_IN_FAILED = "sign_in_failed"
THROTTLED = "throttled"          # a sign-in refused for coming too soon after failures
SIGN_OUT = "sign_out"
ACCOUNT = "account"              # a user, session or token changed by an administrator
KINDS = (READ, ACT, REFUSED, BREAK_GLASS, SIGN_IN, SIGN_IN_FAILED, THROTTLED, SIGN_OUT,
         ACCOUNT)


@dataclass(frozen=True)
class AuditEntry:
    """One thing to record; ``children`` are every child whose data it touched."""

    at: datetime
    user: str
    role: str
    kind: str
    purpose: str
    children: tuple[str, ...] = ()
    case_id: str | None = None
    detail: str | None = None
    ip: str | None = None

    def cut(self) -> AuditEntry:
        """The entry as the columns hold it (and so as it is hashed)."""
        if self.at.tzinfo is None:
            raise ValueError("naive datetime cannot be audited")
        return AuditEntry(self.at.astimezone(UTC), self.user[:200], self.role[:100],
                          self.kind[:40], self.purpose[:200],
                          tuple(str(c) for c in dict.fromkeys(self.children) if c),
                          self.case_id[:36] if self.case_id else None,
                          self.detail[:MAX_DETAIL] if self.detail else None,
                          self.ip[:64] if self.ip else None)


@dataclass(frozen=True)
class AuditRow:
    seq: int
    entry: AuditEntry
    prev_hash: str
    hash: str

    def to_json(self) -> dict[str, Any]:
        e = self.entry
        return {"seq": self.seq, "at": e.at.isoformat(), "user": e.user, "role": e.role,
                "kind": e.kind, "purpose": e.purpose, "children": list(e.children),
                "case": e.case_id, "detail": e.detail, "ip": e.ip, "hash": self.hash}


@dataclass(frozen=True)
class Verdict:
    """``icsflow audit verify``'s answer: ``bad_seq`` is the first row that does not hold."""

    ok: bool
    checked: int
    head_seq: int
    head_hash: str
    bad_seq: int | None = None
    problem: str | None = None


def canonical(seq: int, entry: AuditEntry, prev_hash: str) -> bytes:
    body = {"seq": seq, "at": entry.at.astimezone(UTC).isoformat(timespec="microseconds"),
            "user": entry.user, "role": entry.role, "kind": entry.kind,
            "purpose": entry.purpose, "children": list(entry.children),
            "case": entry.case_id, "detail": entry.detail, "ip": entry.ip, "prev": prev_hash}
    return json.dumps(body, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def row_hash(seq: int, entry: AuditEntry, prev_hash: str) -> str:
    return hashlib.sha256(canonical(seq, entry, prev_hash)).hexdigest()


def _entry(r: Row[Any]) -> AuditEntry:
    at = r.at if r.at.tzinfo is not None else r.at.replace(tzinfo=UTC)
    return AuditEntry(at.astimezone(UTC), r.user_name, r.role, r.kind, r.purpose,
                      tuple(json.loads(r.children)), r.case_id, r.detail, r.ip)


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class AuditStore:
    """Appends to and reads the chain on one SQLAlchemy engine (any number of these, in any
    number of processes, may append at once)."""

    def __init__(self, sql: SqlEngine) -> None:
        self.sql = sql

    def append(self, entry: AuditEntry) -> AuditRow:
        """Write one row after the current head, in its own transaction."""
        cut = entry.cut()
        for attempt in range(5):
            try:
                return self._append(cut)
            except IntegrityError:  # the very first appends raced to create the head row
                if attempt == 4:
                    raise
        raise AssertionError("unreachable")

    def _append(self, entry: AuditEntry) -> AuditRow:
        with self.sql.begin() as conn:
            head = conn.execute(select(audit_head.c.seq, audit_head.c.hash)
                                .where(audit_head.c.id == 1).with_for_update()).first()
            if head is None:
                conn.execute(insert(audit_head).values(id=1, seq=0, hash=GENESIS))
                seq, prev = 1, GENESIS
            else:
                seq, prev = int(head.seq) + 1, str(head.hash)
            digest = row_hash(seq, entry, prev)
            conn.execute(insert(audit_log).values(
                seq=seq, at=entry.at, user_name=entry.user, role=entry.role, kind=entry.kind,
                purpose=entry.purpose,
                children=json.dumps(list(entry.children), ensure_ascii=False,
                                    separators=(",", ":")),
                case_id=entry.case_id, detail=entry.detail, ip=entry.ip, prev_hash=prev,
                hash=digest))
            conn.execute(update(audit_head).where(audit_head.c.id == 1)
                         .values(seq=seq, hash=digest))
        return AuditRow(seq, entry, prev, digest)

    def rows(self, *, user: str | None = None, child: str | None = None,
             start: datetime | None = None, end: datetime | None = None,
             kinds: Sequence[str] = (), limit: int | None = None) -> list[AuditRow]:
        """Rows in order, filtered by user, child (any row naming it), time [start, end) and
        kind."""
        query = select(audit_log).order_by(audit_log.c.seq)
        if user is not None:
            query = query.where(audit_log.c.user_name == user)
        if child is not None:
            pattern = "%" + _like(json.dumps(child, ensure_ascii=False)) + "%"
            query = query.where(audit_log.c.children.like(pattern, escape="\\"))
        if start is not None:
            query = query.where(audit_log.c.at >= start.astimezone(UTC))
        if end is not None:
            query = query.where(audit_log.c.at < end.astimezone(UTC))
        if kinds:
            query = query.where(or_(*(audit_log.c.kind == k for k in kinds)))
        if limit is not None:
            query = query.order_by(None).order_by(audit_log.c.seq.desc()).limit(limit)
        with self.sql.connect() as conn:
            found = [AuditRow(int(r.seq), _entry(r), r.prev_hash, r.hash)
                     for r in conn.execute(query)]
        if child is not None:  # the LIKE may match a longer id containing this one's text
            found = [r for r in found if child in r.entry.children]
        return sorted(found, key=lambda r: r.seq)

    def head(self) -> tuple[int, str]:
        with self.sql.connect() as conn:
            row = conn.execute(select(audit_head.c.seq, audit_head.c.hash)
                               .where(audit_head.c.id == 1)).first()
        return (0, GENESIS) if row is None else (int(row.seq), str(row.hash))

    def _scan(self, upto: int, batch: int = 2000) -> Iterator[Row[Any]]:
        last = 0
        while True:
            with self.sql.connect() as conn:
                rows = conn.execute(select(audit_log).where(audit_log.c.seq > last,
                                                            audit_log.c.seq <= upto)
                                    .order_by(audit_log.c.seq).limit(batch)).all()
            if not rows:
                return
            yield from rows
            last = int(rows[-1].seq)

    def _beyond_head(self) -> int | None:
        """The first row past the head, if any (one statement: one consistent snapshot)."""
        newest = select(audit_head.c.seq).where(audit_head.c.id == 1).scalar_subquery()
        with self.sql.connect() as conn:
            found = conn.execute(select(func.min(audit_log.c.seq))
                                 .where(audit_log.c.seq > func.coalesce(newest, 0))).scalar()
        return None if found is None else int(found)

    def verify(self, anchor: tuple[int, str] | None = None) -> Verdict:
        """Walk the chain from the first row to the head: every row's hash is its content's,
        every ``prev_hash`` the row before's, no sequence number missing, the head is the last
        row and nothing lies past it. ``anchor`` (seq, hash), noted from an earlier verify,
        must still be in the chain. Rows appended while it runs are left for the next one."""
        head_seq, head_hash = self.head()
        expected_seq, prev, checked = 1, GENESIS, 0

        def bad(seq: int, problem: str) -> Verdict:
            return Verdict(False, checked, head_seq, head_hash, seq, problem)

        for r in self._scan(head_seq):
            seq = int(r.seq)
            if seq != expected_seq:
                return bad(expected_seq, f"row {expected_seq} is missing (the next row is "
                           f"{seq})")
            if r.prev_hash != prev:
                return bad(seq, f"row {seq} does not follow row {seq - 1}: its prev_hash is "
                           f"not row {seq - 1}'s hash (a row was changed or removed)")
            if row_hash(seq, _entry(r), prev) != r.hash:
                return bad(seq, f"row {seq} was changed: its content no longer matches its "
                           "hash")
            if anchor is not None and seq == anchor[0] and r.hash != anchor[1]:
                return bad(seq, f"row {seq} is not the row anchored earlier (its hash "
                           "differs: the chain was rewritten from there or before)")
            prev, expected_seq, checked = r.hash, seq + 1, checked + 1
        if checked < head_seq:
            return bad(checked + 1, f"row {checked + 1} is missing: the chain's head says "
                       f"it ends at row {head_seq}, the table stops at row {checked}")
        if checked and head_hash != prev:
            return bad(checked, f"row {checked} is not the row the chain's head recorded "
                       "(it was changed or replaced)")
        beyond = self._beyond_head()
        if beyond is not None:
            return bad(beyond, f"row {beyond} lies past the chain's head: it was added "
                       "outside the audit")
        if anchor is not None and anchor[0] > checked:
            return bad(anchor[0], f"row {anchor[0]} (the anchor) is missing: the chain "
                       f"ends at row {checked}")
        return Verdict(True, checked, head_seq, head_hash)


__all__ = ["AuditStore", "AuditEntry", "AuditRow", "Verdict", "audit_log", "audit_head",
           "metadata", "canonical", "row_hash", "GENESIS", "KINDS", "READ", "ACT", "REFUSED",
           "BREAK_GLASS", "SIGN_IN", "SIGN_IN_FAILED", "THROTTLED", "SIGN_OUT", "ACCOUNT"]

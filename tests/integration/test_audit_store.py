"""The audit trail's hash chain on SQLite and PostgreSQL: appends, verification, tampering,
and concurrent writers that must not fork it."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, delete, text, update

from icsflow.storage.audit import (
    GENESIS,
    AuditEntry,
    AuditStore,
    audit_head,
    audit_log,
    row_hash,
)
from icsflow.storage.db import create_db_engine

AT = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def entry(n: int, children: tuple[str, ...] = ("CH-1",)) -> AuditEntry:
    return AuditEntry(AT + timedelta(seconds=n), f"user-{n % 3}", "iro", "read", "api cases",
                      children, None, f"row {n}", "192.0.2.1")


def filled(sql: Engine, n: int = 5) -> AuditStore:
    store = AuditStore(sql)
    for i in range(n):
        store.append(entry(i, ("CH-1", f"CH-{i + 10}")))
    return store


def test_each_row_carries_the_hash_of_the_one_before(sql: Engine) -> None:
    store = filled(sql, 3)
    rows = store.rows()
    assert [r.seq for r in rows] == [1, 2, 3]
    assert rows[0].prev_hash == GENESIS
    assert [r.prev_hash for r in rows[1:]] == [r.hash for r in rows[:-1]]
    assert rows[1].hash == row_hash(2, rows[1].entry, rows[0].hash)
    assert store.head() == (3, rows[-1].hash)
    verdict = store.verify()
    assert verdict.ok and verdict.checked == 3


def test_what_is_read_back_is_exactly_what_was_hashed(sql: Engine) -> None:
    store = AuditStore(sql)
    store.append(AuditEntry(AT.replace(microsecond=123456), "ünï", "iro", "read",
                            "x" * 300, ("CH-é", "CH-\"q\""), "c" * 40, "d" * 3000, "::1"))
    assert store.verify().ok
    row = store.rows()[0]
    assert len(row.entry.purpose) == 200 and row.entry.children == ("CH-é", 'CH-"q"')


def test_verify_names_an_edited_row(sql: Engine) -> None:
    store = filled(sql)
    with sql.begin() as conn:
        conn.execute(update(audit_log).where(audit_log.c.seq == 3)
                     .values(user_name="someone-else"))
    verdict = store.verify()
    assert not verdict.ok and verdict.bad_seq == 3 and "row 3 was changed" in str(verdict.problem)


def test_verify_names_a_row_edited_with_its_own_hash_recomputed(sql: Engine) -> None:
    store = filled(sql)
    row = store.rows()[1]
    forged = AuditEntry(row.entry.at, "someone-else", row.entry.role, row.entry.kind,
                        row.entry.purpose, row.entry.children, None, row.entry.detail,
                        row.entry.ip)
    with sql.begin() as conn:
        conn.execute(update(audit_log).where(audit_log.c.seq == 2).values(
            user_name="someone-else", hash=row_hash(2, forged, row.prev_hash)))
    verdict = store.verify()
    assert not verdict.ok and verdict.bad_seq == 3 and "does not follow row 2" in str(
        verdict.problem)


def test_verify_names_a_deleted_row(sql: Engine) -> None:
    store = filled(sql)
    with sql.begin() as conn:
        conn.execute(delete(audit_log).where(audit_log.c.seq == 2))
    verdict = store.verify()
    assert not verdict.ok and verdict.bad_seq == 2 and "row 2 is missing" in str(verdict.problem)


def test_verify_names_the_last_row_deleted(sql: Engine) -> None:
    store = filled(sql)
    with sql.begin() as conn:
        conn.execute(delete(audit_log).where(audit_log.c.seq == 5))
    verdict = store.verify()
    assert not verdict.ok and verdict.bad_seq == 5


def test_a_rewritten_chain_is_caught_by_an_anchor_kept_elsewhere(sql: Engine) -> None:
    store = filled(sql, 3)
    anchor = store.head()
    store.append(entry(9))
    assert store.verify(anchor).ok
    # rewrite everything from row 2 on, hashes and head included: only the anchor tells
    rows = store.rows()
    prev = rows[0].hash
    with sql.begin() as conn:
        for r in rows[1:]:
            forged = AuditEntry(r.entry.at, "forger", r.entry.role, r.entry.kind,
                                r.entry.purpose, r.entry.children, None, r.entry.detail,
                                r.entry.ip)
            digest = row_hash(r.seq, forged, prev)
            conn.execute(update(audit_log).where(audit_log.c.seq == r.seq).values(
                user_name="forger", prev_hash=prev, hash=digest))
            prev = digest
        conn.execute(update(audit_head).values(hash=prev))
    assert store.verify().ok
    verdict = store.verify(anchor)
    assert not verdict.ok and verdict.bad_seq == anchor[0]


def test_a_row_slipped_in_past_the_head_is_found(sql: Engine) -> None:
    store = filled(sql, 2)
    last = store.rows()[-1]
    with sql.begin() as conn:
        conn.execute(audit_log.insert().values(
            seq=3, at=AT, user_name="x", role="x", kind="read", purpose="x", children="[]",
            prev_hash=last.hash, hash=row_hash(3, entry(3, ()), last.hash)))
    verdict = store.verify()
    assert not verdict.ok and verdict.bad_seq == 3 and "past the chain's head" in str(
        verdict.problem)


def test_rows_are_found_by_exact_child_user_and_time(sql: Engine) -> None:
    store = filled(sql)
    assert [r.seq for r in store.rows(child="CH-1")] == [1, 2, 3, 4, 5]
    assert [r.seq for r in store.rows(child="CH-1%")] == []
    assert [r.seq for r in store.rows(child="CH-1" + "2")] == [3]
    assert [r.seq for r in store.rows(user="user-1")] == [2, 5]
    assert [r.seq for r in store.rows(start=AT + timedelta(seconds=3))] == [4, 5]
    assert [r.seq for r in store.rows(end=AT + timedelta(seconds=1))] == [1]


def test_concurrent_writers_in_separate_connections_never_fork_the_chain(sql: Engine) -> None:
    """Eight writers, each with its own engine (as separate web workers have), append at once:
    every row gets its own place and the chain verifies."""
    url = sql.url.render_as_string(hide_password=False)
    threads, per_thread, errors = 8, 25, []
    start = threading.Barrier(threads)

    def write(n: int) -> None:
        own = create_db_engine(url)
        try:
            store = AuditStore(own)
            start.wait()
            for i in range(per_thread):
                store.append(entry(n * 1000 + i, (f"CH-{n}",)))
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(repr(error))
        finally:
            own.dispose()

    workers = [threading.Thread(target=write, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert errors == []
    store = AuditStore(sql)
    verdict = store.verify()
    assert verdict.ok, verdict.problem
    assert verdict.checked == threads * per_thread
    with sql.connect() as conn:
        seqs = [r[0] for r in conn.execute(text("SELECT seq FROM audit_log ORDER BY seq"))]
    assert seqs == list(range(1, threads * per_thread + 1))

"""Prometheus metrics for ``icsflow run --metrics-port``: read from the database on each scrape.

Why read on scrape: every durable fact (pending timers, the outbox, deadlines) lives in the
database, shared by however many daemons run; a scrape of any daemon shows the same truth.
Only what one process does (firings, its sweeps) is counted in memory. Each daemon gets its own
``CollectorRegistry``, never the global one, so an embedding host's metrics stay its own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from typing import Any, cast

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine as SqlEngine
from sqlalchemy import Table, func, select

from icsflow.storage.tables import DeadlineRow, InstanceRow, OutboxRow, TimerRow

T = cast(Table, TimerRow.__table__)
O = cast(Table, OutboxRow.__table__)  # noqa: E741
I = cast(Table, InstanceRow.__table__)  # noqa: E741
D = cast(Table, DeadlineRow.__table__)
OUTBOX_STATUSES = ("pending", "sent", "failed")


class DaemonMetrics:
    """What this process counts, plus a collector reading the shared tables on each scrape."""

    def __init__(self, sql: Callable[[], SqlEngine | None], now: Callable[[], datetime],
                 today: Callable[[datetime], date]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.firings = Counter("icsflow_timer_firings", "Timers fired by this daemon",
                               registry=self.registry)
        self.firing_failures = Counter("icsflow_timer_firing_failures",
                                       "Timer firings that failed and were given back",
                                       registry=self.registry)
        self.sweep_duration = Gauge("icsflow_sweep_duration_seconds",
                                    "How long the last timer sweep took",
                                    registry=self.registry)
        self.last_sweep_success = Gauge("icsflow_last_sweep_success_timestamp_seconds",
                                        "Unix time of the last sweep that succeeded",
                                        registry=self.registry)
        self.ready = Gauge("icsflow_ready", "1 when /readyz answers 200", registry=self.registry)
        self.job_failures = Gauge("icsflow_job_consecutive_failures",
                                  "Failures in a row of each scheduled job", ["job"],
                                  registry=self.registry)
        self.registry.register(_DatabaseCollector(sql, now, today))

    def swept(self, *, fired: int, failed: int, seconds: float, finished: float) -> None:
        self.firings.inc(fired)
        self.firing_failures.inc(failed)
        self.sweep_duration.set(seconds)
        self.last_sweep_success.set(finished)


class _DatabaseCollector(Collector):
    def __init__(self, sql: Callable[[], SqlEngine | None], now: Callable[[], datetime],
                 today: Callable[[datetime], date]) -> None:
        self._sql = sql
        self._now = now
        self._today = today
        self._lock = threading.Lock()

    def describe(self) -> list[Any]:
        return []  # read on scrape: nothing to check at registration

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily("icsflow_database_up",
                               "1 when the last scrape could read the database")
        sql = self._sql()
        if sql is None:
            up.add_metric([], 0)
            yield up
            return
        try:
            with self._lock:
                families = read_families(sql, self._now(), self._today)
        except Exception:  # noqa: BLE001 - a scrape during an outage says so, and no more
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families


def read_families(sql: SqlEngine, now: datetime, today: Callable[[datetime], date],
                  ) -> list[GaugeMetricFamily]:
    """The gauges read from the tables as at ``now`` (the daemon's clock)."""
    with sql.connect() as conn:
        pending, due, oldest = conn.execute(
            select(func.count(),
                   func.count().filter(T.c.due_at <= now),
                   func.min(T.c.due_at).filter(T.c.due_at <= now))
            .where(T.c.status == "pending")).one()
        by_status: dict[str, int] = dict(conn.execute(
            select(O.c.status, func.count()).group_by(O.c.status)).all())
        overdue = conn.execute(
            select(I.c.definition, func.count())
            .select_from(D.join(I, I.c.id == D.c.instance_id))
            .where(I.c.closed_at.is_(None), D.c.met_at.is_(None),
                   D.c.status.in_(("live", "breached")),
                   (D.c.status == "breached") | (D.c.due_date < today(now)))
            .group_by(I.c.definition)).all()
        conn.rollback()
    families = []
    g = GaugeMetricFamily("icsflow_timers_pending", "Timers waiting to fire")
    g.add_metric([], int(pending))
    families.append(g)
    g = GaugeMetricFamily("icsflow_timers_due", "Pending timers whose due time has passed")
    g.add_metric([], int(due))
    families.append(g)
    g = GaugeMetricFamily("icsflow_oldest_due_timer_age_seconds",
                          "How long the oldest due timer has waited (0 when none is due)")
    if oldest is not None and oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)
    g.add_metric([], max((now - oldest).total_seconds(), 0.0) if oldest is not None else 0.0)
    families.append(g)
    g = GaugeMetricFamily("icsflow_outbox_messages", "Outbox rows by status",
                          labels=["status"])
    for status in sorted(set(OUTBOX_STATUSES) | set(by_status)):
        g.add_metric([status], int(by_status.get(status, 0)))
    families.append(g)
    g = GaugeMetricFamily("icsflow_outbox_dead_letters",
                          "Failed outbox rows waiting for an operator (icsflow outbox retry)")
    g.add_metric([], int(by_status.get("failed", 0)))
    families.append(g)
    g = GaugeMetricFamily("icsflow_overdue_deadlines",
                          "Open cases' deadlines past their due date, per definition",
                          labels=["definition"])
    for definition, count in sorted(overdue):
        g.add_metric([definition], int(count))
    families.append(g)
    return families


__all__ = ["DaemonMetrics", "read_families"]

"""Turn a definition's ``notify`` into outbox rows at transition time: recipients resolved and
templates rendered now, so the dispatcher only sends. A bad template or a missing address never
aborts the transition: the row is stored ``failed`` with the reason, and the admin is told."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from icsflow.definitions.expressions import evaluate, render
from icsflow.definitions.model import Definition, Notify
from icsflow.workflow.data import is_email
from icsflow.workflow.instance import OutboxStatus
from icsflow.workflow.notices import MissingAddress, missing_addresses, unqueued_notice
from icsflow.workflow.ports import NewOutbox


def resolve_role(defn: Definition, role: str, data: Mapping[str, Any],
                 directory: Mapping[str, Sequence[str]]) -> tuple[list[str], str | None]:
    """Addresses of ``role`` for this case, and why there are none (or a bad one)."""
    r = defn.role_map.get(role)
    if r is None:
        return [], f"role {role} is not declared in {defn.name}"
    if r.address_field:
        value = data.get(r.address_field)
        if value in (None, ""):
            return [], f"role {role} has no address: data field {r.address_field} is empty"
        text = str(value).strip()
        if not is_email(text):
            return [], f"role {role} has an invalid address in data field {r.address_field}"
        return [text], None
    if r.directory:
        addresses = [a for a in directory.get(role, ()) if a]
        if not addresses:
            return [], f"role {role} has no address: no directory entry for {role}"
        bad = [a for a in addresses if not is_email(a)]
        if bad:
            return [], f"role {role} has an invalid directory address {bad[0]!r}"
        return list(addresses), None
    return [], f"role {role} has no address: it has neither an address field nor a directory"


def queue(defn: Definition, notifies: Sequence[Notify], context: Mapping[str, Any], *,
          key: str, instance_id: str, directory: Mapping[str, Sequence[str]],
          admin_address: str | None) -> list[NewOutbox]:
    """Outbox rows for ``notifies``; ``key`` identifies the occurrence (deterministic)."""
    rows: list[NewOutbox] = []
    data = context.get("data", {})
    for index, n in enumerate(notifies):
        row_key = f"{key}:n{index}:{n.template}"
        if n.when is not None:
            try:
                if not evaluate(n.when.text, context):
                    continue
            except Exception as exc:  # noqa: BLE001 - a bad condition must not stop the case
                rows.extend(_failed(defn, n.template, row_key, instance_id, [],
                                    f"notify condition {n.when.text!r} failed: {exc}",
                                    admin_address, context))
                continue
        recipients: list[str] = []
        problems: list[str] = []
        for role in n.roles:
            found, problem = resolve_role(defn, role, data, directory)
            for a in found:
                if a not in recipients:
                    recipients.append(a)
            if problem:
                problems.append(problem)
        template = defn.template_map.get(n.template)
        urgent = bool(template.urgent) if template else False
        try:
            if template is None:
                raise LookupError(f"template {n.template} is not defined in {defn.name}")
            subject = " ".join(render(template.subject, context).split())
            body = render(template.body, context)
        except Exception as exc:  # noqa: BLE001 - stored as a failed row, the case moves on
            rows.extend(_failed(defn, n.template, row_key, instance_id, recipients,
                                f"template {n.template} could not be rendered: {exc}",
                                admin_address, context))
            continue
        missing = missing_addresses(defn, n.roles, data, directory) if problems else []
        if not recipients:
            rows.extend(_failed(defn, n.template, row_key, instance_id, [], "; ".join(problems),
                                admin_address, context, subject=subject, body=body,
                                urgent=urgent, missing=missing))
            continue
        rows.append(NewOutbox(tuple(recipients), subject, body, n.template, urgent,
                              OutboxStatus.PENDING, row_key,
                              last_error="; ".join(problems) or None, instance_id=instance_id))
        if problems:
            # The roles that could not be reached get a failed row of their own, so the gap
            # shows in `icsflow outbox --status failed` and is never silently dropped.
            rows.extend(_failed(defn, n.template, f"{row_key}:unreached", instance_id, [],
                                "not sent to every role: " + "; ".join(problems),
                                admin_address, context, subject=subject, body=body,
                                urgent=urgent, missing=missing))
    return rows


def _failed(defn: Definition, template: str, key: str, instance_id: str,
            recipients: list[str], reason: str, admin_address: str | None,
            context: Mapping[str, Any], *, subject: str = "", body: str = "",
            urgent: bool = False, missing: Sequence[MissingAddress] = ()) -> list[NewOutbox]:
    rows = [NewOutbox(tuple(recipients), subject, body, template, urgent, OutboxStatus.FAILED,
                      key, last_error=reason, instance_id=instance_id)]
    if admin_address:
        # In plain words for the administrator: the case, the role without an address (by
        # its label) and the commands that fix it (``workflow.notices``).
        title, text = unqueued_notice(defn, context, template, reason, missing, subject)
        rows.append(NewOutbox((admin_address,), title, text, "admin_alert", False,
                              OutboxStatus.PENDING, f"{key}:admin", instance_id=instance_id))
    return rows


__all__ = ["queue", "resolve_role"]

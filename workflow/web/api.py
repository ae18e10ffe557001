"""The JSON API beside the pages: cases, children, deadlines, reports, firing an event.

Authentication is the pages' session cookie (state-changing calls then need the
``X-CSRF-Token`` header) or ``Authorization: Bearer TOKEN`` for services (tokens made by
``icsflow user token NAME``, acting with that user's role and relationships). Refusals map the
CLI's exit code 1 to HTTP: 400 refused, 403 role or relationship, 404 unknown, 409 wrong state
or conflict, 422 invalid data. Every answer carrying a child's data is audited; lists hold only
the children the caller may read; a manager may send ``X-Break-Glass-Reason`` to read or act
on a child outside their relationships (audited as break-glass).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from icsflow.workflow.commands import sql_engine
from icsflow.workflow.errors import InstanceNotFound, ValidationError, WorkflowError
from icsflow.workflow.instance import Actor, Instance, JsonValue
from icsflow.workflow.web.context import Web, web_of


class ErrorBody(BaseModel):
    error: str
    kind: str | None = None


ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Refused"},
    401: {"model": ErrorBody, "description": "Not signed in"},
    403: {"model": ErrorBody, "description": "Role or relationship may not do this (or no "
          "CSRF token)"},
    404: {"model": ErrorBody, "description": "Unknown case, child or figure"},
    409: {"model": ErrorBody, "description": "Event not allowed in this state, or a conflict"},
    422: {"model": ErrorBody, "description": "Invalid data"},
}

router = APIRouter(prefix="/api", responses=ERRORS)


class FireRequest(BaseModel):
    """An event to fire: the definition's fields for it, an optional note, and optionally the
    ``row_version`` read (a stale one is a 409 instead of acting on newer state)."""

    data: dict[str, str | int | bool | None] = Field(default_factory=dict)
    note: str | None = Field(default=None, max_length=2000)
    row_version: int | None = Field(default=None, ge=1)


class Me(BaseModel):
    name: str
    role: str
    via: str


@router.get("/me", response_model=Me, summary="Who the request is signed in as")
def me(request: Request) -> Me:
    user = web_of(request).require(request)
    return Me(name=user.name, role=user.role, via=user.via)


@router.get("/cases", summary="Cases, filtered", response_model=list[dict[str, Any]])
def cases(request: Request, definition: str | None = Query(default=None, max_length=100),
          state: str | None = Query(default=None, max_length=100),
          child: str | None = Query(default=None, max_length=200),
          overdue: bool = False, open: bool = False,
          limit: int = Query(default=500, ge=1, le=5000)) -> list[dict[str, JsonValue]]:
    web = web_of(request)
    user = web.require(request)
    found = web.engine.list(definition=definition, state=state, overdue=overdue,
                            open_only=open, child=child)
    mine = web.guard.readable(user, found, lambda i: i.child, lambda i: i.id)[:limit]
    web.guard.bulk_read(request, user, "api cases", (i.child for i in mine),
                        (i.id for i in mine if not i.child))
    return [i.to_json() for i in mine]


def _case(web: Web, case_id: str) -> Instance:
    try:
        return web.engine.get(case_id)
    except InstanceNotFound:
        found = web.engine.find(case_id)
        if len(found) == 1:
            return found[0]
        raise


@router.get("/cases/{case_id}", summary="One case (the show --json shape)",
            response_model=dict[str, Any])
def case(request: Request, case_id: str) -> dict[str, JsonValue]:
    web = web_of(request)
    user = web.require(request)
    inst = _case(web, case_id)
    web.guard.read_case(request, user, inst, "api case")
    shape: dict[str, Any] = inst.to_json()
    explainer = getattr(web.engine, "explain", None)
    if explainer is not None:
        try:
            why = explainer(inst.id)
        except Exception:  # noqa: BLE001 - shown without the why
            why = {}
        for d in shape.get("deadline_details", []):
            if d["name"] in why and d.get("met_at") is None:
                d["explain"] = why[d["name"]]
    return shape


@router.post("/cases/{case_id}/events/{event}", summary="Fire an event as the signed-in user",
             response_model=dict[str, Any])
def fire(request: Request, case_id: str, event: str, body: FireRequest) -> dict[str, JsonValue]:
    web = web_of(request)
    user = web.require(request)
    web.check_csrf(request, user, request.headers.get("x-csrf-token"))
    inst = _case(web, case_id)
    decision = web.guard.act(request, user, inst, event)
    data = {k: v for k, v in body.data.items() if v is not None and v != ""}
    if any(not k for k in data):
        raise ValidationError("a data field needs a name", field="data")
    try:
        fired = web.engine.fire(inst.id, event, actor=Actor(user.name, user.role),
                                data=data or None, note=body.note,
                                expected_version=body.row_version)
    except WorkflowError as refused:
        web.guard.acted(request, user, inst, event, decision,
                        outcome=str(refused).splitlines()[0] or type(refused).__name__)
        raise
    finally:
        web.changed()
    web.guard.acted(request, user, fired, event, decision)
    return fired.to_json()


@router.get("/children/{child}", summary="A child's timeline across processes",
            response_model=dict[str, Any])
def child(request: Request, child: str) -> dict[str, JsonValue]:
    from icsflow.workflow.timeline import child_timeline

    web = web_of(request)
    user = web.require(request)
    found = web.engine.child_cases(child)
    if not found:
        raise InstanceNotFoundForChild(child)
    web.guard.read_child(request, user, child, found, "api child")
    return child_timeline(child, found, web.now(), web.engine.calendar).to_json()


class InstanceNotFoundForChild(InstanceNotFound):
    def __init__(self, child: str) -> None:
        super().__init__(child)
        self.args = (f"no cases for child {child!r}",)


@router.get("/deadlines", summary="Overdue and due in the next 5 working days, worst first",
            response_model=dict[str, Any])
def deadlines(request: Request, process: str | None = Query(default=None, max_length=100),
              team: str | None = Query(default=None, max_length=200),
              chair: str | None = Query(default=None, max_length=200),
              state: str | None = Query(default=None, max_length=100)) -> dict[str, JsonValue]:
    web = web_of(request)
    user = web.require(request)
    whole = web.today()
    view = whole.only(web.guard.readable(user, whole.rows, lambda r: r.child,
                                         lambda r: r.case)).filtered(
        {"process": process, "team": team, "chair": chair, "state": state})
    web.guard.bulk_read(request, user, "api deadlines", (r.child for r in view.rows),
                        (r.case for r in view.rows if not r.child))
    return view.to_json()


@router.get("/reports", summary="The service's report (the report --json shape)",
            response_model=dict[str, Any])
def reports(request: Request, from_: Annotated[date | None, Query(alias="from")] = None,
            to: date | None = None, as_at: date | None = None) -> dict[str, JsonValue]:
    from icsflow.workflow.reports import Window, build_report, final_states

    web = web_of(request)
    web.require(request)
    today = web.engine.calendar.local_date(web.now())
    try:
        window = Window.resolve(start=from_, end=to, as_at=as_at, known_at=None, today=today,
                                tz=web.engine.calendar.tz)
    except ValueError as error:
        raise ValidationError(str(error), field="to") from None
    if window.end.year > 9000 or window.start.year < 1900:
        raise ValidationError("the period must lie between 1900 and 9000", field="from")
    report = build_report(sql_engine(web.engine), window, band=web.settings.band[1],
                          final_states=final_states(web.engine.definitions))
    return report.to_json()


__all__ = ["router"]

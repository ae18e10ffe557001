"""The HTML pages: sign-in, Today, child, case, actions, reports, processes, allocation.

Each handler reads through the engine (or the reports package) and renders a template; every
form posts with a CSRF token. Before a child's data is shown the access policy is asked
(``guard.py``): a refusal is a page saying why, with a break-glass form for a manager; every
list shows only the children the user may read, and every read is audited.
"""

from __future__ import annotations

import base64
import re
import secrets
from datetime import date
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from icsflow.storage import audit as kinds
from icsflow.workflow.commands import sql_engine
from icsflow.workflow.errors import InstanceNotFound, WorkflowError
from icsflow.workflow.instance import Instance
from icsflow.workflow.web import actions as act
from icsflow.workflow.web.auth import PRE_COOKIE, SESSION_COOKIE, User, login_csrf
from icsflow.workflow.web.context import Web, web_of
from icsflow.workflow.web.signin import safe_next, sign_in, sign_in_choices
from icsflow.workflow.web.today import FILTERS, TodayView, filtered_query

if TYPE_CHECKING:  # the reports package (and matplotlib) loads when a report is asked for
    from icsflow.definitions.model import Definition
    from icsflow.workflow.allocation import AllocationRow
    from icsflow.workflow.labels import Labels as CoreLabels
    from icsflow.workflow.reports import Report

router = APIRouter(include_in_schema=False)
_safe_next = safe_next


# -- sign-in ---------------------------------------------------------------------------------

@router.get("/login")
def login_form(request: Request, next: str = "/") -> Response:
    web = web_of(request)
    pre = request.cookies.get(PRE_COOKIE) or secrets.token_urlsafe(16)
    response = web.page(request, "login.html", None, next=_safe_next(next),
                        login_csrf=login_csrf(pre), error=None,
                        **sign_in_choices(web, _safe_next(next)))
    web.set_cookie(request, response, PRE_COOKIE, pre, max_age=3600)
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    return await sign_in(web_of(request), request)


@router.get("/logout")
def logout_form(request: Request) -> Response:
    web = web_of(request)
    return web.page(request, "logout.html", web.require(request))


@router.post("/logout")
async def logout(request: Request) -> Response:
    web = web_of(request)
    user = web.require(request)
    form = await request.form()
    web.check_csrf(request, user, str(form.get("csrf_token", "")))
    target = await run_in_threadpool(_signed_out, web, request, user)
    response = RedirectResponse(target, status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _signed_out(web: Web, request: Request, user: User) -> str:
    """End the session; where to go next: the sign-in page, or the identity provider's
    sign-out when the session began there and the provider offers one."""
    via = web.signon.store.session_via(user.session_id) \
        if web.signon is not None and user.via == "session" and user.session_id else None
    web.end_session(user, "signed out")
    web.guard.record(request, user, kinds.SIGN_OUT, "sign-out")
    target = web.signon.logout_url() if via == "oidc" and web.signon is not None else None
    return target or "/login"


# -- Today -----------------------------------------------------------------------------------

def _filters(request: Request) -> dict[str, str | None]:
    return {k: (request.query_params.get(k) or None) for k in FILTERS}


def _my_today(request: Request, purpose: str) -> TodayView:
    """Today's rows of the children the user may read, filtered; the read audited."""
    web = web_of(request)
    user = web.require(request)
    whole = web.today()
    mine = whole.only(web.guard.readable(user, whole.rows, lambda r: r.child,
                                         lambda r: r.case))
    view = mine.filtered(_filters(request))
    web.guard.bulk_read(request, user, purpose, (r.child for r in view.rows),
                        (r.case for r in view.rows if not r.child))
    return view


@router.get("/")
def today(request: Request) -> Response:
    web = web_of(request)
    user = web.require(request)
    filters = _filters(request)
    view = _my_today(request, "today page")
    csv_link = "/today.csv" + ("?" + urlencode(filtered_query(filters))
                               if filtered_query(filters) else "")
    return web.page(request, "today.html", user, nav="today", view=view, filters=filters,
                    csv_link=csv_link)


@router.get("/today.csv")
def today_csv(request: Request) -> Response:
    view = _my_today(request, "today.csv")
    return Response(view.csv_text(), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": f'attachment; filename="icsflow-today-{view.today}.csv"'})


# -- child and case --------------------------------------------------------------------------

@router.get("/children/{child}")
def child_page(request: Request, child: str) -> Response:
    from icsflow.workflow.timeline import child_timeline

    web = web_of(request)
    user = web.require(request)
    cases = web.engine.child_cases(child)
    if not cases:
        return web.page(request, "error.html", user, status=404, title="Not found",
                        message=f"No cases for child {child!r}.")
    web.guard.read_child(request, user, child, cases, "child page")
    timeline = child_timeline(child, cases, web.now(), web.engine.calendar)
    return web.page(request, "child.html", user, nav="", timeline=timeline)


@router.get("/cases/{case_id}")
def case_page(request: Request, case_id: str) -> Response:
    web = web_of(request)
    user = web.require(request)
    inst = _find(web, case_id)
    web.guard.read_case(request, user, inst, "case page")
    return web.page(request, "case.html", user, **act.case_context(web, inst, user))


def _find(web: Web, case_id: str) -> Instance:
    try:
        return web.engine.get(case_id)
    except InstanceNotFound:
        found = web.engine.find(case_id)
        if len(found) == 1:
            return found[0]
        raise


@router.get("/cases/{case_id}/events/{event}")
def action_form(request: Request, case_id: str, event: str) -> Response:
    web = web_of(request)
    user = web.require(request)
    inst = _find(web, case_id)
    web.guard.read_case(request, user, inst, f"action form {event}")
    return web.page(request, "action.html", user, **act.form_context(web, inst, user, event))


@router.post("/cases/{case_id}/events/{event}")
async def fire_event(request: Request, case_id: str, event: str) -> Response:
    web = web_of(request)
    user = web.require(request)
    form = await request.form()
    web.check_csrf(request, user, str(form.get("csrf_token", "")))
    values = {k: v for k, v in form.multi_items()
              if k not in ("csrf_token", "note", "row_version") and isinstance(v, str)}
    note = str(form.get("note", "")).strip() or None
    version = str(form.get("row_version", "")) or None
    return await run_in_threadpool(_fire_from_form, web, request, user, case_id, event,
                                   values, note, version)


def _fire_from_form(web: Web, request: Request, user: User, case_id: str, event: str,
                    values: dict[str, str], note: str | None, version: str | None) -> Response:
    inst = _find(web, case_id)
    decision = web.guard.act(request, user, inst, event)
    try:
        fired = act.fire(web, inst, user, event, values, note,
                         int(version) if version and version.isdigit() else None)
    except WorkflowError as refused:
        web.guard.acted(request, user, inst, event, decision,
                        outcome=str(refused).splitlines()[0] or type(refused).__name__)
        context = act.form_context(web, inst, user, event)
        context["refusal"] = str(refused).splitlines()[0]
        context["given"] = act.joined_dates(values)
        context["note"] = note
        return web.page(request, "action.html", user, status=act.status_for(refused),
                        **context)
    web.guard.acted(request, user, fired, event, decision)
    return RedirectResponse(f"/cases/{fired.id}?fired={event}", status_code=303)


@router.post("/children/{child}/break-glass")
async def child_break_glass(request: Request, child: str) -> Response:
    return await _break_glass(request, child, None)


@router.post("/cases/{case_id}/break-glass")
async def case_break_glass(request: Request, case_id: str) -> Response:
    return await _break_glass(request, None, case_id)


async def _break_glass(request: Request, child: str | None, case_id: str | None) -> Response:
    """A manager opens a child they have no relationship with, giving a reason: a grant for
    this session for ``access.break_glass_minutes``, audited as break-glass."""
    web = web_of(request)
    user = web.require(request)
    form = await request.form()
    web.check_csrf(request, user, str(form.get("csrf_token", "")))
    reason = str(form.get("reason", ""))
    target = _safe_next(str(form.get("next", "/")))
    await run_in_threadpool(web.guard.open_glass, request, user, child, case_id, reason)
    return RedirectResponse(target, status_code=303)


# -- reports ---------------------------------------------------------------------------------

def _date_param(request: Request, name: str) -> date | None:
    text = request.query_params.get(name) or ""
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise WorkflowErrorForPage(f"{name}: {text!r} is not a date (YYYY-MM-DD)") from None


class WorkflowErrorForPage(WorkflowError):
    """A bad query parameter on a page, shown as a refusal."""


def _report(web: Web, request: Request) -> Report:
    from icsflow.workflow.reports import Window, build_report, final_states

    today = web.engine.calendar.local_date(web.now())
    try:
        window = Window.resolve(start=_date_param(request, "from"),
                                end=_date_param(request, "to"),
                                as_at=_date_param(request, "as_at"), known_at=None,
                                today=today, tz=web.engine.calendar.tz)
    except ValueError as error:
        raise WorkflowErrorForPage(str(error)) from None
    return build_report(sql_engine(web.engine), window, band=web.settings.band[1],
                        final_states=final_states(web.engine.definitions))


_SVG = re.compile(r"<svg\b.*?</svg>", re.S)
_LABEL = re.compile(r'aria-label="([^"]*)"')


def _as_image(match: re.Match[str]) -> str:
    """A chart as an image: matplotlib's SVG carries inline styles the page's
    Content-Security-Policy would refuse; as an image they are the image's own business."""
    svg = match.group(0)
    label = _LABEL.search(svg)
    data = base64.b64encode(('<?xml version="1.0" encoding="utf-8"?>' + svg.replace(
        "<svg ", '<svg xmlns:xlink="http://www.w3.org/1999/xlink" ', 1)
        if "xmlns:xlink" not in svg else svg).encode("utf-8")).decode("ascii")
    alt = label.group(1) if label else "chart"
    return f'<img class="chart" alt="{alt}" src="data:image/svg+xml;base64,{data}">'


def report_body(report: Report, labels: CoreLabels | None = None) -> str:
    """The report's sections (charts as images) from ``reports.html``, without its page, in
    the labels of the definitions the server runs (the shipped ones when not given)."""
    from icsflow.workflow.reports.html import to_html

    page = to_html(report, labels)
    start, end = page.find("<main>"), page.rfind("</main>")
    body = page[start + len("<main>"):end] if start >= 0 and end > start else page
    return _SVG.sub(_as_image, body)


@router.get("/reports")
def reports_page(request: Request) -> Response:
    web = web_of(request)
    user = web.require(request)
    report = _report(web, request)
    data = report.to_json()
    query = {k: request.query_params.get(k) or "" for k in ("from", "to", "as_at")}
    figures = [(p, len(report.items(p))) for p in report.paths()]
    return web.page(request, "reports.html", user, nav="reports", data=data,
                    body=report_body(report, web.labels), figures=figures, query=query,
                    query_string=urlencode({k: v for k, v in query.items() if v}))


@router.get("/reports/figure")
def report_figure(request: Request, path: str) -> Response:
    web = web_of(request)
    user = web.require(request)
    report = _report(web, request)
    if path not in report.paths():
        return web.page(request, "error.html", user, status=404, title="Not found",
                        message=f"No figure {path!r} in this report.")
    query = {k: request.query_params.get(k) or "" for k in ("from", "to", "as_at")}
    everything = report.items(path)
    items = web.guard.readable(user, everything, lambda i: i.child, lambda i: i.case_id)
    pages = max(1, -(-len(items) // FIGURE_PAGE))
    number = _page_number(request, pages)
    shown = items[(number - 1) * FIGURE_PAGE:number * FIGURE_PAGE]
    web.guard.bulk_read(request, user, f"report figure {path}", (i.child for i in shown),
                        (i.case_id for i in shown if not i.child))
    query_string = urlencode({k: v for k, v in query.items() if v})
    return web.page(request, "figure.html", user, nav="reports", path=path, items=shown,
                    total=len(items), hidden=len(everything) - len(items),
                    data=report.to_json(), query_string=query_string, page_number=number,
                    pages=pages, page_link=f"/reports/figure?{urlencode({'path': path})}"
                    + (f"&{query_string}" if query_string else "") + "&page=")


FIGURE_PAGE = 50  # cases per page of a figure's drill-down


def _page_number(request: Request, pages: int) -> int:
    """The ``page`` asked for, within 1..pages (anything else is the first page)."""
    text = request.query_params.get("page") or "1"
    return min(max(int(text), 1), pages) if text.isdigit() else 1


# -- processes -------------------------------------------------------------------------------

@router.get("/processes")
def processes(request: Request) -> Response:
    web = web_of(request)
    user = web.require(request)
    latest: dict[str, Definition] = {}
    for d in web.engine.definitions:
        if d.name not in latest or d.version > latest[d.name].version:
            latest[d.name] = d
    return web.page(request, "processes.html", user, nav="processes",
                    definitions=sorted(latest.values(), key=lambda d: d.name))


@router.get("/processes/{name}")
def process_page(request: Request, name: str) -> Response:
    from icsflow.workflow.simulate import parse_events, simulate
    from icsflow.workflow.web.diagram import diagram_svg, transition_rows

    web = web_of(request)
    user = web.require(request)
    try:
        defn = web.engine.definition(name)
    except WorkflowError:
        return web.page(request, "error.html", user, status=404, title="Not found",
                        message=f"No process {name!r}.")
    start_text = request.query_params.get("start") or ""
    events_text = request.query_params.get("events") or ""
    values = {f.name: request.query_params.get(f"set_{f.name}", "") for f in defn.data}
    preview, problem = None, None
    if start_text:
        try:
            start = date.fromisoformat(start_text)
            preview = simulate(web.engine.definitions, name, start,
                               {k: v for k, v in values.items() if v},
                               parse_events(events_text or None), None,
                               calendar=web.engine.calendar)
        except ValueError:
            problem = f"start: {start_text!r} is not a date (YYYY-MM-DD)"
        except WorkflowError as error:
            problem = str(error).splitlines()[0]
    return web.page(request, "process.html", user, nav="processes", defn=defn,
                    svg=diagram_svg(defn), transitions=transition_rows(defn), preview=preview,
                    problem=problem, start=start_text, events=events_text, values=values)


# -- allocation ------------------------------------------------------------------------------

@router.get("/allocation")
def allocation(request: Request) -> Response:
    """The weekly allocation list (``workflow.allocation``): reviews waiting for an IRO with
    their due dates and the IROs who know the family, and caseloads against the band."""
    from icsflow.workflow.allocation import allocation_list

    web = web_of(request)
    user = web.require(request)
    s = web.settings
    calendar = web.engine.calendar
    today = calendar.local_date(web.now())
    week_start = today.fromordinal(today.toordinal() - today.weekday())
    low, high = s.band
    known = s.allocation_definition in {d.name for d in web.engine.definitions}
    waiting: list[AllocationRow] = []
    rows: list[tuple[str, int, str]] = []
    if known:
        alloc = allocation_list(web.engine.list(open_only=True), today, calendar,
                                definition=s.allocation_definition,
                                waiting_state=s.allocation_state, band=s.band)
        waiting = web.guard.readable(user, list(alloc.rows), lambda r: r.child,
                                     lambda r: r.instance_id)
        rows = [(c, n, "above" if n > high else "below" if n < low else "within")
                for c, n in sorted(alloc.caseloads.items())]
        web.guard.bulk_read(request, user, "allocation list", (r.child for r in waiting),
                            (r.instance_id for r in waiting if not r.child))
    return web.page(request, "allocation.html", user, nav="allocation", waiting=waiting,
                    rows=rows, low=low, high=high, today=today, week_start=week_start,
                    definition=s.allocation_definition, state=s.allocation_state,
                    definition_known=known, full_list=True)


__all__ = ["router", "report_body"]

"""The report's sections and figures in the order people read them, shared by every format."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from icsflow.workflow.reports.figures import ORDINALS

SECTION_TITLES = {
    "alerts": "IRO Alerts and dispute resolution",
    "lac_reviews": "Looked-after reviews",
    "cp_conferences": "Child protection conferences",
    "dual_status": "Dual status (child protection plan and looked after)",
    "caseloads": "Chairs' caseloads",
}
SECTIONS = tuple(SECTION_TITLES)


def label(key: str) -> str:
    """``responded_in_time`` -> ``Responded in time`` (keys stay the contract's)."""
    text = key.replace("_", " ")
    return text[:1].upper() + text[1:]


def figure_rows(data: dict[str, Any]) -> Iterator[tuple[str, str, str, Any]]:
    """(section, measure, breakdown, value) for every figure of the contract: the tidy form
    (an ordinal group's figures are its measures broken down by ordinal)."""
    yield ("report", "period", "from", data["period"]["from"])
    yield ("report", "period", "to", data["period"]["to"])
    yield ("report", "as_at", "", data["as_at"])
    if data.get("known_at"):
        yield ("report", "known_at", "", data["known_at"])
    for section in SECTIONS:
        for measure, value in data[section].items():
            if measure in ORDINALS and isinstance(value, dict):
                for inner, v in value.items():
                    yield (section, inner, measure, v)
            elif isinstance(value, dict):
                for breakdown, v in value.items():
                    yield (section, measure, breakdown, v)
            elif isinstance(value, list):
                chairs = data[section].get("chairs", {})
                for name in value:
                    yield (section, measure, name, chairs.get(name, ""))
            else:
                yield (section, measure, "", value)


__all__ = ["SECTIONS", "SECTION_TITLES", "figure_rows", "label"]

"""The report's sections and figures in the order people read them, shared by every format."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from icsflow.workflow.labels import Labels
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


# Breakdowns whose keys are a shipped process's names: (section, measure) -> the process and
# what the key is there (an enum field's value, or a state), so a person reads the label.
_NAMED: dict[tuple[str, str], tuple[str, str]] = {
    ("alerts", "by_category"): ("alert_dispute", "category"),
    ("alerts", "highest_stage"): ("alert_dispute", "highest_stage"),
    ("alerts", "outcome"): ("alert_dispute", ""),
    ("lac_reviews", "participation"): ("initial_review", "participation"),
    ("dual_status", "ended"): ("dual_status", ""),
}
_PLAIN = {"open": "Still open"}


def breakdown_label(section: str, measure: str, key: str, labels: Labels | None) -> str:
    """What a person reads for one breakdown of a figure ("referred_to_cafcass" -> "Referred
    to Cafcass", "PN1" -> "Attended and spoke for themselves (PN1)"); other keys (months,
    chairs) read as they are."""
    named = _NAMED.get((section, measure))
    if named is None or labels is None:
        return key
    if key in _PLAIN:
        return _PLAIN[key]
    definition, field = named
    return labels.value(definition, field, key) if field else labels.of(definition, "state", key)


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


__all__ = ["SECTIONS", "SECTION_TITLES", "breakdown_label", "figure_rows", "label"]

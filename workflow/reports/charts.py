"""One chart per section, drawn by matplotlib as SVG text to inline in the page.

Why matplotlib SVG (not Vega-Lite): the page must work with no network and be readable printed.
An SVG made on the server needs no script at all in the page (nothing to inline, nothing to fail
in the browser's console), prints as sharp vector graphics, keeps its text as text
(``svg.fonttype: none``), and matplotlib is the charting library of the field. Altair would add
about a megabyte of inlined JavaScript per page and draw nothing without script.
Every chart comes with a table of the same numbers (made by ``html``) for screen readers.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from html import escape
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # matplotlib is imported when a chart is drawn, not when reports load
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# Okabe-Ito colours: told apart with any colour vision and in greyscale by their lightness.
BLUE, ORANGE, GREEN, GREY = "#0072B2", "#E69F00", "#009E73", "#999999"


def _figure(width: float = 7.0, height: float = 3.2) -> tuple[Figure, Axes]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    return fig, fig.add_subplot()


def _style(ax: Axes, ylabel: str) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.spines[["top", "right"]].set_visible(False)
    ax.set_ylabel(ylabel)
    locator = ax.yaxis.get_major_locator()
    if isinstance(locator, MaxNLocator):  # the default AutoLocator is one; others only warn
        locator.set_params(integer=True)


def _svg(fig: Figure, name: str, description: str) -> str:
    """The figure as an inline ``<svg>``: no XML prolog, a stable id salt per chart (so two
    charts in one page never share an id), and an accessible name."""
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": name,
                                "font.family": "DejaVu Sans"}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    text = text[text.index("<svg"):]
    text = re.sub(r"<!--.*?-->|<metadata>.*?</metadata>", "", text, flags=re.S)
    return text.replace("<svg ", f'<svg role="img" aria-label="{escape(description)}" '
                        'focusable="false" ', 1)


def _no_data(ax: Axes) -> None:
    ax.text(0.5, 0.5, "Nothing to show for this period", ha="center", va="center",
            transform=ax.transAxes, color=GREY)
    ax.set_xticks([])
    ax.set_yticks([])


def bars(name: str, description: str, categories: Sequence[str],
         series: Sequence[tuple[str, Sequence[int], str]], ylabel: str) -> str:
    """Grouped vertical bars, each bar labelled with its number."""
    fig, ax = _figure()
    n = len(series)
    width = 0.8 / max(n, 1)
    if not categories or all(not any(values) for _, values, _ in series):
        _no_data(ax)
    else:
        for k, (legend, values, colour) in enumerate(series):
            xs = [i + (k - (n - 1) / 2) * width for i in range(len(categories))]
            drawn = ax.bar(xs, values, width, label=legend, color=colour)
            ax.bar_label(drawn, padding=2, fontsize=8)
        ax.set_xticks(range(len(categories)), list(categories),
                      rotation=45 if len(categories) > 6 else 0,
                      ha="right" if len(categories) > 6 else "center")
        _style(ax, ylabel)
        if n > 1:
            ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        ax.margins(y=0.15)
    return _svg(fig, name, description)


def line(name: str, description: str, labels: Sequence[str], values: Sequence[int],
         ylabel: str) -> str:
    """One line with its points marked and numbered (month-end counts)."""
    fig, ax = _figure()
    if not labels:
        _no_data(ax)
    else:
        xs = range(len(labels))
        ax.plot(xs, values, color=BLUE, marker="o", linewidth=2)
        for x, v in zip(xs, values, strict=True):
            ax.annotate(str(v), (x, v), textcoords="offset points", xytext=(0, 6),
                        ha="center", fontsize=8)
        ax.set_xticks(list(xs), list(labels), rotation=45 if len(labels) > 6 else 0,
                      ha="right" if len(labels) > 6 else "center")
        ax.set_ylim(bottom=0, top=max(max(values) * 1.2, 1))
        _style(ax, ylabel)
    return _svg(fig, name, description)


def caseload_bars(name: str, description: str, chairs: Sequence[str], counts: Sequence[int],
                  band: tuple[int, int]) -> str:
    """Horizontal bars per chair against the IRO Handbook band (shaded), above it in orange."""
    height = max(2.4, 0.35 * len(chairs) + 1.2)
    fig, ax = _figure(7.0, height)
    if not chairs:
        _no_data(ax)
    else:
        low, high = band
        ax.axvspan(low, high, color=GREEN, alpha=0.15, label=f"Handbook band {low}-{high}")
        ax.axvline(high, color=GREEN, linewidth=1)
        colours = [ORANGE if c > high else BLUE for c in counts]
        drawn = ax.barh(range(len(chairs)), counts, color=colours)
        ax.bar_label(drawn, padding=2, fontsize=8)
        ax.set_yticks(range(len(chairs)), list(chairs))
        ax.invert_yaxis()
        ax.set_xlim(0, max([*counts, high]) * 1.15)
        ax.spines[["top", "right"]].set_visible(False)
        ax.set_xlabel("Children allocated")
        ax.legend(frameon=False, loc="lower right")
    return _svg(fig, name, description)


__all__ = ["bars", "caseload_bars", "line"]

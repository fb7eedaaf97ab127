"""Pictures for professionals, drawn with matplotlib's Agg backend (no GUI, no pyplot state).

Functions here are CPU-bound and synchronous; call them with ``asyncio.to_thread``.
matplotlib is imported when the first chart is drawn, not at start (it costs about 0.4 s and
40 MB, and most processes never draw one).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# One fixed, colour-blind-friendly colour per category (Okabe-Ito), so weeks compare at a glance.
CATEGORY_COLOURS: dict[str, str] = {
    "burenruzie": "#E69F00",
    "geluidsoverlast": "#56B4E9",
    "kinderen_zonder_toezicht": "#009E73",
    "intimidatie": "#D55E00",
    "bekladding": "#CC79A7",
    "vernieling": "#0072B2",
    "anders": "#999999",
}


@dataclass(frozen=True)
class WeeklyChart:
    """What to draw: one stacked bar per week, one colour per category, all texts translated."""

    title: str
    x_label: str
    y_label: str
    week_labels: Sequence[str]
    # category code -> (translated name, count per week in the order of week_labels)
    series: Mapping[str, tuple[str, Sequence[int]]]
    empty_text: str


def _plain(text: str) -> str:
    """Keep matplotlib from reading "$...$" as mathematics."""
    return text.replace("$", r"\$")


def weekly_chart_png(chart: WeeklyChart) -> bytes:
    """A stacked bar chart of signals per category per week, as PNG bytes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(8, 4.8), dpi=120, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    positions = list(range(len(chart.week_labels)))
    bottoms = [0] * len(positions)
    drawn = False
    for code, (name, counts) in chart.series.items():
        if not any(counts):
            continue
        axes.bar(
            positions,
            counts,
            bottom=bottoms,
            label=_plain(name),
            color=CATEGORY_COLOURS.get(code, "#777777"),
            edgecolor="white",
            linewidth=0.6,
            width=0.7,
        )
        bottoms = [b + c for b, c in zip(bottoms, counts, strict=True)]
        drawn = True
    for x, total in zip(positions, bottoms, strict=True):
        if total:
            axes.annotate(
                str(total),
                (x, total),
                xytext=(0, 3),
                textcoords="offset points",
                ha="center",
                fontsize=9,
            )
    axes.set_title(_plain(chart.title), fontsize=13)
    axes.set_xlabel(_plain(chart.x_label))
    axes.set_ylabel(_plain(chart.y_label))
    axes.set_xticks(positions, [_plain(label) for label in chart.week_labels])
    axes.set_xlim(-0.6, len(positions) - 0.4)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylim(0, max([*bottoms, 1]) * 1.15 + 0.5)
    axes.grid(axis="y", alpha=0.3)
    axes.set_axisbelow(True)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    if drawn:
        # Legend top-down in the order the colours are stacked (top of the bar first).
        handles, labels = axes.get_legend_handles_labels()
        axes.legend(
            handles[::-1],
            labels[::-1],
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            frameon=False,
            fontsize=9,
        )
    else:
        axes.text(
            0.5,
            0.5,
            _plain(chart.empty_text),
            transform=axes.transAxes,
            ha="center",
            va="center",
            fontsize=11,
            color="#555555",
        )
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()

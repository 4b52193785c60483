"""The annual report's monthly chart as inline SVG: shares per month, 0–100 %, target line.

Server-rendered, no script: the browser draws it as it is and a screenshot shows it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 520, 250
LEFT, RIGHT, TOP, BOTTOM = 48, 10, 30, 52  # plot margins: axis labels, legend below


@dataclass(frozen=True, slots=True)
class Series:
    label: str
    values: Sequence[float | None]  # one share per month, None where there is none
    css: str  # class of the line: this-year, last-year


def _x(month: int) -> float:
    return LEFT + (month + 0.5) * (WIDTH - LEFT - RIGHT) / 12


def _y(share: float) -> float:
    return TOP + (1 - max(0.0, min(1.0, share))) * (HEIGHT - TOP - BOTTOM)


def _runs(values: Sequence[float | None]) -> list[list[tuple[int, float]]]:
    """Consecutive months with a value: a gap breaks the line."""
    runs: list[list[tuple[int, float]]] = [[]]
    for month, v in enumerate(values):
        if v is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append((month, v))
    return [r for r in runs if r]


def month_chart(
    title: str, months: Sequence[str], series: Sequence[Series], target: float,
    target_label: str, fmt: Callable[[float], str], axis_fmt: Callable[[float], str],
) -> str:
    """SVG markup; `fmt` formats a share for the tooltips, `axis_fmt` for the axis."""
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
        f'<text class="title" x="4" y="16">{escape(title)}</text>',
    ]
    for tick in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0):
        y = _y(tick)
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" '
                     f'y2="{y:.1f}"/>')
        parts.append(f'<text class="axis" x="{LEFT - 4}" y="{y + 4:.1f}" '
                     f'text-anchor="end">{escape(axis_fmt(tick))}</text>')
    base = HEIGHT - BOTTOM
    for month, name in enumerate(months):
        parts.append(f'<text class="axis" x="{_x(month):.1f}" y="{base + 14}" '
                     f'text-anchor="middle">{escape(name)}</text>')
    y = _y(target)
    parts.append(f'<line class="target" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" '
                 f'y2="{y:.1f}"><title>{escape(target_label)}</title></line>')
    for s in series:
        for run in _runs(s.values):
            points = " ".join(f"{_x(m):.1f},{_y(v):.1f}" for m, v in run)
            parts.append(f'<polyline class="{s.css}" points="{points}"/>')
            parts.extend(
                f'<circle class="{s.css}" cx="{_x(m):.1f}" cy="{_y(v):.1f}" r="2.5">'
                f"<title>{escape(s.label)} {escape(months[m])}: {escape(fmt(v))}</title>"
                "</circle>"
                for m, v in run
            )
    legend = [(s.label, s.css) for s in series] + [(target_label, "target")]
    x = float(LEFT)
    for label, css in legend:
        parts.append(f'<line class="{css}" x1="{x:.0f}" x2="{x + 18:.0f}" y1="{HEIGHT - 12}" '
                     f'y2="{HEIGHT - 12}"/>')
        parts.append(f'<text class="legend" x="{x + 22:.0f}" y="{HEIGHT - 8}">'
                     f"{escape(label)}</text>")
        x += 34 + 6.5 * len(label)
    parts.append("</svg>")
    return "".join(parts)

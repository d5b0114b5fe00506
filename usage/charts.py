"""A daily bar chart as inline SVG, drawn on the server: no JavaScript, readable without it.

The y-axis has "nice" gridlines (1, 2 or 5 times a power of ten, in credits) so the scale can be
read; the axis labels are HTML beside the SVG so they keep their size at any width; the same figures
are offered as a table (the chart's text alternative)."""

from dataclasses import dataclass
from datetime import date

from billing.money import NANOS_PER_CREDIT, nanos_display


@dataclass
class Bar:
    x: float
    y: float
    width: float
    height: float
    day: date
    credits: int
    title: str
    label: str


@dataclass
class Tick:
    y: float  # in SVG units from the top
    percent: float  # from the bottom, for the HTML label
    label: str


@dataclass
class BarChart:
    width: int
    height: int
    bars: list[Bar]
    ticks: list[Tick]
    max_label: str
    first_label: str
    middle_label: str
    last_label: str
    total_label: str
    empty: bool


def nice_step(top: int, *, lines: int = 4) -> int:
    """The smallest 1/2/5 x 10^k nanocredit step that covers ``top`` in at most ``lines`` gridlines."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor * lines >= top:
                return step * factor
        step *= 10


def bar_chart(daily: list[tuple[date, int]], *, width: int = 720, height: int = 140) -> BarChart:
    top = max((credits for _, credits in daily), default=0)
    # Whole credits read best on an axis; only a chart whose largest day is under 4 credits gets a finer step.
    step = nice_step(top) if top < 4 * NANOS_PER_CREDIT else max(nice_step(top), NANOS_PER_CREDIT)
    scale = step * max(1, -(-top // step))  # the top gridline, at or above the largest day
    count = max(len(daily), 1)
    slot = min(width / count, 48.0)  # a short range keeps bars bar-shaped, left-aligned
    gap = min(2.0, slot * 0.2)
    bars = []
    for index, (day, credits) in enumerate(daily):
        # Heights are proportional with integer nanocredits; a non-zero day gets at least 1px.
        bar_height = 0.0 if not top else max(credits * height / scale, 1.0 if credits else 0.0)
        bars.append(Bar(x=round(index * slot + gap / 2, 2), y=round(height - bar_height, 2),
                        width=round(max(slot - gap, 1.0), 2), height=round(bar_height, 2), day=day, credits=credits,
                        title=f"{day:%b %d}: {nanos_display(credits)} credits", label=nanos_display(credits)))
    ticks = [Tick(y=round(height - value * height / scale, 2), percent=round(value * 100 / scale, 2),
                  label=nanos_display(value)) for value in range(0, scale + 1, step)] if top else []
    middle = daily[len(daily) // 2][0] if len(daily) > 2 else None
    return BarChart(width=width, height=height, bars=bars, ticks=ticks, max_label=nanos_display(top),
                    first_label=f"{daily[0][0]:%b %d}" if daily else "", middle_label=f"{middle:%b %d}" if middle else "",
                    last_label=f"{daily[-1][0]:%b %d}" if daily else "",
                    total_label=nanos_display(sum(credits for _, credits in daily)), empty=not top)

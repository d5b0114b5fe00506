"""A daily bar chart as inline SVG, drawn on the server: no JavaScript, readable without it."""

from dataclasses import dataclass
from datetime import date

from billing.money import nanos_display


@dataclass
class Bar:
    x: float
    y: float
    width: float
    height: float
    day: date
    credits: int
    title: str


@dataclass
class BarChart:
    width: int
    height: int
    bars: list[Bar]
    max_label: str
    first_label: str
    last_label: str
    empty: bool


def bar_chart(daily: list[tuple[date, int]], *, width: int = 720, height: int = 140) -> BarChart:
    top = max((credits for _, credits in daily), default=0)
    count = max(len(daily), 1)
    slot = min(width / count, 48.0)  # a short range keeps bars bar-shaped, left-aligned
    gap = min(2.0, slot * 0.2)
    bars = []
    for index, (day, credits) in enumerate(daily):
        # Heights are proportional with integer nanocredits; a non-zero day gets at least 1px.
        bar_height = 0.0 if not top else max(credits * (height - 4) / top, 1.0 if credits else 0.0)
        bars.append(Bar(x=round(index * slot + gap / 2, 2), y=round(height - bar_height, 2),
                        width=round(max(slot - gap, 1.0), 2), height=round(bar_height, 2), day=day, credits=credits,
                        title=f"{day:%b %d}: {nanos_display(credits)} credits"))
    return BarChart(width=width, height=height, bars=bars, max_label=nanos_display(top),
                    first_label=f"{daily[0][0]:%b %d}" if daily else "", last_label=f"{daily[-1][0]:%b %d}" if daily else "",
                    empty=not top)

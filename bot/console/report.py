"""The support report: tickets per day, wait and handle times, CSAT, escalation reasons.

Figures are computed from the tickets of the last `days` days; charts are small inline SVGs
rendered here (no JavaScript, no CDN), each with a title and a text alternative.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from html import escape
from zoneinfo import ZoneInfo

from bot.store.support import HandoffTicket


@dataclass(frozen=True)
class SupportReport:
    days: list[date]
    per_day: list[int]
    median_wait_s: float | None
    median_handle_s: float | None
    csat_average: float | None
    csat_counts: list[int]  # index 0 = score 1
    reasons: list[tuple[str, int]]
    total: int
    open: int


def build_report(
    tickets: list[HandoffTicket], now: datetime, zone: ZoneInfo, days: int = 14
) -> SupportReport:
    today = now.astimezone(zone).date()
    day_list = [today - timedelta(days=days - 1 - i) for i in range(days)]
    per_day_counter = Counter(t.created_at.astimezone(zone).date() for t in tickets)
    waits = [(t.claimed_at - t.created_at).total_seconds() for t in tickets if t.claimed_at]
    handles = [
        (t.resolved_at - t.claimed_at).total_seconds()
        for t in tickets
        if t.resolved_at and t.claimed_at
    ]
    scores = [t.csat for t in tickets if t.csat is not None]
    return SupportReport(
        days=day_list,
        per_day=[per_day_counter.get(d, 0) for d in day_list],
        median_wait_s=statistics.median(waits) if waits else None,
        median_handle_s=statistics.median(handles) if handles else None,
        csat_average=statistics.fmean(scores) if scores else None,
        csat_counts=[scores.count(n) for n in range(1, 6)],
        reasons=Counter(t.reason for t in tickets).most_common(),
        total=len(tickets),
        open=sum(1 for t in tickets if t.resolved_at is None),
    )


def duration_text(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def bar_chart(
    title: str, labels: list[str], values: list[int], width: int = 640, height: int = 220
) -> str:
    """Vertical bars with value labels; `role="img"` and a <title>/<desc> for screen readers."""
    pad_left, pad_bottom, pad_top = 32, 36, 16
    top = max(values, default=0) or 1
    n = max(len(values), 1)
    slot = (width - pad_left) / n
    bar = max(4.0, slot * 0.7)
    plot_h = height - pad_bottom - pad_top
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="{_id(title)}-t {_id(title)}-d" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{_id(title)}-t">{escape(title)}</title>',
        f'<desc id="{_id(title)}-d">'
        + escape(
            ", ".join(f"{label}: {value}" for label, value in zip(labels, values, strict=True))
        )
        + "</desc>",
        f'<line x1="{pad_left}" y1="{height - pad_bottom}" x2="{width}" '
        f'y2="{height - pad_bottom}" class="axis"/>',
    ]
    every = max(1, n // 14)
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        h = plot_h * value / top
        x = pad_left + i * slot + (slot - bar) / 2
        y = height - pad_bottom - h
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" '
            f'class="bar"><title>{escape(label)}: {value}</title></rect>'
        )
        if value:
            parts.append(
                f'<text x="{x + bar / 2:.1f}" y="{y - 3:.1f}" class="value" '
                f'text-anchor="middle">{value}</text>'
            )
        if i % every == 0:
            parts.append(
                f'<text x="{x + bar / 2:.1f}" y="{height - pad_bottom + 16}" '
                f'class="label" text-anchor="middle">{escape(label)}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def hbar_chart(title: str, rows: list[tuple[str, int]], width: int = 640) -> str:
    """Horizontal bars, one row per label (escalation reasons)."""
    row_h, label_w = 28, 190
    height = max(1, len(rows)) * row_h + 8
    top = max((v for _, v in rows), default=0) or 1
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="{_id(title)}-t {_id(title)}-d" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{_id(title)}-t">{escape(title)}</title>',
        f'<desc id="{_id(title)}-d">'
        + escape(", ".join(f"{label}: {value}" for label, value in rows) or "no tickets")
        + "</desc>",
    ]
    for i, (label, value) in enumerate(rows):
        y = 4 + i * row_h
        w = (width - label_w - 40) * value / top
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 18}" class="label" '
            f'text-anchor="end">{escape(label.replace("_", " "))}</text>'
        )
        parts.append(
            f'<rect x="{label_w}" y="{y + 4}" width="{w:.1f}" height="{row_h - 10}" class="bar"/>'
        )
        parts.append(f'<text x="{label_w + w + 6:.1f}" y="{y + 18}" class="value">{value}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _id(title: str) -> str:
    return "chart-" + "".join(c if c.isalnum() else "-" for c in title.lower())

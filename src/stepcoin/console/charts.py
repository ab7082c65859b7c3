"""Small bar charts drawn on the server as inline SVG: no chart library, no script, no CDN.

Heights are SVG attributes rather than inline styles, so the console's Content-Security-Policy
(style-src 'self') holds; each bar carries a <title> so hovering shows the exact figure.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape


def _scale(values: Sequence[int | float]) -> float:
    top = max((abs(v) for v in values), default=0)
    return float(top) if top > 0 else 1.0


def bar_chart(
    points: Sequence[tuple[str, int | float]],
    *,
    width: int = 280,
    height: int = 60,
    css_class: str = "chart",
    highlight: str | None = None,
    label: str = "chart",
) -> Markup:
    """One series: `points` are (label, value); the bar whose label is `highlight` stands out."""
    if not points:
        return Markup(
            '<svg class="{}" role="img" aria-label="{}" width="{}" height="{}"></svg>'
        ).format(css_class, label, width, height)
    top = _scale([v for _, v in points])
    step = width / len(points)
    bar = max(step - 1.0, 1.0)
    parts = [
        f'<svg class="{escape(css_class)}" role="img" aria-label="{escape(label)}" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}">'
    ]
    for i, (name, value) in enumerate(points):
        h = 0.0 if value <= 0 else max(1.0, height * value / top)
        cls = "bar hl" if highlight is not None and name == highlight else "bar"
        parts.append(
            f'<rect class="{cls}" x="{i * step:.1f}" y="{height - h:.1f}" '
            f'width="{bar:.1f}" height="{h:.1f}"><title>{escape(name)}: {value:,}</title></rect>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 (every label and figure is escaped above)


def paired_bar_chart(
    points: Sequence[tuple[str, int, int]],
    *,
    width: int = 720,
    height: int = 160,
    names: tuple[str, str] = ("issued", "redeemed"),
    label: str = "chart",
    marks: Sequence[tuple[str, str]] = (),
) -> Markup:
    """Two series side by side per label (e.g. coins issued and redeemed per day); `marks`:
    (label, title) pairs drawn as a dashed vertical line before that label's bars (the day an
    earn rule took effect, say)."""
    top = _scale([v for _, a, b in points for v in (a, b)])
    step = width / max(len(points), 1)
    bar = max(step / 2 - 0.5, 0.5)
    parts = [
        f'<svg class="chart wide" role="img" aria-label="{escape(label)}" '
        f'viewBox="0 0 {width} {height + 14}" width="100%" height="{height + 14}" '
        'preserveAspectRatio="none">'
    ]
    for i, (name, first, second) in enumerate(points):
        for j, (value, cls) in enumerate(((first, "bar a"), (second, "bar b"))):
            h = 0.0 if value <= 0 else max(1.0, height * value / top)
            parts.append(
                f'<rect class="{cls}" x="{i * step + j * bar:.1f}" y="{height - h:.1f}" '
                f'width="{bar:.1f}" height="{h:.1f}"><title>{escape(name)}: '
                f"{escape(names[j])} {value:,}</title></rect>"
            )
    positions = {name: i for i, (name, _, _) in enumerate(points)}
    for name, title in marks:
        if name in positions:
            x = positions[name] * step
            parts.append(
                f'<line class="mark" x1="{x:.1f}" y1="0" x2="{x:.1f}" y2="{height}" '
                f'stroke="currentColor" stroke-dasharray="3 3" data-mark="{escape(name)}">'
                f"<title>{escape(name)}: {escape(title)}</title></line>"
            )
    if points:
        first_label, last_label = points[0][0], points[-1][0]
        parts.append(
            f'<text x="0" y="{height + 12}" class="axis">{escape(first_label)}</text>'
            f'<text x="{width}" y="{height + 12}" class="axis" text-anchor="end">'
            f"{escape(last_label)}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 (every label and figure is escaped above)

"""The dashboard's plots: small static SVGs written directly, inlined in the page.

Every plot is drawn from aggregates only: the site's own figures and the
registry's (or a peer group's) median and quartiles. No other site's figure
reaches a plot, so none can be read off one.

The dashboard shows some forty plots a page, each different for every site
and period, so they are written as SVG markup here rather than drawn by a
plotting library (matplotlib took about 75 ms a plot, three seconds a page;
this takes well under one). Text stays text, which keeps the markup small
and readable by screen readers; the PDF reports still draw with matplotlib
(:mod:`registry3d.reports.pdf_plots`).
"""

import html
import math
from functools import lru_cache

ACCENT = "#0b5cad"
REGISTRY = "#5b6775"
BOX = "#d8e4f2"
LIMIT = "#a32020"
GRID = "#e6ebf1"
FONT = 'font-family="DejaVu Sans, Arial, sans-serif"'

# The z-values of the funnel plot's control limits (two-sided 95% and 99.8%).
Z95, Z998 = 1.96, 3.09


def scale(value: float | None, unit: str) -> float | None:
    """Proportions are kept as shares (0-1) and drawn in percent."""
    if value is None:
        return None
    return value * 100 if unit == "%" else value


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "no value"
    if unit == "%":
        return f"{value:.0f}%"
    if abs(value) >= 100 or float(value).is_integer():
        return f"{value:.0f} {unit}"
    return f"{value:.1f} {unit}"


def nice_ticks(low: float, high: float, count: int = 5, integer: bool = False) -> list[float]:
    """Round tick values from ``low`` to ``high`` (both included), about ``count`` of them."""
    if not high > low:
        high = low + 1
    raw = (high - low) / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    if integer:
        step = max(1, math.ceil(step))
    first = math.floor(low / step) * step
    ticks, value = [], first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    if ticks[-1] < high:
        ticks.append(round(value, 10))
    return ticks


def _tick_text(value: float) -> str:
    if float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def _n(value: float) -> str:
    """A coordinate: hundredths of a pixel are plenty."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _text(x, y, content, *, size=10, anchor="start", fill="#222", extra="") -> str:
    return (
        f'<text x="{_n(x)}" y="{_n(y)}" font-size="{size}" text-anchor="{anchor}" '
        f'fill="{fill}"{extra}>{html.escape(str(content))}</text>'
    )


def _line(x1, y1, x2, y2, colour, width=1.0, dash="") -> str:
    dashes = f' stroke-dasharray="{dash}"' if dash else ""
    return (
        f'<line x1="{_n(x1)}" y1="{_n(y1)}" x2="{_n(x2)}" y2="{_n(y2)}" stroke="{colour}" '
        f'stroke-width="{width}"{dashes}/>'
    )


def _polyline(points, colour, width, dash="") -> str:
    dashes = f' stroke-dasharray="{dash}"' if dash else ""
    coords = " ".join(f"{_n(x)},{_n(y)}" for x, y in points)
    return (
        f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="{width}"'
        f'{dashes} stroke-linejoin="round"/>'
    )


def _marker(kind: str, x, y, colour, size) -> str:
    half = size / 2
    if kind == "circle":
        return f'<circle cx="{_n(x)}" cy="{_n(y)}" r="{_n(half)}" fill="{colour}"/>'
    if kind == "square":
        return (
            f'<rect x="{_n(x - half)}" y="{_n(y - half)}" width="{_n(size)}" '
            f'height="{_n(size)}" fill="{colour}"/>'
        )
    return (
        f'<polygon points="{_n(x)},{_n(y - half)} {_n(x + half)},{_n(y)} {_n(x)},{_n(y + half)} '
        f'{_n(x - half)},{_n(y)}" fill="{colour}"/>'
    )


def _svg(width: int, height: int, label: str, name: str, data: str, body: list[str]) -> str:
    """The plot as inline SVG markup with a title and an ARIA label."""
    label = html.escape(label, quote=True)
    return (
        f'<svg role="img" aria-label="{label}" class="plot" data-plot="{html.escape(name)}" '
        f'data-values="{html.escape(data, quote=True)}" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" {FONT}>'
        f"<title>{label}</title>" + "".join(body) + "</svg>"
    )


class _Axes:
    """A plotting area inside the margins, mapping data to pixels."""

    def __init__(self, width, height, left, right, top, bottom, x_range, y_range):
        self.x0, self.x1 = left, width - right
        self.y0, self.y1 = height - bottom, top  # pixel y grows downwards
        self.xlo, self.xhi = x_range
        self.ylo, self.yhi = y_range

    def x(self, value: float) -> float:
        span = (self.xhi - self.xlo) or 1
        return self.x0 + (value - self.xlo) / span * (self.x1 - self.x0)

    def y(self, value: float) -> float:
        span = (self.yhi - self.ylo) or 1
        return self.y0 - (value - self.ylo) / span * (self.y0 - self.y1)

    def y_grid(self, ticks) -> list[str]:
        out = []
        for tick in ticks:
            y = self.y(tick)
            out.append(_line(self.x0, y, self.x1, y, GRID, 0.8))
            out.append(_text(self.x0 - 4, y + 3, _tick_text(tick), size=9.5, anchor="end"))
        return out

    def x_grid(self, ticks) -> list[str]:
        out = []
        for tick in ticks:
            x = self.x(tick)
            out.append(_line(x, self.y0, x, self.y1, GRID, 0.8))
            out.append(_text(x, self.y0 + 11, _tick_text(tick), size=9.5, anchor="middle"))
        return out

    def frame(self) -> list[str]:
        return [
            _line(self.x0, self.y0, self.x1, self.y0, "#555", 0.8),
            _line(self.x0, self.y0, self.x0, self.y1, "#555", 0.8),
        ]


def _segments(points):
    """Runs of consecutive known points: a None leaves a gap in the line."""
    run = []
    for point in points:
        if point[1] is None:
            if run:
                yield run
            run = []
        else:
            run.append(point)
    if run:
        yield run


def _legend(entries, y: float, width: int) -> list[str]:
    """A row of (marker kind, colour, dash, text) centred at ``y``."""
    widths = [30 + 5.8 * len(text) for *_, text in entries]
    x = (width - sum(widths)) / 2
    out = []
    for (kind, colour, dash, text), room in zip(entries, widths, strict=True):
        if dash is not None:
            out.append(_line(x, y, x + 16, y, colour, 1.4, dash))
        if kind:
            out.append(_marker(kind, x + 8, y, colour, 5))
        out.append(_text(x + 20, y + 3, text, size=9.5))
        x += room
    return out


@lru_cache(maxsize=1024)
def trend(
    label: str,
    unit: str,
    quarters: tuple[str, ...],
    site: tuple[float | None, ...],
    registry: tuple[float | None, ...] | None,
) -> str:
    """The site's value per quarter as a line, with the registry median beside it.

    ``registry`` is None when the comparison is not to be shown at all; a
    None inside it is a quarter whose median is suppressed.
    """
    rotate = len(quarters) > 6
    width, height = 330, 210 if rotate else 190
    own = [scale(v, unit) for v in site]
    median = [scale(v, unit) for v in registry] if registry is not None else []
    show_median = registry is not None and any(v is not None for v in median)
    values = [v for v in own + median if v is not None]
    if values and min(values) >= 0:
        ticks = nice_ticks(0, max(values) * 1.15 or 1, integer=unit == "cases")
    elif values:
        spread = (max(values) - min(values)) or abs(max(values)) or 1
        ticks = nice_ticks(min(values) - 0.1 * spread, max(values) + 0.1 * spread)
    else:
        ticks = [0, 1]
    axes = _Axes(
        width,
        height,
        left=50,
        right=12,
        top=28,
        bottom=62 if rotate else 40,
        x_range=(-0.3, len(quarters) - 0.7),
        y_range=(ticks[0], ticks[-1]),
    )
    body = axes.y_grid(ticks) + axes.frame()
    every = math.ceil(len(quarters) / 12)  # at most a dozen labels
    for index in range(0, len(quarters), every):
        x, text = axes.x(index), quarters[index].replace("Q", " Q")
        if rotate:
            body.append(
                _text(
                    x + 3,
                    axes.y0 + 10,
                    text,
                    size=9.5,
                    anchor="end",
                    extra=f' transform="rotate(-45 {_n(x + 3)} {_n(axes.y0 + 10)})"',
                )
            )
        else:
            body.append(_text(x, axes.y0 + 12, text, size=9.5, anchor="middle"))
    body.append(_text((axes.x0 + axes.x1) / 2, height - 4, "Quarter", size=9.5, anchor="middle"))
    body.append(
        _text(
            12,
            (axes.y0 + axes.y1) / 2,
            unit,
            size=9.5,
            anchor="middle",
            extra=f' transform="rotate(-90 12 {_n((axes.y0 + axes.y1) / 2)})"',
        )
    )
    if show_median:
        points = [(axes.x(i), None if v is None else axes.y(v)) for i, v in enumerate(median)]
        for run in _segments(points):
            body.append(_polyline(run, REGISTRY, 1.5, "5 3"))
            body += [_marker("square", x, y, REGISTRY, 5) for x, y in run]
    points = [(axes.x(i), None if v is None else axes.y(v)) for i, v in enumerate(own)]
    for run in _segments(points):
        body.append(_polyline(run, ACCENT, 2))
        body += [_marker("circle", x, y, ACCENT, 6) for x, y in run]
    if not values:
        body.append(
            _text(
                (axes.x0 + axes.x1) / 2,
                (axes.y0 + axes.y1) / 2,
                "no value in this period",
                anchor="middle",
                fill=REGISTRY,
            )
        )
    legend = [("circle", ACCENT, "", "Your site")]
    if show_median:
        legend.append(("square", REGISTRY, "5 3", "Registry median"))
    body += _legend(legend, 10, width)
    parts = [f"{q}: {_fmt(v, unit)}" for q, v in zip(quarters, own, strict=True)]
    text = f"{label} by quarter. Your site: {'; '.join(parts)}."
    if registry is not None:
        medians = [
            f"{q}: {'suppressed' if v is None else _fmt(v, unit)}"
            for q, v in zip(quarters, median, strict=True)
        ]
        text += f" Registry median: {'; '.join(medians)}."
    data = ",".join("" if v is None else f"{v:.4g}" for v in own)
    return _svg(width, height, text, "trend", data, body)


@lru_cache(maxsize=1024)
def distribution(
    label: str,
    unit: str,
    value: float | None,
    groups: tuple[tuple[str, float, float, float], ...],
) -> str:
    """Boxes from the first to the third quartile of site values, the median a bar.

    ``groups`` holds (name, q1, median, q3) per group shown; the site's own
    value is marked as a diamond and a line across every group. There are no
    whiskers: a minimum or maximum would be one site's figure.
    """
    width, row_height = 330, 30
    height = 50 + row_height * len(groups)
    own = scale(value, unit)
    scaled = [(name, *(scale(v, unit) for v in (q1, m, q3))) for name, q1, m, q3 in groups]
    values = [v for _, q1, _m, q3 in scaled for v in (q1, q3)] + ([own] if own is not None else [])
    low, high = min(values), max(values)
    margin = 0.12 * ((high - low) or abs(high) or 1)
    ticks = nice_ticks(low - margin, high + margin, count=4)
    axes = _Axes(
        width,
        height,
        left=128,
        right=14,
        top=8,
        bottom=38,
        x_range=(ticks[0], ticks[-1]),
        y_range=(0, len(groups)),
    )
    body = axes.x_grid(ticks) + axes.frame()
    for index, (name, q1, median, q3) in enumerate(scaled):
        centre = axes.y(len(groups) - index - 0.5)
        left, right = axes.x(q1), axes.x(q3)
        body.append(
            f'<rect x="{_n(left)}" y="{_n(centre - 7.5)}" width="{_n(max(right - left, 0.5))}" '
            f'height="15" fill="{BOX}" stroke="{REGISTRY}" stroke-width="0.8"/>'
        )
        body.append(
            _line(axes.x(median), centre - 7.5, axes.x(median), centre + 7.5, REGISTRY, 1.8)
        )
        shown = name if len(name) <= 24 else name[:23] + "…"
        body.append(_text(axes.x0 - 5, centre + 3, shown, size=9.5, anchor="end"))
    if own is not None:
        x = axes.x(own)
        body.append(_line(x, axes.y0, x, axes.y1, ACCENT, 1, "1.5 2"))
        for index in range(len(groups)):
            body.append(_marker("diamond", x, axes.y(len(groups) - index - 0.5), ACCENT, 8))
    title = label if label.lower() == unit else f"{label} ({unit})"
    body.append(_text((axes.x0 + axes.x1) / 2, height - 6, title, size=9.5, anchor="middle"))
    described = "; ".join(
        f"{name}: median {_fmt(scale(m, unit), unit)}, interquartile range "
        f"{_fmt(scale(q1, unit), unit)} to {_fmt(scale(q3, unit), unit)}"
        for name, q1, m, q3 in groups
    )
    text = f"{label}: your site {_fmt(own, unit)}. {described}."
    data = ",".join(f"{scale(v, unit):.4g}" for g in groups for v in g[1:])
    return _svg(width, height, text, "distribution", data, body)


def funnel_limits(rate: float, n: int) -> tuple[float, float, float, float]:
    """95% and 99.8% limits around ``rate`` for a site of ``n`` cases (normal approximation)."""
    spread = math.sqrt(rate * (1 - rate) / n)
    return (
        max(0.0, rate - Z95 * spread),
        min(1.0, rate + Z95 * spread),
        max(0.0, rate - Z998 * spread),
        min(1.0, rate + Z998 * spread),
    )


def _nice_ceiling(value: float) -> int:
    """The next of 20, 50, 100, 200, 500, 1000... at or above ``value``."""
    step = 10 ** max(1, math.floor(math.log10(max(value, 1))))
    for factor in (1, 2, 5, 10):
        if step * factor >= value:
            return int(step * factor)
    return int(step * 10)


@lru_cache(maxsize=256)
def funnel(label: str, rate: float, n: int, own: float) -> str:
    """The site's rate against its number of cases, inside the registry's control limits.

    The limits are drawn out to a round number above the site's own count,
    not to the largest site's, so the axis tells nothing about other sites.
    """
    top = _nice_ceiling(max(20, n * 1.5))
    sizes = sorted({max(1, round(top * k / 80)) for k in range(1, 81)} | {1, 2, 3, 5, n})
    limits = [funnel_limits(rate, size) for size in sizes]
    width, height = 330, 235
    axes = _Axes(
        width, height, left=50, right=12, top=40, bottom=40, x_range=(0, top), y_range=(0, 100)
    )
    body = axes.y_grid(nice_ticks(0, 100, count=6)) + axes.x_grid(nice_ticks(0, top, count=5))
    body += axes.frame()
    for index, dash in ((1, "4 2"), (0, "4 2"), (3, "1.5 2"), (2, "1.5 2")):
        body.append(
            _polyline(
                [
                    (axes.x(s), axes.y(100 * lim[index]))
                    for s, lim in zip(sizes, limits, strict=True)
                ],
                LIMIT,
                0.9,
                dash,
            )
        )
    body.append(_line(axes.x0, axes.y(100 * rate), axes.x1, axes.y(100 * rate), REGISTRY, 1.2))
    body.append(_marker("diamond", axes.x(n), axes.y(100 * own), ACCENT, 10))
    body.append(
        _text((axes.x0 + axes.x1) / 2, height - 4, "Cases counted (n)", size=9.5, anchor="middle")
    )
    middle = (axes.y0 + axes.y1) / 2
    body.append(
        _text(
            12,
            middle,
            "Share of cases (%)",
            size=9.5,
            anchor="middle",
            extra=f' transform="rotate(-90 12 {_n(middle)})"',
        )
    )
    body += _legend(
        [("", REGISTRY, "", "Registry rate"), ("", LIMIT, "4 2", "95% limits")], 10, width
    )
    body += _legend(
        [("", LIMIT, "1.5 2", "99.8% limits"), ("diamond", ACCENT, None, "Your site")], 24, width
    )
    low95, high95, low998, high998 = funnel_limits(rate, n)
    if low95 <= own <= high95:
        where = "inside the 95% limits"
    elif low998 <= own <= high998:
        where = "between the 95% and the 99.8% limits"
    else:
        where = "outside the 99.8% limits"
    text = (
        f"Funnel plot of {label}: your site {100 * own:.0f}% of {n} cases against a registry "
        f"rate of {100 * rate:.0f}%; at {n} cases the 95% limits are {100 * low95:.0f}% to "
        f"{100 * high95:.0f}% and the 99.8% limits {100 * low998:.0f}% to {100 * high998:.0f}%; "
        f"your site is {where}."
    )
    return _svg(width, height, text, "funnel", f"{n},{own:.4g},{rate:.4g}", body)

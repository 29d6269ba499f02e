"""The dashboard's plots: small static SVGs drawn with matplotlib, inlined in the page.

Every plot is drawn from aggregates only: the site's own figures and the
registry's (or a peer group's) median and quartiles. No other site's figure
reaches a plot, so none can be read off one.

Plots are drawn on :class:`matplotlib.figure.Figure` objects, never through
pyplot's global figure list, so nothing is left open; the style is applied
with ``rc_context`` under a lock, one plot at a time. Text stays text in the
SVG (``svg.fonttype: none``), which keeps the markup small and readable by
screen readers.
"""

import hashlib
import html
import io
import math
import re
import threading
from functools import lru_cache, wraps

import matplotlib

matplotlib.use("Agg")

from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

ACCENT = "#0b5cad"
REGISTRY = "#5b6775"
BOX = "#d8e4f2"
LIMIT = "#a32020"
STYLE = {
    "svg.fonttype": "none",
    "svg.hashsalt": "registry3d",
    "font.size": 8,
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
# matplotlib's settings are global and rc_context changes them for a while: one
# plot at a time per process, so a request in another thread never sees them half set.
_drawing = threading.Lock()


def _one_at_a_time(function):
    @wraps(function)
    def locked(*args, **kwargs):
        with _drawing:
            return function(*args, **kwargs)

    return locked


# The z-values of the funnel plot's control limits (two-sided 95% and 99.8%).
Z95, Z998 = 1.96, 3.09


def scale(value: float | None, unit: str) -> float | None:
    """Proportions are kept as shares (0-1) and drawn in percent."""
    if value is None:
        return None
    return value * 100 if unit == "%" else value


def _svg(fig: Figure, label: str, name: str, data: str) -> str:
    """The figure as inline SVG markup with a title, an ARIA label and unique ids."""
    buffer = io.StringIO()
    with matplotlib.rc_context(STYLE):
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    markup = buffer.getvalue()
    markup = markup[markup.index("<svg") :]
    markup = re.sub(r"\s*<metadata>.*?</metadata>", "", markup, flags=re.S)
    markup = re.sub(r"\s*<!--.*?-->", "", markup, flags=re.S)
    markup = re.sub(r"\n\s*", "\n", markup)
    markup = re.sub(r"(\d\.\d\d)\d+", r"\1", markup)  # hundredths of a point are plenty
    referenced = set(re.findall(r'(?:url\(#|href="#)([^)"]+)', markup))
    markup = re.sub(
        r' id="([^"]+)"', lambda m: m[0] if m[1] in referenced else "", markup
    )  # matplotlib names every group; keep only the ids something points to
    digest = hashlib.sha1(f"{name}|{label}|{data}".encode(), usedforsecurity=False)
    prefix = f"{name[0]}{digest.hexdigest()[:8]}-"
    markup = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{prefix}{m[1]}"', markup)
    markup = re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{prefix}{m[1]})", markup)
    markup = re.sub(r'href="#([^"]+)"', lambda m: f'href="#{prefix}{m[1]}"', markup)
    label = html.escape(label, quote=True)
    opening = (
        f'<svg role="img" aria-label="{label}" class="plot" data-plot="{html.escape(name)}" '
        f'data-values="{html.escape(data, quote=True)}"'
    )
    markup = markup.replace("<svg", opening, 1)
    end = markup.index(">", markup.index("<svg")) + 1
    return markup[:end] + f"<title>{label}</title>" + markup[end:]


def _figure(width: float, height: float, *, left=0.5, bottom=0.42, top=0.08) -> Figure:
    """A figure with fixed margins in inches (cheaper than a layout engine, same every time)."""
    fig = Figure(figsize=(width, height))
    fig.subplots_adjust(
        left=left / width, right=1 - 0.12 / width, bottom=bottom / height, top=1 - top / height
    )
    return fig


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "no value"
    if unit == "%":
        return f"{value:.0f}%"
    if abs(value) >= 100 or float(value).is_integer():
        return f"{value:.0f} {unit}"
    return f"{value:.1f} {unit}"


@lru_cache(maxsize=1024)
@_one_at_a_time
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
    with matplotlib.rc_context(STYLE):
        rotate = len(quarters) > 6
        fig = _figure(3.3, 2.1 if rotate else 1.9, bottom=0.62 if rotate else 0.4, top=0.28)
        ax = fig.subplots()
        x = list(range(len(quarters)))
        own = [scale(v, unit) for v in site]
        ax.plot(
            x,
            [math.nan if v is None else v for v in own],
            marker="o",
            markersize=3.5,
            color=ACCENT,
            linewidth=1.6,
            label="Your site",
        )
        median = [scale(v, unit) for v in registry] if registry is not None else []
        if registry is not None and any(v is not None for v in median):
            ax.plot(
                x,
                [math.nan if v is None else v for v in median],
                marker="s",
                markersize=3,
                color=REGISTRY,
                linewidth=1.2,
                linestyle="--",
                label="Registry median",
            )
        every = math.ceil(len(quarters) / 12)  # at most a dozen labels
        ax.set_xticks(x[::every], [q.replace("Q", " Q") for q in quarters[::every]])
        if rotate:
            for tick in ax.get_xticklabels():
                tick.set_rotation(45)
                tick.set_horizontalalignment("right")
        ax.set_xlabel("Quarter")
        ax.set_ylabel(unit)
        if unit == "cases":
            ax.yaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
        values = [v for v in own + median if v is not None]
        if not values:
            ax.text(
                0.5,
                0.5,
                "no value in this period",
                transform=ax.transAxes,
                ha="center",
                color=REGISTRY,
            )
        elif min(values) >= 0:
            ax.set_ylim(bottom=0, top=max(values) * 1.15 or 1)
        ax.grid(axis="y", color="#e6ebf1", linewidth=0.6)
        fig.legend(loc="upper center", frameon=False, ncols=2, borderaxespad=0.1)
    parts = [f"{q}: {_fmt(v, unit)}" for q, v in zip(quarters, own, strict=True)]
    text = f"{label} by quarter. Your site: {'; '.join(parts)}."
    if registry is not None:
        medians = [
            f"{q}: {'suppressed' if v is None else _fmt(v, unit)}"
            for q, v in zip(quarters, median, strict=True)
        ]
        text += f" Registry median: {'; '.join(medians)}."
    data = ",".join("" if v is None else f"{v:.4g}" for v in own)
    return _svg(fig, text, "trend", data)


@lru_cache(maxsize=1024)
@_one_at_a_time
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
    with matplotlib.rc_context(STYLE):
        fig = _figure(3.3, 0.5 + 0.3 * len(groups), left=0.8, bottom=0.38, top=0.06)
        ax = fig.subplots()
        names = [g[0] for g in groups]
        y = list(range(len(groups)))[::-1]
        for row, (_, q1, median, q3) in zip(y, groups, strict=True):
            q1, median, q3 = scale(q1, unit), scale(median, unit), scale(q3, unit)
            ax.barh(
                row,
                max(q3 - q1, 1e-9),
                left=q1,
                height=0.5,
                color=BOX,
                edgecolor=REGISTRY,
                linewidth=0.8,
            )
            ax.plot([median, median], [row - 0.25, row + 0.25], color=REGISTRY, linewidth=1.8)
        own = scale(value, unit)
        if own is not None:
            ax.axvline(own, color=ACCENT, linewidth=1, linestyle=":")
            ax.plot([own] * len(y), y, marker="D", markersize=4.5, color=ACCENT, linestyle="none")
        ax.margins(x=0.12)
        ax.set_yticks(y, names)
        ax.set_ylim(-0.6, len(groups) - 0.4)
        ax.set_xlabel(label if label.lower() == unit else f"{label} ({unit})")
        ax.grid(axis="x", color="#e6ebf1", linewidth=0.6)
    described = "; ".join(
        f"{name}: median {_fmt(scale(m, unit), unit)}, interquartile range "
        f"{_fmt(scale(q1, unit), unit)} to {_fmt(scale(q3, unit), unit)}"
        for name, q1, m, q3 in groups
    )
    text = f"{label}: your site {_fmt(own, unit)}. {described}."
    data = ",".join(f"{scale(v, unit):.4g}" for g in groups for v in g[1:])
    return _svg(fig, text, "distribution", data)


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
@_one_at_a_time
def funnel(label: str, rate: float, n: int, own: float) -> str:
    """The site's rate against its number of cases, inside the registry's control limits.

    The limits are drawn out to a round number above the site's own count,
    not to the largest site's, so the axis tells nothing about other sites.
    """
    top = _nice_ceiling(max(20, n * 1.5))
    sizes = sorted({max(1, round(top * k / 80)) for k in range(1, 81)} | {1, 2, 3, 5, n})
    limits = [funnel_limits(rate, size) for size in sizes]
    with matplotlib.rc_context(STYLE):
        fig = _figure(3.3, 2.35, top=0.4)
        ax = fig.subplots()
        ax.plot(sizes, [100 * lim[1] for lim in limits], color=LIMIT, linewidth=0.9, ls="--")
        ax.plot(sizes, [100 * lim[0] for lim in limits], color=LIMIT, linewidth=0.9, ls="--")
        ax.plot(sizes, [100 * lim[3] for lim in limits], color=LIMIT, linewidth=0.9, ls=":")
        ax.plot(sizes, [100 * lim[2] for lim in limits], color=LIMIT, linewidth=0.9, ls=":")
        ax.axhline(100 * rate, color=REGISTRY, linewidth=1.2)
        ax.plot([n], [100 * own], marker="D", markersize=5.5, color=ACCENT, linestyle="none")
        ax.set_xlim(0, top)
        ax.set_ylim(0, 100)
        ax.set_xlabel("Cases counted (n)")
        ax.set_ylabel("Share of cases (%)")
        ax.grid(color="#e6ebf1", linewidth=0.6)
        handles = [
            ax.plot([], [], color=REGISTRY, linewidth=1.2)[0],
            ax.plot([], [], color=LIMIT, linewidth=0.9, ls="--")[0],
            ax.plot([], [], color=LIMIT, linewidth=0.9, ls=":")[0],
            ax.plot([], [], marker="D", color=ACCENT, linestyle="none", markersize=5)[0],
        ]
        fig.legend(
            handles,
            ["Registry rate", "95% limits", "99.8% limits", "Your site"],
            loc="upper center",
            frameon=False,
            ncols=2,
            borderaxespad=0.1,
            handlelength=1.6,
            columnspacing=0.8,
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
    return _svg(fig, text, "funnel", f"{n},{own:.4g},{rate:.4g}")

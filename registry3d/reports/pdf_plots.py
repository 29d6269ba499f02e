"""Small static plots for the PDF reports: SVG drawn by matplotlib in memory.

Only matplotlib's object API is used (no pyplot, no global state), so plots
can be drawn from several threads; text is drawn as paths, so the PDF needs
no font from the plot.
"""

import base64
import io

from matplotlib.figure import Figure

SITE_COLOUR = "#1f5f99"
REGISTRY_COLOUR = "#8a8a8a"


def _svg(figure: Figure) -> str:
    out = io.StringIO()
    figure.savefig(out, format="svg", metadata={"Date": None})
    return out.getvalue()


def data_uri(svg: str) -> str:
    """An ``<img src>`` for the SVG: nothing is fetched while rendering."""
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def trend_svg(points: list[dict], title: str, unit: str, *, scale: float = 1.0) -> str:
    """The site's value per quarter and, where shown, the registry median of site values.

    ``points`` are :func:`registry3d.reports.metrics.trend` rows; a ``registry``
    of None (suppressed or withheld) leaves a gap.
    """
    figure = Figure(figsize=(3.5, 2.1), dpi=100)
    axes = figure.add_subplot()
    quarters = [p["quarter"] for p in points]
    positions = list(range(len(quarters)))

    def series(key):
        return [None if p[key] is None else p[key] * scale for p in points]

    site = series("site")
    registry = series("registry")
    if any(v is not None for v in registry):
        axes.plot(
            positions,
            [float("nan") if v is None else v for v in registry],
            color=REGISTRY_COLOUR,
            linestyle="--",
            marker="s",
            markersize=3,
            linewidth=1,
            label="Registry median",
        )
    axes.plot(
        positions,
        [float("nan") if v is None else v for v in site],
        color=SITE_COLOUR,
        marker="o",
        markersize=4,
        linewidth=1.5,
        label="This site",
    )
    axes.set_title(f"{title} ({unit})" if unit else title, fontsize=8, loc="left")
    axes.set_xticks(positions, quarters, fontsize=6, rotation=0)
    axes.tick_params(axis="y", labelsize=6)
    axes.set_xlim(-0.5, max(len(quarters) - 0.5, 0.5))
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    axes.grid(axis="y", linewidth=0.3, color="#dddddd")
    if not any(v is not None for v in site + registry):
        axes.text(0.5, 0.5, "no data", ha="center", va="center", transform=axes.transAxes)
    axes.legend(fontsize=6, frameon=False, loc="best")
    figure.tight_layout(pad=0.4)
    return _svg(figure)

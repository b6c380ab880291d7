"""The demo's PNG chart: queue backlog by state over the HPA's view of it, and replicas with Aurora CPU.

matplotlib is imported only when a chart is drawn, with the Agg backend: no display is needed and
the rest of tidegauge does not pay for the import.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tidegauge.demo.scenario import CPU_TARGET_PERCENT
from tidegauge.demo.timeline import TimelinePoint

WIDTH_INCHES = 10
HEIGHT_INCHES = 6
DPI = 100
_MINUTES_ABOVE_SECONDS = 180.0


def render_chart(
    timeline: Sequence[TimelinePoint], path: Path, title: str, *, derived: str | None = None
) -> Path:
    """Draw ``timeline`` into a 1000x600 PNG at ``path`` (parent folders created) and return the path.

    With ``derived`` (the HPA's one metric, in replicas), its values are drawn over the replicas and the
    CPU target as a line; otherwise the ``sqs_messages`` values the HPA saw are drawn over the backlog.
    """
    if not timeline:
        raise ValueError("cannot draw a chart of an empty timeline")
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    in_minutes = timeline[-1].t > _MINUTES_ABOVE_SECONDS
    scale = 60.0 if in_minutes else 1.0
    times = [point.t / scale for point in timeline]

    figure = Figure(figsize=(WIDTH_INCHES, HEIGHT_INCHES), dpi=DPI, layout="constrained")
    backlog_axes, replicas_axes = figure.subplots(2, 1, sharex=True, height_ratios=(3, 2))

    backlog_axes.stackplot(
        times,
        [point.visible for point in timeline],
        [point.in_flight for point in timeline],
        [point.delayed for point in timeline],
        labels=("visible", "in flight", "delayed"),
        colors=("#4c78a8", "#f58518", "#b279a2"),
        alpha=0.8,
    )
    seen = _new_observations(timeline)
    if derived is None:
        backlog_axes.scatter(
            [point.t / scale for point in seen],
            [point.hpa_value for point in seen],
            s=14,
            color="#222222",
            label="sqs_messages seen by the HPA",
            zorder=3,
        )
    backlog_axes.set_ylabel("messages")
    backlog_axes.set_ylim(bottom=0)
    backlog_axes.set_title(title)
    backlog_axes.legend(loc="upper right", fontsize=8)
    backlog_axes.grid(alpha=0.3)

    replicas_axes.step(
        times, [point.desired for point in timeline], where="post", label="desired", color="#e45756"
    )
    replicas_axes.step(
        times,
        [point.ready for point in timeline],
        where="post",
        label="ready",
        color="#54a24b",
        linestyle="--",
    )
    replicas_axes.set_ylabel("replicas")
    replicas_axes.set_ylim(bottom=0)
    replicas_axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    replicas_axes.set_xlabel("simulated minutes" if in_minutes else "simulated seconds")
    replicas_axes.grid(alpha=0.3)

    cpu_axes = replicas_axes.twinx()
    with_cpu = [point for point in timeline if point.cpu is not None]
    cpu_axes.plot(
        [point.t / scale for point in with_cpu],
        [point.cpu for point in with_cpu],
        color="#9d755d",
        alpha=0.7,
        linewidth=1,
        label="Aurora CPU %",
    )
    cpu_axes.set_ylim(0, 100)
    cpu_axes.set_ylabel("Aurora CPU %")
    if derived is not None:
        replicas_axes.scatter(
            [point.t / scale for point in seen],
            [point.hpa_value for point in seen],
            s=10,
            color="#222222",
            label=f"{derived} seen by the HPA",
            zorder=3,
        )
        cpu_axes.axhline(CPU_TARGET_PERCENT, color="#9d755d", linestyle=":", label="CPU target")

    handles, labels = replicas_axes.get_legend_handles_labels()
    cpu_handles, cpu_labels = cpu_axes.get_legend_handles_labels()
    replicas_axes.legend(handles + cpu_handles, labels + cpu_labels, loc="upper right", fontsize=8)

    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=DPI)
    return path


def _new_observations(timeline: Sequence[TimelinePoint]) -> list[TimelinePoint]:
    """The first point showing each value the HPA saw, so every observation is one dot."""
    observations: list[TimelinePoint] = []
    previous: tuple[float, float | None] | None = None
    for point in timeline:
        if point.hpa_value is None:
            continue
        source_time = None if point.hpa_value_age is None else point.t - point.hpa_value_age
        if (point.hpa_value, source_time) != previous:
            observations.append(point)
            previous = (point.hpa_value, source_time)
    return observations

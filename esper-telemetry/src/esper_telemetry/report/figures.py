"""The report's figures, drawn with matplotlib's object API on the Agg canvas.

Using :class:`matplotlib.figure.Figure` directly (no pyplot) keeps the report free of global
backend state, so it works on headless machines and inside other programs. Each function
returns None when the run has nothing for that figure (e.g. no PPO updates).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from esper_telemetry.report.history import RunHistory

STAGE_COLOURS = {
    "DORMANT": "#e6e6e6",
    "GERMINATED": "#9ad0ec",
    "TRAINING": "#1f77b4",
    "BLENDING": "#ff7f0e",
    "SHADOWING": "#f2c14e",
    "PROBATIONARY": "#9467bd",
    "FOSSILIZED": "#2ca02c",
    "CULLED": "#d62728",
    "EMBARGOED": "#7f7f7f",
    "RESETTING": "#bcbcbc",
    "UNKNOWN": "#ffffff",
}
#: Lifecycle transitions marked on the timeline: target stage → (marker, colour, legend label).
MARKERS = {
    "GERMINATED": ("^", "#1f77b4", "germinate"),
    "FOSSILIZED": ("*", "#2ca02c", "fossilize"),
    "CULLED": ("X", "#d62728", "cull"),
}
_DPI = 110


def _figure(rows: int, cols: int = 1, *, width: float = 10.0, height: float = 3.0,
            **gridspec: Any) -> tuple[Figure, Any]:
    figure = Figure(figsize=(width, height * rows), dpi=_DPI, layout="constrained")
    axes = figure.subplots(rows, cols, squeeze=False, **gridspec)
    return figure, axes


def _style(axis: Axes, *, ylabel: str, title: str | None = None) -> None:
    axis.set_ylabel(ylabel)
    # Epochs, episodes and updates are whole numbers; never label 2.5.
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    if title:
        axis.set_title(title, loc="left", fontsize=11)
    axis.grid(True, alpha=0.3)


def _mark_rollbacks(axis: Axes, history: RunHistory) -> None:
    for event in history.rollbacks:
        axis.axvline(event.epoch, color="#d62728", linestyle=":", linewidth=1.2)


def overview(history: RunHistory) -> Figure:
    """Accuracy and losses over epochs above a lifecycle timeline per slot."""
    slots = history.slot_names
    figure, axes = _figure(3, sharex=True, height=2.6,
                           gridspec_kw={"height_ratios": [3, 2, max(1.0, 0.55 * len(slots))]})
    acc_ax, loss_ax, time_ax = axes[:, 0]
    x = [e.epoch for e in history.epochs]

    acc_ax.plot(x, [e.val_accuracy for e in history.epochs], marker="o", markersize=3,
                color="#1f77b4", label="validation accuracy")
    baseline = history.summary.get("baseline")
    baseline = baseline if isinstance(baseline, Mapping) else {}
    _baseline_curve(acc_ax, baseline)
    # The held-out test figures are measured once, after the last epoch: marks there.
    last = x[-1] if x else 0
    for figure_value, style, name in (
        (_number(history.summary.get("test_accuracy")), ("*", "#d62728"), "test (held-out)"),
        (_number(baseline.get("test_accuracy")), ("D", "#555555"), "no-seed baseline, test"),
    ):
        if figure_value is not None:
            acc_ax.scatter([last], [figure_value], marker=style[0], color=style[1], s=80,
                           zorder=3, edgecolors="black", linewidths=0.5,
                           label=f"{name} ({figure_value:.1f}%)")
    drawn: dict[str, tuple[str, str, str]] = {}
    for event in history.lifecycle:
        marker = MARKERS.get(event.to_stage.upper())
        if marker is not None and event.to_stage.upper() != "GERMINATED":
            acc_ax.axvline(event.epoch, color=marker[1], alpha=0.5, linewidth=1)
            drawn[event.to_stage.upper()] = marker
    for _, colour, label in drawn.values():  # one legend entry per kind of line drawn
        acc_ax.plot([], [], color=colour, alpha=0.5, linewidth=1, label=label)
    _mark_rollbacks(acc_ax, history)
    if history.rollbacks:
        acc_ax.plot([], [], color="#d62728", linestyle=":", label="governor rollback")
    _style(acc_ax, ylabel="accuracy (%)",
           title=f"Run {history.run_id} · episode {history.episode}")
    acc_ax.legend(loc="lower right", fontsize=8)

    loss_ax.plot(x, [e.train_loss for e in history.epochs], label="train", color="#1f77b4")
    loss_ax.plot(x, [e.val_loss for e in history.epochs], label="validation", color="#ff7f0e")
    _mark_rollbacks(loss_ax, history)
    _style(loss_ax, ylabel="loss")
    loss_ax.legend(loc="upper right", fontsize=8)

    _timeline(time_ax, history, slots)
    time_ax.set_xlabel("epoch")
    return figure


def _baseline_curve(axis: Axes, baseline: Mapping[str, Any]) -> None:
    """The no-seed baseline's validation accuracy per epoch; a summary from before the curve
    was recorded has only its final value, drawn as a flat line and labelled as such."""
    curve = baseline.get("val_accuracy_per_epoch")
    measured = [_number(v) for v in curve] if isinstance(curve, list) else []
    values = [v for v in measured if v is not None]
    if values and len(values) == len(measured):  # a damaged point: the final value only
        axis.plot(range(1, len(values) + 1), values, color="#555555", linestyle="--", linewidth=1,
                  label=f"no-seed baseline, validation (final {values[-1]:.1f}%)")
        return
    final = _number(baseline.get("final_accuracy"))
    if final is not None:
        axis.axhline(final, color="#555555", linestyle="--", linewidth=1,
                     label=f"no-seed baseline, validation: final value only ({final:.1f}%)")


def _timeline(axis: Axes, history: RunHistory, slots: Sequence[str]) -> None:
    """One row per slot: the stage in each epoch as a coloured bar, transitions marked."""
    seen_stages: dict[str, None] = {}
    for row, slot in enumerate(slots):
        for point in history.slot_points(slot):
            colour = STAGE_COLOURS.get(point.stage, "#ffffff")
            axis.barh(row, 1.0, left=point.epoch - 1, height=0.6, color=colour,
                      edgecolor="white", linewidth=0.5)
            seen_stages.setdefault(point.stage, None)
    used_markers: dict[str, tuple[str, str, str]] = {}
    for event in history.lifecycle:
        spec = MARKERS.get(event.to_stage.upper())
        if spec is None or event.slot not in slots:
            continue
        axis.scatter([event.epoch], [slots.index(event.slot)], marker=spec[0], color=spec[1],
                     s=90, zorder=3, edgecolors="black", linewidths=0.6)
        used_markers[event.to_stage.upper()] = spec
    axis.set_yticks(range(len(slots)), labels=list(slots))
    axis.set_ylim(len(slots) - 0.4, -0.6)
    axis.set_ylabel("slot")
    axis.set_title("lifecycle (bar: stage during the epoch; marks: transitions)", loc="left",
                   fontsize=9)
    handles: list[Any] = [Patch(color=STAGE_COLOURS.get(s, "#ffffff"), label=s.lower())
                          for s in seen_stages if s not in ("UNKNOWN",)]
    handles += [Line2D([], [], marker=m, color=c, linestyle="", markeredgecolor="black",
                       markersize=8, label=label) for m, c, label in used_markers.values()]
    if handles:
        axis.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8,
                    frameon=False)


def _number(value: Any) -> float | None:
    """A recorded measure as a float, or None when missing or damaged (never a bool)."""
    return float(value) if _finite(value) and not isinstance(value, bool) else None


def _seed_lines(history: RunHistory, value: Callable[[Any], float | None], *, ylabel: str,
                title: str, zero_line: bool,
                error: Callable[[Any], float | None] | None = None) -> Figure | None:
    """One line per seed; ``error`` (a standard error) draws a ±1 SE band around it."""
    traces = [t for t in history.seed_traces()
              if any(value(p) is not None for p in t.points)]
    if not traces:
        return None
    figure, axes = _figure(1, height=3.4)
    axis = axes[0, 0]
    banded = False
    for trace in traces:
        valued = [(p, y) for p in trace.points if (y := value(p)) is not None]
        points = [p for p, _ in valued]
        xs = [p.epoch for p in points]
        ys = [y for _, y in valued]
        (line,) = axis.plot(xs, ys, marker="o", markersize=3, label=trace.label)
        errors = [(p.epoch, y, error(p)) for p, y in zip(points, ys, strict=True)] if error else []
        spread = [(x, y, se) for x, y, se in errors if se is not None]
        if len(spread) == 1:  # a band over one epoch has no width: an error bar instead
            (x, y, se), = spread
            axis.errorbar([x], [y], yerr=[se], color=line.get_color(), alpha=0.5, capsize=3)
        elif spread:
            axis.fill_between([x for x, _, _ in spread], [y - se for _, y, se in spread],
                              [y + se for _, y, se in spread], color=line.get_color(), alpha=0.2,
                              linewidth=0)
        banded = banded or bool(spread)
    if banded:
        axis.fill_between([], [], [], color="#888888", alpha=0.2, label="±1 standard error")
    if zero_line:
        axis.axhline(0.0, color="black", linewidth=0.8)
    _mark_rollbacks(axis, history)
    _style(axis, ylabel=ylabel, title=title)
    axis.set_xlabel("epoch")
    axis.set_xlim(0.5, max(e.epoch for e in history.epochs) + 0.5)
    axis.legend(fontsize=8, loc="best")
    return figure


def alpha(history: RunHistory) -> Figure | None:
    """Blending weight α of every seed over its life."""
    return _seed_lines(history, lambda p: p.alpha, ylabel="α", zero_line=False,
                       title="Blending weight α per seed")


def contributions(history: RunHistory) -> Figure | None:
    """Every seed's dependence, acc(α) − acc(α=0), from blending on.

    The host has trained alongside the seed by then, so removing it costs more than the seed
    ever added: this is dependence, not gain (see :func:`seed_gains`).
    """
    return _seed_lines(history, lambda p: _number(p.contribution),
                       ylabel="dependence (points)", zero_line=True,
                       error=lambda p: _number(p.contribution_se),
                       title="Dependence (accuracy lost on removal): with − without the seed")


def seed_gains(history: RunHistory) -> Figure | None:
    """Every seed's gain over the no-seed path, measured while it was TRAINING."""
    return _seed_lines(history, lambda p: _number(p.seed_gain) if p.stage == "TRAINING" else None,
                       ylabel="gain (points)", zero_line=True,
                       error=lambda p: _number(p.seed_gain_se),
                       title="Gain over the no-seed path (TRAINING)")


def parameters(history: RunHistory) -> Figure:
    """Host and seed parameters over epochs, stacked."""
    figure, axes = _figure(1, height=3.0)
    axis = axes[0, 0]
    x = [e.epoch for e in history.epochs]
    host = [e.host_params for e in history.epochs]
    seeds = [e.seed_params for e in history.epochs]
    axis.stackplot(x, host, seeds, labels=["host", "seeds"], colors=["#9ecae1", "#fdae6b"],
                   step="mid")
    total_max = max(h + s for h, s in zip(host, seeds, strict=True))
    # Host parameters dwarf seed parameters; zoom on the range where seeds show.
    low = min(host) * 0.98 if total_max > 0 else 0
    axis.set_ylim(low, total_max * 1.01 + 1)
    _style(axis, ylabel="parameters", title="Parameter count (host + seeds)")
    axis.ticklabel_format(axis="y", style="plain", useOffset=False)
    axis.set_xlabel("epoch")
    axis.legend(loc="upper left", fontsize=8)
    return figure


def rewards(history: RunHistory) -> Figure | None:
    """Reward terms per controller step as stacked bars, with the total as a line."""
    if not history.rewards:
        return None
    figure, axes = _figure(1, height=3.6)
    axis = axes[0, 0]
    x = [e.epoch for e in history.rewards]
    positive = [0.0] * len(x)
    negative = [0.0] * len(x)
    colours = _palette(len(history.reward_terms))
    for term, colour in zip(history.reward_terms, colours, strict=True):
        values = [float(e.terms.get(term, 0.0)) for e in history.rewards]
        bottoms = [p if v >= 0 else n for v, p, n in zip(values, positive, negative, strict=True)]
        axis.bar(x, values, bottom=bottoms, width=0.7, label=term, color=colour)
        positive = [p + max(v, 0.0) for p, v in zip(positive, values, strict=True)]
        negative = [n + min(v, 0.0) for n, v in zip(negative, values, strict=True)]
    axis.plot(x, [e.total for e in history.rewards], color="black", marker="o", markersize=3,
              label="total")
    axis.axhline(0.0, color="black", linewidth=0.8)
    _style(axis, ylabel="reward", title="Reward terms per step (weighted)")
    axis.set_xlabel("epoch")
    axis.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    return figure


def _palette(n: int) -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def _is_head_entropy(key: str) -> bool:
    """``entropy_<head>`` (esper-policies' PPO: op, slot, blueprint), not the coefficient."""
    name = key.split("/")[-1]
    return name.startswith("entropy_") and "coef" not in name


def _entropies(keys: Sequence[str]) -> list[str]:
    """Each head's entropy; a learner that records only the total gets that line instead."""
    return [k for k in keys if _is_head_entropy(k)] or [k for k in keys if k.split("/")[-1] == "entropy"]


def _matching(predicate: Callable[[str], bool]) -> Callable[[Sequence[str]], list[str]]:
    return lambda keys: [k for k in keys if predicate(k)]


#: PPO panels: (title, the metric names it plots, chosen from all recorded names, lower case).
#: Metric names follow CleanRL's habit of namespacing (``losses/value_loss``); matching is on
#: the part after the last ``/``.
PPO_PANELS: tuple[tuple[str, Callable[[Sequence[str]], list[str]]], ...] = (
    ("returns", _matching(lambda k: "return" in k)),
    ("entropy per head", _entropies),
    ("approximate KL", _matching(lambda k: "kl" in k.split("/")[-1])),
    ("value loss", _matching(lambda k: "value_loss" in k or k.split("/")[-1] in ("v_loss", "vf_loss"))),
)


def ppo(history: RunHistory) -> Figure | None:
    """Returns, entropy per head, approximate KL and value loss per PPO update."""
    if not history.ppo:
        return None
    names: dict[str, None] = {}
    for event in history.ppo:
        for key in event.metrics:
            names.setdefault(key, None)
    figure, axes = _figure(2, 2, height=3.0, width=11.0)
    lower = {k.lower(): k for k in names}
    for axis, (title, select) in zip(axes.flat, PPO_PANELS, strict=True):
        keys = [lower[k] for k in select(list(lower))]
        for key in keys:
            points = [(e.update, e.metrics[key]) for e in history.ppo
                      if key in e.metrics and _finite(e.metrics[key])]
            if points:
                axis.plot(*zip(*points, strict=True), marker="o", markersize=2, label=key)
        _style(axis, ylabel=title, title=title)
        axis.set_xlabel("PPO update")
        if keys:
            axis.legend(fontsize=7)
        else:
            axis.text(0.5, 0.5, "not recorded", ha="center", va="center",
                      transform=axis.transAxes, color="#888888")
    return figure


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def gradients(history: RunHistory) -> Figure | None:
    """Gradient-health score and global gradient norm per epoch (runs with the observer)."""
    points = [e for e in history.gradients if e.score is not None]
    if not points:
        return None
    figure, axes = _figure(2, height=2.4, sharex=True)
    score_ax, norm_ax = axes[0, 0], axes[1, 0]
    x = [e.epoch for e in points]
    score_ax.plot(x, [e.score for e in points], marker="o", markersize=3, color="#2ca02c")
    score_ax.set_ylim(-0.05, 1.05)
    bad = [e for e in points if e.nonfinite_steps]
    if bad:
        score_ax.scatter([e.epoch for e in bad], [e.score for e in bad], marker="X",
                         color="#d62728", zorder=3, label="non-finite steps")
        score_ax.legend(fontsize=8, loc="lower left")
    _style(score_ax, ylabel="health score",
           title=f"Gradient health ({points[0].profile} profile; 1 = healthy)")
    _mark_rollbacks(score_ax, history)
    normed = [(e.epoch, e.global_norm_mean, e.global_norm_max) for e in points
              if e.global_norm_mean is not None and e.global_norm_mean > 0]
    if normed:
        epochs, means, peaks = zip(*normed, strict=True)
        norm_ax.plot(epochs, means, marker="o", markersize=3, label="mean", color="#1f77b4")
        norm_ax.plot(epochs, [p if p else m for p, m in zip(peaks, means, strict=True)], linestyle="--",
                     label="max", color="#1f77b4", alpha=0.6)
        norm_ax.set_yscale("log")
        norm_ax.legend(fontsize=8, loc="best")
    _style(norm_ax, ylabel="‖g‖ (global)")
    norm_ax.set_xlabel("epoch")
    return figure


def episodes(history: RunHistory) -> Figure | None:
    """Final validation accuracy of every episode (runs with more than one)."""
    if len(history.episode_accuracy) < 2:
        return None
    figure, axes = _figure(1, height=3.0)
    axis = axes[0, 0]
    xs, ys = zip(*history.episode_accuracy, strict=True)
    axis.plot(xs, ys, marker="o", markersize=3)
    _style(axis, ylabel="final accuracy (%)", title="Final accuracy per episode")
    axis.set_xlabel("episode")
    return figure

"""Render a run directory's report: PNG figures plus ``report.html`` embedding them."""

from __future__ import annotations

from pathlib import Path

import attrs
from attrs import frozen

from esper_telemetry.report import figures
from esper_telemetry.report.history import RunHistory, load_history
from esper_telemetry.report.page import FigureFile, render_page

#: (file stem, title, caption, drawing function) in page order.
_FIGURES = (
    ("overview", "Accuracy, loss and lifecycle",
     "Validation accuracy per epoch, the run's and (dashed) its no-seed baseline's, with the "
     "held-out test accuracy of both (when the task has a test split) marked after the last "
     "epoch; thin vertical lines mark fossilize (green) and cull (red) transitions, dotted red "
     "ones governor rollbacks (the legend names those that occurred). Then train and validation "
     "loss; below, each slot's stage per epoch with germinate (▲), fossilize (★) and cull (✕) "
     "marks.",
     figures.overview),
    ("alpha", "Blending weight α", "α of every seed over its life (0: host only, 1: seed fully "
     "blended).", figures.alpha),
    ("seed_gains", "Seed gain over the no-seed path (TRAINING)",
     "While the seed trains: validation accuracy with the seed switched fully in minus without "
     "it, before the host adapted to it, in points; the band is ±1 standard error.",
     figures.seed_gains),
    ("contributions", "Seed dependence (accuracy lost on removal)",
     "From blending on: validation accuracy with the seed minus accuracy with the seed forced to "
     "α = 0, in points; the band is ±1 standard error. The host has trained alongside the seed, "
     "so this overstates what the seed added.",
     figures.contributions),
    ("parameters", "Parameters", "Host and seed parameter counts per epoch.", figures.parameters),
    ("gradients", "Gradient health",
     "Health score per epoch (mean over layers, or over steps in the minimal profile, of "
     "1 − vanishing − exploding; 0 for a non-finite gradient) and the global gradient norm "
     "per training step, mean and max over the epoch.", figures.gradients),
    ("rewards", "Reward terms", "Weighted reward terms per controller step; the line is the "
     "total.", figures.rewards),
    ("episodes", "Accuracy per episode", "Final validation accuracy of every episode.",
     figures.episodes),
    ("ppo", "PPO updates", "Returns, the entropy of each action head (op, slot, blueprint; "
     "not the entropy coefficient), approximate KL and value loss per PPO update.", figures.ppo),
)


@frozen(kw_only=True)
class Report:
    history: RunHistory
    html: Path
    figures: tuple[FigureFile, ...] = attrs.field(converter=tuple[FigureFile, ...])


def build_report(run_dir: Path, out_dir: Path | None = None, *,
                 episode: int | None = None) -> Report:
    history = load_history(run_dir, episode=episode)
    out = out_dir if out_dir is not None else run_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    written: list[FigureFile] = []
    for name, title, caption, draw in _FIGURES:
        figure = draw(history)
        if figure is None:
            continue
        path = out / f"{name}.png"
        figure.savefig(path, format="png")
        written.append(FigureFile(name=name, title=title, caption=caption, path=path))
    page = out / "report.html"
    page.write_text(render_page(history, written), encoding="utf-8")
    return Report(history=history, html=page, figures=written)

from __future__ import annotations

import base64
import re

import attrs
import pytest
from click.testing import CliRunner

from esper_core.contracts.events import EpochEnded
from esper_telemetry.commands import report
from esper_telemetry.report.build import build_report
from esper_telemetry.report.history import build_history
from esper_telemetry.sinks.sqlite import SqliteSink

PNG = b"\x89PNG\r\n\x1a\n"


def test_report_writes_pngs_and_an_html_page_embedding_them(run_dir, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(report, [str(run_dir), "--out", str(out)])
    assert result.exit_code == 0, result.output
    names = {p.name for p in out.glob("*.png")}
    assert names == {"overview.png", "alpha.png", "seed_gains.png", "contributions.png",
                     "parameters.png", "rewards.png", "ppo.png", "gradients.png"}
    for path in out.glob("*.png"):
        data = path.read_bytes()
        assert data.startswith(PNG) and len(data) > 5_000
    page = (out / "report.html").read_text(encoding="utf-8")
    embedded = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(embedded) == len(names)
    assert {base64.b64decode(e) for e in embedded} == {p.read_bytes() for p in out.glob("*.png")}
    assert "<td>fossilized</td>" in page and "<td>culled</td>" in page
    assert "run-a" in page and 'class="num">54.40<' in page
    # The held-out test figures lead the summary; validation figures are labelled val.
    summary = re.findall(r"<tr><th>([^<]*)</th><td[^>]*>([^<]*)</td></tr>", page)
    labels = [label for label, _ in summary]
    assert summary[labels.index("test accuracy, held-out (%)"):][:6] == [
        ("test accuracy, held-out (%)", "52.10"),
        ("no-seed baseline test accuracy (%)", "49.30"),
        ("test gain over the baseline (points)", "+2.80"),
        ("final val accuracy (%)", "54.40"),
        ("best val accuracy (%)", "54.40"),
        ("no-seed baseline val accuracy (%)", "50.00")]
    assert "final accuracy (%)" not in labels and "baseline accuracy (%)" not in labels
    # Both seed measures are named in the seed table, each with its value.
    assert "<th>gain over the no-seed path (TRAINING) (points)</th>" in page
    assert "<th>dependence (accuracy lost on removal) (points)</th>" in page
    assert ('<td>fossilized</td><td class="num">+0.70</td><td class="num">+2.60</td>'
            in page)
    assert "<h2>Seed dependence (accuracy lost on removal)</h2>" in page
    assert "<h2>Seed gain over the no-seed path (TRAINING)</h2>" in page
    assert f"wrote {out / 'report.html'}" in result.output


def test_report_defaults_to_run_dir_and_falls_back_to_sqlite(run_dir, recorded_events):
    (run_dir / "events.jsonl").unlink()
    (run_dir / "summary.json").unlink()
    sink = SqliteSink.from_options(run_dir=run_dir, options={})
    for event in recorded_events:
        sink.emit(event)
    sink.close()
    built = build_report(run_dir)
    assert built.html == run_dir / "report" / "report.html"
    assert len(built.history.epochs) == 10
    page = built.html.read_text(encoding="utf-8")
    assert "<td>fossilized</td>" in page  # seeds derived from lifecycle events


@pytest.mark.parametrize("make", ["missing", "a_file", "empty", "no_epochs", "bad_episode", "bad_db"])
def test_bad_run_dirs_exit_2(tmp_path, run_dir, make):
    args = [str(run_dir)]
    if make == "missing":
        args = [str(tmp_path / "nope")]
    elif make == "a_file":
        (tmp_path / "notes.txt").write_text("hello")
        args = [str(tmp_path / "notes.txt")]
    elif make == "empty":
        (tmp_path / "empty").mkdir()
        args = [str(tmp_path / "empty")]
    elif make == "no_epochs":
        lines = (run_dir / "events.jsonl").read_text().splitlines()
        (run_dir / "events.jsonl").write_text(
            "\n".join(line for line in lines if '"kind": "epoch"' not in line) + "\n")
    elif make == "bad_episode":
        args += ["--episode", "4"]
    elif make == "bad_db":
        (run_dir / "events.jsonl").unlink()
        (run_dir / "run.sqlite").write_text("not a database")
    result = CliRunner().invoke(report, args)
    assert result.exit_code == 2, result.output
    assert result.output.startswith("Error: ")
    assert "Traceback" not in result.output
    if make == "a_file":
        assert f"'{tmp_path / 'notes.txt'}' is a file, not a run directory" in result.output


def test_multi_episode_history_selects_an_episode(recorded_events, tmp_path):
    second = [type(e)(**{**_as_kwargs(e), "episode": 1}) for e in recorded_events]
    events = recorded_events + second
    history = build_history(events)
    assert history.episode == 1 and history.episodes == (0, 1)
    assert len(history.epochs) == 10
    assert build_history(events, episode=0).episode == 0
    assert [ep for ep, _ in history.episode_accuracy] == [0, 1]
    from esper_telemetry.report import figures

    assert figures.episodes(history) is not None
    assert figures.episodes(build_history(recorded_events)) is None


def _as_kwargs(event):
    import attrs

    return {a.name: getattr(event, a.name) for a in attrs.fields(type(event))}


def test_seed_traces_split_per_seed(recorded_events):
    history = build_history(recorded_events)
    traces = history.seed_traces()
    assert [(t.slot, t.blueprint, t.points[0].epoch, t.points[-1].epoch) for t in traces] == [
        ("r0", "cnn:conv_light", 4, 10), ("r1", "cnn:attention", 5, 6)]
    assert history.reward_terms == ["attribution", "shaping", "param_rent", "rollback_penalty"]
    assert [e.epoch for e in history.epochs] == [
        e.epoch for e in recorded_events if isinstance(e, EpochEnded)]


def test_seed_measures_figures_plot_each_measure_with_its_standard_error(recorded_events):
    from esper_telemetry.report import figures

    history = build_history(recorded_events)
    traces = {t.slot: t for t in history.seed_traces()}
    assert [(p.epoch, p.seed_gain, p.seed_gain_se) for p in traces["r0"].points
            if p.seed_gain is not None] == [(4, 0.3, 0.25), (5, 0.7, 0.25)]
    gains = figures.seed_gains(history)
    (axis,) = gains.axes
    assert axis.get_title("left") == "Gain over the no-seed path (TRAINING)"
    lines = [line for line in axis.get_lines() if line.get_label().startswith("r")]
    assert [list(line.get_xdata()) for line in lines] == [[4, 5], [5]]
    assert any(c.get_label() == "±1 standard error" for c in axis.collections)
    dependence = figures.contributions(history)
    assert dependence.axes[0].get_title("left").startswith("Dependence (accuracy lost on removal)")
    # A run whose slots report no gain (an older engine) has no gain figure.
    bare = [attrs.evolve(e, slots=[{k: v for k, v in s.items() if k != "seed_gain"}
                                   for s in e.slots]) if isinstance(e, EpochEnded) else e
            for e in recorded_events]
    assert figures.seed_gains(build_history(bare)) is None


def test_summary_without_a_test_split_shows_dashes(run_dir, tmp_path):
    import json

    summary = json.loads((run_dir / "summary.json").read_text())
    summary["test_accuracy"] = None
    del summary["baseline"]["test_accuracy"]
    (run_dir / "summary.json").write_text(json.dumps(summary))
    page = build_report(run_dir, tmp_path / "out").html.read_text(encoding="utf-8")
    assert "<tr><th>test accuracy, held-out (%)</th><td>-</td></tr>" in page
    assert "<tr><th>test gain over the baseline (points)</th><td>-</td></tr>" in page
    assert '<tr><th>final val accuracy (%)</th><td class="num">54.40</td></tr>' in page


def _labels(axis):
    return [text.get_text() for text in axis.get_legend().get_texts()]


def test_the_baseline_is_drawn_as_its_curve_and_every_marked_transition_is_in_the_legend(run_dir):
    import json

    from esper_telemetry.report import figures

    summary = json.loads((run_dir / "summary.json").read_text())
    curve = [40.0 + epoch for epoch in range(10)]
    summary["baseline"]["val_accuracy_per_epoch"] = curve
    history = build_history(build_report(run_dir).history.epochs, summary=summary)
    acc_ax = figures.overview(history).axes[0]
    (line,) = [ln for ln in acc_ax.get_lines() if ln.get_label().startswith("no-seed baseline")]
    assert list(line.get_xdata()) == list(range(1, 11)) and list(line.get_ydata()) == curve
    assert "final 49.0%" in line.get_label()
    # A summary written before the curve was recorded: a flat line, labelled for what it is.
    del summary["baseline"]["val_accuracy_per_epoch"]
    flat = figures.overview(build_history(history.epochs, summary=summary)).axes[0]
    assert "no-seed baseline, validation: final value only (50.0%)" in _labels(flat)
    # The recorded run fossilized r0 at epoch 10, culled r1 at epoch 6 and rolled back once:
    # every kind of vertical line drawn is named; a run with none of them names none.
    labels = _labels(figures.overview(build_report(run_dir).history).axes[0])
    assert {"fossilize", "cull", "governor rollback"} <= set(labels)
    assert not {"fossilize", "cull", "governor rollback"} & set(_labels(flat))


def test_the_entropy_panel_plots_each_head_not_the_coefficient(recorded_events):
    from esper_core.contracts.events import PPOUpdate
    from esper_telemetry.report import figures

    events = [attrs.evolve(e, metrics={**e.metrics, "entropy_coef": 0.05, "losses/entropy": 2.0})
              if isinstance(e, PPOUpdate) else e for e in recorded_events]
    axes = {ax.get_title("left"): ax for ax in figures.ppo(build_history(events)).axes}
    assert sorted(ln.get_label() for ln in axes["entropy per head"].get_lines()) == [
        "losses/entropy_op", "losses/entropy_slot"]
    # A learner recording only the total entropy gets that line.
    total_only = [attrs.evolve(e, metrics={"entropy": 1.0, "entropy_coef": 0.01})
                  if isinstance(e, PPOUpdate) else e for e in recorded_events]
    axes = {ax.get_title("left"): ax for ax in figures.ppo(build_history(total_only)).axes}
    assert [ln.get_label() for ln in axes["entropy per head"].get_lines()] == ["entropy"]


def _files(root):
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_report_never_replaces_an_existing_report_unless_force(run_dir, tmp_path):
    out = tmp_path / "myrep"
    out.mkdir()
    (out / "report.html").write_text("an earlier report")
    before = _files(tmp_path)
    result = CliRunner().invoke(report, [str(run_dir), "--out", str(out)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "--out" in result.output and "is not empty" in result.output and "--force" in result.output
    assert _files(tmp_path) == before
    result = CliRunner().invoke(report, [str(run_dir), "--out", str(out), "--force"])
    assert result.exit_code == 0, result.output
    assert (out / "report.html").read_text() != "an earlier report"
    # the default folder is the run's own report, rewritten every time
    assert CliRunner().invoke(report, [str(run_dir)]).exit_code == 0
    assert CliRunner().invoke(report, [str(run_dir)]).exit_code == 0


@pytest.mark.parametrize("inner", ["checkpoints/figures", "sub", "."])
def test_report_writes_nothing_inside_another_run_or_a_dataset(run_dir_factory, tmp_path, inner):
    run_dir = run_dir_factory(tmp_path / "runs", "run-a")
    other = run_dir_factory(tmp_path / "runs", "run-b")
    (other / "checkpoints").mkdir()
    dataset = tmp_path / "ds"
    (dataset / "episodes").mkdir(parents=True)
    (dataset / "dataset.json").write_text("{}")
    before = _files(tmp_path)
    for folder in (other, dataset):
        result = CliRunner().invoke(report, [str(run_dir), "--out", str(folder / inner), "--force"])
        assert result.exit_code == 2, result.output
        assert "is inside the run or dataset directory" in result.output
    assert _files(tmp_path) == before
    # where Esper reads back, not even in the run the report is of
    result = CliRunner().invoke(report, [str(run_dir), "--out", str(run_dir / "checkpoints" / "x")])
    assert result.exit_code == 2 and "reads back" in result.output

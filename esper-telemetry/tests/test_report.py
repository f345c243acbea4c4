from __future__ import annotations

import base64
import re

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
    assert names == {"overview.png", "alpha.png", "contributions.png", "parameters.png",
                     "rewards.png", "ppo.png", "gradients.png"}
    for path in out.glob("*.png"):
        data = path.read_bytes()
        assert data.startswith(PNG) and len(data) > 5_000
    page = (out / "report.html").read_text(encoding="utf-8")
    embedded = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(embedded) == len(names)
    assert {base64.b64decode(e) for e in embedded} == {p.read_bytes() for p in out.glob("*.png")}
    assert "<td>fossilized</td>" in page and "<td>culled</td>" in page
    assert "run-a" in page and 'class="num">54.40<' in page
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


@pytest.mark.parametrize("make", ["missing", "empty", "no_epochs", "bad_episode", "bad_db"])
def test_bad_run_dirs_exit_2(tmp_path, run_dir, make):
    args = [str(run_dir)]
    if make == "missing":
        args = [str(tmp_path / "nope")]
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

"""``esper run`` end to end through the CLI, with every distribution installed."""

from __future__ import annotations

import json
import math
import os
import stat
import tomllib
from pathlib import Path

import pytest

from esper_core.testing.distributions import run_esper

TINY = """
[run]
epochs = 4
[task]
train_size = 256
val_size = 128
[kasmina]
blending_epochs = 1
[gates]
g2_min_epochs = 1
g3_min_epochs = 1
g2_gradient_ratio = 0.0
g2_min_improvement = -100.0
[policy]
min_epochs_before_germinate = 1
plateau_epochs_to_germinate = 1
plateau_threshold = 100.0
"""


def tiny_config(tmp_path: Path, text: str = TINY) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(text)
    return path


def run(args: list[str], tmp_path: Path) -> tuple[int, str, str]:
    result = run_esper(args, cwd=tmp_path, env={"OMP_NUM_THREADS": "1"})
    return result.returncode, result.stdout, result.stderr


def test_short_episode_writes_the_run_directory(tmp_path):
    out = tmp_path / "run1"
    code, stdout, stderr = run(["run", "--config", str(tiny_config(tmp_path)), "--out", str(out),
                                "--seed", "1"], tmp_path)
    assert code == 0, stderr[-2000:]
    for name in ("config.toml", "events.jsonl", "summary.json", "model.pt"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    for key in ("task", "policy", "seed", "epochs", "final_accuracy", "best_accuracy", "host_params",
                "seed_params", "seeds", "baseline"):
        assert key in summary, key
    assert (summary["task"], summary["policy"], summary["seed"], summary["epochs"]) == ("shapes", "heuristic", 1, 4)
    assert 0 <= summary["final_accuracy"] <= summary["best_accuracy"] <= 100
    # The held-out test split is measured for the policy and for its baseline.
    assert 0 <= summary["test_accuracy"] <= 100 and 0 <= summary["baseline"]["test_accuracy"] <= 100
    assert summary["seeds"], "the tiny config germinates at the first opportunity"
    seed = summary["seeds"][0]
    assert set(seed) >= {"slot", "blueprint", "germinated_epoch", "outcome", "ended_epoch", "contribution"}
    assert seed["outcome"] in {"fossilized", "culled", "live"}
    assert summary["baseline"]["policy"] == "noop" and summary["baseline"]["seed_params"] == 0
    resolved = tomllib.loads((out / "config.toml").read_text())
    assert resolved["run"]["epochs"] == 4 and resolved["task"]["train_size"] == 256
    assert "g2_min_epochs" in resolved["gates"] and "blending_epochs" in resolved["kasmina"]
    kinds = [json.loads(line)["kind"] for line in (out / "events.jsonl").read_text().splitlines()]
    assert kinds[0] == "run_started" and kinds[-1] == "run_ended"
    assert kinds.count("epoch") == 4 and kinds.count("decision") == 4 and kinds.count("reward") == 4
    assert "seed_lifecycle" in kinds and "gate" in kinds
    assert "test acc %" in stdout and "final val %" in stdout and "noop (baseline)" in stdout


def _normalised_events(path: Path) -> list[dict]:
    events = []
    for line in path.read_text().splitlines():
        record = json.loads(line)
        for key in ("timestamp", "run_id", "seconds", "wall_seconds"):
            record.pop(key, None)
        if record["kind"] in ("run_ended", "run_started"):
            record.pop("summary", None)
            record.pop("config", None)
        events.append(record)
    return events


def test_same_seed_gives_identical_events(tmp_path):
    config = tiny_config(tmp_path)
    outs = [tmp_path / "a", tmp_path / "b"]
    for out in outs:
        code, _, stderr = run(["run", "--config", str(config), "--out", str(out), "--no-compare-baseline"],
                              tmp_path)
        assert code == 0, stderr[-2000:]
    assert _normalised_events(outs[0] / "events.jsonl") == _normalised_events(outs[1] / "events.jsonl")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--task", "shapez"], "unknown task 'shapez' (did you mean 'shapes'?)"),
        (["--policy", "genius"], "unknown policy 'genius'"),
        (["--blueprints", "conv_lite"], "unknown cnn blueprint 'conv_lite' (did you mean 'conv_light'?)"),
        (["--epochs", "0"], "epochs = 0 is invalid; expected an integer ≥ 1"),
        (["--param-budget", "-3"], "param_budget = -3 is invalid"),
        (["--device", "tpu"], "device = 'tpu' is invalid"),
        (["--reward-preset", "dense"], "unknown reward preset 'dense'"),
        (["--telemetry", "carrier-pigeon"], "unknown telemetry sink 'carrier-pigeon'"),
        (["--slots", "block9"], "block9"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, needle):
    code, _, stderr = run(["run", "--config", str(tiny_config(tmp_path)), "--out", str(tmp_path / "o"),
                           "--no-compare-baseline", *args], tmp_path)
    assert code == 2, stderr[-2000:]
    assert needle in stderr
    assert "Traceback" not in stderr


def test_known_names_are_listed(tmp_path):
    _, _, stderr = run(["run", "--policy", "genius", "--out", str(tmp_path / "o")], tmp_path)
    assert "heuristic" in stderr and "noop" in stderr and "random" in stderr


def test_existing_out_is_never_overwritten(tmp_path):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    code, _, stderr = run(["run", "--config", str(tiny_config(tmp_path)), "--out", str(out)], tmp_path)
    assert code == 2 and "already exists and is not empty" in stderr
    assert (out / "precious.txt").read_text() == "keep me"
    assert sorted(p.name for p in out.iterdir()) == ["precious.txt"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_out(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(stat.S_IREAD | stat.S_IEXEC)
    code, _, stderr = run(["run", "--config", str(tiny_config(tmp_path)), "--out", str(locked / "x")], tmp_path)
    assert code == 2 and "not writable" in stderr


def test_unwritable_out_under_a_file(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, stderr = run(["run", "--config", str(tiny_config(tmp_path)), "--out", str(blocker / "x")], tmp_path)
    assert code == 2 and "not writable" in stderr and "Traceback" not in stderr


def test_malformed_config_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[run\n")
    code, _, stderr = run(["run", "--config", str(bad)], tmp_path)
    assert code == 2 and "is not valid TOML" in stderr


def test_text_task_through_the_cli(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the quick brown fox jumps over the lazy dog. " * 400)
    out = tmp_path / "text"
    code, stdout, stderr = run(["run", "--task", "textfile", "--data", str(corpus), "--epochs", "2",
                                "--task-option", "steps_per_epoch=4", "--task-option", "max_val_batches=2",
                                "--out", str(out), "--no-compare-baseline"], tmp_path)
    assert code == 0, stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["task"] == "textfile" and summary["epochs"] == 2
    assert 0 <= summary["final_accuracy"] <= 100
    # Loss in nats, perplexity and bits per byte beside accuracy: per epoch and for the test split.
    loss = summary["test_loss"]
    assert summary["test_metrics"] == pytest.approx({"perplexity": math.exp(loss), "bits_per_byte": loss / math.log(2)})
    epochs = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    epochs = [e for e in epochs if e["kind"] == "epoch"]
    assert len(epochs) == 2 and all(
        e["val_metrics"] == pytest.approx({"perplexity": math.exp(e["val_loss"]),
                                           "bits_per_byte": e["val_loss"] / math.log(2)}) for e in epochs)
    header = next(line for line in stdout.splitlines() if line.startswith("policy"))
    assert "test loss" in header and "test perplexity" in header and "test bits per byte" in header


def test_text_task_refuses_a_binary_file(tmp_path):
    blob = tmp_path / "blob.bin"
    blob.write_bytes(b"\x00\x01\x02" * 100)
    code, _, stderr = run(["run", "--task", "textfile", "--data", str(blob), "--out", str(tmp_path / "o")],
                          tmp_path)
    assert code == 2 and "blob.bin" in stderr and "Traceback" not in stderr


def test_bad_policy_option_leaves_out_reusable(tmp_path):
    config = tmp_path / "p.toml"
    config.write_text("[policy]\nplateau_epochs = 3\n")
    out = tmp_path / "o"
    code, _, stderr = run(["run", "--config", str(config), "--out", str(out)], tmp_path)
    assert code == 2 and "plateau_epochs" in stderr and "Traceback" not in stderr
    assert not out.exists()  # left as found: the same --out works again


def test_missing_cifar_says_where_it_looked(tmp_path):
    code, _, stderr = run(["run", "--task", "cifar10", "--data-dir", str(tmp_path / "nothing"),
                           "--out", str(tmp_path / "o")], tmp_path)
    assert code == 2 and str(tmp_path / "nothing") in stderr and "Traceback" not in stderr
    assert not (tmp_path / "o").exists()  # left as found: the same --out works again

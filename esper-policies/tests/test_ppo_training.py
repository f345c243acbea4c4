"""PPO inside the run engine, on the in-process toy topology: training, checkpoints, resume,
worker processes, acting from a checkpoint, evaluation, and option errors."""

from __future__ import annotations

import io
import json
import os
import signal
import sys
import types

import attrs
import pytest
import torch

from esper_core import hookimpl
from esper_core.config import RunConfig
from esper_core.contracts import BlueprintSpec, PolicyContext
from esper_core.errors import ConfigError
from esper_core.plugins import PluginSettings, build_catalog, load_plugins
from esper_core.presentation.evaluation_report import format_evaluation
from esper_core.presentation.run_report import format_summary
from esper_core.setup.resolve import resolve_run
from esper_core.storage.rundir import create_run_dir
from esper_core.testing import toy
from esper_core.tolaria.environments import InProcessEnvironments, WorkerEnvironments
from esper_core.tolaria.evaluation import evaluate_checkpoint
from esper_core.tolaria.interrupts import RunInterrupted
from esper_core.tolaria.job import execute_run
from esper_policies import plugin
from esper_policies.checkpoint_policy import ppo_from_context


@pytest.fixture(scope="module")
def catalog():
    return build_catalog(load_plugins(PluginSettings(autoload=False), extra=[("toy", toy), ("policies", plugin)]))


def _train(catalog, out, *, resume=False, **policy):
    config = RunConfig.from_dict({
        "run": {"task": "toy", "policy": "ppo", "epochs": 5, "seed": 3},
        "policy": {"rounds": 2, "envs": 2, "update_epochs": 2, "hidden": 16, **policy},
        "gates": {"g5_min_contribution": -100.0},
    })
    run_dir = out if resume else create_run_dir(out)
    return execute_run(resolve_run(config, catalog), catalog, run_dir, resume=resume)


def _weights(path):
    return torch.load(path, weights_only=True)["payload"]["state_dict"]


def test_training_writes_checkpoints_events_and_a_summary(catalog, tmp_path):
    summary = _train(catalog, tmp_path / "run")
    run = tmp_path / "run"
    assert summary["training"] and summary["rounds"] == 2 and summary["episodes"] == 4
    assert (run / "policy.pt").is_file() and (run / "checkpoints" / "latest.pt").is_file()
    assert json.loads((run / "summary.json").read_text())["policy_checkpoint"] == str(run / "policy.pt")
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    updates = [e for e in events if e["kind"] == "ppo_update"]
    assert [u["update"] for u in updates] == [0, 1]
    assert {"policy_loss", "value_loss", "entropy_op", "approx_kl", "clip_fraction", "explained_variance",
            "op_share_wait", "mean_return"} <= set(updates[0]["metrics"])
    assert {e["episode"] for e in events if e["kind"] == "decision"} == {0, 1, 2, 3}
    assert sum(1 for e in events if e["kind"] == "decision") == 4 * 5
    text = format_summary(summary)
    assert "2 rounds × 2 environments × 5 epochs" in text and "policy checkpoint" in text
    header = next(line for line in text.splitlines() if "mean return" in line)
    assert header.split()[0] == "round" and "approx KL" in header
    assert [r[0] for r in summary["report"]["rows"]] == [1, 2]  # rounds count from 1 in the table
    assert 0 < summary["policy_overhead"] < 1


@pytest.mark.parametrize("trunk", ["mlp", "lstm"])
def test_a_resumed_run_continues_exactly_where_it_stopped(catalog, tmp_path, trunk):
    _train(catalog, tmp_path / "whole", trunk=trunk)
    _train(catalog, tmp_path / "split", trunk=trunk, rounds=1)
    resumed = _train(catalog, tmp_path / "split", resume=True, trunk=trunk)
    assert resumed["rounds"] == 2 and len(resumed["history"]) == 2
    whole, split = _weights(tmp_path / "whole" / "policy.pt"), _weights(tmp_path / "split" / "policy.pt")
    assert all(torch.equal(whole[k], split[k]) for k in whole)


def test_worker_processes_train_the_same_policy(catalog, tmp_path):
    local = _train(catalog, tmp_path / "local", rounds=1)
    workers = _train(catalog, tmp_path / "workers", rounds=1, workers=True)
    assert local["history"][0]["mean_return"] == workers["history"][0]["mean_return"]
    a, b = _weights(tmp_path / "local" / "policy.pt"), _weights(tmp_path / "workers" / "policy.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_truncated_episodes_and_option_errors(catalog, tmp_path):
    summary = _train(catalog, tmp_path / "short", rounds=1, episode_length=3)
    assert summary["episode_length"] == 3 and summary["history"][0]["mean_final_accuracy"] > 0
    with pytest.raises(ConfigError, match="episode_length = 9 is longer than the run's 5 epochs"):
        _train(catalog, tmp_path / "long", episode_length=9)
    with pytest.raises(ConfigError, match="policy 'ppo': unknown option 'roundz' \\(did you mean 'rounds'\\?\\)"):
        _train(catalog, tmp_path / "typo", roundz=3)
    with pytest.raises(ConfigError, match=r"policy 'ppo' option 'clip' = 2.0 is invalid; "
                                          r"expected a finite number in \(0, 1\]"):
        _train(catalog, tmp_path / "clip", clip=2.0)
    with pytest.raises(ConfigError, match="latest.pt' does not exist"):
        _train(catalog, create_run_dir(tmp_path / "empty"), resume=True)
    _train(catalog, tmp_path / "mlp", rounds=1)
    config = (tmp_path / "mlp" / "config.toml").read_bytes()
    refused = (r"the run continues under the configuration it started with, and this changes it "
               r"\(\[policy\] trunk: 'mlp' in its config.toml, 'lstm' now\)")
    with pytest.raises(ConfigError, match=refused):
        _train(catalog, tmp_path / "mlp", resume=True, trunk="lstm")
    assert (tmp_path / "mlp" / "config.toml").read_bytes() == config
    # Giving the default the run trained with changes nothing: what stops it is only that it finished.
    with pytest.raises(ConfigError, match="that run already finished its 1 rounds"):
        _train(catalog, tmp_path / "mlp", resume=True, rounds=1, trunk="mlp")
    # Without the run's config to compare with, the checkpoint's own record still refuses it.
    (tmp_path / "mlp" / "config.toml").unlink()
    with pytest.raises(ConfigError, match=r"was written under another configuration than this run's "
                                          r"\(\[policy\] trunk: 'mlp' in the checkpoint, 'lstm' now\)"):
        _train(catalog, tmp_path / "mlp", resume=True, trunk="lstm")


def test_a_trained_policy_runs_from_its_checkpoint_and_refuses_another_catalog(catalog, tmp_path):
    _train(catalog, tmp_path / "train", rounds=1)
    checkpoint = tmp_path / "train" / "policy.pt"
    config = RunConfig.from_dict({"run": {"task": "toy", "policy": "ppo", "epochs": 4, "seed": 3,
                                          "compare_baseline": False},
                                  "policy": {"checkpoint": str(checkpoint), "sample": True}})
    summary = execute_run(resolve_run(config, catalog), catalog, create_run_dir(tmp_path / "act"))
    assert summary["policy"] == "ppo" and summary["epochs"] == 4 and "training" not in summary
    keys = ("toy:noop", "toy:residual_linear")
    context = PolicyContext(slot_names=("hidden1", "hidden2"), blueprint_keys=keys[:1], topology="toy",
                            max_epochs=4, seed=0, options={"checkpoint": str(checkpoint)})
    with pytest.raises(ConfigError, match="another blueprint catalog .missing here: toy:residual_linear"):
        ppo_from_context(context=context)
    with pytest.raises(ConfigError, match="acts from a trained checkpoint"):
        ppo_from_context(context=PolicyContext(slot_names=("h",), blueprint_keys=keys, topology="toy",
                                                     max_epochs=4, seed=0))
    config = RunConfig.from_dict({"run": {"task": "toy", "policy": "ppo", "epochs": 4},
                                  "policy": {"checkpoint": str(checkpoint), "rounds": 3}})
    with pytest.raises(ConfigError, match="--policy-checkpoint runs a trained policy without training"):
        execute_run(resolve_run(config, catalog), catalog, create_run_dir(tmp_path / "both"))


def test_evaluate_runs_every_policy_on_the_same_held_out_episodes(catalog, tmp_path):
    _train(catalog, tmp_path / "train", rounds=1)
    heard = []
    evaluation = evaluate_checkpoint(catalog, tmp_path / "train" / "policy.pt", episodes=2,
                                     against=("heuristic", "random", "noop"), epochs=4,
                                     on_progress=lambda *args: heard.append(args))
    rows = {p["policy"]: p for p in evaluation["policies"]}
    # esper evaluate's progress: told the total first, then each of the 4 × 2 episodes as it ends.
    assert [(done, total) for done, total, _ in heard] == [(k, 8) for k in range(9)]
    assert heard[3][2] == f"heuristic episode 1/2: {rows['heuristic']['final_accuracies'][0]:.2f}%"
    assert list(rows) == ["ppo", "heuristic", "random", "noop"]
    assert all(len(p["final_accuracies"]) == 2 for p in rows.values())
    assert rows["noop"]["fossilized"] == rows["noop"]["culled"] == 0 and rows["noop"]["params_added_mean"] == 0
    assert all(s % 2 == 1 for s in evaluation["held_out_seeds"])
    text = format_evaluation(evaluation)
    assert "± " in text and "heuristic" in text and "2 held-out episodes of 4 epochs" in text
    # Accuracy claims use the held-out test split, paired over the same episodes.
    assert all(len(p["test_accuracies"]) == 2 and None not in p["test_accuracies"] for p in rows.values())
    assert rows["noop"]["test_accuracy_mean"] == pytest.approx(sum(rows["noop"]["test_accuracies"]) / 2)
    paired = evaluation["paired_test_accuracy"]
    assert list(paired) == ["heuristic", "random", "noop"] and all(d["n"] == 2 for d in paired.values())
    diffs = [a - b for a, b in zip(rows["ppo"]["test_accuracies"], rows["noop"]["test_accuracies"], strict=True)]
    assert paired["noop"]["mean"] == pytest.approx(sum(diffs) / 2)
    assert "test acc %" in text and f"− noop: {paired['noop']['mean']:+.2f}" in text
    with pytest.raises(Exception, match="unknown policy 'heuristik'"):
        evaluate_checkpoint(catalog, tmp_path / "train" / "policy.pt", episodes=1, against=("heuristik",))
    with pytest.raises(ConfigError, match="--episodes 0 is invalid; expected an integer ≥ 1"):
        evaluate_checkpoint(catalog, tmp_path / "train" / "policy.pt", episodes=0, against=())
    # How the trained policy acts reaches it: sampling is accepted and recorded, an option only
    # IQL has is refused for PPO by name.
    sampled = evaluate_checkpoint(catalog, tmp_path / "train" / "policy.pt", episodes=1, against=(), epochs=4,
                                  policy_options={"sample": True})
    assert sampled["policy_options"] == {"sample": True} and "ppo acts with sample = True" in format_evaluation(sampled)
    with pytest.raises(ConfigError, match="policy 'ppo'.*support_threshold"):
        evaluate_checkpoint(catalog, tmp_path / "train" / "policy.pt", episodes=1, against=(),
                            policy_options={"support_threshold": 0.5})


@pytest.mark.parametrize(("against", "message"), [
    # run and reported twice before
    (("noop", "noop"), r"--against 'noop,noop' is invalid; expected distinct policy names, got 'noop' twice "
                       r"\(items 1 and 2\)"),
    (("heuristic", "noop", "heuristic"), "got 'heuristic' twice"),
    # silently dropped before: the checkpoint's own policy is always evaluated, first
    (("ppo",), "--against 'ppo' names 'ppo', the policy the checkpoint holds: it is always evaluated, first"),
    (("noop", "ppo"), "names 'ppo', the policy the checkpoint holds"),
])
def test_evaluate_refuses_a_policy_named_twice_or_the_trained_one(catalog, tmp_path, against, message):
    _train(catalog, tmp_path / "train", rounds=1, envs=1)
    heard = []
    with pytest.raises(ConfigError, match=message):
        evaluate_checkpoint(catalog, tmp_path / "train" / "policy.pt", episodes=1, against=against,
                            on_progress=lambda *args: heard.append(args))
    assert heard == []  # refused before any episode ran


def test_the_largest_seed_trains_evaluates_and_acts_from_a_checkpoint(catalog, tmp_path):
    # 2**63 - 1 is the largest seed a run accepts; a checkpoint policy seeded its generator with
    # seed * 100_003 + episode, which overflowed torch's range above about 1.8e14.
    from esper_core.options import INT_MAX

    config = RunConfig.from_dict({"run": {"task": "toy", "policy": "ppo", "epochs": 3, "seed": INT_MAX},
                                  "policy": {"rounds": 1, "envs": 1, "hidden": 16}})
    execute_run(resolve_run(config, catalog), catalog, create_run_dir(tmp_path / "train"))
    checkpoint = tmp_path / "train" / "policy.pt"
    for seed in (None, 200_000_000_000_000, INT_MAX):
        evaluation = evaluate_checkpoint(catalog, checkpoint, episodes=1, against=("noop",), seed=seed,
                                         policy_options={"sample": True})
        assert evaluation["seed"] == (INT_MAX if seed is None else seed)
    config = RunConfig.from_dict({"run": {"task": "toy", "policy": "ppo", "epochs": 3, "seed": INT_MAX,
                                          "episodes": 2, "compare_baseline": False},
                                  "policy": {"checkpoint": str(checkpoint), "sample": True}})
    summary = execute_run(resolve_run(config, catalog), catalog, create_run_dir(tmp_path / "act"))
    assert summary["policy"] == "ppo" and "training" not in summary


def test_resuming_a_finished_training_run_is_refused_and_changes_nothing(catalog, tmp_path):
    run = tmp_path / "run"
    _train(catalog, run, rounds=1)
    before = {p.name: p.read_bytes() for p in (run / "summary.json", run / "policy.pt", run / "events.jsonl")}
    with pytest.raises(ConfigError, match="that run already finished its 1 rounds .*resume with a larger --rounds"):
        _train(catalog, run, resume=True, rounds=1)
    assert {p.name: p.read_bytes() for p in (run / "summary.json", run / "policy.pt", run / "events.jsonl")} == before


@pytest.mark.parametrize(("change", "message"), [
    (lambda t: t.update(generator=torch.zeros(3)), "holds a damaged training state .TypeError: RNG state"),
    (lambda t: t.pop("optimizer"), "holds a damaged training state .KeyError"),
    (lambda t: t.update(rounds_done="many"), "holds a damaged training state .ValueError"),
    (lambda t: t.update(history=[1, 2]), r"holds a damaged training state \(rounds or history\)"),
    (lambda t: t.update(bc=[0.5]), r"holds a damaged training state \(behaviour cloning record\)"),
])
def test_a_damaged_training_state_is_named_on_resume(catalog, tmp_path, change, message):
    run = tmp_path / "run"
    _train(catalog, run, rounds=1)
    (run / "summary.json").unlink()
    latest = run / "checkpoints" / "latest.pt"
    data = torch.load(latest, weights_only=True)
    change(data["payload"]["training"])
    torch.save(data, latest)
    with pytest.raises(ConfigError, match=message) as info:
        _train(catalog, run, resume=True, rounds=2)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(("other", "difference"), [
    ({"lr": 0.01}, r"\[policy\] lr: 0.01 in the checkpoint, 0.0003 now"),
    ({"hidden": 16, "gamma": 0.5}, r"\[policy\] gamma: 0.5 in the checkpoint, 0.99 now"),
])
def test_a_checkpoint_copied_from_another_run_is_refused_on_resume(catalog, tmp_path, other, difference):
    run, stranger = tmp_path / "run", tmp_path / "stranger"
    _train(catalog, run, rounds=1)
    _train(catalog, stranger, rounds=1, **other)
    (run / "summary.json").unlink()
    latest = run / "checkpoints" / "latest.pt"
    latest.write_bytes((stranger / "checkpoints" / "latest.pt").read_bytes())
    before = latest.read_bytes(), (run / "policy.pt").read_bytes()
    with pytest.raises(ConfigError, match=rf"^--resume: '{latest}' was written under another configuration than "
                                          rf"this run's \({difference}\); a run resumes only from its own"):
        _train(catalog, run, resume=True, rounds=2)
    assert (latest.read_bytes(), (run / "policy.pt").read_bytes()) == before


def test_a_moved_run_resumes_from_its_own_checkpoint_with_more_rounds(catalog, tmp_path):
    _train(catalog, tmp_path / "run", rounds=1)
    moved = tmp_path / "moved"
    (tmp_path / "run").rename(moved)
    (moved / "summary.json").unlink()
    assert _train(catalog, moved, resume=True, rounds=2)["rounds"] == 2


@pytest.mark.parametrize("workers", [False, True])
def test_sigterm_finishes_the_round_checkpoints_and_the_run_resumes_exactly(catalog, tmp_path, monkeypatch, workers):
    """SIGTERM mid-round, as a scheduler sends it: the round finishes, latest.pt is written, the
    run stops with the resume command and exit code 143, and the resumed run ends as one never
    interrupted. With --workers the workers, sent it too, ignore it."""
    _train(catalog, tmp_path / "whole", rounds=3, workers=workers)
    cls = WorkerEnvironments if workers else InProcessEnvironments
    step, sent = cls.step, []

    def step_and_signal(self, decisions):
        if not sent:
            sent.append(True)
            for pid in [os.getpid(), *(proc.pid for proc in getattr(self, "_procs", []))]:
                os.kill(pid, signal.SIGTERM)
        return step(self, decisions)

    monkeypatch.setattr(cls, "step", step_and_signal)
    run = tmp_path / "split"
    with pytest.raises(RunInterrupted, match=r"^interrupted after round 1 of 3; .*`esper run --resume ") as info:
        _train(catalog, run, rounds=3, workers=workers)
    monkeypatch.undo()
    assert info.value.exit_code == 143
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL, "the handler is removed with the run"
    assert torch.load(run / "checkpoints" / "latest.pt", weights_only=True)["payload"]["training"]["rounds_done"] == 1
    assert not (run / "summary.json").exists() and not (run / "policy.pt").exists()
    assert _train(catalog, run, resume=True, rounds=3, workers=workers)["rounds"] == 3
    whole, split = _weights(tmp_path / "whole" / "policy.pt"), _weights(run / "policy.pt")
    assert all(torch.equal(whole[k], split[k]) for k in whole)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("terminal", [True, False], ids=["terminal", "piped"])
def test_training_shows_a_progress_line_per_round_on_a_terminal_only(catalog, tmp_path, monkeypatch, terminal):
    import structlog

    from esper_core.log_config import configure_logging

    stream = _Terminal() if terminal else io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    configure_logging("info", "auto")  # console on a terminal, JSON lines otherwise
    try:
        _train(catalog, tmp_path / "run")
    finally:
        structlog.reset_defaults()
    lines = stream.getvalue().splitlines()
    progress = [line for line in lines if line.startswith("PPO  ")]
    if terminal:
        assert [line.split("  ")[1] for line in progress] == ["1/2 rounds", "2/2 rounds"]
        assert "mean return" in progress[0] and "ETA" in progress[0] and "ETA" not in progress[1]
        assert not any("ppo_round" in line for line in lines)  # the progress line is the round's line
    else:
        assert progress == []
        rounds = [json.loads(line) for line in lines if '"ppo_round"' in line]
        assert [r["round"] for r in rounds] == ["1/2", "2/2"]


def test_group_advantages_run_each_group_on_one_episode_seed(catalog, tmp_path, monkeypatch):
    """Under ``advantage = "group"`` the members of a group start from the same episode seed,
    so they see the same first report; groups and rounds get different seeds."""
    starts = []
    original = InProcessEnvironments.start

    def recording(self, episodes, seeds):
        steps = original(self, episodes, seeds)
        starts.append((list(seeds), [attrs.evolve(s.report, episode=0) for s in steps]))  # all but its number
        return steps

    monkeypatch.setattr(InProcessEnvironments, "start", recording)
    summary = _train(catalog, tmp_path / "group", envs=4, advantage="group", group_size=2)
    assert summary["episodes"] == 8 and len(starts) == 2
    for seeds, reports in starts:
        assert seeds[0] == seeds[1] != seeds[2] == seeds[3]
        assert reports[0] == reports[1] != reports[2] == reports[3]
    assert starts[0][0][0] != starts[1][0][0]
    with pytest.raises(ConfigError, match="group_size = 3, which must divide envs = 4"):
        _train(catalog, tmp_path / "bad", envs=4, advantage="group", group_size=3)


def _catalog_with_antipatterns():
    """The toy catalog plus two anti-pattern blueprints: a cheap one and one no budget below a
    million parameters admits."""
    module = types.ModuleType("bad_blueprints")
    module.esper_register_blueprints = hookimpl(lambda: [
        BlueprintSpec(name=name, topology=toy.TOPOLOGY, factory=toy.residual_linear, param_estimate=estimate,
                      description="anti-pattern (test)", is_antipattern=True)
        for name, estimate in (("bad_cheap", lambda w: 1), ("bad_huge", lambda w: 10**6))])
    return build_catalog(load_plugins(PluginSettings(autoload=False),
                                      extra=[("toy", toy), ("policies", plugin), ("bad", module)]))


@pytest.mark.parametrize(("budget", "chance"), [(None, 2 / 3), (10**5, 1 / 2)])
def test_each_round_records_the_anti_pattern_share_and_what_chance_would_give(tmp_path, budget, chance):
    # Chance is read from the mask at each germination: a budget that rules out an anti-pattern
    # lowers it below the catalog's proportion (2 of 3 blueprints).
    cat = _catalog_with_antipatterns()
    config = RunConfig.from_dict({
        "run": {"task": "toy", "policy": "ppo", "epochs": 5, "seed": 3, "param_budget": budget,
                "blueprints": ["residual_linear", "bad_cheap", "bad_huge"]},
        "policy": {"rounds": 3, "envs": 2, "update_epochs": 1, "hidden": 16},
    })
    summary = execute_run(resolve_run(config, cat), cat, create_run_dir(tmp_path / "run"))
    rounds = [h for h in summary["history"] if h["germinations"]]
    assert rounds, "no round germinated anything"
    for h in rounds:
        assert h["antipattern_chance"] == pytest.approx(chance)
        assert 0 <= h["antipattern_share"] <= 1
        bad = h.get("germinated.toy:bad_cheap", 0) + h.get("germinated.toy:bad_huge", 0)
        assert h["antipattern_share"] == pytest.approx(bad / h["germinations"])
    if budget is not None:
        assert not any("germinated.toy:bad_huge" in h for h in summary["history"])
    assert all(h["antipattern_chance"] is None for h in summary["history"] if not h["germinations"])
    header = next(line for line in format_summary(summary).splitlines() if "mean return" in line)
    assert "anti-pattern share" in header and "anti-pattern chance" in header

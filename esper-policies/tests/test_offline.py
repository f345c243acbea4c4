"""Episode datasets, `esper collect` and IQL, on the in-process toy topology."""

from __future__ import annotations

import json
import os
import signal

import pytest
import structlog.testing
import torch

from esper_core.config import RunConfig
from esper_core.contracts.decisions import Op
from esper_core.contracts.observation import ObservationLayout
from esper_core.errors import ConfigError, DataError
from esper_core.plugins import PluginSettings, build_catalog, load_plugins
from esper_core.presentation.evaluation_report import format_evaluation
from esper_core.sdk import load_policy_checkpoint
from esper_core.setup.resolve import resolve_run
from esper_core.storage.rundir import create_run_dir
from esper_core.telemetry.jsonl import read_events
from esper_core.testing import toy
from esper_core.tolaria.evaluation import evaluate_checkpoint
from esper_core.tolaria.interrupts import RunInterrupted
from esper_core.tolaria.job import execute_run
from esper_policies import checkpoint, plugin
from esper_policies.encoding import MaskBatch
from esper_policies.iql.config import IQLConfig
from esper_policies.iql.update import IQLLearner, TwinQ, action_code
from esper_policies.offline.collect import collect
from esper_policies.offline.dataset import Batch, EpisodeDataset, require_dataset
from esper_policies.ppo.network import ActorCritic


@pytest.fixture(scope="module")
def catalog():
    return build_catalog(load_plugins(PluginSettings(autoload=False), extra=[("toy", toy), ("policies", plugin)]))


def _resolved(catalog, policy="random", **run):
    return resolve_run(RunConfig.from_dict({"run": {"task": "toy", "policy": policy, "epochs": 4, **run},
                                            "gates": {"g5_min_contribution": -100.0}}), catalog)


@pytest.fixture(scope="module")
def datasets(catalog, tmp_path_factory):
    root = tmp_path_factory.mktemp("datasets")
    collect(_resolved(catalog, "random"), catalog, root / "random", episodes=3)
    collect(_resolved(catalog, "heuristic"), catalog, root / "heuristic", episodes=2)
    return root


def test_collected_episodes_round_trip(datasets):
    dataset = EpisodeDataset(datasets / "random")
    meta = json.loads((datasets / "random" / "dataset.json").read_text())
    assert meta["format"] == "esper-episodes" and meta["policy"] == "random" and meta["epochs"] == 4
    assert len(dataset) == 3 and dataset.transitions() == 12
    episode = dataset.read_episode(dataset.shards[0])
    assert episode["obs"].shape == (4, meta["observation_size"]) and episode["actions"].shape == (4, 3)
    assert torch.equal(episode["next_obs"][:-1], episode["obs"][1:])
    assert episode["terminated"].tolist() == [False, False, False, True] and not episode["truncated"].any()
    terms = sum(episode["reward_terms"].values())
    assert torch.allclose(terms, episode["rewards"], atol=1e-5)
    assert float(episode["rewards"].sum()) == pytest.approx(episode["total_reward"], abs=1e-4)
    for t in range(4):  # every recorded action was allowed by its recorded mask
        op, slot, bp = episode["actions"][t].tolist()
        assert episode["mask_ops"][t, op]
        if op != Op.WAIT:
            assert episode["mask_slots"][t, op, slot]
        if op == Op.GERMINATE:
            assert episode["mask_blueprints"][t, bp]
    batches = list(dataset.minibatches(5, generator=torch.Generator().manual_seed(0), shards_per_chunk=2))
    assert sum(len(b) for b in batches) == 12 and max(len(b) for b in batches) == 5


def test_collection_resumes_and_refuses_other_recordings(catalog, datasets, tmp_path):
    out = tmp_path / "ds"
    collect(_resolved(catalog, "random"), catalog, out, episodes=1)
    summary = collect(_resolved(catalog, "random"), catalog, out, episodes=2)
    assert summary["episodes"] == 2 and summary["recorded_now"] == 1
    first = EpisodeDataset(out).read_episode(EpisodeDataset(out).shards[0])
    again = EpisodeDataset(datasets / "random").read_episode(EpisodeDataset(datasets / "random").shards[0])
    assert torch.equal(first["obs"], again["obs"])  # episode k always has the same seed
    with pytest.raises(ConfigError, match=r"recorded with other settings \(\[dataset\] policy: 'random' in its "
                                          r"dataset.json, 'noop' now\)"):
        collect(_resolved(catalog, "noop"), catalog, out, episodes=3)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x.txt").write_text("x")
    with pytest.raises(ConfigError, match="not an episode dataset"):
        collect(_resolved(catalog, "noop"), catalog, tmp_path / "junk", episodes=1)
    with pytest.raises(ConfigError, match="--episodes 0 is invalid; expected an integer ≥ 1"):
        collect(_resolved(catalog, "noop"), catalog, tmp_path / "z", episodes=0)


def _copy(datasets, tmp_path, name="random"):
    import shutil

    out = tmp_path / name
    shutil.copytree(datasets / name, out)
    return out


def _shards(path):
    """``{name: bytes}`` of the files in a dataset's episodes/ folder, less hidden (temporary) ones."""
    return {p.name: p.read_bytes() for p in sorted((path / "episodes").iterdir()) if not p.name.startswith(".")}


def _assert_same_episode(a, b):
    assert a.keys() == b.keys()
    for key, value in a.items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(value, b[key]), key
        elif key == "reward_terms":
            assert value.keys() == b[key].keys() and all(torch.equal(value[t], b[key][t]) for t in value), key
        else:
            assert value == b[key], key


@pytest.mark.parametrize(("policy", "deleted", "episodes"), [
    ("random", [1], 3),     # the tester's case: episode 1 deleted, --episodes 3 again
    ("random", [0, 1], 2),  # episode 2 held is no stand-in for a missing episode below --episodes
    ("heuristic", [0], 2),  # a policy with state, episode 0 missing while episode 1 is held
])
def test_collect_records_exactly_the_missing_episodes_and_rewrites_no_other(catalog, datasets, tmp_path, policy,
                                                                              deleted, episodes):
    import io

    out = _copy(datasets, tmp_path, policy)
    original = _shards(out)
    for k in deleted:
        (out / "episodes" / f"{k:06d}.pt").unlink()
    # An interrupted write of a missing episode leaves a hidden temporary file: no episode.
    (out / "episodes" / f".{deleted[0]:06d}.pt.0123456789ab.tmp").write_bytes(b"partial")
    summary = collect(_resolved(catalog, policy), catalog, out, episodes=episodes)
    assert summary["episodes"] == len(original) and summary["recorded_now"] == len(deleted)
    after = _shards(out)
    assert sorted(after) == sorted(original)
    for name, content in original.items():
        if int(name[:-3]) in deleted:  # re-recorded on the seed the uninterrupted collection used
            _assert_same_episode(torch.load(io.BytesIO(after[name]), weights_only=True),
                                 torch.load(io.BytesIO(content), weights_only=True))
        else:  # never rewritten
            assert after[name] == content, name
    again = collect(_resolved(catalog, policy), catalog, out, episodes=episodes)
    assert again["episodes"] == len(original) and again["recorded_now"] == 0 and _shards(out) == after


def test_collect_names_episodes_it_was_not_asked_to_fill(catalog, datasets, tmp_path):
    out = _copy(datasets, tmp_path)
    (out / "episodes" / "000001.pt").unlink()
    with structlog.testing.capture_logs() as logs:
        summary = collect(_resolved(catalog, "random"), catalog, out, episodes=1)
    assert summary["episodes"] == 2 and summary["recorded_now"] == 0
    (warning,) = [e for e in logs if e["event"] == "dataset_incomplete"]
    assert warning["hint"].startswith("training refuses it until it is filled: it lacks episode 1 of episodes 0 to 2;")
    assert "--episodes 3 or more" in warning["hint"]


@pytest.mark.parametrize("name", ["backup.pt", "notes.txt", "1.pt", "0000001.pt", "100000.pt", "000001.pt.bak"])
def test_a_file_in_episodes_that_is_no_shard_is_refused_naming_it(catalog, datasets, tmp_path, name):
    import re
    import shutil

    out = _copy(datasets, tmp_path)
    stray = out / "episodes" / name
    shutil.copyfile(out / "episodes" / "000000.pt", stray)  # a valid episode under a name collect never writes
    before = _shards(out)
    message = re.escape(f"episode dataset '{out}' holds '{stray}', which is not an episode shard")
    with pytest.raises(DataError, match=message):
        collect(_resolved(catalog, "random"), catalog, out, episodes=4)
    assert _shards(out) == before
    with pytest.raises(DataError, match=message):
        EpisodeDataset(out).shards  # noqa: B018 - the property reads the folder
    with pytest.raises(ConfigError, match=re.escape(f"--dataset '{out}': ") + message):
        _iql(catalog, tmp_path, out)
    assert not (tmp_path / "run" / "policy.pt").exists()


@pytest.mark.parametrize(("deleted", "missing"), [([1], "episode 1"), ([0, 1], "episodes 0 and 1")])
@pytest.mark.parametrize(("policy", "option", "flag"), [("iql", "dataset", "--dataset"),
                                                        ("ppo", "bc_dataset", "--bc-dataset")])
def test_training_refuses_a_dataset_with_missing_episodes_until_collect_fills_them(catalog, datasets, tmp_path,
                                                                                  policy, option, flag, deleted,
                                                                                  missing):
    out = _copy(datasets, tmp_path)
    for k in deleted:
        (out / "episodes" / f"{k:06d}.pt").unlink()
    resolved = resolve_run(RunConfig.from_dict({"run": {"task": "toy", "policy": policy, "epochs": 4},
                                                "policy": {option: str(out)}}), catalog)
    with pytest.raises(ConfigError) as info:
        resolved.policy.trainer(context=_training_context(resolved))
    assert str(info.value) == (
        f"{flag} '{out}' lacks {missing} of episodes 0 to 2; run the `esper collect` that recorded it "
        f"again (--out '{out}', the settings it was recorded with and --episodes 3 or more): it records "
        "only the missing episodes")
    collect(_resolved(catalog, "random"), catalog, out, episodes=3)
    resolved.policy.trainer(context=_training_context(resolved))


@pytest.mark.parametrize(("table", "key", "value"), [
    ("policy", "confidence_z", 3.0), ("task", "train_size", 24), ("rewards", "param_rent", 50.0),
    ("kasmina", "blending_epochs", 1), ("gates", "confidence_z", 3.0), ("training", "lr", 0.5),
])
def test_continuing_a_dataset_refuses_any_other_setting_and_changes_nothing(catalog, tmp_path, table, key, value):
    out = tmp_path / "ds"
    collect(_resolved(catalog, "heuristic"), catalog, out, episodes=1)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    config = {"run": {"task": "toy", "policy": "heuristic", "epochs": 4},
              "gates": {"g5_min_contribution": -100.0}}
    config.setdefault(table, {})[key] = value
    changed = resolve_run(RunConfig.from_dict(config), catalog)
    with pytest.raises(ConfigError, match=rf"recorded with other settings \(\[{table}\] {key}: .* in its "
                                          rf"dataset.json, {value!r} now\)"):
        collect(changed, catalog, out, episodes=2)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_continuing_a_dataset_with_options_given_their_defaults_continues_it(catalog, tmp_path):
    from esper_core.testing.toy import ToyOptions
    from esper_policies.heuristic_config import HeuristicConfig

    out = tmp_path / "ds"
    collect(_resolved(catalog, "heuristic"), catalog, out, episodes=1)
    config = {"run": {"task": "toy", "policy": "heuristic", "epochs": 4}, "gates": {"g5_min_contribution": -100.0},
              "task": {"train_size": ToyOptions().train_size},
              "policy": {"confidence_z": HeuristicConfig().confidence_z}}
    summary = collect(resolve_run(RunConfig.from_dict(config), catalog), catalog, out, episodes=2)
    assert summary["episodes"] == 2 and summary["recorded_now"] == 1


def test_continuing_a_dataset_may_ask_for_more_episodes_elsewhere_or_on_more_threads(catalog, tmp_path):
    out = tmp_path / "ds"
    collect(_resolved(catalog, "random"), catalog, out, episodes=1)
    summary = collect(_resolved(catalog, "random", episodes=7, threads=2, device="cpu", checkpoint_keep=5),
                      catalog, out, episodes=2)
    assert summary["episodes"] == 2 and summary["recorded_now"] == 1


def test_collect_never_puts_a_dataset_inside_a_run_or_another_dataset(catalog, datasets, tmp_path):
    from click.testing import CliRunner

    from esper_core.sdk import AppState
    from esper_policies.offline.commands import collect_command

    run = tmp_path / "r1"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.toml").write_text("[run]\n")
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    for out in (run / "sub", datasets / "random" / "inner"):
        result = CliRunner().invoke(collect_command, ["--policy", "random", "--task", "toy", "--episodes", "1",
                                                      "--out", str(out)],
                                    obj=AppState(PluginSettings(autoload=False), _catalog=catalog))
        assert isinstance(result.exception, ConfigError), result.output
        assert "is inside the run or dataset directory" in str(result.exception)
        assert not out.exists()
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_bad_datasets_are_errors_that_name_the_file(datasets, tmp_path):
    with pytest.raises(DataError, match="is not an episode dataset"):
        EpisodeDataset(tmp_path)
    with pytest.raises(ConfigError, match="needs a dataset"):
        require_dataset(None)
    copy = tmp_path / "copy"
    (copy / "episodes").mkdir(parents=True)
    meta = json.loads((datasets / "random" / "dataset.json").read_text())
    (copy / "dataset.json").write_text(json.dumps({**meta, "format_version": 7}))
    with pytest.raises(DataError, match="format version 7"):
        EpisodeDataset(copy)
    (copy / "dataset.json").write_text("{not json")
    with pytest.raises(DataError, match="unreadable"):
        EpisodeDataset(copy)
    (copy / "dataset.json").write_text(json.dumps(meta))
    dataset = EpisodeDataset(copy)
    with pytest.raises(DataError, match="no complete episodes"):
        next(dataset.minibatches(4, generator=torch.Generator()))
    (copy / "episodes" / "000000.pt").write_bytes(b"truncated")
    with pytest.raises(DataError, match=r"episodes/000000.pt' is corrupt"):
        dataset.read_episode(dataset.shards[0])
    torch.save({"obs": torch.zeros(1, 3)}, copy / "episodes" / "000000.pt")
    with pytest.raises(DataError, match="incomplete: missing next_obs"):
        dataset.read_episode(dataset.shards[0])
    with pytest.raises(ConfigError, match="was recorded on another blueprint catalog"):
        dataset.check(blueprint_keys=["toy:noop"], slot_names=meta["slot_names"])


def test_iql_trains_from_datasets_and_its_policy_is_evaluated(catalog, datasets, tmp_path):
    both = f"{datasets / 'random'},{datasets / 'heuristic'}"
    config = RunConfig.from_dict({"run": {"task": "toy", "policy": "iql", "epochs": 4},
                                  "policy": {"dataset": both, "steps": 40, "batch_size": 8, "log_every": 20}})
    summary = execute_run(resolve_run(config, catalog), catalog, create_run_dir(tmp_path / "iql"))
    assert summary["training"] and summary["episodes_in_datasets"] == 5 and len(summary["history"]) == 2
    assert {"v_loss", "q_loss", "pi_loss"} <= set(summary["history"][0])
    evaluation = evaluate_checkpoint(catalog, tmp_path / "iql" / "policy.pt", episodes=1, against=("noop",))
    assert [p["policy"] for p in evaluation["policies"]] == ["iql", "noop"]


@pytest.fixture(scope="module")
def iql_checkpoint(catalog, datasets, tmp_path_factory):
    out = tmp_path_factory.mktemp("iql") / "run"
    config = RunConfig.from_dict({"run": {"task": "toy", "policy": "iql", "epochs": 4},
                                  "policy": {"dataset": f"{datasets / 'random'},{datasets / 'heuristic'}",
                                             "steps": 40, "batch_size": 8, "hidden": 16}})
    execute_run(resolve_run(config, catalog), catalog, create_run_dir(out))
    return out / "policy.pt"


def _load_iql(path):
    data = load_policy_checkpoint(path)
    return checkpoint.load(path, policy="iql", blueprint_keys=data["blueprint_catalog"],
                           slot_names=data["slot_names"])


def test_an_iql_checkpoint_keeps_its_critic_and_acts_on_it(catalog, iql_checkpoint, tmp_path):
    loaded = _load_iql(iql_checkpoint)
    assert isinstance(loaded.critic, TwinQ) and loaded.critic.hidden == 16 and not loaded.critic.training
    fresh = TwinQ(loaded.network.trunk[0].in_features, loaded.network.n_slots, loaded.network.n_blueprints, 16)
    assert fresh.state_dict().keys() == loaded.critic.state_dict().keys()
    config = RunConfig.from_dict({"run": {"task": "toy", "policy": "iql", "epochs": 4},
                                  "policy": {"checkpoint": str(iql_checkpoint), "support_threshold": 0.5}})
    execute_run(resolve_run(config, catalog), catalog, create_run_dir(tmp_path / "act"))
    reasons = [e["reason"] for e in read_events(tmp_path / "act" / "events.jsonl") if e["kind"] == "decision"]
    assert len(reasons) == 4 and all(r.startswith("iql (critic among the actor's choices, τ 0.5)") for r in reasons)
    evaluation = evaluate_checkpoint(catalog, iql_checkpoint, episodes=1, against=("noop",),
                                     policy_options={"support_threshold": 0.5})
    assert evaluation["policy_options"] == {"support_threshold": 0.5}
    assert "iql acts with support_threshold = 0.5" in format_evaluation(evaluation)


def _without_critic(payload):
    payload["critic"] = None


def _critic_nan(payload):
    payload["critic"]["state_dict"]["q1.0.weight"][0, 0] = float("nan")


@pytest.mark.parametrize(("change", "message"), [
    (lambda p: p.update(critic=[1]), "its critic is not a table of hidden and state_dict"),
    (lambda p: p["critic"].update(hidden=10**9), "asks for a critic 1000000000 units wide"),
    (lambda p: p["critic"].update(hidden=8), "its critic weights do not match|critic weight q1.0.weight"),
    (lambda p: p["critic"]["state_dict"].pop("q2.4.bias"), "its critic weights do not match its architecture"),
    (_critic_nan, r"has non-finite critic weights \(q1.0.weight\)"),
])
def test_a_crafted_critic_is_refused_naming_the_file(iql_checkpoint, tmp_path, change, message):
    data = torch.load(iql_checkpoint, weights_only=True)
    change(data["payload"])
    path = tmp_path / "crafted.pt"
    torch.save(data, path)
    with pytest.raises(ConfigError, match=message) as info:
        _load_iql(path)
    assert str(path) in str(info.value)


def test_acting_on_a_critic_the_checkpoint_lacks_or_with_bad_options_is_refused(catalog, iql_checkpoint, tmp_path):
    data = torch.load(iql_checkpoint, weights_only=True)
    _without_critic(data["payload"])
    torch.save(data, tmp_path / "old.pt")
    assert _load_iql(tmp_path / "old.pt").critic is None
    with pytest.raises(ConfigError, match="old.pt' holds no critic .*support_threshold = 0.3 needs it"):
        evaluate_checkpoint(catalog, tmp_path / "old.pt", episodes=1, against=(),
                            policy_options={"support_threshold": 0.3})
    # without the critic it still acts with its actor
    assert evaluate_checkpoint(catalog, tmp_path / "old.pt", episodes=1, against=())["policies"][0]["policy"] == "iql"
    for options, message in [
        ({"support_threshold": 0.0}, r"'support_threshold' = 0.0 is invalid; expected a finite number in \(0, 1\]"),
        ({"support_threshold": 0.3, "sample": True}, "cannot be combined with support_threshold = 0.3"),
        ({"checkpoint": "x.pt"}, "the checkpoint is --policy-checkpoint's argument"),
        ({"suport_threshold": 0.3}, "unknown option 'suport_threshold'"),
    ]:
        with pytest.raises(ConfigError, match=message):
            evaluate_checkpoint(catalog, iql_checkpoint, episodes=1, against=(), policy_options=options)


def test_iql_option_errors(catalog, datasets, tmp_path):
    def run(policy_options, out, **kw):
        config = RunConfig.from_dict({"run": {"task": "toy", "policy": "iql", "epochs": 4}, "policy": policy_options})
        return execute_run(resolve_run(config, catalog), catalog, create_run_dir(tmp_path / out), **kw)

    with pytest.raises(ConfigError, match="needs a dataset"):
        run({}, "a")
    with pytest.raises(ConfigError, match=f"--dataset '{tmp_path}': .*is not an episode dataset"):
        run({"dataset": str(tmp_path)}, "b")
    with pytest.raises(ConfigError, match=r"policy 'iql' option 'expectile' = 0.2 is invalid; "
                                          r"expected a finite number in \[0.5, 1\]"):
        run({"dataset": str(datasets / "random"), "expectile": 0.2}, "c")
    with pytest.raises(ConfigError, match="--resume applies to PPO"):
        run({"dataset": str(datasets / "random")}, "d", resume=True)
    with pytest.raises(ValueError, match=r"dataset = \[\] is invalid; expected a directory or a list of distinct "
                                         r"directories"):
        IQLConfig(dataset=[])
    with pytest.raises(ConfigError, match=r"policy 'iql' option 'slot_head' = 'pointer' is invalid; "
                                          r"expected one of 'linear', 'shared'"):
        run({"dataset": str(datasets / "random"), "slot_head": "pointer"}, "e")
    with pytest.raises(ConfigError, match=r"'actor_dropout' = 1 is invalid; expected a finite number in \[0, 1\)"):
        run({"dataset": str(datasets / "random"), "actor_dropout": 1}, "f")
    with pytest.raises(ConfigError, match=r"option 'actor_weight_decay' = -0.1 is invalid"):
        run({"dataset": str(datasets / "random"), "actor_weight_decay": -0.1}, "g")
    with pytest.raises(ConfigError, match=r"option 'advantage_weights' = 'hard' is invalid; "
                                          r"expected one of 'exponential', 'binary'"):
        run({"dataset": str(datasets / "random"), "advantage_weights": "hard"}, "h")


def test_one_dataset_spelled_two_ways_is_refused_before_training(catalog, datasets, tmp_path, monkeypatch):
    # d, ./d, its absolute path or a link to it: the same episodes would count twice
    monkeypatch.chdir(datasets)
    (tmp_path / "link").symlink_to(datasets / "random")
    for second in ("./random", str(datasets / "random"), str(tmp_path / "link")):
        config = RunConfig.from_dict({"run": {"task": "toy", "policy": "iql", "epochs": 4},
                                      "policy": {"dataset": ["random", second]}})
        with pytest.raises(ConfigError, match=f"--dataset names the dataset directory 'random' twice "
                                              f"\\(also as '{second}'\\); its episodes would count twice"):
            execute_run(resolve_run(config, catalog), catalog, create_run_dir(tmp_path / "run"))
        assert not (tmp_path / "run" / "policy.pt").exists()
    config = RunConfig.from_dict({"run": {"task": "toy", "policy": "iql", "epochs": 4},
                                  "policy": {"dataset": ["random", "./heuristic"], "steps": 2}})
    execute_run(resolve_run(config, catalog), catalog, create_run_dir(tmp_path / "distinct"))
    assert (tmp_path / "distinct" / "policy.pt").is_file()


@pytest.mark.parametrize("slot_head", ["linear", "shared"])
def test_actor_dropout_drops_only_the_trunk_features_the_policy_heads_read(slot_head):
    torch.manual_seed(0)
    actor = ActorCritic(ObservationLayout(2).size, 2, 3, hidden=32, slot_head=slot_head)
    features, _ = actor.features(torch.randn(64, ObservationLayout(2).size))
    plain = IQLLearner(actor, TwinQ(ObservationLayout(2).size, 2, 3, 8), lr=1e-3, gamma=0.9, expectile=0.7,
                       beta=3.0, polyak=0.005, max_weight=100.0)
    assert plain._dropped(features) is features
    learner = IQLLearner(actor, TwinQ(ObservationLayout(2).size, 2, 3, 8), lr=1e-3, gamma=0.9, expectile=0.7,
                         beta=3.0, polyak=0.005, max_weight=100.0, actor_dropout=0.5)
    dropped = learner._dropped(features)
    trunk, kept = dropped[:, :32], dropped[:, :32] != 0
    assert 0.35 < float(kept.float().mean()) < 0.65  # about half of 2,048 features dropped
    assert torch.allclose(trunk[kept], 2 * features[:, :32][kept])  # the rest scaled by 1 / (1 − p)
    assert torch.equal(dropped[:, 32:], features[:, 32:])  # the shared scorer's observation blocks stay whole


def test_actor_weight_decay_reaches_the_policy_optimiser_only():
    actor, q = ActorCritic(6, 2, 3, hidden=8), TwinQ(6, 2, 3, 8)
    learner = IQLLearner(actor, q, lr=1e-3, gamma=0.9, expectile=0.7, beta=3.0, polyak=0.005, max_weight=100.0,
                         actor_weight_decay=0.05)
    assert [g["weight_decay"] for g in learner.pi_opt.param_groups] == [0.05]
    assert "AdamW" in type(learner.pi_opt).__name__  # decoupled: the decay is not scaled by Adam's moments
    assert [g["weight_decay"] for g in learner.v_opt.param_groups + learner.q_opt.param_groups] == [0, 0]
    # with no gradient at all the decay alone shrinks the policy heads, and nothing V-only moves
    head, value = actor.op_head.weight.detach().clone(), actor.value_head.weight.detach().clone()
    for p in actor.parameters():
        p.grad = torch.zeros_like(p)
    learner.pi_opt.step()
    assert torch.allclose(actor.op_head.weight, head * (1 - 1e-3 * 0.05))
    assert torch.equal(actor.value_head.weight, value)


def test_iql_trains_with_a_regularised_actor_and_records_it(catalog, datasets, tmp_path):
    config = RunConfig.from_dict({"run": {"task": "toy", "policy": "iql", "epochs": 4},
                                  "policy": {"dataset": str(datasets / "heuristic"), "steps": 20, "batch_size": 8,
                                             "hidden": 16, "actor_dropout": 0.2, "actor_weight_decay": 0.01,
                                             "advantage_weights": "binary"}})
    execute_run(resolve_run(config, catalog), catalog, create_run_dir(tmp_path / "run"))
    trained = _load_iql(tmp_path / "run" / "policy.pt").training["config"]
    assert (trained["actor_dropout"], trained["actor_weight_decay"], trained["advantage_weights"]) == (0.2, 0.01,
                                                                                                      "binary")


def test_iql_trains_a_shared_slot_head_that_its_checkpoint_rebuilds(catalog, datasets, tmp_path):
    config = RunConfig.from_dict({"run": {"task": "toy", "policy": "iql", "epochs": 4},
                                  "policy": {"dataset": str(datasets / "heuristic"), "steps": 20, "batch_size": 8,
                                             "hidden": 16, "slot_head": "shared"}})
    execute_run(resolve_run(config, catalog), catalog, create_run_dir(tmp_path / "run"))
    loaded = _load_iql(tmp_path / "run" / "policy.pt")
    assert loaded.network.slot_head_kind == "shared"
    assert load_policy_checkpoint(tmp_path / "run" / "policy.pt")["payload"]["architecture"]["slot_head"] == "shared"
    acting = RunConfig.from_dict({"run": {"task": "toy", "policy": "iql", "epochs": 4},
                                  "policy": {"checkpoint": str(tmp_path / "run" / "policy.pt")}})
    execute_run(resolve_run(acting, catalog), catalog, create_run_dir(tmp_path / "act"))
    assert (tmp_path / "act" / "summary.json").is_file()


def test_resuming_an_unfinished_iql_run_is_refused_before_anything_is_written(catalog, datasets, tmp_path):
    config = RunConfig.from_dict({"run": {"task": "toy", "policy": "iql", "epochs": 4},
                                  "policy": {"dataset": str(datasets / "random"), "steps": 4, "log_every": 2}})
    run = create_run_dir(tmp_path / "iql")
    execute_run(resolve_run(config, catalog), catalog, run)
    (run / "summary.json").unlink()  # as if it had been stopped before the end

    def files():
        return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}

    before = files()
    with pytest.raises(ConfigError, match="--resume applies to PPO"):
        execute_run(resolve_run(config, catalog), catalog, run, resume=True)
    assert files() == before


def test_sigterm_stops_iql_training_at_once(catalog, datasets, tmp_path, monkeypatch):
    """IQL keeps no checkpoint to stop after, so the first SIGTERM ends it at the next step."""
    step = IQLLearner.step

    def step_and_signal(self, batch):
        os.kill(os.getpid(), signal.SIGTERM)
        return step(self, batch)

    monkeypatch.setattr(IQLLearner, "step", step_and_signal)
    config = RunConfig.from_dict({"run": {"task": "toy", "policy": "iql", "epochs": 4},
                                  "policy": {"dataset": str(datasets / "random"), "steps": 4, "log_every": 2}})
    with pytest.raises(RunInterrupted, match="interrupted at step 2 of 4; IQL keeps no checkpoint") as info:
        execute_run(resolve_run(config, catalog), catalog, create_run_dir(tmp_path / "iql"))
    assert info.value.exit_code == 143 and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_action_codes_mark_only_the_factors_an_op_uses():
    codes = action_code(torch.tensor([[0, 1, 2], [1, 1, 2], [3, 0, 2]]), n_slots=2, n_blueprints=3)
    assert codes.tolist() == [[1, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                              [0, 1, 0, 0, 0, 0, 1, 0, 0, 1],
                              [0, 0, 0, 1, 0, 1, 0, 0, 0, 0]]


def test_expectile_value_sits_above_the_mean_of_dataset_q():
    # One state, two recorded actions with returns 0 and 1: V should settle near the 0.9-expectile.
    torch.manual_seed(0)
    actor, q = ActorCritic(3, 1, 1, hidden=8), TwinQ(3, 1, 1, 8)
    learner = IQLLearner(actor, q, lr=1e-2, gamma=0.0, expectile=0.9, beta=1.0, polyak=1.0, max_weight=100.0)
    obs = torch.zeros(8, 3)
    actions = torch.tensor([[0, 0, 0], [3, 0, 0]] * 4)
    rewards = torch.tensor([0.0, 1.0] * 4)
    masks = MaskBatch(torch.ones(8, 5, dtype=torch.bool), torch.ones(8, 5, 1, dtype=torch.bool),
                      torch.ones(8, 1, dtype=torch.bool))
    batch = Batch(obs=obs, next_obs=obs, masks=masks, actions=actions, rewards=rewards,
                  terminated=torch.ones(8, dtype=torch.bool))
    for _ in range(600):
        stats = learner.step(batch)
    assert 0.75 < stats["mean_v"] < 1.0
    # the advantage-weighted policy prefers the better recorded action (op 3 = CULL over WAIT)
    with torch.no_grad():
        features, _ = actor.features(obs[:1])
        out = actor.heads(features, masks.index(slice(0, 1)), greedy=True)
    assert out.actions[0, 0].item() == 3


def _one_state_batch():
    """Eight copies of one state with two recorded actions, WAIT (return 0) and CULL (return 1)."""
    obs = torch.zeros(8, 3)
    masks = MaskBatch(torch.ones(8, 5, dtype=torch.bool), torch.ones(8, 5, 1, dtype=torch.bool),
                      torch.ones(8, 1, dtype=torch.bool))
    return Batch(obs=obs, next_obs=obs, masks=masks, actions=torch.tensor([[0, 0, 0], [3, 0, 0]] * 4),
                 rewards=torch.tensor([0.0, 1.0] * 4), terminated=torch.ones(8, dtype=torch.bool))


def test_policy_weights_are_awr_exponentials_or_crr_indicators():
    def learner(weights):
        return IQLLearner(ActorCritic(3, 1, 1, hidden=8), TwinQ(3, 1, 1, 8), lr=1e-3, gamma=0.9, expectile=0.7,
                          beta=2.0, polyak=0.005, max_weight=5.0, advantage_weights=weights)

    advantage = torch.tensor([-1.0, 0.0, 0.5, 3.0])
    assert torch.allclose(learner("exponential").policy_weights(advantage),
                          torch.tensor([torch.e ** -2, 1.0, torch.e, 5.0]))  # exp(β·A), clipped at max_weight
    assert learner("binary").policy_weights(advantage).tolist() == [0.0, 0.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="advantage_weights must be one of"):
        learner("hard")


@pytest.mark.parametrize("weights", ["exponential", "binary"])
def test_binary_weights_leave_actions_the_critic_rates_below_v_unfitted(weights):
    torch.manual_seed(0)
    actor, q = ActorCritic(3, 1, 1, hidden=8), TwinQ(3, 1, 1, 8)
    learner = IQLLearner(actor, q, lr=1e-2, gamma=0.0, expectile=0.7, beta=1.0, polyak=1.0, max_weight=100.0,
                         advantage_weights=weights)
    with torch.no_grad():  # a target critic that rates every recorded action below V (≈ 0 at initialisation)
        for net in (learner.q_target.q1, learner.q_target.q2):
            net[-1].weight.zero_()
            net[-1].bias.fill_(-2.0)
    head = actor.op_head.weight.detach().clone()
    stats = learner.step(_one_state_batch())
    moved = not torch.equal(actor.op_head.weight, head)
    assert moved == (weights == "exponential")
    assert (stats["mean_weight"] == 0.0) == (weights == "binary")


def test_binary_weights_still_prefer_the_better_recorded_action():
    torch.manual_seed(0)
    actor, q = ActorCritic(3, 1, 1, hidden=8), TwinQ(3, 1, 1, 8)
    learner = IQLLearner(actor, q, lr=1e-2, gamma=0.0, expectile=0.9, beta=1.0, polyak=1.0, max_weight=100.0,
                         advantage_weights="binary")
    batch = _one_state_batch()
    for _ in range(600):
        stats = learner.step(batch)
    assert 0.4 < stats["mean_weight"] < 0.6  # CULL's four copies kept, WAIT's four dropped
    with torch.no_grad():
        features, _ = actor.features(batch.obs[:1])
        probs = actor.heads(features, batch.masks.index(slice(0, 1)), greedy=True)
    assert probs.actions[0, 0].item() == 3


def _shard_copy(datasets, tmp_path):
    import shutil

    copy = tmp_path / "crafted"
    shutil.copytree(datasets / "random", copy)
    dataset = EpisodeDataset(copy)
    return dataset, dataset.shards[0], torch.load(dataset.shards[0], weights_only=True)


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d["actions"].__setitem__((0, 2), 99), "an action's blueprint index is outside"),
    (lambda d: d["actions"].__setitem__((0, 0), -1), "an action's op index is outside"),
    (lambda d: d.update(actions=d["actions"].float()), "actions is torch.float32, not int64"),
    (lambda d: d["rewards"].__setitem__(0, float("nan")), "rewards is not all finite"),
    (lambda d: d.update(mask_ops=d["mask_ops"][:1]), r"mask_ops has shape \(1, 5\)"),
    (lambda d: d.update(terminated=d["terminated"].long()), "terminated is torch.int64, not bool"),
    (lambda d: d.update(truncated=[0]), "incomplete: missing truncated"),
])
def test_a_crafted_shard_is_refused_naming_the_problem(datasets, tmp_path, change, message):
    dataset, shard, data = _shard_copy(datasets, tmp_path)
    change(data)
    torch.save(data, shard)
    with pytest.raises(DataError, match=message) as info:
        dataset.read_episode(shard)
    assert str(shard) in str(info.value)


@pytest.mark.parametrize(("content", "message"), [
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply|unreadable"),
    (b"\xff\xfe{}", "unreadable"),
    (b"[1, 2]", "does not describe an Esper episode dataset"),
])
def test_hostile_metadata_is_a_data_error(datasets, tmp_path, content, message):
    dataset, _, _ = _shard_copy(datasets, tmp_path)
    (dataset.path / "dataset.json").write_bytes(content)
    with pytest.raises(DataError, match=message):
        EpisodeDataset(dataset.path)


def test_metadata_that_is_no_regular_file_or_too_large_is_refused_unopened(datasets, tmp_path):
    import os

    dataset, _, _ = _shard_copy(datasets, tmp_path)
    meta = dataset.path / "dataset.json"
    meta.unlink()
    os.mkfifo(meta)  # opening a named pipe would wait for a writer forever
    with pytest.raises(DataError, match=r"dataset.json' is not a regular file \(a named pipe\)"):
        EpisodeDataset(dataset.path)
    meta.unlink()
    meta.write_bytes(b" " * (16 * 1024 * 1024 + 1))
    with pytest.raises(DataError, match="at most 16777216 are read"):
        EpisodeDataset(dataset.path)


def test_metadata_with_wrong_typed_fields_is_a_data_error(datasets, tmp_path):
    dataset, _, _ = _shard_copy(datasets, tmp_path)
    meta = dict(dataset.metadata, observation_size="57")
    (dataset.path / "dataset.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match="header field 'observation_size' is str, not int"):
        EpisodeDataset(dataset.path)


def test_a_dataset_being_recorded_is_not_recorded_into_by_another_process(catalog, datasets, tmp_path):
    import shutil
    import subprocess
    import sys

    from esper_core.storage.rundir import RunDirBusy

    out = tmp_path / "ds"
    shutil.copytree(datasets / "random", out)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from pathlib import Path; from esper_core.storage.rundir import "
         "RunDirLock; lock = RunDirLock.acquire(Path(sys.argv[1])); print('locked', flush=True); sys.stdin.read()",
         str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        shards = sorted(p.name for p in (out / "episodes").iterdir())
        with pytest.raises(RunDirBusy, match=f"pid {holder.pid}"):
            collect(_resolved(catalog, "random"), catalog, out, episodes=len(shards) + 1)
        assert sorted(p.name for p in (out / "episodes").iterdir()) == shards
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize("terminal", [True, False], ids=["terminal", "piped"])
def test_collect_shows_a_progress_line_per_episode_on_a_terminal_only(catalog, tmp_path, monkeypatch, terminal):
    import io
    import sys

    import structlog

    from esper_core.log_config import configure_logging

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal() if terminal else io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    configure_logging("info", "auto")
    try:
        collect(_resolved(catalog, "random"), catalog, tmp_path / "d", episodes=2)
    finally:
        structlog.reset_defaults()
    progress = [line for line in stream.getvalue().splitlines() if line.startswith("collect  ")]
    if terminal:
        assert [line.split("  ")[1] for line in progress] == ["1/2 episodes", "2/2 episodes"]
        assert "final accuracy" in progress[0] and "ETA" in progress[0]
        assert "episode_recorded" not in stream.getvalue()
    else:
        assert progress == [] and stream.getvalue().count('"episode_recorded"') == 2


def _training_context(resolved):
    from esper_core.contracts.protocols import PolicyTrainingContext
    from esper_core.tolaria.job import policy_context, prepare_task

    device, _, slot_names = prepare_task(resolved)
    context = policy_context(resolved, slot_names, dict(resolved.config.policy_options))
    return PolicyTrainingContext(policy=context, device=device, resolved=resolved)


def _mask_warnings(catalog, policy, options, *, mask_by_gates):
    config = RunConfig.from_dict({"run": {"task": "toy", "policy": policy, "epochs": 4},
                                  "kasmina": {"mask_by_gates": mask_by_gates}, "policy": options})
    resolved = resolve_run(config, catalog)
    with structlog.testing.capture_logs() as logs:
        resolved.policy.trainer(context=_training_context(resolved))
    return [e for e in logs if e["event"] == "dataset_mask_differs"]


def test_a_dataset_recorded_under_another_mask_rule_is_named_in_a_warning(catalog, datasets):
    # The fixture's datasets were recorded under the default, gated mask.
    heuristic = str(datasets / "heuristic")
    for policy, options in (("iql", {"dataset": heuristic}), ("ppo", {"bc_dataset": heuristic})):
        assert _mask_warnings(catalog, policy, options, mask_by_gates=True) == []
        (warning,) = _mask_warnings(catalog, policy, options, mask_by_gates=False)
        assert warning["dataset"] == heuristic and warning["recorded_mask_by_gates"] is True
        assert warning["run_mask_by_gates"] is False and "record the episodes again" in warning["hint"]


def test_a_dataset_from_before_the_mask_setting_counts_as_recorded_by_stage(datasets, tmp_path):
    import shutil

    old = tmp_path / "old"
    shutil.copytree(datasets / "heuristic", old)
    meta = json.loads((old / "dataset.json").read_text())
    del meta["run_config"]["kasmina"]["mask_by_gates"]
    (old / "dataset.json").write_text(json.dumps(meta))
    with structlog.testing.capture_logs() as logs:
        EpisodeDataset(old).warn_if_masked_differently({"kasmina": {"mask_by_gates": True}})
        EpisodeDataset(old).warn_if_masked_differently({"kasmina": {"mask_by_gates": False}})
    assert [e["recorded_mask_by_gates"] for e in logs if e["event"] == "dataset_mask_differs"] == [False]


@pytest.mark.parametrize(("episodes", "expected"), [("100000000000000000000", "an integer ≥ 1 and ≤ 100000"),
                                                    ("0", "an integer ≥ 1")])
def test_collect_refuses_an_episode_count_out_of_range_before_any_work(catalog, tmp_path, episodes, expected):
    from click.testing import CliRunner

    from esper_core.sdk import AppState
    from esper_policies.offline.commands import collect_command

    out = tmp_path / "ds"
    result = CliRunner().invoke(collect_command, ["--policy", "random", "--task", "toy", "--episodes", episodes,
                                                  "--out", str(out)],
                                obj=AppState(PluginSettings(autoload=False), _catalog=catalog))
    assert isinstance(result.exception, ConfigError), result.output
    assert str(result.exception) == f"--episodes {episodes} is invalid; expected {expected}"
    assert not out.exists()


def test_ppo_rounds_share_the_episode_bound():
    from esper_core.options import MAX_EPISODES, parse_options
    from esper_policies.ppo.config import PPOConfig

    assert parse_options(PPOConfig, {"rounds": MAX_EPISODES}, owner="policy 'ppo'").rounds == MAX_EPISODES
    with pytest.raises(ConfigError, match=rf"^policy 'ppo' option 'rounds' = {MAX_EPISODES + 1} is invalid; "
                                          rf"expected an integer ≥ 1 and ≤ {MAX_EPISODES}$"):
        parse_options(PPOConfig, {"rounds": MAX_EPISODES + 1}, owner="policy 'ppo'")


def _edited_copy(datasets, tmp_path, **changes):
    import shutil

    copy = tmp_path / "edited"
    shutil.copytree(datasets / "random", copy)
    meta = json.loads((copy / "dataset.json").read_text())
    (copy / "dataset.json").write_text(json.dumps({**meta, **changes}))
    return copy


def _iql(catalog, tmp_path, dataset, out="run"):
    config = RunConfig.from_dict({"run": {"task": "toy", "policy": "iql", "epochs": 4},
                                  "policy": {"dataset": str(dataset), "steps": 2, "batch_size": 8}})
    return execute_run(resolve_run(config, catalog), catalog, create_run_dir(tmp_path / out))


@pytest.mark.parametrize(("changes", "message"), [
    ({"task": "shapes"}, "was recorded on task 'shapes'; this run trains on 'toy'"),
    ({"observation_size": 3}, "holds observations of size 3; the policy's network here takes"),
    ({"slot_names": ["a", "b", "c"]}, "with 3 slots"),
])
def test_iql_refuses_a_dataset_that_does_not_fit_the_run_as_behaviour_cloning_does(catalog, datasets, tmp_path,
                                                                                   changes, message):
    # One check serves --dataset and --bc-dataset: a recording of another task trained IQL before.
    copy = _edited_copy(datasets, tmp_path, **changes)
    with pytest.raises(ConfigError, match=f"--dataset '{copy}'.*{message}"):
        _iql(catalog, tmp_path, copy)
    assert not (tmp_path / "run" / "policy.pt").exists()


@pytest.mark.parametrize(("changes", "message"), [
    ({"epochs": -1}, "'epochs' is -1, not an integer from 1 to 100000"),
    ({"epochs": 0}, "'epochs' is 0, not an integer from 1 to 100000"),
    ({"epochs": 100_001}, "'epochs' is 100001, not an integer from 1 to 100000"),
    ({"epochs": "abc"}, "'epochs' is str, not int"),
    ({"epochs": True}, "'epochs' is bool, not int"),
    ({"seed": -5}, "'seed' is -5, not an integer from 0 to 2\\*\\*63 - 1"),
    ({"seed": 2**63}, "'seed' is 9223372036854775808, not an integer from 0 to 2\\*\\*63 - 1"),
    ({"policy": 42}, "'policy' is int, not str"),
    ({"task": ""}, "'task' is empty"),
    ({"task": None}, "'task' is missing"),
    ({"topology": ["toy"]}, "'topology' is list, not str"),
    ({"observation_size": 0}, "'observation_size' is 0, not an integer from 1 to 2\\*\\*63 - 1"),
])
def test_a_hand_edited_header_is_refused_naming_the_field(catalog, datasets, tmp_path, changes, message):
    copy = _edited_copy(datasets, tmp_path, **changes)
    with pytest.raises(DataError, match=f"dataset.json' is damaged: header field {message}"):
        EpisodeDataset(copy)
    with pytest.raises(ConfigError, match=f"--dataset '{copy}': .*{message}"):
        _iql(catalog, tmp_path, copy)
    assert not (tmp_path / "run" / "policy.pt").exists()


def test_iql_refuses_a_shard_with_an_action_its_mask_forbids(catalog, datasets, tmp_path):
    dataset, shard, data = _shard_copy(datasets, tmp_path)
    data["mask_ops"][0, data["actions"][0, 0]] = False
    torch.save(data, shard)
    with pytest.raises(DataError, match="records an action its mask forbids"):
        dataset.read_episode(shard)
    with pytest.raises(DataError, match="records an action its mask forbids"):
        _iql(catalog, tmp_path, dataset.path)


def test_collecting_and_training_iql_work_with_the_largest_seed(catalog, tmp_path):
    # The largest seed a run accepts (2**63 - 1): recorded, trained on and acted from.
    from esper_core.options import INT_MAX

    collect(_resolved(catalog, "random", seed=INT_MAX), catalog, tmp_path / "data", episodes=2)
    assert json.loads((tmp_path / "data" / "dataset.json").read_text())["seed"] == INT_MAX
    config = RunConfig.from_dict({"run": {"task": "toy", "policy": "iql", "epochs": 4, "seed": INT_MAX},
                                  "policy": {"dataset": str(tmp_path / "data"), "steps": 2, "batch_size": 8}})
    execute_run(resolve_run(config, catalog), catalog, create_run_dir(tmp_path / "iql"))
    evaluation = evaluate_checkpoint(catalog, tmp_path / "iql" / "policy.pt", episodes=1, against=("noop",),
                                     policy_options={"sample": True})
    assert evaluation["seed"] == INT_MAX and [p["policy"] for p in evaluation["policies"]] == ["iql", "noop"]

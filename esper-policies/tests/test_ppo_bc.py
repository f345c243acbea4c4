"""PPO's behaviour-cloning initialisation (``--bc-dataset``) on the in-process toy topology:
imitation of the heuristic, resume without cloning again, and every refused dataset."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from click.testing import CliRunner

from esper_core.cli.main import build_cli
from esper_core.config import RunConfig
from esper_core.contracts.decisions import Op
from esper_core.errors import ConfigError
from esper_core.plugins import PluginSettings, build_catalog, load_plugins
from esper_core.setup.resolve import resolve_run
from esper_core.storage.rundir import create_run_dir
from esper_core.testing import toy
from esper_core.tolaria.job import execute_run
from esper_policies import plugin
from esper_policies.encoding import MaskBatch, ObservationBuilder
from esper_policies.offline.collect import collect
from esper_policies.offline.dataset import EpisodeDataset
from esper_policies.ppo import bc, trainer
from esper_policies.ppo.config import PPOConfig
from esper_policies.ppo.network import ActorCritic
from esper_policies.ppo.normalize import ReturnScaler, RunningMeanStd

EPOCHS, SEED = 5, 3
GATES = {"g5_min_contribution": -100.0}


@pytest.fixture(scope="module")
def catalog():
    return build_catalog(load_plugins(PluginSettings(autoload=False), extra=[("toy", toy), ("policies", plugin)]))


@pytest.fixture(scope="module")
def datasets(catalog, tmp_path_factory):
    """Heuristic episodes to clone (seed 3) and others, from another seed, to judge the clone on."""
    root = tmp_path_factory.mktemp("bc")
    for name, seed, episodes in (("train", SEED, 12), ("judge", SEED + 100, 6)):
        config = RunConfig.from_dict({"run": {"task": "toy", "policy": "heuristic", "epochs": EPOCHS, "seed": seed},
                                      "gates": GATES})
        collect(resolve_run(config, catalog), catalog, root / name, episodes=episodes)
    return root


def _train(catalog, out, *, resume=False, rewards=None, **policy):
    config = RunConfig.from_dict({
        "run": {"task": "toy", "policy": "ppo", "epochs": EPOCHS, "seed": SEED},
        "policy": {"rounds": 1, "envs": 2, "update_epochs": 2, "hidden": 16, **policy},
        "gates": GATES, **({"rewards": rewards} if rewards else {}),
    })
    run_dir = out if resume else create_run_dir(out)
    return execute_run(resolve_run(config, catalog), catalog, run_dir, resume=resume)


def _episodes(path):
    dataset = EpisodeDataset(path)
    return [dataset.read_episode(s) for s in dataset.shards]


def _greedy_agreement(network, obs_norm, episodes):
    """Share of the recorded (heuristic) actions the network's greedy action reproduces: the op,
    and the slot and blueprint where the op uses them. Computed here, not with bc.agreement."""
    same = total = 0
    for e in episodes:
        obs = e["obs"] if obs_norm is None else obs_norm.normalize(e["obs"])
        with torch.no_grad():
            features, _ = network.features(obs)
            chosen = network.heads(features, MaskBatch(e["mask_ops"], e["mask_slots"], e["mask_blueprints"]),
                                   greedy=True).actions
        for got, want in zip(chosen.tolist(), e["actions"].tolist(), strict=True):
            total += 1
            same += (got[0] == want[0] and (want[0] == Op.WAIT or got[1] == want[1])
                     and (want[0] != Op.GERMINATE or got[2] == want[2]))
    return same / total


@pytest.mark.parametrize("trunk", ["mlp", "lstm"])
def test_cloning_makes_the_actor_act_like_the_heuristic_on_episodes_it_never_saw(datasets, trunk):
    """Three initialisations, with the critic fitted on scaled returns as PPO's trainer does
    (unscaled returns, about 9 here, let the value loss swamp the shared trunk, and the LSTM
    clone's agreement on unseen steps then fell below 0.9 for most initialisations)."""
    data, judge = _episodes(datasets / "train"), _episodes(datasets / "judge")
    size = ObservationBuilder(1, 2).size
    agreements = []
    for init in range(3):
        torch.manual_seed(init)
        network = ActorCritic(size, 2, int(data[0]["mask_blueprints"].shape[1]), trunk=trunk, hidden=16)
        obs_norm = RunningMeanStd((size,))
        obs_norm.update(torch.cat([e["obs"] for e in data]))
        before = _greedy_agreement(network, obs_norm, judge)
        cloned_norm = RunningMeanStd((size,))
        metrics = bc.behaviour_clone(network, data, obs_norm=cloned_norm, scaler=ReturnScaler(1, 0.99),
                                     fit_value=True, epochs=100, lr=1e-2, batch_size=16, gamma=0.99,
                                     value_coef=0.5, max_grad_norm=0.5, seed=0)
        assert metrics["held_out_episodes"] == 2 and metrics["episodes"] == 10 and metrics["transitions"] == 50
        # +0.2 agreement, or all of it where an initialisation already agrees on 0.8 or more
        # (agreements are float32 fractions, hence the tolerance)
        assert metrics["held_out_agreement"] >= min(1.0, metrics["held_out_agreement_before"] + 0.2) - 1e-6
        after = _greedy_agreement(network, cloned_norm, judge)
        assert after >= min(1.0, before + 0.2) - 1e-6, (init, before, after)
        agreements.append(after)
    assert min(agreements) >= 0.8 and sum(agreements) / 3 >= 0.85, agreements


def test_cloning_only_the_op_and_slot_heads_leaves_the_blueprint_head_untouched(datasets):
    """``bc_heads = op,slot``: the lifecycle is cloned, the blueprint choice keeps its initial
    weights (no gradient reaches it), so PPO starts exploring blueprints uniformly."""
    data, judge = _episodes(datasets / "train"), _episodes(datasets / "judge")
    size = ObservationBuilder(1, 2).size
    torch.manual_seed(0)
    network = ActorCritic(size, 2, int(data[0]["mask_blueprints"].shape[1]), hidden=16)
    blueprint_head = {k: v.clone() for k, v in network.blueprint_head.state_dict().items()}
    op_head = network.op_head.weight.clone()
    obs_norm = RunningMeanStd((size,))
    metrics = bc.behaviour_clone(network, data, obs_norm=obs_norm, scaler=None, fit_value=False,
                                 epochs=100, lr=1e-2, batch_size=16, gamma=0.99, value_coef=0.5,
                                 max_grad_norm=0.5, seed=0, heads=("op", "slot"))
    assert metrics["heads"] == ["op", "slot"] and metrics["held_out_agreement"] >= 0.9
    assert all(torch.equal(v, blueprint_head[k]) for k, v in network.blueprint_head.state_dict().items())
    assert not torch.equal(network.op_head.weight, op_head)
    episodes = bc.pad(judge)
    assert bc.agreement(network, episodes, obs_norm, ("op", "slot")) >= 0.9
    # agreement over all three factors counts the blueprint too: never higher than over two
    assert bc.agreement(network, episodes, obs_norm) <= bc.agreement(network, episodes, obs_norm, ("op", "slot"))


@pytest.mark.parametrize("value", ["op,slot", ["blueprint", "op"], "op"])
def test_bc_heads_option_accepts_factors_in_any_order(value):
    heads = PPOConfig(bc_heads=value).bc_heads
    assert set(heads) <= {"op", "slot", "blueprint"} and list(heads) == sorted(heads, key=["op", "slot",
                                                                                           "blueprint"].index)


@pytest.mark.parametrize("value", ["", "op,value", [], 3])
def test_bc_heads_option_refuses_unknown_or_empty_factors(value):
    with pytest.raises(ValueError, match=r"bc_heads = .* is invalid; expected a non-empty list of op, slot, blueprint"):
        PPOConfig(bc_heads=value)


def test_discounted_returns_stop_at_each_episodes_end():
    rewards = torch.tensor([[1.0, 2.0], [1.0, 0.0], [1.0, 0.0]])
    valid = torch.tensor([[True, True], [True, False], [True, False]])
    returns = bc.discounted_returns(rewards, valid, 0.5)
    assert torch.allclose(returns, torch.tensor([[1.75, 2.0], [1.5, 0.0], [1.0, 0.0]]))


def test_ppo_clones_first_records_it_and_a_resume_does_not_clone_again(catalog, datasets, tmp_path, monkeypatch):
    whole = _train(catalog, tmp_path / "whole", rounds=2, bc_dataset=str(datasets / "train"))
    split = _train(catalog, tmp_path / "split", bc_dataset=str(datasets / "train"))
    assert split["bc"]["held_out_agreement"] > split["bc"]["held_out_agreement_before"]
    assert split["bc"]["value_fitted"] is True and split["bc"]["datasets"] == [str(datasets / "train")]
    assert 0 < split["bc"]["loss"] < 1 and json.loads((tmp_path / "split" / "summary.json").read_text())["bc"]
    stored = torch.load(tmp_path / "split" / "checkpoints" / "latest.pt", weights_only=True)
    assert stored["payload"]["training"]["bc"]["loss"] == split["bc"]["loss"]

    def refuse(*args, **kwargs):
        raise AssertionError("a resumed run cloned again")

    monkeypatch.setattr(trainer, "behaviour_clone", refuse)
    monkeypatch.setattr(trainer, "load_datasets", refuse)
    # The resume names the run's own dataset (another would be refused as a change of its
    # configuration); the patches above prove it is neither read nor cloned again.
    resumed = _train(catalog, tmp_path / "split", resume=True, rounds=2, bc_dataset=str(datasets / "train"))
    assert resumed["rounds"] == 2 and resumed["bc"] == split["bc"]
    assert {k: v for k, v in whole["bc"].items() if k != "seconds"} == {
        k: v for k, v in split["bc"].items() if k != "seconds"}
    a = torch.load(tmp_path / "whole" / "policy.pt", weights_only=True)["payload"]["state_dict"]
    b = torch.load(tmp_path / "split" / "policy.pt", weights_only=True)["payload"]["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_run_stopped_right_after_cloning_resumes_into_its_first_round(catalog, datasets, tmp_path, monkeypatch):
    def stop(self, envs, round_index):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(trainer._Training, "_round", stop)
        with pytest.raises(KeyboardInterrupt):
            _train(catalog, tmp_path / "run", bc_dataset=str(datasets / "train"))
    saved = torch.load(tmp_path / "run" / "checkpoints" / "latest.pt", weights_only=True)["payload"]["training"]
    assert saved["rounds_done"] == 0 and saved["bc"]["episodes"] == 10
    monkeypatch.setattr(trainer, "behaviour_clone", lambda *a, **k: pytest.fail("cloned again"))
    resumed = _train(catalog, tmp_path / "run", resume=True, bc_dataset=str(datasets / "train"))
    assert resumed["rounds"] == 1 and resumed["bc"] == saved["bc"]


def test_bc_anchor_freezes_the_cloned_policy_into_the_checkpoint_and_resumes_exactly(catalog, datasets, tmp_path,
                                                                                      monkeypatch):
    anchored = {"bc_dataset": str(datasets / "train"), "bc_heads": "op,slot", "bc_anchor": 1.0}
    whole = _train(catalog, tmp_path / "whole", rounds=2, **anchored)
    assert all(h["kl_to_cloned"] >= 0 for h in whole["history"]) and whole["history"][1]["kl_to_cloned"] > 0
    assert "kl_to_cloned" not in _train(catalog, tmp_path / "free", bc_dataset=str(datasets / "train"))["history"][0]

    def stop(self, envs, round_index):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(trainer._Training, "_round", stop)
        with pytest.raises(KeyboardInterrupt):
            _train(catalog, tmp_path / "split", rounds=2, **anchored)
    cloned = torch.load(tmp_path / "split" / "checkpoints" / "latest.pt", weights_only=True)["payload"]
    frozen = cloned["training"]["reference"]
    assert all(torch.equal(frozen["state_dict"][k], v) for k, v in cloned["state_dict"].items())
    assert torch.equal(frozen["obs_norm"]["mean"], cloned["obs_norm"]["mean"])
    resumed = _train(catalog, tmp_path / "split", resume=True, rounds=2, **anchored)
    assert [h["kl_to_cloned"] for h in resumed["history"]] == [h["kl_to_cloned"] for h in whole["history"]]
    final = torch.load(tmp_path / "split" / "policy.pt", weights_only=True)["payload"]
    assert all(torch.equal(final["training"]["reference"]["state_dict"][k], v)
               for k, v in frozen["state_dict"].items())  # the anchor never moves
    assert not all(torch.equal(final["state_dict"][k], v) for k, v in frozen["state_dict"].items())
    a = torch.load(tmp_path / "whole" / "policy.pt", weights_only=True)["payload"]["state_dict"]
    assert all(torch.equal(a[k], final["state_dict"][k]) for k in a)


def test_a_checkpoint_without_the_frozen_cloned_policy_is_named_on_resume(catalog, datasets, tmp_path):
    anchored = {"bc_dataset": str(datasets / "train"), "bc_anchor": 1.0}
    _train(catalog, tmp_path / "run", **anchored)
    latest = tmp_path / "run" / "checkpoints" / "latest.pt"
    stored = torch.load(latest, weights_only=True)
    stored["payload"]["training"]["reference"] = None
    torch.save(stored, latest)
    with pytest.raises(ConfigError, match="damaged training state"):
        _train(catalog, tmp_path / "run", resume=True, rounds=2, **anchored)


def test_other_reward_weights_leave_the_critic_alone(catalog, datasets, tmp_path):
    summary = _train(catalog, tmp_path / "run", bc_dataset=str(datasets / "train"), bc_epochs=2,
                     rewards={"action_cost": 2.0})
    assert summary["bc"]["value_fitted"] is False and summary["bc"]["value_loss"] is None
    assert "other reward weights" in summary["bc"]["value_skipped"]


def _copy(datasets, tmp_path, edit):
    target = tmp_path / "copy"
    shutil.copytree(datasets / "train", target)
    meta = json.loads((target / "dataset.json").read_text())
    edit(meta, target)
    (target / "dataset.json").write_text(json.dumps(meta))
    return target


def _forbid_a_recorded_germination(meta, target):
    shard = target / "episodes" / "000000.pt"
    data = torch.load(shard, weights_only=True)
    step = int((data["actions"][:, 0] == Op.GERMINATE).nonzero()[0])
    data["mask_blueprints"][step] = False
    torch.save(data, shard)


def _keep_one_episode(meta, target):
    for shard in sorted((target / "episodes").glob("*.pt"))[1:]:
        shard.unlink()


@pytest.mark.parametrize(("edit", "message"), [
    (lambda meta, target: meta.update(task="shapes"), "was recorded on task 'shapes'; this run trains on 'toy'"),
    (lambda meta, target: meta.update(slot_names=["a", "b", "c"]), "with 3 slots"),
    (lambda meta, target: meta.update(blueprint_catalog=["toy:other"]), "another blueprint catalog"),
    (lambda meta, target: meta.update(observation_version=meta["observation_version"] + 1),
     "observation schema v"),
    (lambda meta, target: meta.update(observation_size=meta["observation_size"] + 1),
     "holds observations of size .*the policy.s network here takes"),
    (_forbid_a_recorded_germination, "records an action its mask forbids"),
    (_keep_one_episode, "holds 1 complete episode; behaviour cloning needs at least 2"),
    (lambda meta, target: shutil.rmtree(target / "episodes"), "has no complete episodes yet"),
])
def test_a_dataset_that_does_not_fit_the_run_is_refused_naming_why(catalog, datasets, tmp_path, edit, message):
    path = _copy(datasets, tmp_path, edit)
    with pytest.raises(ConfigError, match=f"--bc-dataset '{path}'.*{message}" if "1 complete" not in message
                       else message):
        _train(catalog, tmp_path / "run", bc_dataset=str(path))
    assert not (tmp_path / "run" / "checkpoints" / "latest.pt").exists()


def test_a_bc_dataset_named_twice_under_another_spelling_is_refused(catalog, datasets, tmp_path):
    with pytest.raises(ConfigError, match=r"--bc-dataset names the dataset directory '.*train' twice "
                                          r"\(also as '.*train/\.'\); its episodes would count twice"):
        _train(catalog, tmp_path / "run", bc_dataset=[str(datasets / "train"), f"{datasets / 'train'}/."])
    assert not (tmp_path / "run" / "checkpoints" / "latest.pt").exists()


def test_a_corrupt_shard_is_a_config_error_naming_it(catalog, datasets, tmp_path):
    path = _copy(datasets, tmp_path, lambda meta, target: (target / "episodes" / "000003.pt").write_bytes(b"junk"))
    with pytest.raises(ConfigError, match="000003.pt' is corrupt"):
        _train(catalog, tmp_path / "run", bc_dataset=str(path))


def test_the_cli_refuses_a_missing_dataset_in_one_line_before_writing_anything(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(build_cli(PluginSettings(allow=("cnn", "policies"))), [
        "run", "--task", "micro", "--policy", "ppo", "--bc-dataset", str(tmp_path / "missing"), "--out", str(out)])
    assert result.exit_code != 0 and not out.exists()
    assert result.output.strip().count("\n") == 0 and "Traceback" not in result.output
    assert f"--bc-dataset '{tmp_path / 'missing'}'" in result.output and "not an episode dataset" in result.output


def test_the_dataset_option_takes_directories_only():
    assert PPOConfig(bc_dataset=" a, b ").bc_dataset == ("a", "b")
    assert PPOConfig().bc_dataset is None
    for bad in ([], ",", [3], " a, b ,", "a,a"):
        with pytest.raises(ValueError, match=r"bc_dataset = .* is invalid; expected a directory or a list of "
                                             r"distinct directories"):
            PPOConfig(bc_dataset=bad)

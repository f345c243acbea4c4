"""The Architect: decoders, pre-training on the catalog, REINFORCE, curriculum, esper discover."""

from __future__ import annotations

import attrs
import pytest
import torch
from click.testing import CliRunner

from esper_core.cli.main import build_cli
from esper_core.discovery.crucible import Evaluation
from esper_core.discovery.grammar import GrammarError, check
from esper_core.discovery.library import read_library
from esper_core.errors import ConfigError
from esper_core.plugins.manager import PluginSettings
from esper_policies import plugin
from esper_policies.architect.generator import Architect, ArchitectConfig, architect
from esper_policies.architect.model import DECODERS, EOS, OUTPUTS, encode, sample

CATALOG = [
    ("IDENTITY",),
    tuple("RES_START CONV KERNEL_3 OUT_IN NORM RELU SCALE RES_END".split()),
    tuple("GATE_START POOL_GLOBAL LINEAR OUT_D4 RELU LINEAR OUT_IN ZERO_INIT GATE_END".split()),
    tuple("RES_START CONV KERNEL_1 OUT_IN ZERO_INIT RES_END".split()),
]


def _architect(decoder="gru", pretrain_steps=120, **kw):
    return Architect(seed=0, config=ArchitectConfig(decoder=decoder, pretrain_steps=pretrain_steps, **kw),
                     catalog=CATALOG, tasks=("xor", "temporal"), budget=64)


def test_encode_marks_eos_and_truncation():
    inputs, targets, mask = encode([("RELU",), ("RELU",) * 32])
    assert inputs.shape == targets.shape == mask.shape == (2, 33)
    assert targets[0, 1] == OUTPUTS.index(EOS) and mask[0].sum() == 2
    assert mask[1].sum() == 32  # at the length limit no EOS was drawn, so none is trained


def _valid(samples):
    valid = 0
    for tokens in samples:
        try:
            check(tokens, (8, 4, 4))
            valid += 1
        except GrammarError:
            pass
    return valid


@pytest.mark.parametrize("decoder", sorted(DECODERS))
def test_pretraining_on_the_catalog_makes_samples_valid(decoder):
    a = _architect(decoder, temperature=1.0)  # the prior itself, sampled as it was fitted
    assert a.pretrain_loss is not None and a.pretrain_loss < 0.8
    samples = a.propose(64)
    assert _valid(samples) / len(samples) > 0.6
    assert sum(s in CATALOG for s in samples) > 16  # the prior: catalog designs come back


def test_the_default_temperature_samples_further_from_the_catalog_than_the_prior():
    prior, default = _architect(temperature=1.0).propose(256), _architect().propose(256)
    assert ArchitectConfig().temperature > 1.0
    assert sum(s in CATALOG for s in default) < sum(s in CATALOG for s in prior)
    assert len(set(default)) > len(set(prior))
    assert _valid(default) / len(default) > 0.3  # flatter, not token soup


def test_sampling_is_seeded():
    a, b = _architect(pretrain_steps=5), _architect(pretrain_steps=5)
    assert a.propose(16) == b.propose(16)
    g = torch.Generator().manual_seed(1)
    assert all(len(s) <= 32 for s in sample(a.model, 8, g))


def _eval(tokens, fitness, xor=0.0, temporal=0.0, valid=True):
    return Evaluation(tokens=tokens, fitness=fitness, valid=valid, performance={"xor": xor, "temporal": temporal})


def test_reinforce_raises_the_probability_of_rewarded_sequences():
    a = _architect(pretrain_steps=0, entropy=0.0, lr=0.01)
    good, bad = ("RELU",), ("TANH",)

    def logp(seq):
        inputs, targets, mask = encode([seq])
        with torch.no_grad():
            lp = torch.log_softmax(a.model(inputs), -1).gather(-1, targets[..., None])[..., 0]
        return float((lp * mask).sum())

    before = logp(good) - logp(bad)
    for _ in range(30):
        a.observe([good, bad], [_eval(good, 1.0, xor=1.0), _eval(bad, -1.0)])
    assert logp(good) - logp(bad) > before + 1.0
    assert a.baseline is not None and -1.0 < a.baseline < 1.0


def test_curriculum_rewards_stage_tasks_and_advances():
    a = _architect(pretrain_steps=0, advance_at=0.7)
    solved_xor = _eval(("RELU",), fitness=0.55, xor=1.0, temporal=0.0)  # mean performance 0.5
    assert a.reward(solved_xor) == pytest.approx(0.55 - 0.5 + 1.0)  # stage 1 counts XOR only
    assert a.reward(_eval(("X",), -1.0, valid=False)) == -1.0
    metrics = a.observe([("RELU",)], [solved_xor])
    assert metrics["stage"] == 1.0 and a.stage == 1  # the batch solved XOR: temporal joins
    assert a.reward(solved_xor) == pytest.approx(0.55)


def test_novelty_penalty_lowers_the_reward_of_a_catalog_copy_only():
    a = _architect(pretrain_steps=0, novelty_penalty=0.5)
    copy = _eval(("RELU",), fitness=0.9, xor=1.0)
    novel = attrs.evolve(copy, novel=True)
    assert a.reward(novel) - a.reward(copy) == pytest.approx(0.5)
    assert a.reward(_eval(("X",), -1.0, valid=False)) == -1.0  # an invalid one is not penalised twice
    assert _architect(pretrain_steps=0).reward(copy) == a.reward(novel)  # off by default


def test_factory_options_and_errors():
    a = architect(seed=0, options={"catalog_tokens": CATALOG, "tasks": ("xor",), "budget": 8,
                                   "generator_options": {"decoder": "transformer", "hidden": 16,
                                                         "pretrain_steps": 2}})
    assert isinstance(a.model, DECODERS["transformer"])
    with pytest.raises(ConfigError, match="generator 'architect': unknown option 'depth'; "
                                          "allowed options: advance_at, baseline_decay"):
        architect(seed=0, options={"generator_options": {"depth": 3}})
    with pytest.raises(ConfigError, match="generator 'architect' option 'decoder' = 'lstm' is invalid; "
                                          "expected one of 'gru', 'transformer'"):
        architect(seed=0, options={"generator_options": {"decoder": "lstm"}})
    (spec,) = plugin.esper_register_generators()
    assert spec.name == "architect"


def test_esper_discover_with_the_architect(tmp_path):
    out = tmp_path / "lib.json"
    result = CliRunner().invoke(build_cli(PluginSettings(allow=("cnn", "policies"))), [
        "discover", "--generator", "architect", "--budget", "16", "--batch-size", "8", "--steps", "10",
        "--tasks", "xor,temporal", "--generator-option", "pretrain_steps=120", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert sum(line.startswith("step") for line in result.output.splitlines()) == 2
    library = read_library(out)
    assert library.provenance["generator"] == "architect" and library.entries

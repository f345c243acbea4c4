"""IQL learns from a mixed dataset: on ``micro`` it beats the poor behaviour policy and gets
close to the good one.

The test (72 s of one CPU core here, ``slow``):

* Reward: the ``shaped`` preset with ``action_cost`` weighted 2.0 (as in the PPO learning test),
  so acting is expensive and the good behaviour is known: ``heuristic`` acts rarely and
  deliberately, ``random`` acts on every other epoch.
* Data: ``esper collect`` records 16 episodes of each on ``micro`` (300 training images per
  epoch, 200 validation images); IQL trains on both datasets for 1,500 steps.
* Evaluation: IQL (greedy), ``heuristic`` and ``random`` on the same 12 held-out episodes. IQL's
  paired return differences against ``random`` must have a one-sided paired t statistic above
  2.72 (p < 0.01 at 11 degrees of freedom), and IQL must close at least 75 % of the gap between
  ``random`` and ``heuristic``: ``(IQL − random) ≥ 0.75 · (heuristic − random)`` in mean return.

Why 12 episodes: with 6 (the first version of this test), one held-out episode on which IQL
germinates and culls seed after seed (−12.75 against the heuristic's −3.66) brought t to 2.75,
and another to 2.29, for run seeds 0 and 2 once the mask offered FOSSILIZE only where G5 would
pass. Over 12 episodes every run seed of five, under either mask, gives t ≥ 5.10 and closes
≥ 92 % of the gap (``benchmarks/iql_learning_test_margin.py`` → docs/iql_learning_test_margin.md).
Mean returns, run seed 0, 12 episodes: IQL −1.76, heuristic −1.00, random −10.44.
"""

from __future__ import annotations

import math
import statistics

import pytest

from esper_core.config import RunConfig
from esper_core.plugins import PluginSettings, build_catalog, load_plugins
from esper_core.setup.resolve import resolve_run
from esper_core.storage.rundir import create_run_dir
from esper_core.tolaria.evaluation import evaluate_checkpoint
from esper_core.tolaria.job import execute_run
from esper_policies.offline.collect import collect

T_THRESHOLD = 2.72


def _config(policy, **policy_options):
    return RunConfig.from_dict({
        "run": {"task": "micro", "policy": policy, "seed": 0, "telemetry": [], "observers": []},
        "task": {"epoch_size": 300, "val_size": 200},
        "rewards": {"action_cost": 2.0},
        "policy": policy_options,
    })


@pytest.mark.slow
def test_iql_beats_the_poor_behaviour_policy_and_approaches_the_good_one(tmp_path):
    catalog = build_catalog(load_plugins(PluginSettings(allow=("cnn", "policies"))))
    for behaviour in ("heuristic", "random"):
        collect(resolve_run(_config(behaviour), catalog), catalog, tmp_path / behaviour, episodes=16)
    datasets = f"{tmp_path / 'heuristic'},{tmp_path / 'random'}"
    out = create_run_dir(tmp_path / "iql")
    execute_run(resolve_run(_config("iql", dataset=datasets, steps=1500), catalog), catalog, out)
    evaluation = evaluate_checkpoint(catalog, out / "policy.pt", episodes=12, against=("heuristic", "random"))
    rows = {p["policy"]: p for p in evaluation["policies"]}
    differences = [a - b for a, b in zip(rows["iql"]["returns"], rows["random"]["returns"], strict=True)]
    t = statistics.fmean(differences) / (statistics.stdev(differences) / math.sqrt(len(differences)))
    assert t > T_THRESHOLD, (differences, t)
    iql, good, poor = (rows[k]["return_mean"] for k in ("iql", "heuristic", "random"))
    assert iql - poor >= 0.75 * (good - poor), (iql, good, poor)

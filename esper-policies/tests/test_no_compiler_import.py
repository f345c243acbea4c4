"""PPO training (with a resume) and IQL steps never import ``torch._dynamo``: torch.optim's own
optimizers import it (with a CUDA build of torch, sympy and triton too) on their first step, a
cost of seconds and over 100 MB for runs that never compile anything."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import sys
    from pathlib import Path
    import torch
    from esper_core.config import RunConfig
    from esper_core.plugins import PluginSettings, build_catalog, load_plugins
    from esper_core.testing import toy
    from esper_core.tolaria.job import execute_run
    from esper_core.setup.resolve import resolve_run
    from esper_core.storage.rundir import create_run_dir
    from esper_policies import plugin
    from esper_policies.encoding import MaskBatch
    from esper_policies.iql.update import IQLLearner, TwinQ
    from esper_policies.offline.dataset import Batch
    from esper_policies.ppo.network import ActorCritic

    catalog = build_catalog(load_plugins(PluginSettings(autoload=False),
                                         extra=[("toy", toy), ("policies", plugin)]))

    def config(rounds):
        return RunConfig.from_dict({
            "run": {"task": "toy", "policy": "ppo", "epochs": 2, "seed": 3},
            "policy": {"rounds": rounds, "envs": 2, "update_epochs": 1, "hidden": 8}})

    run = create_run_dir(Path(sys.argv[1]) / "run")
    execute_run(resolve_run(config(1), catalog), catalog, run, resume=False)
    execute_run(resolve_run(config(2), catalog), catalog, run, resume=True)
    learner = IQLLearner(ActorCritic(3, 1, 1, hidden=8), TwinQ(3, 1, 1, 8), lr=1e-2, gamma=0.9,
                         expectile=0.7, beta=1.0, polyak=0.5, max_weight=10.0)
    masks = MaskBatch(torch.ones(4, 5, dtype=torch.bool), torch.ones(4, 5, 1, dtype=torch.bool),
                      torch.ones(4, 1, dtype=torch.bool))
    batch = Batch(obs=torch.zeros(4, 3), next_obs=torch.zeros(4, 3), masks=masks,
                  actions=torch.zeros(4, 3, dtype=torch.long), rewards=torch.ones(4),
                  terminated=torch.ones(4, dtype=torch.bool))
    before = [p.detach().clone() for p in learner.q.parameters()]
    for _ in range(2):
        learner.step(batch)
    moved = any(not torch.equal(a, b) for a, b in zip(before, learner.q.parameters()))
    print(moved, sorted(m for m in ("torch._dynamo", "sympy") if m in sys.modules))
""")


def test_ppo_and_iql_training_never_import_torch_dynamo(tmp_path):
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True,
                          check=False, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines()[-1] == "True []", done.stdout[-2000:] + done.stderr[-2000:]

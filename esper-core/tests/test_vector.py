"""Stepwise episodes, environments side by side (in-process and in workers), policy checkpoints."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from engine_helpers import Scripted, _policies_plugin

from esper_core.config import RunConfig
from esper_core.contracts import Decision, Op
from esper_core.errors import ConfigError, EsperError
from esper_core.plugins import PluginSettings, build_catalog, load_plugins
from esper_core.setup.resolve import resolve_run
from esper_core.setup.seeding import RngStream
from esper_core.setup.tasks import build_task, episode_seed
from esper_core.storage.policy_checkpoint import check_compatible, load_policy_checkpoint, save_policy_checkpoint
from esper_core.storage.rundir import create_run_dir
from esper_core.testing import toy
from esper_core.tolaria.environments import InProcessEnvironments, WorkerEnvironments, make_environments
from esper_core.tolaria.episode import HostEpisode, run_episode
from esper_core.tolaria.job import execute_run


@pytest.fixture
def catalog():
    return build_catalog(load_plugins(PluginSettings(autoload=False),
                                      extra=[("toy", toy), ("scripted", _policies_plugin())]))


def _resolved(catalog, **run):
    config = RunConfig.from_dict({"run": {"task": "toy", "policy": "scripted", "epochs": 6,
                                          "compare_baseline": False, **run},
                                  "gates": {"g5_min_contribution": -100.0}})
    return resolve_run(config, catalog)


class _Context:
    blueprint_keys = ("toy:residual_linear", "toy:identity")


def _script(report, mask):
    return Scripted(_Context()).decide(report=report, mask=mask)


def test_stepping_an_episode_matches_run_episode(catalog):
    resolved = _resolved(catalog)
    task = build_task(resolved, seed=0, device="cpu")
    whole = run_episode(resolved, task, Scripted(_Context()), episode=0, emit=lambda e: None, policy_name="s", seed=11)
    events = []
    with HostEpisode(resolved, task, episode=3, seed=11, emit=events.append, policy_name="s") as env:
        step = env.start()
        rewards = []
        while not step.done:
            step = env.step(_script(step.report, step.mask))
            rewards.append(step.reward)
        result = env.result()
        with pytest.raises(RuntimeError, match="not yet over"):
            env.step(Decision.wait("late"))
        with pytest.raises(RuntimeError, match="already called"):
            env.start()
    assert result.final_accuracy == whole.final_accuracy
    assert sum(rewards) == pytest.approx(whole.total_reward)
    assert not step.truncated and len(rewards) == 6
    assert {e.episode for e in events} == {3}


def test_a_length_cap_truncates_the_episode(catalog):
    resolved = _resolved(catalog)
    task = build_task(resolved, seed=0, device="cpu")
    with HostEpisode(resolved, task, episode=0, seed=1, emit=lambda e: None, policy_name="s", length=2) as env:
        assert env.start().report.max_epochs == 6
        assert not env.step(Decision.wait("w")).done
        last = env.step(Decision.wait("w"))
        assert last.done and last.truncated and env.done and env.result().epochs == 2
        with pytest.raises(RuntimeError, match="start\\(\\) first"):
            env.step(Decision.wait("w"))
    with pytest.raises(ValueError, match="episode length must be in 1..6"):
        HostEpisode(resolved, task, episode=0, seed=1, emit=lambda e: None, policy_name="s", length=7)
    with pytest.raises(RuntimeError, match="only available once"):
        HostEpisode(resolved, task, episode=0, seed=1, emit=lambda e: None, policy_name="s").result()


def test_rng_streams_are_private_and_replayable():
    torch.manual_seed(123)
    outer = torch.rand(1)
    a, b = RngStream(5), RngStream(5)
    torch.manual_seed(123)
    with a.active():
        first = torch.rand(3)
    with b.active():
        assert torch.equal(torch.rand(3), first)  # same seed, same numbers, whatever ran before
    assert torch.equal(torch.rand(1), outer)  # the surrounding stream is untouched
    with a.active():
        assert not torch.equal(torch.rand(3), first)  # a stream continues where it stopped


def test_episode_seeds_are_stable_and_split_training_from_held_out():
    train = {episode_seed(0, env=e, episode=k) for e in range(4) for k in range(50)}
    held = {episode_seed(0, env=0, episode=k, held_out=True) for k in range(50)}
    assert len(train) == 200 and all(s % 2 == 0 for s in train) and all(s % 2 == 1 for s in held)
    assert episode_seed(0, env=1, episode=2) == episode_seed(0, env=1, episode=2) != episode_seed(1, env=1, episode=2)


def _drive(envs, n):
    steps = envs.start([10, 11][:n], [episode_seed(0, env=i, episode=0) for i in range(n)])
    trace = [[round(s.report.val_accuracy, 6) for s in steps]]
    while not steps[0].done:
        steps = envs.step([_script(s.report, s.mask) for s in steps])
        trace.append([(round(s.report.val_accuracy, 6), s.reward) for s in steps])
    return trace, envs.results()


def test_worker_processes_give_the_same_episodes_as_in_process(catalog):
    resolved = _resolved(catalog)
    events_a, events_b = [], []
    local = InProcessEnvironments(resolved, n_envs=2, device="cpu", emit=events_a.append, policy_name="s", length=4)
    workers = make_environments(resolved, n_envs=2, workers=True, device="cpu", emit=events_b.append,
                                policy_name="s", length=4)
    try:
        a, results_a = _drive(local, 2)
        b, results_b = _drive(workers, 2)
    finally:
        local.close()
        workers.close()
    assert a == b and len(a) == 5
    assert [r["final_accuracy"] for r in results_a] == [r["final_accuracy"] for r in results_b]
    assert [e.kind for e in events_a] == [e.kind for e in events_b]
    assert {e.episode for e in events_b} == {10, 11}
    assert a[0][0] != a[0][1]  # each environment has its own seed


def test_environment_errors(catalog):
    resolved = _resolved(catalog)
    with pytest.raises(ConfigError, match="at least 1"):
        InProcessEnvironments(resolved, n_envs=0, device="cpu", emit=print, policy_name="s")
    with pytest.raises(ConfigError, match="CPU only"):
        WorkerEnvironments(resolved, n_envs=1, device="cuda", emit=print, policy_name="s")
    local = InProcessEnvironments(resolved, n_envs=2, device="cpu", emit=lambda e: None, policy_name="s")
    with pytest.raises(ValueError, match="expected 2 seeds"):
        local.start([0, 1], [1])
    with pytest.raises(RuntimeError, match="start\\(\\) first"):
        local.step([Decision.wait("w")] * 2)
    workers = WorkerEnvironments(resolved, n_envs=1, device="cpu", emit=lambda e: None, policy_name="s", length=2)
    try:
        with pytest.raises(EsperError, match="environment worker 0 failed: RuntimeError"):
            workers.step([Decision.wait("before start")])
        with pytest.raises(ValueError, match="expected 1 decisions"):
            workers.step([])
        workers.start([0], [2])
        step = workers.step([Decision(op=Op.CULL, slot=0, reason="masked")])  # refused, not an error
        assert not step[0].done
    finally:
        workers.close()


def test_policy_checkpoints_round_trip_and_refuse_other_runs(tmp_path):
    path = tmp_path / "p.pt"
    save_policy_checkpoint(path, policy="x", run_config={"run": {"task": "toy"}}, blueprint_keys=["a", "b"],
                           slot_names=["s0"], observation_version=1, payload={"w": torch.ones(2)})
    data = load_policy_checkpoint(path)
    assert data["policy"] == "x" and torch.equal(data["payload"]["w"], torch.ones(2))
    check_compatible(data, path=path, blueprint_keys=["a", "b"], slot_names=["other"], observation_version=1)
    with pytest.raises(ConfigError, match="missing here: b; not in the checkpoint: c"):
        check_compatible(data, path=path, blueprint_keys=["a", "c"], slot_names=["s0"], observation_version=1)
    with pytest.raises(ConfigError, match="another order"):
        check_compatible(data, path=path, blueprint_keys=["b", "a"], slot_names=["s0"], observation_version=1)
    with pytest.raises(ConfigError, match="trained with 1 slot "):
        check_compatible(data, path=path, blueprint_keys=["a", "b"], slot_names=["s0", "s1"], observation_version=1)
    with pytest.raises(ConfigError, match="observation schema v1"):
        check_compatible(data, path=path, blueprint_keys=["a", "b"], slot_names=["s0"], observation_version=2)
    with pytest.raises(ConfigError, match="does not exist"):
        load_policy_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_text("not a checkpoint")
    with pytest.raises(ConfigError, match="cannot be read"):
        load_policy_checkpoint(tmp_path / "junk.pt")
    torch.save({"format": "other"}, tmp_path / "other.pt")
    with pytest.raises(ConfigError, match="not an Esper policy checkpoint"):
        load_policy_checkpoint(tmp_path / "other.pt")
    torch.save({"format": "esper-policy-checkpoint", "format_version": 99}, tmp_path / "new.pt")
    with pytest.raises(ConfigError, match="format version 99"):
        load_policy_checkpoint(tmp_path / "new.pt")


def test_training_options_need_a_learned_policy(tmp_path):
    from test_training_options import learners_plugin

    catalog = build_catalog(load_plugins(PluginSettings(autoload=False), extra=[
        ("toy", toy), ("scripted", _policies_plugin()), ("learners", learners_plugin())]))
    resolved = resolve_run(RunConfig.from_dict({"run": {"task": "toy", "policy": "scripted", "epochs": 2},
                                                "policy": {"rounds": 3}}), catalog)
    with pytest.raises(ConfigError, match=r"rounds \(--rounds\) only applies when training a learned policy"):
        execute_run(resolved, catalog, create_run_dir(tmp_path / "a"))
    assert not any((tmp_path / "a").iterdir())


_ABANDONING_PARENT = """
import os, sys
sys.path.insert(0, {tests!r})
from engine_helpers import _policies_plugin
from esper_core.config import RunConfig
from esper_core.plugins import PluginSettings, build_catalog, load_plugins
from esper_core.setup.resolve import resolve_run
from esper_core.testing import toy
from esper_core.tolaria.environments import WorkerEnvironments

catalog = build_catalog(load_plugins(PluginSettings(autoload=False),
                                     extra=[("toy", toy), ("scripted", _policies_plugin())]))
resolved = resolve_run(RunConfig.from_dict({{"run": {{"task": "toy", "policy": "scripted", "epochs": 6,
                                                      "compare_baseline": False}}}}), catalog)
first = WorkerEnvironments(resolved, n_envs=2, device="cpu", emit=lambda e: None, policy_name="s")
second = WorkerEnvironments(resolved, n_envs=2, device="cpu", emit=lambda e: None, policy_name="s")
for envs in (first, second):
    envs.start([0, 1], [2, 4])
with open({pids!r}, "w") as out:
    out.write(" ".join(str(p.pid) for envs in (first, second) for p in envs._procs))
os._exit(0)  # gone without closing them, as a killed process is
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8") as status:
            return not any(line.startswith("State:") and "Z" in line.split()[1] for line in status)
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_exit_when_their_parent_dies_without_closing_them(tmp_path):
    """Every worker holds none of the parent's pipe ends (its own, its siblings', another set's),
    so the parent's death reaches it as end-of-file and it exits instead of waiting forever."""
    pid_file = tmp_path / "pids"
    script = _ABANDONING_PARENT.format(tests=str(Path(__file__).parent), pids=str(pid_file))
    # Output to files, not pipes: a worker left behind would hold a pipe open, and the run wait.
    with open(tmp_path / "log", "w") as log:
        done = subprocess.run([sys.executable, "-c", script], stdout=log, stderr=log, timeout=120,
                              env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, (tmp_path / "log").read_text()
    pids = [int(p) for p in pid_file.read_text().split()]
    assert len(pids) == 4
    deadline = time.monotonic() + 30
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [p for p in pids if _alive(p)]
    for pid in left:  # never leave them behind, even when the test fails
        os.kill(pid, signal.SIGKILL)
    assert not left, f"workers {left} outlived their parent"


def test_a_worker_whose_parent_left_mid_step_returns_quietly(catalog, monkeypatch):
    """The reply to a command the parent no longer waits for finds the pipe broken: the worker
    ends as it does at end-of-file, with no traceback on a terminal its parent left."""
    import multiprocessing

    from esper_core.tolaria import environments

    monkeypatch.setattr(environments.signal, "signal", lambda *args: None)  # the worker's, not pytest's
    parent, child = multiprocessing.Pipe()
    parent.send(("start", (0, 2)))
    parent.close()
    environments._worker_main(child, _resolved(catalog), "s", None)
    assert child.closed


@pytest.mark.parametrize(("signum", "message"), [
    (signal.SIGKILL, r"environment worker 1 was killed \(SIGKILL\), most often by the out-of-memory killer; "
                     r"2 worker processes each hold a host and its task: lower --envs, or run the environments "
                     r"in-process \(no --workers\)"),
    # SIGUSR1 terminates by default, and unlike SIGHUP no launcher (nohup) leaves it ignored.
    (signal.SIGUSR1, r"environment worker 1 was killed \(SIGUSR1\)$"),
])
def test_a_killed_worker_is_reported_with_its_signal(catalog, signum, message):
    workers = WorkerEnvironments(_resolved(catalog), n_envs=2, device="cpu", emit=lambda e: None, policy_name="s")
    try:
        workers.start([0, 1], [2, 4])
        os.kill(workers._procs[1].pid, signum)
        workers._procs[1].join(timeout=30)
        assert workers._procs[1].exitcode == -signum
        with pytest.raises(EsperError, match=message):
            workers.step([Decision.wait("w")] * 2)
    finally:
        workers.close()

"""Several episodes stepped side by side, for controllers that decide for many hosts at once.

A learned controller (PPO) trains on N environments in lock-step: every environment trains one
epoch, the policy decides for all N in one batched forward pass, every environment applies its
decision. :class:`InProcessEnvironments` steps them one after another in this process;
:class:`WorkerEnvironments` gives each its own worker process (``--workers``), so N hosts train
in parallel on N cores. Both return the same steps for the same seeds: every episode runs on its
own random stream (:class:`~esper_core.setup.seeding.RngStream`).

Every episode gets a fresh task built with the episode's seed — tasks derive the host's
initial weights and the data order from their seed (so a run and its no-seed baseline start
alike), and a learned controller must see many hosts, not one. Seeds come from
:func:`episode_seed`: training seeds are even and held-out evaluation seeds odd, so an
evaluation never replays a training episode. (Tasks that generate their data cache it per
process, so a task per episode is cheap.)
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import traceback
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any

import torch

from esper_core.contracts.decisions import Decision
from esper_core.contracts.events import TelemetryEvent
from esper_core.errors import CheckpointError, ConfigError, DataError, EsperError, PluginError
from esper_core.plugins.blame import from_traceback
from esper_core.setup.resolve import ResolvedRun
from esper_core.setup.tasks import build_task
from esper_core.tolaria.episode import EpisodeStep, HostEpisode

Emit = Callable[[TelemetryEvent], None]


class InProcessEnvironments:
    """N environments stepped one after another in this process."""

    def __init__(self, resolved: ResolvedRun, *, n_envs: int, device: str, emit: Emit,
                 policy_name: str, length: int | None = None) -> None:
        if n_envs < 1:
            raise ConfigError(f"the number of environments must be at least 1, got {n_envs}")
        self.resolved = resolved
        self.n_envs = n_envs
        self.length = length
        self.policy_name = policy_name
        self.device = device
        self._emit = emit
        self._envs: list[HostEpisode | None] = [None] * n_envs
        self._results: list[dict[str, Any] | None] = [None] * n_envs

    def start(self, episodes: Sequence[int], seeds: Sequence[int]) -> list[EpisodeStep]:
        """Begin a fresh episode in every environment; returns each first report."""
        self._check(episodes, "episodes")
        self._check(seeds, "seeds")
        self._close_envs()
        self._results = [None] * self.n_envs
        steps = []
        for i, (episode, seed) in enumerate(zip(episodes, seeds, strict=True)):
            task = build_task(self.resolved, seed=seed, device=self.device)
            env = HostEpisode(self.resolved, task, episode=episode, seed=seed, emit=self._emit,
                              policy_name=self.policy_name, length=self.length)
            self._envs[i] = env
            steps.append(env.start())
        return steps

    def step(self, decisions: Sequence[Decision]) -> list[EpisodeStep]:
        """Apply one decision per environment (ignored for environments already done)."""
        self._check(decisions, "decisions")
        steps = []
        for i, decision in enumerate(decisions):
            env = self._envs[i]
            if env is None:
                raise RuntimeError("InProcessEnvironments.step() needs start() first")
            step = env.step(decision)
            if step.done:
                self._results[i] = env.result().to_dict()
                env.close()
            steps.append(step)
        return steps

    def results(self) -> list[dict[str, Any] | None]:
        """Each environment's finished-episode summary (None while its episode runs)."""
        return list(self._results)

    def _check(self, values: Sequence[Any], what: str) -> None:
        if len(values) != self.n_envs:
            raise ValueError(f"expected {self.n_envs} {what}, one per environment, got {len(values)}")

    def _close_envs(self) -> None:
        for env in self._envs:
            if env is not None:
                env.close()
        self._envs = [None] * self.n_envs

    def close(self) -> None:
        self._close_envs()


def _worker_main(conn: Connection, resolved: ResolvedRun, policy_name: str, length: int | None) -> None:
    """A worker process: one environment, driven by commands from the pipe."""
    # Ctrl-C reaches the whole process group, and a fork inherits the parent's stop handler: the
    # parent alone decides when to stop (after its next checkpoint) and closes the workers,
    # killing any that do not exit.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)
    torch.set_num_threads(1)
    env: HostEpisode | None = None
    events: list[TelemetryEvent] = []
    try:
        while True:
            command, argument = conn.recv()
            if command == "close":
                break
            try:
                result = None
                if command == "start":
                    if env is not None:
                        env.close()
                    episode, seed = argument
                    task = build_task(resolved, seed=seed, device="cpu")
                    env = HostEpisode(resolved, task, episode=episode, seed=seed, emit=events.append,
                                      policy_name=policy_name, length=length)
                    step = env.start()
                else:
                    if env is None:
                        raise RuntimeError("an environment worker was asked to step before start()")
                    step = env.step(argument)
                    if step.done:
                        result = env.result().to_dict()
                        env.close()
                conn.send(("ok", step, result, events[:]))
            except EsperError as exc:  # already named (a PluginError names its component): re-raised as is
                conn.send(("error", _named(exc), str(exc), events[:]))
            except Exception as exc:  # reported to the parent, which raises it there
                blamed = from_traceback(exc, during="during the run")  # plugin code: named as in-process
                if blamed is not None:
                    conn.send(("error", PluginError, str(blamed), events[:]))
                else:
                    conn.send(("error", None, f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}", events[:]))
            events.clear()
    except (EOFError, BrokenPipeError, ConnectionResetError, KeyboardInterrupt):  # the parent went away
        pass
    finally:
        if env is not None:
            env.close()
        conn.close()


def _named(exc: EsperError) -> type[EsperError]:
    """The class the parent re-raises ``exc`` as: its own when it takes just a message (any
    exception class crosses the pipe by name), else the nearest such one of Esper's."""
    for cls in type(exc).__mro__:
        if cls in (PluginError, ConfigError, DataError, CheckpointError, EsperError):
            return cls
    return EsperError


#: This process's ends of every live worker's pipe.
_PARENT_ENDS: set[Connection] = set()


def _drop_inherited_pipe_ends() -> None:
    """Run in every child forked from this process: close its copies of the parent's pipe
    ends (its own worker's and every other live worker's). Otherwise a worker never reads
    end-of-file when the parent dies without closing it (killed, or an exception before
    ``close()``), and waits forever."""
    for conn in list(_PARENT_ENDS):
        conn.close()
    _PARENT_ENDS.clear()


if hasattr(os, "register_at_fork"):  # every platform with the fork start method
    os.register_at_fork(after_in_child=_drop_inherited_pipe_ends)


class WorkerEnvironments:
    """N environments, each in its own worker process (forked: CPU only)."""

    def __init__(self, resolved: ResolvedRun, *, n_envs: int, device: str, emit: Emit,
                 policy_name: str, length: int | None = None) -> None:
        if n_envs < 1:
            raise ConfigError(f"the number of environments must be at least 1, got {n_envs}")
        if device != "cpu":
            raise ConfigError(f"environment worker processes run on the CPU only (got device {device!r}); "
                              "use --device cpu, or run the environments in-process (no --workers)")
        if "fork" not in multiprocessing.get_all_start_methods():
            raise ConfigError("environment worker processes need the 'fork' start method, which this "
                              "platform lacks; run the environments in-process (no --workers)")
        self.n_envs = n_envs
        self._emit = emit
        self._results: list[dict[str, Any] | None] = [None] * n_envs
        context = multiprocessing.get_context("fork")
        self._conns: list[Connection] = []
        self._procs: list[Any] = []
        for i in range(n_envs):
            parent, child = context.Pipe()
            _PARENT_ENDS.add(parent)  # closed in the fork (_drop_inherited_pipe_ends)
            proc = context.Process(target=_worker_main, args=(child, resolved, policy_name, length),
                                   name=f"esper-env-{i}", daemon=True)
            proc.start()
            child.close()
            self._conns.append(parent)
            self._procs.append(proc)

    def _exchange(self, messages: Sequence[tuple[str, Any]]) -> list[EpisodeStep]:
        for i, (conn, message) in enumerate(zip(self._conns, messages, strict=True)):
            try:
                conn.send(message)
            except (BrokenPipeError, ConnectionResetError):  # it died since the last exchange
                raise EsperError(self._death(i)) from None
        replies = []
        for i, conn in enumerate(self._conns):
            try:
                replies.append(conn.recv())
            except EOFError:
                raise EsperError(self._death(i)) from None
        steps = []
        failure = None
        for i, reply in enumerate(replies):
            for event in reply[-1]:
                self._emit(event)
            if reply[0] == "error":
                failure = failure or (i, reply[1], reply[2])
                continue
            _, step, result, _ = reply
            if result is not None:
                self._results[i] = result
            steps.append(step)
        if failure is not None:
            i, named, message = failure
            if named is not None:  # the same one-line error an in-process environment raises
                raise named(message)
            raise EsperError(f"environment worker {i} failed: {message}")
        return steps

    def _death(self, i: int) -> str:
        """Why worker ``i`` closed its pipe, in words: the end-of-file can arrive before the
        process has exited, so wait a moment for its exit status."""
        proc = self._procs[i]
        proc.join(timeout=5)
        code = proc.exitcode
        if code is None:
            return f"environment worker {i} closed its pipe and has not exited"
        if code >= 0:
            return f"environment worker {i} died (exit code {code})"
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        if -code == signal.SIGKILL:
            # Nothing in Esper sends SIGKILL to a worker it has not closed: most often the
            # kernel's out-of-memory killer, which picks the largest process.
            return (f"environment worker {i} was killed ({name}), most often by the out-of-memory killer; "
                    f"{self.n_envs} worker processes each hold a host and its task: lower --envs, or run "
                    "the environments in-process (no --workers)")
        return f"environment worker {i} was killed ({name})"

    def start(self, episodes: Sequence[int], seeds: Sequence[int]) -> list[EpisodeStep]:
        self._results = [None] * self.n_envs
        return self._exchange([("start", (e, s)) for e, s in zip(episodes, seeds, strict=True)])

    def step(self, decisions: Sequence[Decision]) -> list[EpisodeStep]:
        if len(decisions) != self.n_envs:
            raise ValueError(f"expected {self.n_envs} decisions, one per environment, got {len(decisions)}")
        return self._exchange([("step", d) for d in decisions])

    def results(self) -> list[dict[str, Any] | None]:
        return list(self._results)

    def close(self) -> None:
        for conn in self._conns:
            with contextlib.suppress(BrokenPipeError, OSError):  # the worker already exited
                conn.send(("close", None))
        for proc in self._procs:
            proc.join(timeout=10)
            if proc.is_alive():  # pragma: no cover - a wedged worker
                proc.kill()
                proc.join()
        for conn in self._conns:
            conn.close()
            _PARENT_ENDS.discard(conn)
        self._conns, self._procs = [], []


def make_environments(resolved: ResolvedRun, *, n_envs: int, workers: bool, device: str, emit: Emit,
                      policy_name: str, length: int | None = None) -> InProcessEnvironments | WorkerEnvironments:
    """N environments for ``resolved``: in worker processes when ``workers``, else in-process."""
    cls = WorkerEnvironments if workers else InProcessEnvironments
    return cls(resolved, n_envs=n_envs, device=device, emit=emit, policy_name=policy_name, length=length)

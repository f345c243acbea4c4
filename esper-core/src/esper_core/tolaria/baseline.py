"""The no-growth baseline a run is compared with, at as little extra wall time as possible.

The baseline is the run's own task, seed, recipe and epochs under the installed policy in the
``baseline`` role (``noop``, from esper-policies). It used
to be a second full episode after the run's own, doubling the default run's wall time. Now:

1. **Reused** when a finished baseline matches everything its numbers depend on (:func:`cache_key`):
   the resolved configuration less what cannot touch a no-seed episode (the policy, its
   options, rewards, telemetry, the blueprint list, where the run writes), the source of every
   loaded Esper distribution, torch's (and Python's and NumPy's) version, the thread count, the
   CPU and the device — trajectories depend on all of them. An entry is a small JSON file under
   the cache directory (:func:`esper_core.cache.cache_dir`), read like any input: size-capped,
   parsed as data, its key and every field's type checked; a bad entry is reported and
   recomputed, never trusted.
2. **Run alongside** the run's own episodes, in a forked process, when the machine has a core
   the run does not use (CPU runs, which train small hosts on one thread): the fork holds the
   same resolved run and task, so it computes exactly what the sequential baseline computes.
3. Otherwise run **after** the episodes, as before.

Sharing the episodes' common prefix (run once, fork at the first epoch a seed changes the
forward pass) was the other option. With the feedback objective the first such epoch is the
first BLENDING one, epoch 3–4 of the default run's 25, so at most ~15 % of the baseline's cost
could be shared; and since germinating draws from the episode's random stream, the forked
baseline would no longer match a noop run alone. Running alongside hides the whole baseline
where a core is free, and the cache removes it on a repeat.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import multiprocessing
import os
import platform
import signal
import sys
import traceback
from collections.abc import Mapping
from functools import cache
from importlib import util as importlib_util
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import structlog
import torch

from esper_core import __version__
from esper_core.cache import cache_dir
from esper_core.contracts.events import EpochEnded, TelemetryEvent
from esper_core.contracts.protocols import Task
from esper_core.errors import EsperError
from esper_core.files import read_input_file, write_json
from esper_core.plugins.registry import Catalog
from esper_core.setup.defaults import baseline_policy
from esper_core.setup.policies import make_policy
from esper_core.setup.resolve import ResolvedRun
from esper_core.tolaria.episode import HostEpisode

logger = structlog.get_logger(__name__)

CACHE_FORMAT = "esper-baseline-cache"
CACHE_VERSION = 1
#: a cache entry is a few hundred bytes; anything far larger is not one of ours
MAX_ENTRY_BYTES = 64 * 1024
#: the baseline's fields and the types each may hold
FIELDS: Mapping[str, tuple[type, ...]] = {
    "policy": (str,),
    "final_accuracy": (float, int),
    "best_accuracy": (float, int),
    "val_accuracy_per_epoch": (list,),
    "test_accuracy": (float, int, type(None)),
    "test_loss": (float, int, type(None)),
    "test_metrics": (dict,),
    "host_params": (int,),
    "seed_params": (int,),
    "wall_seconds": (float, int),
}
#: configuration that cannot change a no-seed episode: who decides, how it is rewarded and
#: recorded, which blueprints it could plant, where the run writes
_IRRELEVANT = {
    "run": {"policy", "episodes", "compare_baseline", "baseline_cache", "telemetry", "out", "checkpoint_keep",
            "reward_preset", "blueprints", "max_seeds"},
    "policy": None, "telemetry": None, "rewards": None,
}


@cache
def _source_digest(packages: tuple[str, ...]) -> str | None:
    """SHA-256 over the Python source of ``packages``: any edit to the code invalidates. None when
    a package's source cannot be found (a plugin registered in-process), so nothing is cached."""
    digest = hashlib.sha256()
    for name in packages:
        try:
            spec = importlib_util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        if spec is None or not (spec.submodule_search_locations or spec.origin):
            return None
        roots = [Path(root) for root in spec.submodule_search_locations or []]
        if not roots and spec.origin:
            roots, files = [Path(spec.origin).parent], [Path(spec.origin)]
        else:
            files = [p for root in roots for p in root.rglob("*.py") if "__pycache__" not in p.parts]
        for path in sorted(files):
            root = next(r for r in roots if path.is_relative_to(r))
            digest.update(f"{name}/{path.relative_to(root).as_posix()}\0".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _relevant_config(resolved: ResolvedRun) -> dict[str, Any]:
    data = resolved.to_toml_dict()
    kept: dict[str, Any] = {}
    for table, values in data.items():
        dropped = _IRRELEVANT.get(table, set())
        if dropped is None:
            continue
        kept[table] = {k: v for k, v in values.items() if k not in dropped}
    return kept


def cache_key(resolved: ResolvedRun, catalog: Catalog, *, device: str) -> str | None:
    """Everything the baseline's numbers depend on, hashed; None when that cannot be known (a
    plugin whose source is not a file), and the baseline is then never cached."""
    packages = sorted({"esper_core", *(info.module.split(".")[0] for info in catalog.plugins.plugins)})
    source = _source_digest(tuple(packages))
    if source is None:
        return None
    try:
        import numpy
        numpy_version = numpy.__version__
    except ImportError:  # pragma: no cover - torch installs numpy here
        numpy_version = None
    identity = {
        "format": CACHE_VERSION,
        "esper": __version__,
        "source": source,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": numpy_version,
        "threads": torch.get_num_threads(),
        "cpu": _cpu_model(),
        "device": device,
        "config": _relevant_config(resolved),
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()


def check_entry(data: Any, key: str, *, epochs: int | None = None) -> dict[str, Any]:
    """The baseline stored in a cache entry, or ValueError saying what is wrong with it: its
    fields' types, then their values (:func:`_implausible`; ``epochs``: the run's, which its
    accuracy curve must match)."""
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    if data.get("format") != CACHE_FORMAT or data.get("version") != CACHE_VERSION:
        raise ValueError(f"not a version-{CACHE_VERSION} {CACHE_FORMAT} file")
    if data.get("key") != key:
        raise ValueError("its key does not match its file name")
    baseline = data.get("baseline")
    if not isinstance(baseline, dict) or set(baseline) != set(FIELDS):
        raise ValueError(f"its baseline must have exactly the fields {sorted(FIELDS)}")
    for name, kinds in FIELDS.items():
        value = baseline[name]
        if type(value) is bool or not isinstance(value, kinds):
            raise ValueError(f"baseline field {name!r} holds {type(value).__name__}")
    if not all(type(v) in (float, int) for v in baseline["val_accuracy_per_epoch"]):
        raise ValueError("baseline field 'val_accuracy_per_epoch' must hold numbers only")
    if not all(isinstance(k, str) and type(v) in (float, int) for k, v in baseline["test_metrics"].items()):
        raise ValueError("baseline field 'test_metrics' must map names to numbers")
    problem = _implausible(baseline, epochs)
    if problem:
        raise ValueError(problem)
    return baseline


#: no host a baseline trains has more parameters than this (a trillion: far past any one device)
MAX_PARAMS = 10**12


def _implausible(baseline: Mapping[str, Any], epochs: int | None) -> str | None:
    """What no real baseline episode records — a number that is not finite, an accuracy outside
    0–100 %, a curve of another length than the run's epochs, a parameter count no host has,
    seed parameters in an episode that plants no seed — or None. The types are checked already."""
    curve = baseline["val_accuracy_per_epoch"]
    percents = {"final_accuracy": baseline["final_accuracy"], "best_accuracy": baseline["best_accuracy"],
                "test_accuracy": baseline["test_accuracy"],
                **{f"val_accuracy_per_epoch[{i}]": v for i, v in enumerate(curve)}}
    for name, value in percents.items():
        if value is not None and not (math.isfinite(value) and 0 <= value <= 100):
            return f"baseline field {name!r} is {value!r}, not an accuracy in 0-100"
    others = {"test_loss": baseline["test_loss"], "wall_seconds": baseline["wall_seconds"],
              **{f"test_metrics[{k!r}]": v for k, v in baseline["test_metrics"].items()}}
    for name, value in others.items():
        if value is not None and not math.isfinite(value):
            return f"baseline field {name!r} is {value!r}, not a finite number"
    if baseline["wall_seconds"] < 0 or (baseline["test_loss"] is not None and baseline["test_loss"] < 0):
        return "baseline field 'wall_seconds' or 'test_loss' is negative"
    if not curve or (epochs is not None and len(curve) != epochs):
        return (f"baseline field 'val_accuracy_per_epoch' has {len(curve)} values"
                + (f", not one per epoch ({epochs})" if epochs is not None else ""))
    if baseline["final_accuracy"] != curve[-1] or baseline["best_accuracy"] != max(curve):
        return "baseline fields 'final_accuracy' and 'best_accuracy' disagree with its accuracy curve"
    if not 1 <= baseline["host_params"] <= MAX_PARAMS:
        return f"baseline field 'host_params' is {baseline['host_params']}, not a parameter count a host has"
    if baseline["seed_params"] != 0:
        return f"baseline field 'seed_params' is {baseline['seed_params']}; a baseline episode plants no seed"
    return None


def read_cached(root: Path, key: str, *, epochs: int | None = None) -> dict[str, Any] | None:
    """The cached baseline for ``key``; None when there is none or the entry is unusable (said in a
    warning, so a damaged cache never passes silently)."""
    path = root / "baselines" / f"{key}.json"
    if not path.exists():
        return None
    try:  # never opens a named pipe or a device put in its place (esper_core.files)
        text = read_input_file(path, label="the entry", max_bytes=MAX_ENTRY_BYTES, error=ValueError)
        return check_entry(json.loads(text.decode("utf-8")), key, epochs=epochs)
    except (OSError, ValueError, RecursionError) as exc:
        logger.warning(f"ignoring the cached baseline {str(path)!r}: {exc}; computing it again")
        return None


def write_cached(root: Path, key: str, baseline: Mapping[str, Any]) -> None:
    """Store ``baseline`` under ``key``. A cache that cannot be written only costs a recomputation
    next time, so that is a warning, not a failed run."""
    folder = root / "baselines"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_json(folder / f"{key}.json", {"format": CACHE_FORMAT, "version": CACHE_VERSION, "key": key,
                                            "baseline": {name: baseline[name] for name in FIELDS}})
    except OSError as exc:
        logger.warning(f"could not store the baseline in the cache {str(folder)!r}: {exc.strerror or exc}")


def baseline_episode(resolved: ResolvedRun, catalog: Catalog, task: Task, slot_names: tuple[str, ...],
                     *, parent: int | None = None) -> dict[str, Any]:
    """The same task, seed and epochs under the no-seed policy, without telemetry. With
    ``parent``, stop at the next epoch once that process is gone (an orphaned fork)."""
    name = baseline_policy(catalog).name
    policy = make_policy(resolved, name, catalog, slot_names, {})
    curve: list[float] = []

    def record(event: TelemetryEvent) -> None:
        # The baseline writes no events; its validation curve goes in the summary so that a
        # report can draw it beside the run's.
        if isinstance(event, EpochEnded):
            curve.append(event.val_accuracy)

    def orphaned(env: HostEpisode) -> None:
        if parent is not None and os.getppid() != parent:
            os._exit(0)

    with HostEpisode(resolved, task, episode=0, seed=resolved.config.seed, emit=record,
                     policy_name=name, on_epoch_end=orphaned) as env:
        policy.reset(episode=0)
        step = env.start()
        while not step.done:
            step = env.step(policy.decide(report=step.report, mask=step.mask))
        result = env.result()
    return {
        "policy": name,
        "final_accuracy": result.final_accuracy,
        "best_accuracy": result.best_accuracy,
        "val_accuracy_per_epoch": curve,
        "test_accuracy": result.test_accuracy,
        # the test loss and the task's metrics of it (text: perplexity, bits per byte), for the
        # end-of-run table's baseline row
        "test_loss": result.test_loss,
        "test_metrics": dict(result.test_metrics),
        "host_params": result.host_params,
        "seed_params": result.fossilized_params,
        "wall_seconds": round(result.seconds, 3),
    }


def _child(conn: Connection, parent: int, resolved: ResolvedRun, catalog: Catalog,
           task: Task, slot_names: tuple[str, ...]) -> None:
    # The parent alone decides when the run stops (after its checkpoint) and ends this process.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)
    # Its epoch lines would interleave with the run's on the same terminal; only warnings (a
    # governor rollback, say) still show, marked as the baseline's.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    structlog.contextvars.bind_contextvars(baseline=True)
    try:
        conn.send(("ok", baseline_episode(resolved, catalog, task, slot_names, parent=parent)))
    except EsperError as exc:
        conn.send(("error", type(exc), str(exc)))
    except BaseException as exc:
        conn.send(("error", None, f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}"))
    finally:
        conn.close()


def spare_core(device: str) -> bool:
    """Whether a second process can train beside this one without slowing it: a CPU run whose
    torch threads leave a core free."""
    if device != "cpu" or "fork" not in multiprocessing.get_all_start_methods():
        return False
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return cores >= 2 * torch.get_num_threads()


class Baseline:
    """The run's baseline, begun before its episodes (:meth:`begin`) and collected after them
    (:meth:`finish`); :meth:`cancel` ends a baseline process early when the run stops."""

    def __init__(self, resolved: ResolvedRun, catalog: Catalog, task: Task, slot_names: tuple[str, ...], *,
                 key: str | None, root: Path) -> None:
        self._args = (resolved, catalog, task, slot_names)
        self._key = key
        self._root = root
        self._cached: dict[str, Any] | None = None
        self._process: Any = None
        self._conn: Connection | None = None
        self.source = "after"
        self.policy = ""  # the baseline policy's name, set by begin()

    @classmethod
    def begin(cls, resolved: ResolvedRun, catalog: Catalog, task: Task, slot_names: tuple[str, ...], *,
              device: str, use_cache: bool = True, alongside: bool | None = None) -> Baseline:
        """Look the baseline up in the cache; on a miss, start it in a second process when a core
        is free (``alongside`` None: decide from the machine)."""
        name = baseline_policy(catalog).name  # a clear error when no plugin declares one
        key = cache_key(resolved, catalog, device=device) if use_cache else None
        baseline = cls(resolved, catalog, task, slot_names, key=key, root=cache_dir())
        baseline.policy = name
        if key is not None:
            baseline._cached = read_cached(baseline._root, key, epochs=resolved.epochs)
            if baseline._cached is not None:
                baseline.source = "cache"
                logger.info("baseline: reusing the no-growth baseline of an identical earlier run", policy=name)
                return baseline
        if alongside if alongside is not None else spare_core(device):
            context = multiprocessing.get_context("fork")
            receive, send = context.Pipe(duplex=False)
            baseline._process = context.Process(target=_child, name="esper-baseline", daemon=True,
                                                args=(send, os.getpid(), *baseline._args))
            baseline._process.start()
            send.close()
            baseline._conn = receive
            baseline.source = "alongside"
            logger.info("baseline: training the same host without growth, alongside in a second process",
                        policy=name)
        return baseline

    def finish(self) -> dict[str, Any]:
        """The baseline's results (waiting for its process, or training it now), stored in the
        cache; ``source`` says where they came from."""
        if self._cached is not None:
            return {**self._cached, "source": self.source}
        if self._conn is not None:
            result = self._receive()
        else:
            logger.info("baseline: training the same host without growth", policy=self.policy)
            result = baseline_episode(*self._args)
        if self._key is not None:
            write_cached(self._root, self._key, result)
        return {**result, "source": self.source}

    def _receive(self) -> dict[str, Any]:
        assert self._conn is not None
        try:
            message = self._conn.recv()
        except EOFError:
            code = self._process.exitcode if self._process is not None else None
            raise EsperError(f"the baseline process ended without a result (exit code {code})") from None
        finally:
            self.cancel()
        if message[0] == "ok":
            return dict(message[1])
        _, kind, text = message
        if kind is not None:
            raise kind(text)
        raise EsperError(f"the baseline process failed: {text}")

    def cancel(self) -> None:
        """End the baseline's process (if any) and release its pipe."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._process is not None:
            self._process.join(timeout=0.5)
            if self._process.is_alive():
                self._process.kill()
                self._process.join()
            self._process = None

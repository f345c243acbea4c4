"""Memory the default ``esper run`` holds beyond torch itself and its dataset (issue 26).

    python benchmarks/bench_memory.py [--epochs 25] [--repeats 3] [--seed 0]

Three figures, each from fresh processes, the median of ``--repeats`` with min and max:

- ``import_torch_rss_mb``: the peak resident memory of a process that only imports torch;
- ``peak_rss_mb``: the peak resident memory of the run's own process (``esper run`` as a user
  types it, default task, policy and baseline; ``--epochs`` only when given), with an empty
  baseline cache (``ESPER_CACHE_DIR`` set to a fresh folder), so the baseline trains alongside
  in a forked process as on a first run;
- ``dataset_mb``: the bytes of the tensors the run's task holds (images and labels, as the task
  keeps them: the training images padded for the random crop), from the same task built in a
  process of its own.

``beyond_torch_mb`` = peak − import torch − dataset; the goal is at most 60 MB.

Both peaks are the process's own high-water mark (``VmHWM``) read just before the interpreter
shuts down (an ``atexit`` hook registered first, so it runs last). The high-water mark that
``wait4`` reports after exit is larger for both, and by about the same amount: finalising a
process that loaded a CUDA build of torch pages in some 130 MB of its libraries' code (their
static destructors; measured with ``import torch`` alone: 517 MB before finalising, 644 MB
after), which no work of Esper's can change; ``wait4`` also takes the maximum with every child
the process waited for. Those figures are printed too (``*_wait4_mb``). The baseline's forked
process is not in ``peak_rss_mb``: right after the fork its pages are the parent's, shared
copy-on-write, so adding its resident memory would count them twice.

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCES = sorted(str(src) for src in HERE.parent.glob("esper-*/src"))
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
GOAL_MB = 60.0

#: Registered before anything else, so that it runs after every other ``atexit`` hook: the
#: process's own high-water mark as JSON on the last line of standard error.
PEAK_HOOK = r"""
import atexit as _atexit, json as _json, sys as _sys
def _peak():
    status = dict(line.split(":", 1) for line in open("/proc/self/status") if ":" in line)
    kb = lambda key: int(status[key].split()[0])
    _sys.stderr.write("\nPEAK " + _json.dumps({"hwm_kb": kb("VmHWM"), "rss_kb": kb("VmRSS")}) + "\n")
    _sys.stderr.flush()
_atexit.register(_peak)
"""

IMPORT_TORCH = PEAK_HOOK + "import torch\n"

RUN = PEAK_HOOK + "import sys; sys.argv = ['esper', *sys.argv[1:]]\n" \
    "from esper_core.cli.main import main\nmain()\n"

#: The default run's task, built as the run builds it; prints the bytes of the tensors it holds.
DATASET = r"""
import json, sys
import torch
from esper_core.cli.app import AppState
from esper_core.config import RunConfig
from esper_core.plugins import PluginSettings
from esper_core.setup.resolve import resolve_run
from esper_core.setup.tasks import build_task

resolved = resolve_run(RunConfig(), AppState(PluginSettings.from_env()).catalog)
task = build_task(resolved, seed=resolved.config.seed, device="cpu")
storages = {}
def walk(value, depth):
    if isinstance(value, torch.Tensor):
        storage = value.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
    elif depth > 0 and isinstance(value, (list, tuple)):
        for item in value:
            walk(item, depth - 1)
    elif depth > 0 and isinstance(value, dict):
        for item in value.values():
            walk(item, depth - 1)
    elif depth > 0 and hasattr(value, "__dict__") and not isinstance(value, type):
        walk(vars(value), depth - 1)
walk(vars(task), 3)
print(json.dumps({"task": resolved.task.name, "bytes": sum(storages.values())}))
"""


def compile_sources() -> None:
    """Write the bytecode cache of every distribution's sources, as a user's repeat run has it."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", *SOURCES], check=True, env=CHILD_ENV,
                   capture_output=True)


def peaks(code: str, *argv: str, env: dict[str, str] | None = None) -> dict[str, float]:
    """Run ``python -c code argv`` (must succeed): its high-water marks in MB, in-process and
    from ``wait4``."""
    proc = subprocess.Popen([sys.executable, "-c", code, *argv], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env=env or CHILD_ENV)
    assert proc.stderr is not None
    stderr = proc.stderr.read().decode(errors="replace")
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        tail = stderr.strip().splitlines()[-1:] or [""]
        raise SystemExit(f"{' '.join(argv[:3])} failed (exit {os.waitstatus_to_exitcode(status)}): {tail[0]}")
    line = next(line for line in reversed(stderr.splitlines()) if line.startswith("PEAK "))
    peak = json.loads(line[5:])
    return {"hwm_mb": peak["hwm_kb"] / 1024, "wait4_mb": usage.ru_maxrss / 1024}


def default_run(epochs: int | None, seed: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**CHILD_ENV, "ESPER_CACHE_DIR": str(Path(tmp) / "cache")}
        argv = ["--log-level", "warning", "run", "--seed", str(seed), "--out", str(Path(tmp) / "run")]
        if epochs is not None:
            argv += ["--epochs", str(epochs)]
        return peaks(RUN, *argv, env=env)


def dataset_mb() -> float:
    out = subprocess.run([sys.executable, "-c", DATASET], check=True, capture_output=True, text=True,
                         env=CHILD_ENV).stdout
    return json.loads(out.strip().splitlines()[-1])["bytes"] / 2**20


def spread(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 1), "min": round(min(values), 1),
            "max": round(max(values), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=None, help="epochs of the run (default: the task's)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    compile_sources()
    dataset = dataset_mb()
    torch_runs, runs = [], []
    for _ in range(args.repeats):  # interleaved, so a change in the machine's load hits both
        torch_runs.append(peaks(IMPORT_TORCH))
        runs.append(default_run(args.epochs, args.seed))
    beyond = [r["hwm_mb"] - t["hwm_mb"] - dataset for t, r in zip(torch_runs, runs, strict=True)]
    median_beyond = statistics.median(beyond)
    result = {
        "epochs": args.epochs if args.epochs is not None else "task default",
        "repeats": args.repeats,
        "peak_rss_mb": spread([r["hwm_mb"] for r in runs]),
        "import_torch_rss_mb": spread([t["hwm_mb"] for t in torch_runs]),
        "dataset_mb": round(dataset, 1),
        "beyond_torch_mb": spread(beyond),
        "goal_beyond_torch_mb": GOAL_MB,
        "goal_met": median_beyond <= GOAL_MB,
        "peak_rss_wait4_mb": spread([r["wait4_mb"] for r in runs]),
        "import_torch_rss_wait4_mb": spread([t["wait4_mb"] for t in torch_runs]),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

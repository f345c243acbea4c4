"""Discovery judged by growth: search with each generator at equal budget, then grow with what it found.

    .venv/bin/python benchmarks/discovery_to_growth.py                 # everything, then docs/discovery.md
    .venv/bin/python benchmarks/discovery_to_growth.py --render        # only rewrite the doc from docs/discovery.json

1. **Search.** ``esper discover`` (the command users run) for each generator and seed at the same
   budget and batch size, latency term off so the search is reproducible. Its JSON summary and
   blueprint library are kept in ``--work`` (default ``benchmarks/results/discovery``).
2. **Growth.** The default task's host grown by the heuristic, each run exactly as ``esper run``
   runs it (``growth_lib``), over the same seeds: ``noop`` (no growth), ``catalog`` (the task's
   default blueprints), ``library:G`` (generator G's library from the search of the same seed, in
   its rank order, instead of the catalog), and one blueprint at a time — each default catalog
   blueprint, and each generator's best *novel* blueprint over all its searches — so a
   discovered design is compared with every catalog design on the same host, seeds and policy.

Every growth run is cached as one JSON file in the work folder, so an interrupted study resumes;
``docs/discovery.json`` keeps what the doc quotes and the doc is rendered from it alone.
Accuracy is each task's held-out test split, which neither the search nor the growth saw.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from importlib.metadata import version
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from work_folder import claim_work

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DOC = ROOT / "docs" / "discovery.md"
DATA = ROOT / "docs" / "discovery.json"
GENERATORS = ("architect", "random", "evolution")
#: Hall-of-fame entries written to each library (``esper discover``'s default).
LIBRARY_SIZE = 8
CHECKPOINTS = (64, 128, 256)
#: Two-sided 95 % quantiles of Student's t for 1–30 degrees of freedom (the confidence interval
#: of a paired mean over a handful of seeds; the normal 1.96 would be far too narrow at n = 5).
T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- 1. search -------------------------------------------------------------------------------


def discover(generator: str, seed: int, args: argparse.Namespace, *, options: Sequence[str] = (),
             label: str | None = None) -> dict[str, Any]:
    """One ``esper discover`` run, cached under ``label``: its JSON summary plus its wall time.

    ``options`` are ``KEY=VALUE`` generator options (``--generator-option``)."""
    label = label or generator
    summary_path = args.work / f"search-{label}-s{seed}.json"
    if summary_path.exists():
        return json.loads(summary_path.read_text())
    library = args.work / f"library-{label}-s{seed}.json"
    command = [str(Path(sys.executable).parent / "esper"), "discover", "--generator", generator,
               *(f"--generator-option={o}" for o in options),
               "--seed", str(seed), "--budget", str(args.budget), "--batch-size", str(args.batch_size),
               "--latency-weight", "0", "--library-size", str(LIBRARY_SIZE), "--threads", "1",
               "--out", str(library), "--force", "--json"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"esper discover failed for {generator} seed {seed}:\n{done.stderr}")
    summary = json.loads(done.stdout)
    where = str(library.relative_to(ROOT)) if library.is_relative_to(ROOT) else str(library)
    summary.update(seed=seed, wall_s=wall, label=label, options=list(options), library=where)
    summary_path.write_text(json.dumps(summary))
    log(f"search {label} seed {seed}: best {summary['best_fitness']:+.3f}, best novel "
        f"{summary['best_novel_fitness']}, {wall:.0f} s")
    return summary


# -- 2. growth -------------------------------------------------------------------------------


def grow(job: Mapping[str, Any]) -> dict[str, Any]:
    """One growth episode (in a worker process): ``job`` names the method, seed and blueprints."""
    import growth_lib  # imported here: it loads torch and the plugins, which the parent never needs

    growth_lib.threads(1)
    run: dict[str, Any] = {}
    if job.get("library"):
        run["blueprint_library"] = job["library"]
    if job.get("blueprints"):
        run["blueprints"] = list(job["blueprints"])
    resolved = growth_lib.resolve(task=job["task"], policy=job["policy"], seed=job["seed"], run=run,
                                  epochs=job.get("epochs"))
    result = growth_lib.run_episode(resolved)
    lifecycle = result["lifecycle"]
    return {
        "method": job["method"], "seed": job["seed"], "test_accuracy": result["test_accuracy"],
        "final_val": result["final_val"], "host_params": result["host_params"],
        "added_params": result["added_params"], "final_architecture": result["final_architecture"],
        "fossilized": sorted(bp for _, _, bp, _, to in lifecycle if to == "FOSSILIZED"),
        "culled": sorted(bp for _, _, bp, _, to in lifecycle if to == "CULLED"),
        "macs": result["macs"], "seconds": result["seconds"],
    }


def catalog_defaults(task: str) -> list[str]:
    """The task's default blueprints (the ``catalog`` method offers exactly these)."""
    import growth_lib

    return [b.key for b in growth_lib.resolve(task=task, policy="heuristic", seed=0).blueprints]


def default_task() -> str:
    import growth_lib

    from esper_core.setup.defaults import default_task as task_of

    return task_of(growth_lib.catalog()).name


def novel_library(searches: Sequence[Mapping[str, Any]], path: Path) -> dict[str, dict[str, Any]]:
    """Write each generator's best novel blueprint over all its searches to one library file."""
    from esper_core.discovery.library import BlueprintLibrary, LibraryEntry, write_library

    chosen: dict[str, dict[str, Any]] = {}
    for generator in GENERATORS:
        novel = [s for s in searches if s["generator"] == generator and s["best_novel_tokens"]]
        if not novel:
            continue
        best = max(novel, key=lambda s: s["best_novel_fitness"])
        chosen[f"{generator}-novel"] = {"generator": generator, "seed": best["seed"],
                                        "tokens": best["best_novel_tokens"], "fitness": best["best_novel_fitness"]}
    write_library(path, BlueprintLibrary(topology="cnn", provenance={"source": "discovery_to_growth.py"}, entries=[
        LibraryEntry(name=name, tokens=c["tokens"], fitness=c["fitness"]) for name, c in chosen.items()]))
    return chosen


def growth_jobs(task: str, seeds: Sequence[int], searches: Sequence[Mapping[str, Any]],
                novel: Mapping[str, Any], novel_path: Path, singles: Sequence[str],
                epochs: int | None) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = []
    for seed in seeds:
        base = {"task": task, "seed": seed, "policy": "heuristic", "epochs": epochs}
        jobs.append({**base, "method": "noop", "policy": "noop"})
        jobs.append({**base, "method": "catalog"})
        for name in novel:
            jobs.append({**base, "method": f"single:{name}", "blueprints": [name], "library": str(novel_path)})
        for s in searches:
            if s["seed"] == seed:
                names = [e["name"] for e in json.loads((ROOT / s["library"]).read_text())["blueprints"]]
                jobs.append({**base, "method": f"library:{s['generator']}", "blueprints": names,
                             "library": str(ROOT / s["library"])})
        for key in singles:
            jobs.append({**base, "method": f"single:{key}", "blueprints": [key]})
    return jobs


def run_growth(jobs: Sequence[Mapping[str, Any]], work: Path, workers: int) -> list[dict[str, Any]]:
    def path(job: Mapping[str, Any]) -> Path:
        return work / f"grow-{job['method'].replace(':', '_')}-s{job['seed']}.json"

    todo = [j for j in jobs if not path(j).exists()]
    log(f"growth: {len(jobs) - len(todo)} of {len(jobs)} runs cached, {len(todo)} to run on {workers} workers")
    if todo:
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
            for job, row in zip(todo, pool.map(grow, todo), strict=True):
                path(job).write_text(json.dumps(row))
                log(f"{job['method']} seed {job['seed']}: test {row['test_accuracy']:.2f} %, "
                    f"+{row['added_params']} params, {row['seconds']:.0f} s")
    return [json.loads(path(j).read_text()) for j in jobs]


# -- statistics ------------------------------------------------------------------------------


def paired(a: Sequence[float], b: Sequence[float]) -> dict[str, Any]:
    """:func:`~esper_core.paired.paired_difference` of a − b, with its 95 % confidence half-width
    (``ci``) and a signed infinite ``t`` where the spread is 0, so the tables can sort on it."""
    from esper_core.paired import paired_difference

    d = paired_difference(a, b)
    n, mean, sd = int(d["n"] or 0), float(d["mean"] or 0.0), float(d["sd"] or 0.0)
    if d["t"] is None:
        d["t"] = math.copysign(math.inf, mean) if mean else 0.0
    d["ci"] = T975[min(n - 1, len(T975)) - 1] * sd / math.sqrt(n) if n > 1 else math.inf
    return d


def by_method(runs: Sequence[Mapping[str, Any]]) -> dict[str, dict[int, Mapping[str, Any]]]:
    out: dict[str, dict[int, Mapping[str, Any]]] = {}
    for r in runs:
        out.setdefault(r["method"], {})[r["seed"]] = r
    return out


def summarize(data: Mapping[str, Any]) -> dict[str, Any]:
    runs = by_method(data["growth"])
    seeds = sorted(runs["noop"])
    noop = [runs["noop"][s]["test_accuracy"] for s in seeds]
    methods: dict[str, Any] = {}
    for method, rows in runs.items():
        acc = [rows[s]["test_accuracy"] for s in seeds]
        methods[method] = {
            "test": statistics.fmean(acc), "test_sd": statistics.stdev(acc) if len(acc) > 1 else 0.0,
            "added": statistics.fmean(rows[s]["added_params"] for s in seeds),
            "gain": paired(acc, noop) if method != "noop" else None,
            "fossilized": sum(len(rows[s]["fossilized"]) for s in seeds),
            "culled": sum(len(rows[s]["culled"]) for s in seeds),
        }
    searches = data["search"]
    # A search that found nothing novel scores −1 (an invalid candidate's fitness).
    novel_best = {g: [next(s["best_novel_fitness"] or -1.0 for s in searches
                           if s["generator"] == g and s["seed"] == seed)
                      for seed in data["seeds"]] for g in GENERATORS if any(s["generator"] == g for s in searches)}
    head_to_head: dict[str, Any] = {}
    catalog_singles = [f"single:{k}" for k in data["singles"]]
    for name in data["novel"]:
        mine = f"single:{name}"
        head_to_head[name] = {
            other: {"diff": paired([runs[mine][s]["test_accuracy"] for s in seeds],
                                   [runs[other][s]["test_accuracy"] for s in seeds]),
                    "no_more_params": methods[mine]["added"] <= methods[other]["added"],
                    "cheaper_or_equal": methods[other]["added"] <= methods[mine]["added"]}
            for other in catalog_singles}
    return {"seeds": seeds, "methods": methods, "novel_best": novel_best, "head_to_head": head_to_head}


def goals(data: Mapping[str, Any], summary: Mapping[str, Any]) -> list[tuple[str, bool, str]]:
    nb = summary["novel_best"]
    out = []
    if {"architect", "random", "evolution"} <= set(nb):
        vs = {g: paired(nb["architect"], nb[g]) for g in ("random", "evolution")}
        met = all(v["mean"] > 0 for v in vs.values())
        out.append(("the Architect's best novel blueprint scores above random search's and evolution's "
                    f"over {len(data['seeds'])} seeds", met,
                    "; ".join(f"architect − {g} {v['mean']:+.3f} ± {v['sd']:.3f} (t {v['t']:.2f})"
                              for g, v in vs.items())))
    # Read strictly: the novel blueprint beats every catalog blueprint and adds no more parameters
    # than any of them. The weaker, Pareto reading (it beats every catalog blueprint that is no
    # more expensive than it) is reported beside it.
    strict, pareto = [], []
    for name, rows in summary["head_to_head"].items():
        if all(r["diff"]["mean"] > 0 and r["no_more_params"] for r in rows.values()):
            strict.append(name)
        if all(r["diff"]["mean"] > 0 for r in rows.values() if r["cheaper_or_equal"]):
            pareto.append(name)
    detail = "; ".join(
        f"{name} beats {sum(r['diff']['mean'] > 0 for r in rows.values())} of {len(rows)} catalog blueprints, "
        f"adds no more parameters than {sum(r['no_more_params'] for r in rows.values())} of them, and beats "
        f"{sum(r['diff']['mean'] > 0 for r in rows.values() if r['cheaper_or_equal'])} of the "
        f"{sum(r['cheaper_or_equal'] for r in rows.values())} that add no more than it"
        for name, rows in summary["head_to_head"].items())
    out.append(("a novel discovered blueprint gives a larger test-accuracy gain over noop than every catalog "
                "blueprint, with no more added parameters than each (paired over the seeds)", bool(strict),
                (f"met by {', '.join(strict)}; " if strict else "")
                + (f"Pareto reading met by {', '.join(pareto)}; " if pareto else "Pareto reading met by none; ")
                + detail))
    return out


# -- the doc ---------------------------------------------------------------------------------


def _f(x: float | None, spec: str = ".3f") -> str:
    return "none" if x is None else format(x, spec)


def render(data: Mapping[str, Any]) -> str:
    summary = summarize(data)
    seeds = data["seeds"]
    lines = [
        "# Blueprint discovery, judged by search and by growth",
        "",
        f"Written by `{data['command'].strip()}` (results in `docs/discovery.json`; `--render` rewrites "
        "this page from it). Every figure below is measured by that script.",
        "",
        f"Machine: {data['machine']}; 1 torch thread per process, {data['workers']} growth runs at a time; "
        f"the machine was shared with other jobs, so wall times are indicative only. Written {data['written']}.",
        "",
        "## 1. Search at equal budget",
        "",
        f"`esper discover --budget {data['budget']} --batch-size {data['batch_size']} --latency-weight 0 "
        f"--seed S --generator G` for seeds {', '.join(map(str, seeds))}: Crucible tasks xor, temporal, image "
        "(100 Adam steps each); invalid candidates count against the budget. Evolution: population 32, "
        "tournament 8. Architect: GRU pre-trained on the catalog's token forms, then REINFORCE on fitness, "
        "sampling at its default temperature (chosen on other seeds, docs/architect_novelty.md). "
        "Fitness = mean chance-corrected accuracy − 0.05·params/1000 + 0.1·stable − 0.1·redundancy "
        "(invalid: −1). The catalog's blueprints seed the hall of fame, so a copy of one has redundancy "
        "1; `best novel` is the best candidate outside the catalog's radius (CKA < 0.95 to every catalog "
        "blueprint, and not one's tokens).",
        "",
        "| generator | seed | best | " + " | ".join(f"best@{c}" for c in CHECKPOINTS if c <= data["budget"])
        + " | mean | valid | distinct valid | wall s | best (xor / temporal / image) | best novel |",
        "|---|---|---|" + "---|" * len([c for c in CHECKPOINTS if c <= data["budget"]]) + "---|---|---|---|---|---|",
    ]
    for s in sorted(data["search"], key=lambda s: (s["seed"], GENERATORS.index(s["generator"]))):
        best_at = {c: next((st["best"] for st in s["steps"] if st["evaluated"] >= c), None) for c in CHECKPOINTS}
        perf = " / ".join(f"{s['best_performance'].get(t, 0):.2f}" for t in ("xor", "temporal", "image"))
        lines.append(
            f"| {s['generator']} | {s['seed']} | {s['best_fitness']:.3f} | "
            + " | ".join(_f(best_at[c]) for c in CHECKPOINTS if c <= data["budget"])
            + f" | {s['mean_fitness']:.3f} | {s['valid_fraction']:.0%} | {s['distinct_valid']} | {s['wall_s']:.0f} | "
            f"`{' '.join(s['best_tokens'])}` ({perf}){'' if s['best_is_novel'] else ' (catalog radius)'} | "
            + (f"{s['best_novel_fitness']:.3f} `{' '.join(s['best_novel_tokens'])}`" if s["best_novel_tokens"]
               else "none") + " |")
    lines += ["", "Means over seeds (± sd):", "",
              "| generator | best | best novel | mean fitness | distinct valid | wall s |", "|---|---|---|---|---|---|"]
    for g in GENERATORS:
        rs = [s for s in data["search"] if s["generator"] == g]
        if not rs:
            continue

        def ms(values: Sequence[float], spec: str = ".3f") -> str:
            sd = statistics.stdev(values) if len(values) > 1 else 0.0
            return f"{format(statistics.fmean(values), spec)} ± {format(sd, spec)}"

        lines.append(f"| {g} | {ms([s['best_fitness'] for s in rs])} | "
                     f"{ms([s['best_novel_fitness'] or -1.0 for s in rs])} | {ms([s['mean_fitness'] for s in rs])} | "
                     f"{ms([s['distinct_valid'] for s in rs], '.1f')} | {ms([s['wall_s'] for s in rs], '.0f')} |")
    m = summary["methods"]
    lines += [
        "",
        "## 2. Growth with what was discovered",
        "",
        f"Task `{data['task']}` (the default), the heuristic with the task's defaults, seeds "
        f"{', '.join(map(str, seeds))}; the growth run of seed S uses the library searched with seed S. "
        "`catalog`: the task's default blueprints; `library:G`: generator G's library (its hall of fame's "
        f"best {data['library_size']}, in rank order) instead of the catalog; `single:B`: blueprint B alone. "
        "The `-novel` blueprints are each generator's best novel one over all its searches:",
        "",
    ]
    for name, c in data["novel"].items():
        lines.append(f"- `{name}` (search seed {c['seed']}, fitness {c['fitness']:.3f}): `{' '.join(c['tokens'])}`")
    lines += [
        "",
        "Gain = test accuracy − noop's in the same seed (points); CI: 95 % confidence interval of the "
        "paired mean (Student's t).",
        "",
        "| method | test accuracy % | added params (mean) | gain over noop | 95 % CI | t | fossilized / culled |",
        "|---|---|---|---|---|---|---|",
    ]
    order = ["noop", "catalog", *(f"library:{g}" for g in GENERATORS), *(f"single:{n}" for n in data["novel"]),
             *(f"single:{k}" for k in data["singles"])]
    for method in [o for o in order if o in m]:
        r = m[method]
        g = r["gain"]
        lines.append(
            f"| {method} | {r['test']:.2f} ± {r['test_sd']:.2f} | {r['added']:,.0f} | "
            + ("— | — | — |" if g is None else f"{g['mean']:+.2f} ± {g['sd']:.2f} | "
               f"[{g['mean'] - g['ci']:+.2f}, {g['mean'] + g['ci']:+.2f}] | {g['t']:.2f} |")
            + f" {r['fossilized']} / {r['culled']} |")
    lines += ["", "Each novel blueprint against each catalog blueprint, alone, same seeds (test-accuracy "
              "difference, points; `≤ params`: the novel one added no more parameters on average):", ""]
    for name, rows in summary["head_to_head"].items():
        lines += [f"`{name}`:", "", "| catalog blueprint | difference | t | ≤ params |", "|---|---|---|---|"]
        for other, r in rows.items():
            lines.append(f"| {other.removeprefix('single:')} | {r['diff']['mean']:+.2f} ± {r['diff']['sd']:.2f} | "
                         f"{r['diff']['t']:.2f} | {'yes' if r['no_more_params'] else 'no'} |")
        lines.append("")
    lines += ["## Goals", ""]
    for text, met, detail in goals(data, summary):
        lines.append(f"- **{'met' if met else 'not met'}**: {text}. {detail}.")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--budget", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--generators", default=",".join(GENERATORS))
    parser.add_argument("--workers", type=int, default=2, help="processes for the searches and the growth runs")
    parser.add_argument("--work", type=Path, default=HERE / "results" / "discovery",
                        help="folder of the cached searches, libraries and growth runs")
    parser.add_argument("--epochs", type=int, default=None, help="growth epochs (default: the task's; for a smoke run)")
    parser.add_argument("--only", choices=["search", "growth"], default=None, help="stop after this part")
    parser.add_argument("--render", action="store_true", help="only rewrite docs/discovery.md from docs/discovery.json")
    args = parser.parse_args()
    if args.render:
        DOC.write_text(render(json.loads(DATA.read_text())))
        return
    # The novel library pools every seed's searches, so the seeds and generators are settings too.
    claim_work(args.work, {k: getattr(args, k) for k in ("budget", "batch_size", "epochs", "seeds", "generators")})
    seeds = [int(s) for s in args.seeds.split(",")]
    generators = args.generators.split(",")
    pairs = [(g, s) for s in seeds for g in generators]
    with ThreadPoolExecutor(max_workers=args.workers) as pool:
        searches = list(pool.map(lambda p: discover(p[0], p[1], args), pairs))
    if args.only == "search":
        return
    sys.path.insert(0, str(HERE))
    task = default_task()
    singles = catalog_defaults(task)
    novel_path = args.work / "library-novel.json"
    novel = novel_library(searches, novel_path)
    jobs = growth_jobs(task, seeds, searches, novel, novel_path, singles, args.epochs)
    runs = run_growth(jobs, args.work, args.workers)
    data = {
        "command": ".venv/bin/python benchmarks/discovery_to_growth.py " + " ".join(sys.argv[1:]),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
                   f"torch {version('torch')}",
        "written": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "workers": args.workers,
        "budget": args.budget, "batch_size": args.batch_size, "library_size": LIBRARY_SIZE, "seeds": seeds,
        "task": task,
        "singles": singles, "novel": novel, "epochs": args.epochs,
        "search": [{k: v for k, v in s.items() if k != "hall_of_fame"} for s in searches],
        "growth": runs,
    }
    DATA.write_text(json.dumps(data, indent=1) + "\n")
    DOC.write_text(render(data))
    log(f"wrote {DOC.relative_to(ROOT)} and {DATA.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

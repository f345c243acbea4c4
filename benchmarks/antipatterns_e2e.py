"""Each anti-pattern blueprint on the default task, germinated by the heuristic restricted to it.

For every blueprint of ``esper_antipatterns`` this runs ``esper run --blueprints <name>`` (and
one no-seed baseline), then reads each run directory: the failure signatures detected
(``anomaly`` events), the epoch the seed was culled, the final accuracy against the baseline,
governor rollbacks, and whether every host weight in the saved model is finite. Writes
``docs/antipatterns.md``.

    .venv/bin/python benchmarks/antipatterns_e2e.py [--jobs 2] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from esper_antipatterns.catalog import ANTIPATTERNS

DOC = Path(__file__).resolve().parents[1] / "docs" / "antipatterns.md"
ESPER = [sys.executable, "-c", "from esper_core.cli.main import main; main()"]


def run(out: Path, seed: int, *args: str) -> dict:
    subprocess.run([*ESPER, "--log-level", "error", "run", "--seed", str(seed), "--no-compare-baseline",
                    "--out", str(out), *args], check=True, capture_output=True)
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    summary = json.loads((out / "summary.json").read_text())
    state = torch.load(out / "model.pt", weights_only=False)["state_dict"]
    host_finite = all(bool(torch.isfinite(v).all()) for k, v in state.items()
                      if ".seed." not in k and v.is_floating_point())
    return {
        "final_accuracy": summary["final_accuracy"],
        "seeds": summary["seeds"],
        "signatures": sorted({e["signature"] for e in events if e["kind"] == "anomaly"}),
        "rollbacks": sum(1 for e in events if e["kind"] == "governor_rollback"),
        "host_finite": host_finite,
    }


def render(results: dict, base: float, seed: int) -> str:
    """docs/antipatterns.md from the per-blueprint results and the baseline's final accuracy."""
    lines = [
        "# Anti-pattern blueprints end to end",
        "",
        f"Written by `.venv/bin/python benchmarks/antipatterns_e2e.py --seed {seed}`: the default `shapes` task, "
        "the heuristic restricted to one anti-pattern (`--blueprints NAME`), against the same run with the "
        f"`noop` policy (final accuracy {base:.2f} %). \"epochs live\" counts from germination to the cull.",
        "",
        "| index | blueprint | germinated | outcome (epoch) | epochs live | signatures detected | rollbacks | "
        "final acc % | vs baseline | host weights finite |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for entry in ANTIPATTERNS:
        r = results[entry.name]
        seed_record = r["seeds"][0] if r["seeds"] else None
        if seed_record is None:
            germinated, outcome, live = "no", "-", "-"
        else:
            germinated, ended = seed_record["germinated_epoch"], seed_record["ended_epoch"]
            outcome = f"{seed_record['outcome']} ({ended or '-'})"
            live = "-" if ended is None else str(ended - germinated)
        lines.append(
            f"| {entry.index} | {entry.name} | {germinated} | {outcome} | {live} | "
            f"{', '.join(r['signatures']) or '-'} | {r['rollbacks']} | {r['final_accuracy']:.2f} | "
            f"{r['final_accuracy'] - base:+.2f} | {'yes' if r['host_finite'] else '**no**'} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        jobs = {"baseline": ("--policy", "noop")}
        jobs.update({entry.name: ("--blueprints", entry.name) for entry in ANTIPATTERNS})
        with ThreadPoolExecutor(args.jobs) as pool:
            futures = {name: pool.submit(run, root / name, args.seed, *argv) for name, argv in jobs.items()}
            results = {name: f.result() for name, f in futures.items()}
    base = results.pop("baseline")["final_accuracy"]
    DOC.write_text(render(results, base, args.seed))
    print(json.dumps({"baseline": base, **results}, indent=2, default=str))


if __name__ == "__main__":
    main()

"""Does each anti-pattern fail the way its catalog entry says? Expected vs. detected signatures.

Each of the ten is germinated on the default task (``shapes``) in one slot at epoch 1 and left
there for the whole episode: the heuristic restricted to that blueprint, with its cull and
fossilize rules switched off, is the scripted policy. The run's ``anomaly`` events give the
signatures detected and the epoch each first appeared; the ``failure_signatures`` observer's
end-of-life ``signature_mismatch`` record (expected vs. detected) is copied into the table.
Writes ``docs/antipatterns_signatures.md`` and ``.json``.

    .venv/bin/python benchmarks/antipatterns_signatures.py [--jobs 2] [--epochs 10] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from esper_antipatterns.catalog import ANTIPATTERNS
from esper_antipatterns.signatures import SIGNATURE_MISMATCH

DOCS = Path(__file__).resolve().parents[1] / "docs"
ESPER = [sys.executable, "-c", "from esper_core.cli.main import main; main()"]
SLOT = "block2"
#: Never cull (no patience runs out, no accuracy drop is large enough) and never fossilize.
NEVER_END = ("cull_after_epochs_without_improvement=1000", "cull_if_accuracy_drops_by=100",
             "fossilize_min_contribution=100")


def measure(out: Path, name: str, *, seed: int, epochs: int) -> dict:
    """One run with ``name`` germinated in :data:`SLOT`: signatures, first epochs, mismatch."""
    policy_options = [arg for option in NEVER_END for arg in ("--policy-option", option)]
    subprocess.run([*ESPER, "--log-level", "error", "run", "--seed", str(seed), "--epochs", str(epochs),
                    "--no-compare-baseline", "--slots", SLOT, "--blueprints", name, *policy_options,
                    "--out", str(out)], check=True, capture_output=True)
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    first: dict[str, int] = {}
    mismatch = None
    for event in events:
        if event["kind"] != "anomaly":
            continue
        if event["signature"] == SIGNATURE_MISMATCH:
            mismatch = event["detail"]
        else:
            first.setdefault(event["signature"], event["epoch"])
    germinated = [e["epoch"] for e in events if e["kind"] == "seed_lifecycle" and e["to_stage"] == "GERMINATED"]
    return {
        "germinated_epoch": germinated[0] if germinated else None,
        "detected": first,
        "rollbacks": sum(1 for e in events if e["kind"] == "governor_rollback"),
        "mismatch": mismatch,
    }


def render(results: dict, *, seed: int, epochs: int) -> str:
    lines = [
        "# Anti-patterns: catalogued vs. measured failure signatures",
        "",
        f"Written by `.venv/bin/python benchmarks/antipatterns_signatures.py --seed {seed} --epochs {epochs}`: "
        f"the default `shapes` task, {epochs} epochs, seed {seed}, each anti-pattern germinated at epoch 1 "
        f"in slot `{SLOT}` and never culled or fossilized by the policy (the heuristic restricted to it, with "
        f"`{'`, `'.join(NEVER_END)}`; the safety governor still culls a seed it rolls back). "
        "\"detected\" lists every signature the `failure_signatures` observer reported, with the epoch it "
        "first appeared; \"expected\" is the catalog's "
        "`expected_signature` at the time of the run (`none`: it should show no signature), \"designed\" "
        "the signature seed 000 designed it to show; \"observer record\" is the observer's own "
        "end-of-life `signature_mismatch` anomaly (\"-\" when what appeared is what was expected).",
        "",
        "| index | anti-pattern | designed (seed 000) | expected (catalog) | detected (first epoch) | matches | "
        "rollbacks | observer record |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for entry in ANTIPATTERNS:
        r = results[entry.name]
        detected = ", ".join(f"{sig} ({epoch})" for sig, epoch in r["detected"].items()) or "nothing"
        lines.append(f"| {entry.index} | {entry.name} | {r['designed']} | {r['expected']} | {detected} | "
                     f"{'yes' if r['matches'] else '**no**'} | {r['rollbacks']} | {r['mismatch'] or '-'} |")
    matched = sum(1 for r in results.values() if r["matches"])
    designed = sum(1 for r in results.values() if r["designed"] in r["detected"])
    lines += ["", f"{matched} of {len(results)} behave as their catalog entry says in this run; "
              f"{designed} of {len(results)} show the signature seed 000 designed them to show."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(args.jobs) as pool:
        futures = {entry.name: pool.submit(measure, Path(tmp) / entry.name, entry.key,
                                           seed=args.seed, epochs=args.epochs) for entry in ANTIPATTERNS}
        results = {name: future.result() for name, future in futures.items()}
    for entry in ANTIPATTERNS:
        r = results[entry.name]
        r["designed"] = entry.designed_signature.value
        r["expected"] = entry.expected_value
        r["matches"] = (not r["detected"]) if entry.expected_signature is None else r["expected"] in r["detected"]
    payload = {"seed": args.seed, "epochs": args.epochs, "slot": SLOT, "results": results}
    (DOCS / "antipatterns_signatures.json").write_text(json.dumps(payload, indent=2) + "\n")
    (DOCS / "antipatterns_signatures.md").write_text(render(results, seed=args.seed, epochs=args.epochs))
    print(json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()

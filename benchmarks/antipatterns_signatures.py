"""Does each anti-pattern fail the way its catalog entry says? Expected vs. detected signatures.

Each anti-pattern is germinated on its topology's default task (``shapes`` for the CNN forms,
``pytext`` for the transformer forms) in one slot at epoch 1 and left there for the whole
episode: the heuristic restricted to that blueprint, with its cull and fossilize rules switched
off, is the scripted policy. Every form runs once per seed. The run's ``anomaly`` events give the
signatures detected and the epoch each first appeared; the ``failure_signatures`` observer's
end-of-life ``signature_mismatch`` record (expected vs. detected) is copied into the table. The
measured signature of a form is :func:`esper_antipatterns.signatures.consensus` over its seeds
(shown in at least 2 of 3), and its catalog entry's ``expected_signature`` must equal it
(``esper-antipatterns/tests/test_catalog_measured.py`` holds the catalog to the JSON).
Writes ``docs/antipatterns_signatures.md`` and ``.json``.

    .venv/bin/python benchmarks/antipatterns_signatures.py [--jobs 2] [--seeds 0 1 2]
        [--epochs 10] [--transformer-epochs 10] [--topology cnn transformer]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from esper_antipatterns.catalog import ALL_ANTIPATTERNS, Antipattern
from esper_antipatterns.signatures import CONSENSUS_SHARE, SIGNATURE_MISMATCH, consensus

DOCS = Path(__file__).resolve().parents[1] / "docs"
ESPER = [sys.executable, "-c", "from esper_core.cli.main import main; main()"]
#: Per topology: its default task and the slot every form is germinated in (the middle one of
#: the CNN host's three; the first of the transformer host's two, so two blocks run after it).
SETTINGS = {"cnn": ("shapes", "block2"), "transformer": ("pytext", "layer1")}
#: Never cull (no patience runs out, no accuracy drop is large enough) and never fossilize.
NEVER_END = ("cull_after_epochs_without_improvement=1000", "cull_if_accuracy_drops_by=100",
             "fossilize_min_contribution=100")


def measure(out: Path, entry: Antipattern, *, seed: int, epochs: int) -> dict:
    """One run with ``entry`` germinated in its topology's slot: signatures, first epochs, mismatch."""
    task, slot = SETTINGS[entry.topology]
    policy_options = [arg for option in NEVER_END for arg in ("--policy-option", option)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([*ESPER, "--log-level", "error", "run", "--task", task, "--seed", str(seed),
                    "--epochs", str(epochs), "--threads", "1", "--no-compare-baseline", "--slots", slot,
                    "--blueprints", entry.key, *policy_options, "--out", str(out)],
                   check=True, capture_output=True, env=env)
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


def summarise(entry: Antipattern, per_seed: dict[int, dict]) -> dict:
    """One form's result over its seeds: counts per signature, the consensus, agreement."""
    detected = [r["detected"] for r in per_seed.values()]
    shown = {sig: sum(sig in d for d in detected) for d in detected for sig in d}
    for r in per_seed.values():
        r["matches"] = (entry.expected_value in r["detected"] if entry.expected_signature is not None
                        else not r["detected"])
    measured = consensus(detected, entry.designed_signature.value)
    return {
        "designed": entry.designed_signature.value,
        "expected": entry.expected_value,
        "measured": measured or "none",
        "shown_in": dict(sorted(shown.items(), key=lambda kv: (-kv[1], kv[0]))),
        "seeds": {str(seed): r for seed, r in per_seed.items()},
    }


def _detected_cell(r: dict) -> str:
    return ", ".join(f"{sig} ({epoch})" for sig, epoch in r["detected"].items()) or "nothing"


def render(payload: dict) -> str:
    seeds = payload["seeds"]
    n = len(seeds)
    need = -(-round(CONSENSUS_SHARE * n * 1000) // 1000)
    command = ("`.venv/bin/python benchmarks/antipatterns_signatures.py --seeds "
               f"{' '.join(map(str, seeds))} --epochs {payload['topologies'].get('cnn', {}).get('epochs', '-')} "
               f"--transformer-epochs {payload['topologies'].get('transformer', {}).get('epochs', '-')}`")
    lines = [
        "# Anti-patterns: catalogued vs. measured failure signatures",
        "",
        f"Written by {command}. Each anti-pattern form is germinated at epoch 1 in one slot of its "
        "topology's default task and never culled or fossilized by the policy (the heuristic restricted to "
        f"it, with `{'`, `'.join(NEVER_END)}`; the safety governor still culls a seed it rolls back), once "
        f"per seed ({', '.join(map(str, seeds))}). \"detected\" lists every signature the "
        "`failure_signatures` observer reported in that run, with the epoch it first appeared; \"observer "
        "record\" is the observer's own end-of-life `signature_mismatch` anomaly (expected vs. detected; "
        "\"-\" when what appeared is what was expected).",
        "",
        f"**Rule.** A form's *measured* signature is the one shown in at least {need} of {n} seeds — its "
        "designed signature (seed 000's) when that one is, else the most severe one that is, else `none`. "
        "The catalog's `expected_signature` is set to it, and "
        "`esper-antipatterns/tests/test_catalog_measured.py` holds the catalog to this file's JSON. "
        "\"matches\" in a seed's row says whether that run showed the catalogued signature (for `none`: "
        "showed nothing).",
    ]
    for topology, block in payload["topologies"].items():
        results = block["results"]
        lines += [
            "",
            f"## {topology}: task `{block['task']}`, slot `{block['slot']}`, {block['epochs']} epochs",
            "",
            "| index | anti-pattern | designed (seed 000) | expected (catalog) | measured | shown in (of "
            f"{n} seeds) |",
            "|---|---|---|---|---|---|",
        ]
        for name, r in results.items():
            shown = ", ".join(f"{sig} {count}" for sig, count in r["shown_in"].items()) or "nothing"
            flag = "" if r["measured"] == r["expected"] else " **≠ catalog**"
            lines.append(f"| {block['indices'][name]} | {name} | {r['designed']} | {r['expected']} | "
                         f"{r['measured']}{flag} | {shown} |")
        lines += ["", "Per seed:", "",
                  "| anti-pattern | seed | detected (first epoch) | matches | rollbacks | observer record |",
                  "|---|---|---|---|---|---|"]
        for name, r in results.items():
            for seed, s in r["seeds"].items():
                lines.append(f"| {name} | {seed} | {_detected_cell(s)} | {'yes' if s['matches'] else '**no**'} | "
                             f"{s['rollbacks']} | {s['mismatch'] or '-'} |")
        agree = sum(1 for r in results.values() if r["measured"] == r["expected"])
        designed = sum(1 for r in results.values() if r["measured"] == r["designed"])
        lines += ["", f"{topology}: the catalog agrees with the measurement for {agree} of {len(results)}; "
                  f"{designed} of {len(results)} show the signature seed 000 designed them to show "
                  f"(in at least {need} of {n} seeds)."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=10, help="epochs of the CNN (shapes) runs")
    parser.add_argument("--transformer-epochs", type=int, default=10, help="epochs of the transformer (pytext) runs")
    parser.add_argument("--topology", nargs="+", choices=sorted(SETTINGS), default=sorted(SETTINGS))
    args = parser.parse_args()
    epochs = {"cnn": args.epochs, "transformer": args.transformer_epochs}
    entries = [e for e in ALL_ANTIPATTERNS if e.topology in args.topology]
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(args.jobs) as pool:
        futures = {(entry.key, seed): pool.submit(measure, Path(tmp) / f"{entry.topology}-{entry.name}-{seed}",
                                                  entry, seed=seed, epochs=epochs[entry.topology])
                   for entry in entries for seed in args.seeds}
        runs = {key: future.result() for key, future in futures.items()}
    topologies: dict[str, dict] = {}
    for entry in entries:
        task, slot = SETTINGS[entry.topology]
        block = topologies.setdefault(entry.topology, {"task": task, "slot": slot, "epochs": epochs[entry.topology],
                                                       "indices": {}, "results": {}})
        block["indices"][entry.name] = entry.index
        block["results"][entry.name] = summarise(entry, {seed: runs[entry.key, seed] for seed in args.seeds})
    payload = {"seeds": args.seeds, "consensus_share": CONSENSUS_SHARE, "topologies": topologies}
    (DOCS / "antipatterns_signatures.json").write_text(json.dumps(payload, indent=2) + "\n")
    (DOCS / "antipatterns_signatures.md").write_text(render(payload))
    print(render(payload))


if __name__ == "__main__":
    main()

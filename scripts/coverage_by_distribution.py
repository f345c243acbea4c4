"""Print line coverage per Esper distribution and fail if any is below a threshold."""

from __future__ import annotations

import argparse
import io
import sys

import coverage

DISTRIBUTIONS = {
    "esper-core": "esper-core/src/*",
    "esper-blueprints-cnn": "esper-blueprints-cnn/src/*",
    "esper-blueprints-transformer": "esper-blueprints-transformer/src/*",
    "esper-antipatterns": "esper-antipatterns/src/*",
    "esper-policies": "esper-policies/src/*",
    "esper-telemetry": "esper-telemetry/src/*",
    "esper-example-plugin": "examples/esper-example-plugin/src/*",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fail-under", type=float, default=85.0)
    args = parser.parse_args()
    cov = coverage.Coverage()
    cov.load()
    failed = []
    print(f"{'distribution':32} line coverage")
    for dist, pattern in DISTRIBUTIONS.items():
        try:
            total = cov.report(include=[f"*/{pattern}"], file=io.StringIO())
        except coverage.exceptions.NoDataError:
            total = 0.0
        mark = "" if total >= args.fail_under else f"  < {args.fail_under:.0f}%"
        print(f"{dist:32} {total:6.1f}%{mark}")
        if total < args.fail_under:
            failed.append(dist)
    if failed:
        print(f"coverage below {args.fail_under:.0f}% in: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

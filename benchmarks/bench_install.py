"""What each installed torch build costs on disk: the size of every interpreter's site-packages.

    python benchmarks/bench_install.py [--cpu-python .venv-cpu/bin/python]

The installed one (``.venv``, whose torch is the CUDA build on Linux) and, when given or present
(``scripts/setup-cpu-env.sh``), an interpreter over a CPU build of torch. Memory of the same two
builds is measured by ``bench_cli`` (``import_torch`` and ``default_run`` under each). Prints one
JSON object.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

CPU_PYTHON = Path(__file__).resolve().parent.parent / ".venv-cpu" / "bin" / "python"


def site_packages(python: str) -> dict[str, object]:
    code = ("import sysconfig, torch; print(sysconfig.get_paths()['purelib']); "
            "print(torch.__version__, torch.version.cuda)")
    lines = subprocess.run([python, "-c", code], check=True, capture_output=True, text=True).stdout.splitlines()
    root = Path(lines[0])
    total = sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())
    torch_dir = sum(p.stat().st_size for p in (root / "torch").rglob("*") if p.is_file() and not p.is_symlink())
    version, cuda = lines[1].split()
    return {"torch": f"{version} ({'CPU build' if cuda == 'None' else 'CUDA ' + cuda + ' build'})",
            "site_packages_gb": round(total / 1e9, 2), "torch_package_gb": round(torch_dir / 1e9, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu-python", default=None)
    args = parser.parse_args()
    result: dict[str, object] = {"installed": site_packages(sys.executable)}
    cpu = args.cpu_python or (str(CPU_PYTHON) if CPU_PYTHON.exists() else None)
    if cpu:
        result["cpu_build"] = site_packages(cpu)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

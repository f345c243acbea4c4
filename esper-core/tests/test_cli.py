"""CLI behaviour that needs no training: help, versions, import weight, catalogs, errors."""

import json
import subprocess
import sys

from esper_core.testing.distributions import run_esper

NO_TORCH = (
    "import sys\n"
    "from esper_core.cli.main import build_cli\n"
    "cli = build_cli()\n"
    "try:\n"
    "    cli(prog_name='esper', args=sys.argv[1:])\n"
    "except SystemExit as exc:\n"
    "    code = exc.code\n"
    "print('STRUCTLOG' if 'structlog' in sys.modules else 'NO-STRUCTLOG', file=sys.stderr)\n"
    "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH', file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def _no_torch(args):
    result = subprocess.run([sys.executable, "-c", NO_TORCH, *args], capture_output=True, text=True,
                            timeout=60)
    return result


def test_import_esper_core_does_not_import_torch():
    code = "import sys, esper_core, esper_core.contracts, esper_core.hookspecs; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False"


def test_help_and_plugins_do_not_import_torch():
    for args in (["--help"], ["plugins"], ["plugins", "--json"], ["--version"]):
        result = _no_torch(args)
        assert result.returncode == 0, result.stderr
        assert result.stderr.strip().endswith("NO-TORCH"), (args, result.stderr[-300:])


def test_help_and_version_do_not_import_structlog():
    # Logging is configured when a command runs; importing structlog (and the asyncio it
    # imports) is a quarter of what `esper --help` would otherwise cost.
    for args in (["--help"], ["--version"]):
        result = _no_torch(args)
        assert result.returncode == 0, result.stderr
        assert result.stderr.strip().splitlines()[-2:] == ["NO-STRUCTLOG", "NO-TORCH"], result.stderr


def test_help_lists_the_commands():
    # How fast it is belongs to benchmarks/bench_cli.py: a wall-time bound fails on a busy machine.
    result = run_esper(["--help"])
    assert result.returncode == 0
    assert "plugins" in result.stdout and "run" in result.stdout


def test_version_lists_distributions():
    result = run_esper(["--version"])
    assert result.returncode == 0
    assert "esper-core 0.1.0" in result.stdout


def test_plugins_json_has_core_hooks_and_components():
    result = run_esper(["plugins", "--json"])
    data = json.loads(result.stdout)
    core = next(p for p in data["plugins"] if p["distribution"] == "esper-core")
    assert "esper_register_gates" in core["hooks"]
    assert len(core["components"]["gates"]) == 6
    assert core["components"]["alpha_schedules"] == ["tanh", "linear", "cosine"]


def test_unknown_topology_is_a_clean_error():
    result = run_esper(["blueprints", "--topology", "graphs"])
    assert result.returncode == 2
    assert "unknown topology 'graphs'" in result.stderr and "Traceback" not in result.stderr


def test_blueprint_parameters_are_at_each_topologys_host_width():
    # The transformer host is 64 wide and the shapes host's widest block 16: sizes at one shared
    # width would misstate one of them.
    rows = json.loads(run_esper(["blueprints", "--json"]).stdout)["blueprints"]
    widths = {(r["topology"], r["name"]): r["width"] for r in rows}
    params = {(r["topology"], r["name"]): r["params"] for r in rows}
    assert widths[("transformer", "norm")] == 64 and params[("transformer", "norm")] == 2 * 64
    assert widths[("cnn", "noop")] == 16
    table = run_esper(["blueprints", "--topology", "transformer"]).stdout
    assert table.split()[:5] == ["index", "name", "topology", "width", "params"]
    # An explicit --width applies to every topology.
    rows = json.loads(run_esper(["blueprints", "--json", "--width", "16"]).stdout)["blueprints"]
    assert {r["width"] for r in rows} == {16}
    assert next(r["params"] for r in rows if (r["topology"], r["name"]) == ("transformer", "norm")) == 2 * 16


def test_log_format_json_writes_json_lines_to_stderr(tmp_path):
    result = run_esper(["--log-format", "json", "run", "--task", "nope", "--out", str(tmp_path / "r")])
    assert result.returncode == 2
    assert "unknown task 'nope'" in result.stderr


def test_learned_policy_options_are_checked_before_anything_runs(tmp_path):
    cases = [
        (["evaluate", "--policy-checkpoint", str(tmp_path / "missing.pt")], "does not exist"),
        (["evaluate", "--policy-checkpoint", str(tmp_path / "missing.pt"), "--policy-option", "sample"],
         "--policy-option 'sample' is invalid; expected KEY=VALUE"),
        (["run", "--resume", str(tmp_path)], "is not a run directory (no config.toml)"),
        (["run", "--policy-option", "sample"], "--policy-option 'sample' is invalid; expected KEY=VALUE"),
        (["run", "--policy", "noop", "--rounds", "3", "--out", str(tmp_path / "r"), "--task-option",
          "train_size=16"], "--rounds) only applies when training a learned policy"),
        (["run", "--policy-checkpoint", str(tmp_path / "missing.pt")], "does not exist"),
    ]
    for args, message in cases:
        result = run_esper(args)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr, (args, result.stderr)
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())


def test_a_value_that_would_be_dropped_silently_is_refused_before_anything_runs(tmp_path):
    out = tmp_path / "r"
    ppo = ["run", "--task", "micro", "--epochs", "1", "--policy", "ppo", "--rounds", "1", "--envs", "1",
           "--out", str(out)]
    cases = [
        (["run", "--task", "micro", "--data", "a.npz", "--task-option", "path=b.npz", "--out", str(out)],
         "--data and --task-option path=... both set 'path'; give one"),
        ([*ppo, "--policy-option", "rounds=3"], "--rounds and --policy-option rounds=... both set 'rounds'"),
        (["run", "--task", "micro", "--task-option", "batch_size=2", "--task-option", "batch_size=3"],
         "--task-option 'batch_size' is given twice ('batch_size=2' and 'batch_size=3'); give it once"),
        ([*ppo, "--episodes", "7"], "--episodes does not apply when training policy 'ppo'"),
        ([*ppo, "--compare-baseline"], "--compare-baseline does not apply when training policy 'ppo'"),
    ]
    for args, message in cases:
        result = run_esper(args)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr, (args, result.stderr)
    assert not out.exists() or not any(out.iterdir())


def test_special_files_are_refused_by_name_not_read_or_waited_on(tmp_path):
    import os

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)  # opening it would wait for a writer forever
    cases = [
        (["run", "--config", str(fifo)], f"config file {str(fifo)!r} is not a regular file (a named pipe)"),
        (["run", "--blueprint-library", str(fifo)],
         f"blueprint library {str(fifo)!r} is not a regular file (a named pipe)"),
        (["run", "--policy-checkpoint", str(fifo)],
         f"policy checkpoint {str(fifo)!r} is not a regular file (a named pipe)"),
        (["evaluate", "--policy-checkpoint", str(fifo)],
         f"policy checkpoint {str(fifo)!r} is not a regular file (a named pipe)"),
    ]
    if os.path.exists("/dev/zero"):  # reading it grew memory until the process was killed
        cases += [(["run", "--config", "/dev/zero"],
                   "config file '/dev/zero' is not a regular file (a character device)"),
                  (["run", "--blueprint-library", "/dev/zero"],
                   "blueprint library '/dev/zero' is not a regular file (a character device)")]
    for args, message in cases:
        result = run_esper(args, timeout=120)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr, (args, result.stderr)


def test_counts_checkpoints_and_policies_that_cannot_work_are_refused_up_front(tmp_path):
    cases = [
        # ran until killed; the bound is the one every episode count shares (esper_core.options)
        (["evaluate", "--policy-checkpoint", str(tmp_path / "missing.pt"), "--episodes", "100000000000000000000"],
         "--episodes 100000000000000000000 is invalid; expected an integer ≥ 1 and ≤ 100000"),
        (["run", "--episodes", "100001"], "[run] episodes = 100001 is invalid; expected an integer ≥ 1 and ≤ 100000"),
        # once "policy 'heuristic': unknown option 'checkpoint'", an option the user never passed
        (["run", "--policy", "heuristic", "--policy-checkpoint", str(tmp_path / "p.pt")],
         "--policy-checkpoint needs a learned policy; policy 'heuristic' is not one (learned policies: "),
    ]
    for args, message in cases:
        result = run_esper(args, timeout=120)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr, (args, result.stderr)

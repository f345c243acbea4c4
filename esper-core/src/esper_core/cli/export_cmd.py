"""``esper export``: a finished run's model as a plain network (torch.export by default, or
TorchScript, ONNX, a state dict), with its input contract beside it."""

from __future__ import annotations

from pathlib import Path

import click

from esper_core.cli.app import AppState
from esper_core.cli.params import PathParam

# esper_core.storage.export.FORMATS and DEFAULT_FORMAT, torch-free here (a test keeps them equal)
FORMATS = ("torch-export", "torchscript", "onnx", "state-dict")
DEFAULT_FORMAT = "torch-export"


@click.command("export")
@click.argument("run_dir", type=PathParam(path_type=Path, file_okay=False))
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=DEFAULT_FORMAT, show_default=True,
              help="torch-export writes a .pt2 for torch.export.load; torchscript a .ts for torch.jit.load; "
                   "onnx needs the optional extra: pip install 'esper-core[onnx]'.")
@click.option("--out", type=PathParam(path_type=Path, dir_okay=False), default=None,
              help="File to write (default RUN_DIR/model.<format suffix>, replaced by a new export); "
                   "with FILE.json, a new one unless --force.")
@click.option("--force", is_flag=True, help="Replace --out and its FILE.json if they exist "
                                            "(never a file a run wrote).")
@click.pass_obj
def export_command(state: AppState, run_dir: Path, fmt: str, out: Path | None, force: bool) -> None:
    """Write RUN_DIR's final model with its fossilized seeds folded in and no slot machinery,
    and beside it FILE.json: the input shape, dtype, normalisation and class names to feed it."""
    from esper_core.storage.export import export_model, sidecar_path
    from esper_core.storage.outputs import check_output

    if out is not None:  # the run's own files: export_model refuses them too, before loading
        for target in (out, sidecar_path(out)):
            check_output(target, force=force, reads=run_dir)
    path = export_model(run_dir, state.catalog, fmt=fmt, out=out)
    click.echo(f"wrote {path}")
    click.echo(f"wrote {sidecar_path(path)} (how to feed it: input shape, dtype, normalisation, classes)")

"""Export a finished run's model as a plain network: no slots, no lifecycle, no isolation.

The grown architecture becomes one ``nn.Sequential``: the host's segments in order with, at
each injection point, what the run's final model computed there — a fossilized seed's module
itself (a fossil's forward is ``seed(h)``), a seed still blending at the end as
:class:`BlendedSeed` at its final α, and nothing for an empty slot or a seed not yet mixed in
(a TRAINING seed's forward value is exactly ``h``). The exported network therefore computes
the live model's evaluation forward.

Formats: ``torch-export`` (the default: ``torch.export`` with a dynamic batch dimension, a
``.pt2`` that loads with ``torch.export.load``), ``state-dict`` (the ``Sequential``'s weights
plus the layer list, for code that has the module classes), ``torchscript``
(``torch.jit.script``, falling back to ``torch.jit.trace`` on the task's first validation batch;
loads with plain ``torch.jit.load``) and ``onnx`` (``torch.onnx.export``; needs the optional
extra ``esper-core[onnx]``).

Why ``torch-export`` is the default, measured with torch 2.14 on CPU: every installed blueprint
(the 37 of esper-blueprints-cnn, -transformer and -antipatterns) exports alone and matches its
module; the default run (shapes, heuristic; three seeds fossilized) exports in 15 s against
TorchScript's 36 s, and a ``pytext`` run exports too; it needs only the core dependencies, and
TorchScript is deprecated upstream (``torch.jit.script`` and ``torch.jit.load`` warn). TorchScript
stays available with ``--format torchscript``; its deprecation notices are silenced where we
write it, not where a user loads it.

Every export also writes ``<file>.json``, the input contract: the input's shape (without the
batch dimension) and dtype, and, from the task's optional ``input_contract()``, its
normalisation, output and class names, with the task's name, the Esper version and a loading
example. Where the format has room the same JSON is inside the file too (TorchScript and
``.pt2`` extra file ``esper_contract.json``, ONNX metadata ``esper_contract``, the state
dict's ``contract`` entry), so a copied model file still says how to feed it.
"""

from __future__ import annotations

import importlib.util
import json
import warnings
from pathlib import Path
from typing import Any

import structlog
import torch
from torch import Tensor, nn

from esper_core import __version__
from esper_core.config import RunConfig
from esper_core.contracts.stages import BLENDED_STAGES, SeedStage
from esper_core.errors import CheckpointError, ConfigError, UnknownNameError
from esper_core.files import UnreadableTorchFile, atomic_file, atomic_path, load_torch_file, write_atomic
from esper_core.kasmina.model import MorphogeneticModel
from esper_core.plugins.registry import Catalog
from esper_core.setup.resolve import resolve_run
from esper_core.setup.tasks import build_model, build_task
from esper_core.storage.run_checkpoint import rebuild_architecture
from esper_core.storage.rundir import CONFIG_FILE, MODEL_FILE, SUMMARY_FILE, refuse_run_files

logger = structlog.get_logger(__name__)

FORMATS = ("state-dict", "torchscript", "onnx", "torch-export")
DEFAULT_FORMAT = "torch-export"
SUFFIXES = {"state-dict": ".state_dict.pt", "torchscript": ".ts", "onnx": ".onnx", "torch-export": ".pt2"}
CONTRACT_FILE = "esper_contract.json"  # extra file inside TorchScript and .pt2 archives
CONTRACT_KEY = "esper_contract"  # ONNX metadata_props key
#: How each format loads; ``{path}`` is the exported file. The input is prepared as the
#: contract's ``normalisation`` says.
LOADING = {
    "torchscript": "import torch\nmodel = torch.jit.load({path!r})\n"
                   "y = model(x)  # x: a batch, shape (N, *input.shape)",
    "torch-export": "import torch\nmodel = torch.export.load({path!r}).module()\n"
                    "y = model(x)  # x: a batch, shape (N, *input.shape)",
    "onnx": "import onnxruntime\nsession = onnxruntime.InferenceSession({path!r})\n"
            "(y,) = session.run(None, {{'input': x}})  # x: a numpy batch, shape (N, *input.shape)",
    "state-dict": "import torch\nsaved = torch.load({path!r}, weights_only=True)\n"
                  "# build nn.Sequential(*modules of the classes in saved['layers']), then\n"
                  "# model.load_state_dict(saved['state_dict']); y = model(x)",
}
ONNX_PACKAGES = ("onnx", "onnxscript")


class BlendedSeed(nn.Module):
    """A seed caught mid-blend: ``lerp(h, seed(h), α)`` with α fixed at its final value."""

    def __init__(self, seed: nn.Module, alpha: float) -> None:
        super().__init__()
        self.seed = seed
        self.alpha = float(alpha)

    def forward(self, h: Tensor) -> Tensor:
        return torch.lerp(h, self.seed(h), self.alpha)


def fold(model: MorphogeneticModel) -> nn.Sequential:
    """The plain network ``model`` computes in evaluation (modules shared, not copied)."""
    segments = list(model.host.segments)
    layers: list[nn.Module] = [segments[0]]
    by_point = {model.point_index(slot): slot for slot in model.all_slots()}
    for i in range(model.n_points):
        slot = by_point.get(i)
        if slot is not None and slot.seed is not None:
            if slot.stage is SeedStage.FOSSILIZED:
                layers.append(slot.seed)
            elif slot.stage in BLENDED_STAGES:
                layers.append(BlendedSeed(slot.seed, slot.alpha))
        layers.append(segments[i + 1])
    return nn.Sequential(*layers).eval()


def load_run_model(run_dir: Path, catalog: Catalog) -> tuple[MorphogeneticModel, Tensor, dict[str, Any]]:
    """The final model of the run in ``run_dir`` (from ``model.pt``), an example input (the
    task's first validation batch) and the architecture records."""
    config_path, model_path = run_dir / CONFIG_FILE, run_dir / MODEL_FILE
    if not config_path.is_file():
        raise ConfigError(f"{str(run_dir)!r} is not a run directory (no {CONFIG_FILE})")
    config = RunConfig.from_sources(config_path, {"device": "cpu"})
    if not model_path.is_file():
        _refuse_policy_training_run(run_dir, config, catalog)
        if (run_dir / SUMMARY_FILE).is_file():  # finished, and its model removed since: resume would refuse
            raise ConfigError(f"run {str(run_dir)!r} finished, but its {MODEL_FILE} is missing (moved or "
                              "deleted); restore the file to export the model")
        raise ConfigError(f"run {str(run_dir)!r} has no {MODEL_FILE} yet: it has not finished "
                          "(continue it with esper run --resume)")
    try:
        saved = load_torch_file(model_path)
    except UnreadableTorchFile as exc:
        raise CheckpointError(f"{str(model_path)!r} cannot be read: {exc}") from None
    try:
        architecture, state_dict = saved["architecture"], saved["state_dict"]
        if not isinstance(architecture, list) or not isinstance(state_dict, dict):
            raise TypeError("architecture or weights of the wrong type")
    except Exception as exc:
        raise CheckpointError(f"{str(model_path)!r} cannot be read ({type(exc).__name__}); "
                              "it is not an Esper model (an architecture list and a state dict)") from None
    resolved = resolve_run(config, catalog)
    if list(saved.get("blueprint_catalog", [])) != list(resolved.blueprint_keys):
        raise CheckpointError(f"{str(model_path)!r} was saved with blueprints {saved.get('blueprint_catalog')}; "
                              f"this catalog resolves {list(resolved.blueprint_keys)}")
    task = build_task(resolved, seed=resolved.config.seed, device="cpu")
    model = build_model(resolved, task, emit=lambda event: None)
    records = [{"state": None, "alpha": 1.0 if r.get("stage") == "FOSSILIZED" else 0.0, **r}
               if isinstance(r, dict) else r for r in architecture]
    try:
        rebuild_architecture(model, records, resolved.blueprints)
    except CheckpointError as exc:
        raise CheckpointError(f"{str(model_path)!r} cannot be used: {exc}") from None
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as exc:
        raise CheckpointError(f"{str(model_path)!r} does not match the rebuilt architecture: "
                              f"{str(exc).splitlines()[0]}") from None
    model.eval()
    # A copy, not a view: torch.export stores its sample input, and a view would drag in the
    # whole validation batch (3 MB of the default run's first .pt2).
    example = next(iter(task.val_batches()))[0][:4].clone()
    return model, example, {"task": resolved.task.name, "architecture": architecture,
                            "contract": input_contract(task, example)}


def _refuse_policy_training_run(run_dir: Path, config: RunConfig, catalog: Catalog) -> None:
    """A run that trained a learned policy (PPO, IQL) grows hosts only inside its episodes and
    keeps none: its product is ``policy.pt``, so "not finished" would send the user to wait."""
    training = False
    if "checkpoint" not in config.policy_options and config.policy is not None:
        try:
            training = catalog.policies.get(config.policy).learned
        except UnknownNameError:  # a policy not installed here: its policy.pt still tells
            training = False
    training = training or (run_dir / "policy.pt").is_file()
    if training:
        raise ConfigError(f"run {str(run_dir)!r} trained the policy {config.policy!r}: a policy-training run "
                          "keeps no grown model to export; its result is RUN_DIR/policy.pt, for "
                          "esper evaluate --policy-checkpoint or esper run --policy-checkpoint")


def input_contract(task: Any, example: Tensor) -> dict[str, Any]:
    """How to feed the exported network: shape and dtype from ``example`` (a batch), and
    whatever the task's optional ``input_contract()`` adds (normalisation, output, class names)."""
    contract: dict[str, Any] = {
        "task": task.name,
        "esper_version": __version__,
        "input": {"shape": list(example.shape[1:]), "dtype": str(example.dtype).removeprefix("torch.")},
    }
    method = getattr(task, "input_contract", None)
    if method is None:
        contract["note"] = (f"task {task.name!r} gives no input contract: shape and dtype only "
                            "(from its validation batch); its normalisation and classes are unknown")
        return contract
    given = dict(method())
    contract["input"] = {**contract["input"], **given.pop("input", {})}
    contract.update(given)
    return contract


def export_model(run_dir: Path, catalog: Catalog, *, fmt: str = DEFAULT_FORMAT, out: Path | None = None) -> Path:
    """Write the run's final model as ``fmt``; returns the file written."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    if fmt == "onnx":
        missing = [name for name in ONNX_PACKAGES if importlib.util.find_spec(name) is None]
        if missing:
            raise ConfigError(f"ONNX export needs the {' and '.join(map(repr, missing))} package"
                              f"{'s' if len(missing) > 1 else ''}: pip install 'esper-core[onnx]'")
    path = out or run_dir / f"model{SUFFIXES[fmt]}"
    defaults = tuple(run_dir / f"model{suffix}" for suffix in SUFFIXES.values())
    for target in (path, sidecar_path(path)):  # the run's own files stay as they are
        refuse_run_files(target, replaceable=(*defaults, *map(sidecar_path, defaults)))
    model, example, info = load_run_model(run_dir, catalog)
    plain = fold(model)
    contract = {**info.pop("contract"), "format": fmt, "file": path.name,
                "loading_example": LOADING[fmt].format(path=path.name)}
    text = json.dumps(contract, indent=2)
    # Written beside ``path`` and renamed over it only once the check passed: an export that
    # fails it leaves no file behind, and an earlier export at ``path`` as it was.
    with torch.no_grad(), atomic_path(path) as staged:
        expected = model(example)
        if fmt == "state-dict":
            data = {"format": "esper-exported-state-dict", "layers": [type(m).__name__ for m in plain],
                    "state_dict": plain.state_dict(), "contract": text, **info}
            with open(staged, "wb") as handle:
                torch.save(data, handle)
            got = plain(example)
        elif fmt == "torchscript":
            program = _script(plain, example)
            with open(staged, "wb") as handle, warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # TorchScript's deprecation notice
                torch.jit.save(program, handle, _extra_files={CONTRACT_FILE: text})
            got = program(example)
        elif fmt == "torch-export":
            exported = _torch_export(plain, example)
            with open(staged, "wb") as handle, warnings.catch_warnings():
                # torch notes that shared (tied) weights are stored once; the model is on the CPU.
                warnings.filterwarnings("ignore", "No complete tensor found", UserWarning)
                torch.export.save(exported, handle, extra_files={CONTRACT_FILE: text})
            got = exported.module()(example)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(plain, (example,), str(staged), input_names=["input"], output_names=["output"],
                                  dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}}, dynamo=False)
            _embed_onnx_contract(staged, text)
            got = _run_onnx(staged, example, fallback=plain)
        check_export(got, expected)
    write_atomic(sidecar_path(path), text + "\n")
    return path


def check_export(got: Tensor, expected: Tensor) -> None:
    """The exported model's output on the example batch must be the run's model's."""
    if got.shape != expected.shape or not torch.allclose(got, expected, atol=1e-5, rtol=0):
        gap = f"by {float((got - expected).abs().max()):.2e}" if got.shape == expected.shape else \
            f"in shape ({tuple(got.shape)} against {tuple(expected.shape)})"
        raise CheckpointError(f"the exported model differs from the run's model {gap} on the example batch; "
                              "nothing was written")


def sidecar_path(path: Path) -> Path:
    """Where the input contract of the export ``path`` goes: ``<path>.json``."""
    return path.with_name(path.name + ".json")


def _torch_export(plain: nn.Sequential, example: Tensor) -> torch.export.ExportedProgram:
    batch = torch.export.Dim("batch")
    try:
        return torch.export.export(plain, (example,), dynamic_shapes=({0: batch},))
    except Exception as exc:  # a blueprint torch.export cannot trace (data-dependent control flow)
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        raise CheckpointError(f"torch.export cannot capture this model ({type(exc).__name__}: {first}); "
                              "use --format torchscript or onnx") from None


def _embed_onnx_contract(path: Path, text: str) -> None:
    import onnx

    proto = onnx.load(str(path))
    entry = proto.metadata_props.add()
    entry.key, entry.value = CONTRACT_KEY, text
    with atomic_file(path) as handle:
        handle.write(proto.SerializeToString())


def _run_onnx(path: Path, example: Tensor, *, fallback: nn.Module) -> Tensor:
    """The ONNX file's output on ``example`` under onnxruntime, when installed (else the
    exported module's: the file itself is then not checked)."""
    if importlib.util.find_spec("onnxruntime") is None:
        logger.info("onnxruntime is not installed; the ONNX file is not checked against the run's model")
        return fallback(example)
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (output,) = session.run(None, {"input": example.numpy()})
    return torch.from_numpy(output)


def _script(plain: nn.Sequential, example: Tensor) -> torch.jit.ScriptModule:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # TorchScript's deprecation notice
        try:
            return torch.jit.script(plain)
        except Exception as exc:  # some blueprints use Python torch.jit.script cannot compile
            logger.info("torch.jit.script failed; tracing instead", error=f"{type(exc).__name__}: {exc}"[:200])
            return torch.jit.trace(plain, example)

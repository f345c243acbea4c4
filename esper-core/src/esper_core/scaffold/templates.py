'''File templates of a scaffolded plugin (:class:`string.Template`, ``$name`` placeholders).

One constant per generated file, or per piece of a file that depends on the chosen component
kinds (a hook, a conformance test). The placeholders are the attributes of
:class:`~esper_core.scaffold.names.PluginNames` plus ``Stem`` (the class-name prefix).
'''

from __future__ import annotations

from string import Template

PYPROJECT = Template('''\
[build-system]
requires = ["setuptools>=77"]
build-backend = "setuptools.build_meta"

[project]
name = "$distribution"
version = "0.1.0"
description = "An Esper plugin contributing $kinds_text"
readme = "README.md"
requires-python = ">=3.11"
dependencies = [$dependencies]

[project.optional-dependencies]
test = ["pytest>=8"]

# The one line that makes this distribution an Esper plugin: Esper loads every entry point of
# the "esper" group. The name on the left is the plugin's name in `esper plugins` and in the
# ESPER_PLUGINS allow-list.
[project.entry-points.esper]
$short = "$package.plugin"

[tool.setuptools.packages.find]
where = ["src"]

[tool.setuptools.package-data]
"*" = ["py.typed"]

[tool.pytest.ini_options]
addopts = "--import-mode=importlib"
testpaths = ["tests"]
pythonpath = ["src"]  # the tests also run before `pip install -e .`
''')

PACKAGE_INIT = Template('''\
"""$distribution: an Esper plugin. Esper loads :mod:`$package.plugin` through its entry point."""
''')

PLUGIN_HEADER = Template('''\
"""The ``$short`` Esper plugin: the hooks Esper calls, found through the ``esper`` entry point.

Esper imports this module whenever it builds its catalog, including for ``esper plugins`` and
``esper --help``, so it must stay cheap and never import torch: factories are lazy references
(``esper_core.lazy.lazy``) that import their module on first call. Every hook, when it is
called and what its return means: Esper's ``docs/writing-plugins.md``.
"""

from __future__ import annotations

from esper_core.contracts import $spec_classes
from esper_core.lazy import lazy
from esper_core.markers import hookimpl
''')

BLUEPRINT_HOOK = Template('''\


def residual_params(width: int) -> int:
    """Exact parameters of ``$blueprint`` in a slot of ``width`` channels: 1×1 kernel and bias.

    Pure Python, so ``esper blueprints`` lists estimates without importing torch.
    """
    return width * width + width


@hookimpl
def esper_register_blueprints() -> list[BlueprintSpec]:
    return [
        BlueprintSpec(
            name="$blueprint",
            topology="cnn",
            factory=lazy("$package.blueprints:residual_pointwise"),
            param_estimate=residual_params,
            description="residual 1×1 convolution, zero-initialised: the identity when germinated",
            identity_at_init=True,
        )
    ]
''')

POLICY_HOOK = Template('''\


@hookimpl
def esper_register_policies() -> list[PolicySpec]:
    return [
        PolicySpec(
            name="$policy",
            factory=lazy("$package.policy:${Stem}Policy.from_context"),
            description="germinate once from epoch germinate_at (option, default 3); fossilize seeds that help",
        )
    ]
''')

SINK_HOOK = Template('''\


@hookimpl
def esper_register_telemetry_sinks() -> list[SinkSpec]:
    return [
        SinkSpec(
            name="$sink",
            factory=lazy("$package.sinks:${Stem}Sink.from_options"),
            description="every event as one JSON line in $events_file in the run directory",
            # the class its [telemetry.$sink] table is parsed into: declared, Esper checks the
            # table when a run is resolved, whether or not the run enables the sink (a typo in
            # the table of a sink switched off is refused, not kept until it is switched on)
            options=lazy("$package.sinks:${Stem}SinkOptions"),
        )
    ]
''')

REWARD_TERM_HOOK = Template('''\


@hookimpl
def esper_register_reward_terms() -> list[RewardTermSpec]:
    return [
        RewardTermSpec(
            name="$reward_term",
            compute=lazy("$package.rewards:accuracy_delta"),
            description="validation accuracy gained since the previous epoch (points)",
            presets={"shaped": 0.1},
        )
    ]
''')

TASK_HOOK = Template('''\


@hookimpl
def esper_register_tasks() -> list[TaskSpec]:
    return [
        TaskSpec(
            name="$task",
            topology="cnn",
            factory=lazy("$package.task:${Stem}Task"),
            read_options=lazy("$package.task:read_options"),
            description="horizontal or vertical stripes in noisy 8×8 images, made on the fly",
            defaults=RunDefaults(epochs=6, training=TrainingSettings(batch_size=32, lr=1e-2, seed_lr=1e-2)),
        )
    ]
''')

BLUEPRINT_MODULE = Template('''\
"""The ``cnn:$blueprint`` blueprint.

A seed in a slot of width ``C`` receives the host's ``(batch, C, H, W)`` activations and must
return a tensor of the same shape. Its last layer starts at zero, so the seed is the identity
when it is germinated and grafting it never disturbs the host.
"""

from __future__ import annotations

from torch import Tensor, nn


class ResidualPointwise(nn.Module):
    """``x + conv1x1(x)``, with the convolution zero-initialised."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(width, width, kernel_size=1)
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv(x)


def residual_pointwise(*, width: int) -> nn.Module:
    """Build the seed for a slot of ``width`` channels."""
    return ResidualPointwise(width)
''')

POLICY_MODULE = Template('''\
"""The ``$policy`` policy: germinate one seed from a fixed epoch, keep it if it helps.

After every epoch Esper calls :meth:`${Stem}Policy.decide` with that epoch's report and the
action mask, and applies the decision it returns; the decision must be one the mask allows.
"""

from __future__ import annotations

from attrs import field, frozen

from esper_core.contracts.decisions import ActionMask, Decision, Op
from esper_core.contracts.protocols import PolicyContext
from esper_core.contracts.reports import EpochReport
from esper_core.options import int_at_least, parse_options

DEFAULT_GERMINATE_AT = 3


@frozen(kw_only=True)
class ${Stem}Options:
    """``--policy-option KEY=VALUE`` (or the run config's ``[policy]`` table)."""

    germinate_at: int = field(default=DEFAULT_GERMINATE_AT, validator=int_at_least(1))


class ${Stem}Policy:
    """From epoch ``germinate_at``, germinate into the first free slot with the first allowed
    blueprint; fossilize a probationary seed whose contribution is positive; otherwise wait."""

    name = "$policy"

    def __init__(self, *, germinate_at: int = DEFAULT_GERMINATE_AT) -> None:
        self.germinate_at = germinate_at

    @classmethod
    def from_context(cls, *, context: PolicyContext) -> ${Stem}Policy:
        """Build from ``esper run --policy $policy [--policy-option germinate_at=N]``."""
        options = parse_options(${Stem}Options, context.options, owner="policy '$policy'")
        return cls(germinate_at=options.germinate_at)

    def reset(self, *, episode: int) -> None:
        """Nothing to clear: every decision depends on the current report only."""

    def decide(self, *, report: EpochReport, mask: ActionMask) -> Decision:
        for slot in report.slots:
            if mask.slots[Op.FOSSILIZE][slot.index] and (slot.contribution or 0.0) > 0.0:
                return Decision(op=Op.FOSSILIZE, slot=slot.index,
                                reason=f"{slot.slot} contributes {slot.contribution:+.2f} points")
        if report.epoch < self.germinate_at:
            return Decision.wait(f"epoch {report.epoch} is before germinate_at={self.germinate_at}")
        blueprints = [key for key, ok in zip(mask.blueprint_keys, mask.blueprints, strict=True) if ok]
        free = [i for i, ok in enumerate(mask.slots[Op.GERMINATE]) if ok]
        if blueprints and free:
            return Decision(op=Op.GERMINATE, slot=free[0], blueprint=blueprints[0],
                            reason=f"epoch {report.epoch} ≥ germinate_at={self.germinate_at}")
        return Decision.wait("no free slot or no allowed blueprint")
''')

SINK_MODULE = Template('''\
"""The ``$sink`` telemetry sink: every event as one JSON line in ``$events_file``.

Select it with ``esper run --telemetry jsonl,$sink``. Esper calls ``emit`` for every event,
``flush`` at least once per epoch and ``close`` once at the end of the run. Its options come
from the run config's ``[telemetry.$sink]`` table, parsed into :class:`${Stem}SinkOptions`,
the class the plugin declares on its ``SinkSpec`` (``options=``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from attrs import field, frozen

from esper_core.contracts.events import TelemetryEvent
from esper_core.errors import ConfigError
from esper_core.options import is_bool, parse_options

EVENTS_FILE = "$events_file"


@frozen(kw_only=True)
class ${Stem}SinkOptions:
    """The ``[telemetry.$sink]`` table; an unknown key or a bad value is a ConfigError."""

    #: write each record's keys in sorted order
    sort_keys: bool = field(default=False, validator=is_bool)


class ${Stem}Sink:
    """Append ``event.to_record()`` as JSON, one line per event."""

    name = "$sink"

    def __init__(self, path: Path, *, sort_keys: bool = False) -> None:
        self.path = path
        self.sort_keys = sort_keys
        self._handle: IO[str] | None = open(path, "a", encoding="utf-8")

    @classmethod
    def from_options(cls, *, run_dir: Path | None, options: Mapping[str, Any]) -> ${Stem}Sink:
        """Build from a run; options come from the run config's ``[telemetry.$sink]`` table."""
        opts = parse_options(${Stem}SinkOptions, options, owner="telemetry sink '$sink'")
        if run_dir is None:
            raise ConfigError("the $sink sink writes into the run directory, and this run has none")
        return cls(Path(run_dir) / EVENTS_FILE, sort_keys=opts.sort_keys)

    def emit(self, event: TelemetryEvent) -> None:
        if self._handle is not None:
            record = json.dumps(event.to_record(), default=str, sort_keys=self.sort_keys)
            self._handle.write(record + "\\n")

    def flush(self) -> None:
        if self._handle is not None:
            self._handle.flush()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
''')

TASK_MODULE = Template('''\
"""The ``$task`` task: tell horizontal from vertical stripes in noisy 8×8 images.

The data is made on the fly from the seed, so the task needs no download. The host is a
segmented CNN with one injection point after its convolution; its topology is ``cnn``, so
every ``cnn`` blueprint can grow in it. ``esper run --task $task`` builds one per episode.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import torch
from attrs import field, frozen
from torch import Tensor, nn

from esper_core.contracts.protocols import InjectionPoint
from esper_core.options import as_int, parse_options
from esper_core.sdk import generator_seed

SIZE = 8
CLASS_NAMES = ("horizontal", "vertical")


class ${Stem}Host(nn.Module):
    """``conv3×3 → [injection point] → pool → linear``: ``segments`` holds one module more than
    ``injection_points``, and Esper grafts seeds between consecutive segments."""

    def __init__(self, *, width: int) -> None:
        super().__init__()
        self.segments = nn.ModuleList([
            nn.Sequential(nn.Conv2d(1, width, kernel_size=3, padding=1), nn.ReLU()),
            nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, len(CLASS_NAMES))),
        ])
        self.injection_points = (InjectionPoint("conv1", width),)

    def forward(self, x: Tensor) -> Tensor:
        for segment in self.segments:
            x = segment(x)
        return x


@frozen(kw_only=True)
class ${Stem}TaskOptions:
    """``--task-option KEY=VALUE`` (or the run config's ``[task]`` table); a value may arrive as a
    string from the command line, so each is converted."""

    batch_size: int = field(default=32, converter=as_int(1))
    train_size: int = field(default=512, converter=as_int(1))
    val_size: int = field(default=128, converter=as_int(1))
    test_size: int = field(default=128, converter=as_int(1))
    width: int = field(default=16, converter=as_int(1))


def read_options(*, options: Mapping[str, Any]) -> ${Stem}TaskOptions:
    """``TaskSpec.read_options``: every option's value, defaults filled in. A resumed run is
    compared with these, so an option given at its default is no change."""
    return parse_options(${Stem}TaskOptions, options, owner="task '$task'")


class ${Stem}Task:
    """Class 0: one bright row; class 1: one bright column; both under Gaussian noise."""

    name = "$task"
    topology = "cnn"
    class_names = CLASS_NAMES

    def __init__(self, *, seed: int, device: str, options: Mapping[str, Any]) -> None:
        opts = read_options(options=options)
        self.batch_size, self.width = opts.batch_size, opts.width
        self.seed = seed
        self.device = torch.device(device)
        generator = torch.Generator().manual_seed(seed)
        self.train = self._sample(opts.train_size, generator)
        self.val = self._sample(opts.val_size, generator)
        self.test = self._sample(opts.test_size, generator)

    def _sample(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        labels = torch.randint(0, len(CLASS_NAMES), (n,), generator=generator)
        lines = torch.randint(0, SIZE, (n,), generator=generator)
        images = torch.randn(n, 1, SIZE, SIZE, generator=generator) * 0.5
        for i in range(n):
            if labels[i] == 0:
                images[i, 0, lines[i], :] += 1.0
            else:
                images[i, 0, :, lines[i]] += 1.0
        return images.to(self.device), labels.to(self.device)

    def build_host(self) -> nn.Module:
        return ${Stem}Host(width=self.width).to(self.device)

    def _batches(self, data: tuple[Tensor, Tensor], order: Tensor) -> Iterator[tuple[Tensor, Tensor]]:
        images, labels = data
        for start in range(0, len(order), self.batch_size):
            index = order[start:start + self.batch_size]
            yield images[index], labels[index]

    def train_batches(self, *, epoch: int) -> Iterator[tuple[Tensor, Tensor]]:
        # A fresh order each epoch, fixed by the seed, so reruns see the same batches (generator_seed
        # keeps any run seed, up to 2**63 - 1, within the range torch takes).
        generator = torch.Generator().manual_seed(generator_seed(self.seed, epoch))
        order = torch.randperm(len(self.train[1]), generator=generator).to(self.device)
        return self._batches(self.train, order)

    def val_batches(self) -> Iterator[tuple[Tensor, Tensor]]:
        return self._batches(self.val, torch.arange(len(self.val[1]), device=self.device))

    def test_batches(self) -> Iterator[tuple[Tensor, Tensor]]:
        return self._batches(self.test, torch.arange(len(self.test[1]), device=self.device))

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        return nn.functional.cross_entropy(output, target)

    def correct(self, output: Tensor, target: Tensor) -> tuple[Tensor, int]:
        return (output.argmax(dim=-1) == target).sum(), int(target.numel())

    def correct_per_example(self, output: Tensor, target: Tensor) -> Tensor:
        return (output.argmax(dim=-1) == target).float()

    def input_contract(self) -> dict[str, Any]:
        return {
            "input": {"shape": [1, SIZE, SIZE], "dtype": "float32"},
            "normalisation": None,
            "output": {"kind": "logits", "classes": len(CLASS_NAMES)},
            "class_names": list(CLASS_NAMES),
        }
''')

REWARD_TERM_MODULE = Template('''\
"""The ``$reward_term`` reward term (torch-free).

A term returns an unweighted value for one controller step; the preset weights it (0.1 in
``shaped``) and adds it to the other terms. It must be pure: the same context, the same value.
"""

from __future__ import annotations

from esper_core.contracts.protocols import RewardContext


def accuracy_delta(ctx: RewardContext) -> float:
    """Validation accuracy gained since the previous epoch, in points (0 at the first step)."""
    if ctx.previous is None:
        return 0.0
    return ctx.report.val_accuracy - ctx.previous.val_accuracy
''')

TEST_PLUGIN = Template('''\
"""The plugin as Esper sees it: declared as an entry point, cheap to import, registrable."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import tomllib
from pathlib import Path

from esper_core.sdk import PluginSettings, build_catalog, load_plugins

import $package.plugin as plugin

ROOT = Path(__file__).resolve().parents[1]


def test_the_entry_point_names_the_plugin_module() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    target = project["entry-points"]["esper"]["$short"]
    assert importlib.import_module(target) is plugin


def test_importing_and_registering_does_not_import_torch() -> None:
    code = ("import sys, $package.plugin as p\\n"
            "specs = [getattr(p, h)() for h in dir(p) if h.startswith('esper_register_')]\\n"
            "print(len(specs), 'torch' in sys.modules)")
    # The package's src/ first, so this also runs before the distribution is installed.
    path = os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": path})
    assert out.stdout.split() == ["$n_hooks", "False"]


def test_registers_through_the_plugin_manager() -> None:
    loaded = load_plugins(PluginSettings(autoload=False), extra=[("$short", plugin)])
    catalog = build_catalog(loaded)
    assert loaded.failures == []
    assert catalog.contributions["$short"] == $contributions
''')

TEST_CONFORMANCE_HEADER = Template('''\
"""Esper's conformance kit: the checks every component of each kind must pass."""

from __future__ import annotations
''')

BLUEPRINT_TEST = Template('''\


class TestResidualBlueprint(BlueprintConformance):
    spec = esper_register_blueprints()[0]
''')

POLICY_TEST = Template('''\


class TestPolicy(PolicyConformance):
    spec = esper_register_policies()[0]


class TestPolicyFromEpochOne(PolicyConformance):
    def make_policy(self, context: PolicyContext) -> Policy:
        return esper_register_policies()[0].factory(context=attrs.evolve(context, options={"germinate_at": 1}))


def test_policy_rejects_bad_options() -> None:
    context = PolicyConformance().context()
    factory = esper_register_policies()[0].factory
    with pytest.raises(ConfigError, match="'$policy': unknown option 'speed'; allowed options: germinate_at"):
        factory(context=attrs.evolve(context, options={"speed": 2}))
    with pytest.raises(ConfigError, match="option 'germinate_at' = 0 is invalid; expected an integer ≥ 1"):
        factory(context=attrs.evolve(context, options={"germinate_at": 0}))
''')

SINK_TEST = Template('''\


class TestSink(SinkConformance):
    def make_sink(self, run_dir: Path) -> Sink:
        return esper_register_telemetry_sinks()[0].factory(run_dir=run_dir, options={})

    def read_back(self, run_dir: Path) -> list[dict[str, Any]]:
        lines = (run_dir / EVENTS_FILE).read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines]


def test_sink_declares_the_options_it_parses(tmp_path: Path) -> None:
    # Esper checks a [telemetry.$sink] table against the declared class when a run is resolved,
    # even in a run that leaves the sink out; the factory parses into the same class.
    spec = esper_register_telemetry_sinks()[0]
    assert spec.options.resolve() is ${Stem}SinkOptions
    with pytest.raises(ConfigError, match="telemetry sink '$sink': unknown option 'sort_key'"):
        spec.factory(run_dir=tmp_path, options={"sort_key": True})
    with pytest.raises(ConfigError, match="telemetry sink '$sink' option 'sort_keys' = 'yes' is invalid"):
        spec.factory(run_dir=tmp_path, options={"sort_keys": "yes"})
    spec.factory(run_dir=tmp_path, options={"sort_keys": True}).close()
''')

REWARD_TERM_TEST = Template('''\


class TestRewardTerm(RewardTermConformance):
    spec = esper_register_reward_terms()[0]
''')

TASK_TEST = Template('''\


def make_task(seed: int = 0) -> Task:
    return esper_register_tasks()[0].factory(seed=seed, device="cpu", options={})


def first_images(task: Task) -> torch.Tensor:
    return next(iter(task.train_batches(epoch=1)))[0]


def test_task_grows_in_the_cnn_topology() -> None:
    spec = esper_register_tasks()[0]
    task = make_task()
    assert (spec.name, spec.topology) == (task.name, task.topology) == ("$task", "cnn")


def test_host_is_segmented_at_its_injection_points() -> None:
    task = make_task()
    host = task.build_host()
    assert isinstance(host, SegmentedHost)
    assert len(host.segments) == len(host.injection_points) + 1
    images = first_images(task)
    hidden = images
    for index, point in enumerate(host.injection_points):
        hidden = host.segments[index](hidden)
        assert hidden.shape[1] == point.width, point.name
    assert torch.equal(host.segments[-1](hidden), host(images))


def test_every_split_has_batches_and_the_metrics_agree() -> None:
    task = make_task()
    host = task.build_host()
    for batches in (task.train_batches(epoch=1), task.val_batches(), task.test_batches()):
        images, labels = next(iter(batches))
        output = host(images)
        assert torch.isfinite(task.loss(output, labels))
        correct, count = task.correct(output, labels)
        per_example = task.correct_per_example(output, labels)
        assert count == len(labels) == len(per_example)
        assert int(correct) == int(per_example.sum())


def test_data_is_fixed_by_the_seed() -> None:
    assert torch.equal(first_images(make_task(1)), first_images(make_task(1)))
    assert not torch.equal(first_images(make_task(1)), first_images(make_task(2)))


def test_task_rejects_unknown_options() -> None:
    with pytest.raises(ConfigError, match="'$task': unknown option 'speed'; allowed options: batch_size"):
        esper_register_tasks()[0].factory(seed=0, device="cpu", options={"speed": 2})


def test_read_options_gives_the_values_the_task_uses() -> None:
    read = esper_register_tasks()[0].read_options(options={"train_size": "64"})
    assert read.train_size == 64 and read.batch_size == 32
    assert len(make_task().train[1]) == esper_register_tasks()[0].read_options(options={}).train_size
''')

README = Template('''\
# $distribution

An Esper plugin contributing $kinds_text.
Generated by `esper new-plugin`; the hooks and their contracts are described in Esper's
`docs/writing-plugins.md`.

| kind | name | module |
| --- | --- | --- |
$component_rows

## Install and check

```bash
pip install -e .          # registers the "$short" entry point of the "esper" group
esper plugins             # lists $distribution and what it contributes
pytest                    # the conformance tests of esper_core.testing
```

## Use

```bash
$usage
```

Esper loads every installed plugin. `ESPER_PLUGINS=cnn,policies,$short` loads only the
plugins named (by entry-point or distribution name), `ESPER_DISABLE_PLUGIN_AUTOLOAD=1` loads
none, and `ESPER_TRACE_HOOKS=1` prints every hook call to stderr.

## Publish

```bash
python -m build           # or: pip wheel --no-deps -w dist .
twine upload dist/*
```
''')

"""The ten anti-patterns as data: index, category, severity, lesson and expected signature.

Torch-free, so the plugin, the curriculum and the CLI can list the catalog without building a
module. Indices, names, categories, severities and lessons follow seed 000's summary table;
``designed_signature`` follows its "telemetry hooks" task (which detector should fire);
``expected_signature`` is what a real run measurably shows (``measured`` says where from):
``benchmarks/antipatterns_signatures.py``, docs/antipatterns_signatures.md — six of the ten
show no failure signature at all on the default task, and the entry says so (None);
division_by_feature's NaN shows as the governor rollback that culls it.
"""

from __future__ import annotations

import enum
from collections.abc import Callable

from attrs import converters, field, frozen, validators

from esper_antipatterns import estimates
from esper_antipatterns.signatures import Signature

TOPOLOGY = "cnn"
#: ``expected_signature`` of an anti-pattern that measurably shows no failure signature.
NO_SIGNATURE = "none"
#: Where every ``measured`` note comes from.
MEASUREMENT = "shapes, 10 epochs, seed 0, germinated at epoch 1 in block2, never culled"


class Category(enum.StrEnum):
    """Seed 000's four anti-pattern families, listed in curriculum order (clearest signal first)."""

    CATASTROPHIC = "catastrophic"
    GRADIENT_KILLER = "gradient_killer"
    DECEPTIVE = "deceptive"
    SUBTLE = "subtle"

    @property
    def stage(self) -> int:
        """1-based curriculum stage at which this family is introduced."""
        return list(Category).index(self) + 1


class Severity(enum.StrEnum):
    MILD = "mild"
    MILD_MODERATE = "mild-moderate"
    MODERATE = "moderate"
    SEVERE = "severe"
    CATASTROPHIC = "catastrophic"


@frozen(kw_only=True)
class Antipattern:
    """One anti-pattern blueprint's catalog entry.

    ``factory`` is a ``module:attr`` path inside :data:`BLUEPRINT_PACKAGE`, imported only when the
    module is built; ``estimate`` is its torch-free parameter count (:mod:`esper_antipatterns.estimates`).
    """

    name: str = field(validator=validators.instance_of(str))
    index: int = field(validator=[validators.instance_of(int), validators.ge(24), validators.le(33)])
    category: Category = field(converter=Category)
    severity: Severity = field(converter=Severity)
    lesson: str = field(validator=validators.min_len(1))
    #: The signature seed 000 designed it to show.
    designed_signature: Signature = field(converter=Signature)
    #: The signature it measurably shows in a real run (None: none at all); the detector
    #: compares what it detects with this one.
    expected_signature: Signature | None = field(converter=converters.optional(Signature))
    #: One line on the measurement behind ``expected_signature``.
    measured: str = field(validator=validators.min_len(1))
    description: str = field(validator=validators.min_len(1))
    factory: str = field(validator=validators.min_len(1))
    estimate: Callable[[int], int] = field(validator=validators.is_callable())

    @property
    def key(self) -> str:
        return f"{TOPOLOGY}:{self.name}"

    @property
    def expected_value(self) -> str:
        """``expected_signature`` as text: :data:`NO_SIGNATURE` when it shows none."""
        return NO_SIGNATURE if self.expected_signature is None else self.expected_signature.value

    def metadata(self) -> dict[str, str]:
        """The ``BlueprintSpec.metadata`` mapping the plugin registers."""
        return {
            "category": self.category.value,
            "severity": self.severity.value,
            "lesson": self.lesson,
            "expected_signature": self.expected_value,
        }


#: The package the ``factory`` paths are relative to.
BLUEPRINT_PACKAGE = "esper_antipatterns.blueprints"

#: The ten, in action-index order (24–33).
ANTIPATTERNS: tuple[Antipattern, ...] = (
    Antipattern(name="correlated_noise", index=24, category=Category.SUBTLE,
                severity=Severity.MODERATE, lesson="Batch independence matters",
                designed_signature=Signature.PLATEAU, expected_signature=None,
                measured="nothing detected in 10 epochs (designed: plateau)",
                factory="subtle:CorrelatedNoise", estimate=estimates.correlated_noise,
                description="anti-pattern: one noise vector shared by the whole batch"),
    Antipattern(name="asymmetric_bottleneck", index=25, category=Category.SUBTLE,
                severity=Severity.MILD_MODERATE, lesson="Bottlenecks need skips",
                designed_signature=Signature.PLATEAU, expected_signature=Signature.PLATEAU,
                measured="matches: plateau and cost_without_benefit from epoch 6",
                factory="subtle:AsymmetricBottleneck", estimate=estimates.asymmetric_bottleneck,
                description="anti-pattern: 8x 1x1 bottleneck without a skip connection"),
    Antipattern(name="momentum_dampener", index=26, category=Category.SUBTLE,
                severity=Severity.MODERATE, lesson="Avoid stateful high-momentum",
                designed_signature=Signature.GRADIENT_COLLAPSE, expected_signature=None,
                measured="nothing detected in 10 epochs (designed: gradient_collapse)",
                factory="subtle:MomentumDampener", estimate=estimates.momentum_dampener,
                description="anti-pattern: 0.99-momentum EMA of activations across batches"),
    Antipattern(name="sigmoid_sandwich", index=27, category=Category.GRADIENT_KILLER,
                severity=Severity.SEVERE, lesson="Never chain saturating activations",
                designed_signature=Signature.GRADIENT_COLLAPSE, expected_signature=None,
                measured="nothing detected in 10 epochs (designed: gradient_collapse)",
                factory="gradient_killers:SigmoidSandwich", estimate=estimates.sigmoid_sandwich,
                description="anti-pattern: sigmoid -> 1x1 conv -> sigmoid"),
    Antipattern(name="gain_amplifier", index=28, category=Category.GRADIENT_KILLER,
                severity=Severity.CATASTROPHIC, lesson="Constrain multiplicative params",
                designed_signature=Signature.GRADIENT_EXPLOSION, expected_signature=None,
                measured="nothing detected in 10 epochs (designed: gradient_explosion)",
                factory="gradient_killers:GainAmplifier", estimate=estimates.gain_amplifier,
                description="anti-pattern: unconstrained learnable scalar gain"),
    Antipattern(name="deep_linear_stack", index=29, category=Category.GRADIENT_KILLER,
                severity=Severity.SEVERE, lesson="Depth requires nonlinearity",
                designed_signature=Signature.GRADIENT_EXPLOSION, expected_signature=Signature.COST_WITHOUT_BENEFIT,
                measured="cost_without_benefit from epoch 6, no gradient explosion (designed: gradient_explosion)",
                factory="gradient_killers:DeepLinearStack", estimate=estimates.deep_linear_stack,
                description="anti-pattern: eight 1x1 convs with no nonlinearity between them"),
    Antipattern(name="expensive_identity", index=30, category=Category.DECEPTIVE,
                severity=Severity.MILD, lesson="Compute should match benefit",
                designed_signature=Signature.COST_WITHOUT_BENEFIT, expected_signature=Signature.COST_WITHOUT_BENEFIT,
                measured="matches: cost_without_benefit and plateau from epoch 6, gradient_collapse from epoch 2",
                factory="deceptive:ExpensiveIdentity", estimate=estimates.expensive_identity,
                description="anti-pattern: residual block without its residual connection"),
    Antipattern(name="redundant_ensemble", index=31, category=Category.DECEPTIVE,
                severity=Severity.MILD, lesson="Naive ensembling is wasteful",
                designed_signature=Signature.COST_WITHOUT_BENEFIT, expected_signature=None,
                measured="nothing detected in 10 epochs (designed: cost_without_benefit)",
                factory="deceptive:RedundantEnsemble", estimate=estimates.redundant_ensemble,
                description="anti-pattern: mean of four identical 1x1 conv branches"),
    Antipattern(name="kaiming_mismatch", index=32, category=Category.CATASTROPHIC,
                severity=Severity.CATASTROPHIC, lesson="Match init to activation",
                designed_signature=Signature.NAN_INF, expected_signature=None,
                measured="nothing detected in 10 epochs, no rollback (designed: nan_inf)",
                factory="catastrophic:KaimingMismatch", estimate=estimates.kaiming_mismatch,
                description="anti-pattern: ReLU Kaiming init on a conv with no activation"),
    Antipattern(name="division_by_feature", index=33, category=Category.CATASTROPHIC,
                severity=Severity.CATASTROPHIC, lesson="Division by data is dangerous",
                designed_signature=Signature.NAN_INF, expected_signature=Signature.NAN_INF,
                measured="matches: non-finite at epoch 4, the governor rolled back and culled it",
                factory="catastrophic:DivisionByFeature", estimate=estimates.division_by_feature,
                description="anti-pattern: divide activations by their channel mean, no epsilon"),
)

BY_NAME: dict[str, Antipattern] = {a.name: a for a in ANTIPATTERNS}


def get(name: str) -> Antipattern:
    """The entry called ``name`` (``cnn:`` prefix allowed); a clear error names the ten."""
    bare = name.removeprefix(f"{TOPOLOGY}:")
    if bare not in BY_NAME:
        raise KeyError(f"unknown anti-pattern {name!r}; known: {', '.join(a.name for a in ANTIPATTERNS)}")
    return BY_NAME[bare]

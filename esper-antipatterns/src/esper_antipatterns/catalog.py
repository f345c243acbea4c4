"""The ten anti-patterns as data: index, category, severity, lesson and expected signature.

Torch-free, so the plugin, the curriculum and the CLI can list the catalog without building a
module. Indices, names, categories, severities and lessons follow seed 000's summary table;
``designed_signature`` follows its "telemetry hooks" task (which detector should fire);
``expected_signature`` is what real runs measurably show (``measured`` gives the counts,
``note`` what the form does instead of its designed failure, and why): the consensus of
``benchmarks/antipatterns_signatures.py`` over three seeds (docs/antipatterns_signatures.md).

:data:`ANTIPATTERNS` are seed 000's ten CNN forms; :data:`TRANSFORMER_ANTIPATTERNS` the same ten
defects on a transformer slot (``blueprints/transformer.py``), same indices, names and lessons,
measured on the transformer's default task.
"""

from __future__ import annotations

import enum
from collections.abc import Callable

import attrs
from attrs import converters, field, frozen, validators

from esper_antipatterns import estimates
from esper_antipatterns.signatures import Signature

TOPOLOGY = "cnn"
TRANSFORMER = "transformer"
#: ``expected_signature`` of an anti-pattern that measurably shows no failure signature.
NO_SIGNATURE = "none"
#: Where every ``measured`` note comes from.
MEASUREMENT = ("seeds 0, 1, 2; cnn: shapes, slot block2, 10 epochs; transformer: pytext, slot layer1, "
               "10 epochs; germinated at epoch 1, never culled; a signature counts when shown in ≥ 2 of 3 seeds")


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
    #: One line on the measurement behind ``expected_signature``: per signature, in how many
    #: of the seeds it appeared.
    measured: str = field(validator=validators.min_len(1))
    description: str = field(validator=validators.min_len(1))
    factory: str = field(validator=validators.min_len(1))
    estimate: Callable[[int], int] = field(validator=validators.is_callable())
    #: What the form does instead of its designed failure, and the measured reason; empty when
    #: it shows the designed signature.
    note: str = field(default="", validator=validators.instance_of(str))
    topology: str = field(default=TOPOLOGY, validator=validators.in_((TOPOLOGY, TRANSFORMER)))

    @property
    def key(self) -> str:
        return f"{self.topology}:{self.name}"

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
                measured="nothing in 3/3 seeds",
                note=("its (1, C, 1, 1) noise shifts each channel of the whole batch by one constant, which the "
                      "BatchNorm opening the host's next block takes out with the batch mean; sigma (learnable, "
                      "init 0.01) stayed under 0.2 in magnitude (seed 0 diagnostic: 0.11 at epoch 2, -0.07 at "
                      "epoch 10) and accuracy kept rising, so there is no plateau to see"),
                factory="subtle:CorrelatedNoise", estimate=estimates.correlated_noise,
                description="anti-pattern: one noise vector shared by the whole batch"),
    Antipattern(name="asymmetric_bottleneck", index=25, category=Category.SUBTLE,
                severity=Severity.MILD_MODERATE, lesson="Bottlenecks need skips",
                designed_signature=Signature.PLATEAU, expected_signature=Signature.COST_WITHOUT_BENEFIT,
                measured="cost_without_benefit 2/3, plateau 1/3",
                note=("plateau in 1 of 3 seeds only: the host downstream learns through the one-channel "
                      "bottleneck (block2 is 8 wide, 8 // 8 = 1) - in seed 2 it blended in and its "
                      "contribution grew to +31 points by epoch 10 (diagnostic) - so the accuracy with it "
                      "mostly keeps rising; in 2 of 3 seeds it gave no benefit over 5 measured epochs: "
                      "cost_without_benefit"),
                factory="subtle:AsymmetricBottleneck", estimate=estimates.asymmetric_bottleneck,
                description="anti-pattern: 8x 1x1 bottleneck without a skip connection"),
    Antipattern(name="momentum_dampener", index=26, category=Category.SUBTLE,
                severity=Severity.MODERATE, lesson="Avoid stateful high-momentum",
                designed_signature=Signature.GRADIENT_COLLAPSE, expected_signature=None,
                measured="cost_without_benefit 1/3",
                note=("no collapse: its one parameter, the LayerScale (init 0.01), gets an unscaled gradient "
                      "(seed 0 diagnostic: per-step seed gradient norm >= 3e-3; collapse is < 1e-7) and AdamW "
                      "grew it from 0.01 to 0.59 in 10 epochs; the BatchNorm opening the next block cancels "
                      "both the 0.01 scale and the per-channel EMA, so the bottleneck never reaches the host"),
                factory="subtle:MomentumDampener", estimate=estimates.momentum_dampener,
                description="anti-pattern: 0.99-momentum EMA of activations across batches"),
    Antipattern(name="sigmoid_sandwich", index=27, category=Category.GRADIENT_KILLER,
                severity=Severity.SEVERE, lesson="Never chain saturating activations",
                designed_signature=Signature.GRADIENT_COLLAPSE, expected_signature=Signature.COST_WITHOUT_BENEFIT,
                measured="cost_without_benefit 2/3",
                note=("no collapse: its input (post-ReLU, max-pooled, std 0.7) keeps the first sigmoid in its "
                      "working range and AdamW's bounded steps keep the 1x1 weights under 2 in 10 epochs, so "
                      "neither sigmoid saturates (seeds 0 and 1 diagnostic: per-step seed gradient norm >= "
                      "1.7e-3; collapse: < 1e-7); it squashes the features (output std 0.08-0.27), and in 2 "
                      "of 3 seeds switching it in cost 2 to 28 points throughout: cost_without_benefit"),
                factory="gradient_killers:SigmoidSandwich", estimate=estimates.sigmoid_sandwich,
                description="anti-pattern: sigmoid -> 1x1 conv -> sigmoid"),
    Antipattern(name="gain_amplifier", index=28, category=Category.GRADIENT_KILLER,
                severity=Severity.CATASTROPHIC, lesson="Constrain multiplicative params",
                designed_signature=Signature.GRADIENT_EXPLOSION, expected_signature=None,
                measured="nothing in 3/3 seeds",
                note=("the gain barely moves (seed 0 diagnostic: 0.97 at epoch 2, 0.96 at epoch 10): the host's "
                      "next block opens with conv -> BatchNorm, which cancels any output scale, so the gain's "
                      "gradient is < 1% of what it is without the norm (tests/test_failure_modes.py), and AdamW "
                      "moves a parameter by about lr per step whatever its gradient, so the designed (SGD) "
                      "feedback loop cannot compound; seed gradient norm <= 0.75 (explosion: > 1e4)"),
                factory="gradient_killers:GainAmplifier", estimate=estimates.gain_amplifier,
                description="anti-pattern: unconstrained learnable scalar gain"),
    Antipattern(name="deep_linear_stack", index=29, category=Category.GRADIENT_KILLER,
                severity=Severity.SEVERE, lesson="Depth requires nonlinearity",
                designed_signature=Signature.GRADIENT_EXPLOSION, expected_signature=None,
                measured="cost_without_benefit 1/3",
                note=("the eight layers do amplify - output std 530x the input's at epoch 3, 3,200x at epoch 10 "
                      "(seed 0 diagnostic) - but the BatchNorm opening the next block divides that scale out, "
                      "and the gradient with it: per-step seed gradient norm <= 2.5 (explosion: > 1e4); no "
                      "signature in 2 of 3 seeds"),
                factory="gradient_killers:DeepLinearStack", estimate=estimates.deep_linear_stack,
                description="anti-pattern: eight 1x1 convs with no nonlinearity between them"),
    Antipattern(name="expensive_identity", index=30, category=Category.DECEPTIVE,
                severity=Severity.MILD, lesson="Compute should match benefit",
                designed_signature=Signature.COST_WITHOUT_BENEFIT, expected_signature=Signature.COST_WITHOUT_BENEFIT,
                measured="cost_without_benefit 3/3, gradient_collapse 1/3, plateau 1/3",
                factory="deceptive:ExpensiveIdentity", estimate=estimates.expensive_identity,
                description="anti-pattern: residual block without its residual connection"),
    Antipattern(name="redundant_ensemble", index=31, category=Category.DECEPTIVE,
                severity=Severity.MILD, lesson="Naive ensembling is wasteful",
                designed_signature=Signature.COST_WITHOUT_BENEFIT, expected_signature=None,
                measured="nothing in 3/3 seeds",
                note=("the mean of its four 1x1 branches is one learned 1x1 conv, and a useful one (seed 0 "
                      "diagnostic: +36 points of contribution at epoch 10); its 296 parameters grow the "
                      "1,774-parameter host by 17%, far under the limit of 10% per point. The waste it "
                      "embodies, four times the parameters of the one conv it equals, is invisible to a "
                      "signature that prices a seed against its own benefit"),
                factory="deceptive:RedundantEnsemble", estimate=estimates.redundant_ensemble,
                description="anti-pattern: mean of four identical 1x1 conv branches"),
    Antipattern(name="kaiming_mismatch", index=32, category=Category.CATASTROPHIC,
                severity=Severity.CATASTROPHIC, lesson="Match init to activation",
                designed_signature=Signature.NAN_INF, expected_signature=Signature.COST_WITHOUT_BENEFIT,
                measured="cost_without_benefit 2/3",
                note=("no NaN: one 3x3 conv with a sqrt(2)-too-large init makes the output std 1.8-4x the "
                      "input's (seed 0 diagnostic, max |y| < 30), which the BatchNorm opening the next block "
                      "renormalises; compounding needs a stack, and even ten such layers (about 29x) are far "
                      "from float32's overflow. In seed 0 it trained into a helpful layer (+41 points of "
                      "contribution at epoch 10); in the other 2 its benefit stayed <= 0 over 5 measured "
                      "epochs: cost_without_benefit"),
                factory="catastrophic:KaimingMismatch", estimate=estimates.kaiming_mismatch,
                description="anti-pattern: ReLU Kaiming init on a conv with no activation"),
    Antipattern(name="division_by_feature", index=33, category=Category.CATASTROPHIC,
                severity=Severity.CATASTROPHIC, lesson="Division by data is dangerous",
                designed_signature=Signature.NAN_INF, expected_signature=Signature.NAN_INF,
                measured="nan_inf 3/3 (governor rollbacks)",
                factory="catastrophic:DivisionByFeature", estimate=estimates.division_by_feature,
                description="anti-pattern: divide activations by their channel mean, no epsilon"),
)

BY_NAME: dict[str, Antipattern] = {a.name: a for a in ANTIPATTERNS}


def _transformer_form(name: str, *, expected: Signature | None, measured: str, note: str = "",
                      estimate: Callable[[int], int] | None = None, description: str | None = None) -> Antipattern:
    """The transformer form of CNN entry ``name``: its index, family, severity, lesson and design,
    its own factory and measurement (and estimate or description where its layers differ)."""
    cnn = BY_NAME[name]
    return attrs.evolve(
        cnn, topology=TRANSFORMER, factory=f"transformer:{cnn.factory.split(':')[1]}",
        estimate=estimate or cnn.estimate, expected_signature=expected, measured=measured, note=note,
        description=description or cnn.description.replace("1x1 conv", "linear").replace("conv", "linear"))


#: The same ten defects on a transformer slot (``(batch, sequence, C)``), in index order.
TRANSFORMER_ANTIPATTERNS: tuple[Antipattern, ...] = (
    _transformer_form("correlated_noise", expected=None,
                      measured="nothing in 3/3 seeds",
                      note=("its learnable sigma (init 0.01, against a stream of std 0.9) is driven to about 0 "
                            "(|sigma| <= 0.011 over 10 epochs, seed 0 diagnostic), so the noise all but vanishes, "
                            "the seed acts as the identity (contribution within 0.07 points of 0) and the accuracy "
                            "rises with the host's: no plateau")),
    _transformer_form("asymmetric_bottleneck", expected=Signature.COST_WITHOUT_BENEFIT,
                      measured="cost_without_benefit 3/3",
                      note=("squeezing the residual stream through 8 of its 64 dimensions with no skip never gave a "
                            "positive benefit in 5 measured epochs (cost_without_benefit in 3 of 3 seeds), but the "
                            "accuracy with it still rose by more than 0.5 points per 5-epoch window with the "
                            "host's, which is not the plateau the detector looks for"),
                      description="anti-pattern: 8x linear bottleneck without a skip connection"),
    _transformer_form("momentum_dampener", expected=Signature.COST_WITHOUT_BENEFIT,
                      measured="cost_without_benefit 3/3",
                      note=("no collapse: the dampening scales the stream (output std 0.36-0.59 against the input's "
                            "0.9, seed 0 diagnostic), not the gradient of its own parameter, the (C,) scale (init "
                            "0.01), whose per-step gradient norm stayed >= 0.18 (collapse: < 1e-7) while AdamW grew "
                            "it to 0.17 in 10 epochs; switching it in costs 4.5 to 12 points and never gains any: "
                            "cost_without_benefit in 3 of 3 seeds")),
    _transformer_form("sigmoid_sandwich", expected=Signature.COST_WITHOUT_BENEFIT,
                      measured="cost_without_benefit 3/3, plateau 1/3",
                      note=("no collapse: the stream it squashes has std 0.9, inside the sigmoid's working range, "
                            "and AdamW's bounded steps keep the linear layer small, so neither sigmoid saturates "
                            "(seed 0 diagnostic: per-step seed gradient norm >= 0.17; collapse: < 1e-7); what it "
                            "does is compress the stream into (0, 1) (output std 0.22), so switching it in costs 8 "
                            "to 15 points: cost_without_benefit in 3 of 3 seeds")),
    _transformer_form("gain_amplifier", expected=None,
                      measured="nothing in 3/3 seeds",
                      note=("on the residual stream the gain does get a gradient, and grows, but AdamW steps it by "
                            "about lr (3e-3) at a time: 1.03 at epoch 2, 1.13 at epoch 10 (seed 0 diagnostic), seed "
                            "gradient norm <= 0.04 (explosion: > 1e4); the LayerNorms of the next block and of the "
                            "head see the stream's direction, not its scale, so nothing rewards a runaway gain")),
    _transformer_form("deep_linear_stack", expected=Signature.COST_WITHOUT_BENEFIT,
                      measured="cost_without_benefit 3/3",
                      note=("the stack amplifies the stream (output std 60-90x the input's, seed 0 diagnostic) but "
                            "every reader of the stream - the next block's LayerNorms and the head's - divides that "
                            "scale out, and the gradient with it: per-step seed gradient norm <= 7 (explosion: > "
                            "1e4); what it shows is a seed whose gain stays negative (-1.3 to -2.7 points) while it "
                            "costs 27% of the host's parameters"),
                      description="anti-pattern: eight linear layers with no nonlinearity between them"),
    _transformer_form("expensive_identity", expected=Signature.COST_WITHOUT_BENEFIT,
                      measured="cost_without_benefit 3/3",
                      estimate=estimates.expensive_identity_linear,
                      description="anti-pattern: transformer MLP block (linear, LayerNorm, ReLU, linear, "
                                  "LayerNorm) without its residual connection"),
    _transformer_form("redundant_ensemble", expected=Signature.COST_WITHOUT_BENEFIT,
                      measured="cost_without_benefit 3/3"),
    _transformer_form("kaiming_mismatch", expected=Signature.COST_WITHOUT_BENEFIT,
                      measured="cost_without_benefit 2/3",
                      note=("no NaN: one linear layer with a sqrt(2)-too-large init makes the output std 1.5-1.8x "
                            "the input's (seed 0 diagnostic), and the LayerNorms that read the stream cancel that "
                            "scale; compounding needs a stack, and even ten such layers (about 29x) are far from "
                            "float32's overflow. In 2 of 3 seeds its benefit stayed <= 0 over 5 measured epochs: "
                            "cost_without_benefit"),
                      estimate=estimates.kaiming_mismatch_linear,
                      description="anti-pattern: ReLU Kaiming init on a linear layer with no activation"),
    _transformer_form("division_by_feature", expected=Signature.PLATEAU,
                      measured="plateau 3/3, cost_without_benefit 3/3",
                      note=("no NaN: a token's mean over 64 channels is small but never exactly 0 in float32, so "
                            "the output is huge but finite (seed 0 diagnostic: std 1,200-11,000x the input's, max "
                            "2e6), and the LayerNorms downstream see only each token's direction, so the gradient "
                            "stays small (<= 0.35); switching it in costs 6 points at epoch 2 and 29 at epoch 10, "
                            "so the accuracy with it stalls while the host's rises: plateau in 3 of 3 seeds")),
)

#: Every form of every anti-pattern, CNN first.
ALL_ANTIPATTERNS: tuple[Antipattern, ...] = ANTIPATTERNS + TRANSFORMER_ANTIPATTERNS
BY_KEY: dict[str, Antipattern] = {a.key: a for a in ALL_ANTIPATTERNS}


def get(name: str) -> Antipattern:
    """The entry called ``name``: a bare name is the CNN form, ``transformer:name`` the
    transformer form (``cnn:`` allowed); a clear error names the ten."""
    key = name if ":" in name else f"{TOPOLOGY}:{name}"
    if key not in BY_KEY:
        raise KeyError(f"unknown anti-pattern {name!r}; known: {', '.join(a.name for a in ANTIPATTERNS)} "
                       f"(topologies {TOPOLOGY}, {TRANSFORMER})")
    return BY_KEY[key]

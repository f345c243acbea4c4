from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from esper_core.errors import ConfigError
from esper_telemetry.gradient_health import GradientHealthConfig, GradientHealthTracker


def _module_with_grads(a: torch.Tensor, b: torch.Tensor) -> nn.Module:
    """Two layers whose gradients are set by hand: known norms and element statistics."""
    module = nn.Sequential(nn.Linear(a.shape[1], a.shape[0], bias=False),
                           nn.Linear(b.shape[1], b.shape[0], bias=False))
    module[0].weight.grad = a.clone()
    module[1].weight.grad = b.clone()
    return module


A = torch.tensor([[3.0, 4.0], [0.0, 0.0]])  # norm 5; 2 of 4 elements vanish
B = torch.tensor([[1e-9, 2e3, 1.0, 1.0]])  # one vanishing, one exploding element


def test_diagnostic_stats_on_known_gradients():
    module = _module_with_grads(A, B)
    tracker = GradientHealthTracker(module, GradientHealthConfig.from_profile("diagnostic"))
    tracker.step()
    tracker.step()
    report = tracker.epoch_summary()
    assert report.steps == report.sampled_steps == 2
    first, second = report.layers
    assert first.name == "0" and second.name == "1"
    assert first.norm_mean == pytest.approx(5.0)
    assert first.norm_max == pytest.approx(5.0)
    assert first.std == pytest.approx(A.flatten().std(unbiased=False).item())
    assert first.vanishing_fraction == pytest.approx(0.5)
    assert first.exploding_fraction == 0.0
    assert first.score == pytest.approx(0.5)
    assert second.vanishing_fraction == pytest.approx(0.25)
    assert second.exploding_fraction == pytest.approx(0.25)
    assert second.score == pytest.approx(0.5)
    total = math.sqrt(25 + float(B.square().sum()))
    assert report.global_norm_mean == pytest.approx(total, rel=1e-5)
    assert report.score == pytest.approx(0.5)
    metrics = report.to_metrics()
    assert metrics["grad/0/norm"] == pytest.approx(5.0)
    assert metrics["grad/score"] == pytest.approx(0.5)
    # Summaries reset the accumulators.
    assert tracker.epoch_summary().steps == 0


def test_standard_samples_every_n_steps_and_judges_layers_by_rms():
    module = _module_with_grads(A, torch.full((1, 4), 1e-9))
    tracker = GradientHealthTracker(module, GradientHealthConfig.from_profile(
        "standard", every_n_steps=3))
    for _ in range(7):
        tracker.step()
    report = tracker.epoch_summary()
    assert report.steps == 7 and report.sampled_steps == 3  # steps 1, 4, 7
    healthy, vanished = report.layers
    assert healthy.std is None
    assert healthy.score == 1.0 and healthy.vanishing_fraction == 0.0
    assert vanished.vanishing_fraction == 1.0 and vanished.score == 0.0
    assert report.score == pytest.approx(0.5)


def test_minimal_measures_only_the_global_norm():
    module = _module_with_grads(A, torch.ones(1, 4))
    tracker = GradientHealthTracker(module, GradientHealthConfig.from_profile("minimal"))
    tracker.step()
    report = tracker.epoch_summary()
    assert report.layers == ()
    assert report.global_norm_mean == pytest.approx(math.sqrt(29.0))
    assert report.score == 1.0


def test_non_finite_gradients_score_zero():
    module = _module_with_grads(torch.tensor([[float("nan"), 1.0]]), torch.ones(1, 1))
    tracker = GradientHealthTracker(module, GradientHealthConfig.from_profile("diagnostic"))
    tracker.step()
    report = tracker.epoch_summary()
    assert report.nonfinite_steps == 1
    assert report.layers[0].nonfinite_steps == 1 and report.layers[0].score == 0.0
    assert report.global_norm_mean is None
    assert report.score == pytest.approx(0.5)  # the second layer is still healthy


def test_missing_gradients_and_empty_epochs():
    module = nn.Linear(2, 2)
    tracker = GradientHealthTracker(module)
    assert tracker.epoch_summary().score is None
    tracker.step()  # no .grad yet: counted, not measured
    report = tracker.epoch_summary()
    assert report.steps == 1 and report.global_norm_mean is None and report.score is None
    module.weight.grad = torch.ones(2, 2)  # bias still has none
    tracker.step()
    report = tracker.epoch_summary()
    assert [(layer.name, layer.samples) for layer in report.layers] == [("(root)", 1)]
    assert report.layers[0].norm_mean == pytest.approx(2.0)  # only the weight's grad


def test_optimizer_hook_tracks_steps_and_is_removed_on_close():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with GradientHealthTracker(model, GradientHealthConfig.from_profile("standard"),
                               optimizer=optimizer) as tracker:
        assert tracker.hook_count == 1 and len(optimizer._optimizer_step_pre_hooks) == 1
        for _ in range(5):
            optimizer.zero_grad()
            model(torch.randn(16, 4)).pow(2).mean().backward()
            optimizer.step()
        report = tracker.epoch_summary()
    assert report.steps == 5 and report.sampled_steps == 1
    assert [layer.name for layer in report.layers] == ["0", "2"]
    assert tracker.closed and tracker.hook_count == 0
    assert len(optimizer._optimizer_step_pre_hooks) == 0
    with pytest.raises(RuntimeError):
        tracker.step()


def test_hook_is_removed_when_training_raises():
    model = nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="boom"), GradientHealthTracker(
            model, optimizer=optimizer):
        model(torch.randn(2, 3)).sum().backward()
        optimizer.step()
        raise ValueError("boom")
    assert len(optimizer._optimizer_step_pre_hooks) == 0


def test_config_validation():
    with pytest.raises(ConfigError,
                       match="gradient-health tracker: unknown option 'interval'; allowed options: every_n_steps"):
        GradientHealthConfig.from_options({"interval": 3})
    with pytest.raises(ConfigError, match="profile"):
        GradientHealthConfig.from_profile("verbose")
    with pytest.raises(ConfigError, match="every_n_steps"):
        GradientHealthConfig.from_profile("standard", every_n_steps=0)
    with pytest.raises(ConfigError, match="below"):
        GradientHealthConfig.from_options({"vanishing_threshold": 10.0,
                                           "exploding_threshold": 1.0})
    with pytest.raises(ConfigError, match="vanishing_threshold. = nan is invalid; expected a finite number > 0"):
        GradientHealthConfig.from_options({"vanishing_threshold": float("nan")})
    assert GradientHealthConfig().interval == 10
    assert GradientHealthConfig.from_profile("diagnostic").interval == 1


def test_backward_hooks_measure_once_per_backward_and_are_removed():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    with pytest.raises(ValueError, match="not both"):
        GradientHealthTracker(model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                              hook_backward=True)
    with GradientHealthTracker(model, GradientHealthConfig.from_profile("minimal"),
                               hook_backward=True) as tracker:
        assert tracker.hook_count == 1 and len(model._forward_hooks) == 1
        expected = []
        for _ in range(3):
            model.zero_grad(set_to_none=True)
            model(torch.randn(5, 4)).square().mean().backward()
            expected.append(math.sqrt(sum(float(p.grad.square().sum())
                                          for p in model.parameters())))
        model(torch.randn(5, 4)).sum()  # a forward without backward measures nothing
        report = tracker.epoch_summary()
    assert report.steps == 3 and report.sampled_steps == 0
    assert report.global_norm_mean == pytest.approx(sum(expected) / 3, rel=1e-5)
    assert report.vanishing_fraction == 0.0 and report.exploding_fraction == 0.0
    assert tracker.hook_count == 0 and not model._forward_hooks
    model(torch.randn(5, 4)).sum().backward()  # after close: nothing queued, nothing counted
    assert tracker.epoch_summary().steps == 0


def test_backward_hooks_see_only_the_parameters_that_got_a_gradient():
    model = nn.ModuleDict({"used": nn.Linear(3, 3), "frozen": nn.Linear(3, 3)})

    class Partial(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, x):
            return {"out": (self.inner["used"](x),), "aux": x.sum()}

    wrapper = Partial()
    config = GradientHealthConfig.from_profile("standard", every_n_steps=1)
    with GradientHealthTracker(wrapper, config, hook_backward=True) as tracker:
        wrapper(torch.randn(4, 3))["out"][0].sum().backward()
        with torch.no_grad():
            wrapper(torch.randn(4, 3))  # no graph: nothing to hook
        report = tracker.epoch_summary()
    assert report.steps == 1
    assert [layer.name for layer in report.layers] == ["inner.used"]


def test_long_epochs_fold_and_half_precision_norms_do_not_overflow(monkeypatch):
    from esper_telemetry import gradient_health

    monkeypatch.setattr(gradient_health, "_FOLD_NORMS", 64)
    module = nn.Linear(10, 10, bias=False).half()
    module.weight.grad = torch.full((10, 10), 1e4, dtype=torch.float16)  # ‖g‖ = 1e5 > fp16 max
    tracker = GradientHealthTracker(module, GradientHealthConfig.from_profile("minimal"))
    for _ in range(300):  # several folds of the per-step norms
        tracker.step()
    assert tracker._pending_count == 300 % 64
    report = tracker.epoch_summary()
    assert report.steps == 300 and report.nonfinite_steps == 0
    assert report.global_norm_mean == pytest.approx(1e5, rel=1e-3)
    assert report.exploding_fraction == 1.0 and report.score == 0.0  # RMS 1e4 > 1e3


def test_waiting_norms_share_one_buffer_and_folds_do_not_change_the_report(monkeypatch):
    # Thousands of one-element tensors waiting for a fold fragmented the C heap (+80 MB peak
    # in the default run): the norms wait as rows of one tensor per parameter set, and when
    # they are folded must not change what an epoch reports.
    from esper_telemetry import gradient_health

    def run(fold: int) -> tuple:
        monkeypatch.setattr(gradient_health, "_FOLD_NORMS", fold)
        torch.manual_seed(0)
        module = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
        tracker = GradientHealthTracker(module, GradientHealthConfig.from_profile("standard"),
                                        hook_backward=True)
        for _ in range(50):
            module.zero_grad()
            module(torch.randn(8, 6)).square().sum().backward()
        waiting = [pending[0] for pending in tracker._pending.values()]
        return waiting, tracker.epoch_summary()

    waiting, folded = run(12)
    assert len(waiting) == 1 and waiting[0].shape == (3, 4)  # 4 parameters, 12 norms
    _, whole = run(4096)
    assert (folded.steps, folded.nonfinite_steps, folded.score) == (whole.steps, whole.nonfinite_steps, whole.score)
    # Partial sums in another order: equal up to rounding.
    assert folded.global_norm_mean == pytest.approx(whole.global_norm_mean, rel=1e-6)
    assert folded.global_norm_max == whole.global_norm_max

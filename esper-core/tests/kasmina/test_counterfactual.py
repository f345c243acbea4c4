import pytest
import torch
from kasmina_helpers import TinyHost, build_model, correct_fn, loss_fn, set_stage, toy_data

from esper_core.contracts import SeedStage
from esper_core.kasmina import evaluate

S = SeedStage


def _randomise(model, name, scale=1.0):
    with torch.no_grad():
        for p in model.slot(name).seed.parameters():
            p.normal_(0, scale)


def _accuracy(model, data):
    ok = sum(int(correct_fn(model(x), y)[0]) for x, y in data)
    return 100.0 * ok / sum(int(y.numel()) for _, y in data)


def test_shared_prefix_equals_brute_force():
    torch.manual_seed(3)
    model = build_model(TinyHost(3))
    data = toy_data(6, batch=32)
    set_stage(model, "p0", S.TRAINING)
    set_stage(model, "p1", S.BLENDING)
    set_stage(model, "p2", S.PROBATIONARY)
    model.slot("p1").alpha = 0.6
    model.slot("p2").alpha = 0.9
    for name in ("p0", "p1", "p2"):
        _randomise(model, name)
    model.train()
    result = evaluate(model, data, loss_fn, correct_fn, epoch=4)
    assert model.training  # mode restored
    model.eval()
    with torch.no_grad():
        base = _accuracy(model, data)
        brute = {}
        for name in ("p1", "p2"):
            with model.force_alpha(name, 0.0):
                brute[name] = base - _accuracy(model, data)
        with model.force_alpha("p0", 1.0):
            gain = _accuracy(model, data) - base
        loss = sum(float(loss_fn(model(x), y)) * len(y) for x, y in data) / sum(len(y) for _, y in data)
    assert result.method == "removal"
    assert result.accuracy == pytest.approx(base, abs=1e-6)
    assert result.loss == pytest.approx(loss, abs=1e-6)
    assert set(result.contributions) == {"p1", "p2"}
    for name, value in brute.items():
        assert result.contributions[name] == pytest.approx(value, abs=1e-6)
    assert result.seed_gains == {"p0": pytest.approx(gain, abs=1e-6)}
    assert any(abs(v) > 0 for v in [*brute.values(), gain])  # the check is not vacuous
    # recorded into the slots' state
    assert model.slot("p1").state.contributions == [(4, S.BLENDING, result.contributions["p1"])]
    assert model.slot("p0").state.seed_gain == result.seed_gains["p0"]


def test_prefix_is_not_recomputed():
    model = build_model(TinyHost(3))
    set_stage(model, "p2", S.BLENDING)
    calls = {"stem": 0}
    stem = model.host.segments[0]
    stem.register_forward_hook(lambda *a: calls.__setitem__("stem", calls["stem"] + 1))
    evaluate(model, toy_data(3), loss_fn, correct_fn)
    assert calls["stem"] == 3  # once per batch, not once per counterfactual


def test_shapley_with_five_seeds():
    torch.manual_seed(5)
    model = build_model(TinyHost(5))
    names = [f"p{i}" for i in range(5)]
    for name in names:
        set_stage(model, name, S.BLENDING)
        model.slot(name).alpha = 0.8
        _randomise(model, name, 0.7)
    data = toy_data(4, batch=64)
    result = evaluate(model, data, loss_fn, correct_fn, shapley_permutations=12, shapley_seed=1)
    assert result.method == "shapley" and set(result.contributions) == set(names)
    model.eval()
    with torch.no_grad():
        full = _accuracy(model, data)
        for name in names:
            model.slot(name).forced_alpha = 0.0
        none = _accuracy(model, data)
        for name in names:
            model.slot(name).forced_alpha = None
    # Efficiency: every sampled order's credits sum to v(all) − v(none).
    assert sum(result.contributions.values()) == pytest.approx(full - none, abs=1e-6)
    assert abs(full - none) > 0
    again = evaluate(model, data, loss_fn, correct_fn, shapley_permutations=12, shapley_seed=1,
                     record=False)
    assert again.contributions == result.contributions


def test_shapley_estimate_matches_exact_enumeration():
    import itertools
    import math

    torch.manual_seed(7)
    model = build_model(TinyHost(5))
    names = [f"p{i}" for i in range(5)]
    for name in names:
        set_stage(model, name, S.BLENDING)
        model.slot(name).alpha = 1.0
        _randomise(model, name, 0.5)
    data = toy_data(2, batch=64)
    model.eval()

    def v(coalition):
        for n in names:
            model.slot(n).forced_alpha = None if n in coalition else 0.0
        with torch.no_grad():
            return _accuracy(model, data)

    exact = {}
    for i in names:
        others = [n for n in names if n != i]
        total = 0.0
        for r in range(len(others) + 1):
            for c in itertools.combinations(others, r):
                w = math.factorial(r) * math.factorial(len(names) - r - 1) / math.factorial(len(names))
                total += w * (v(set(c) | {i}) - v(set(c)))
        exact[i] = total
    for n in names:
        model.slot(n).forced_alpha = None
    est = evaluate(model, data, loss_fn, correct_fn, shapley_permutations=400, record=False)
    for n in names:
        assert est.contributions[n] == pytest.approx(exact[n], abs=2.0)


def _per_example(output, target):
    return (output.argmax(dim=1) == target).float()


def _paired_se(diffs):
    d = torch.cat(diffs).double()
    return 100.0 * float(d.std(unbiased=True) / d.numel() ** 0.5)


def test_gains_and_contributions_carry_the_standard_error_of_paired_differences():
    torch.manual_seed(5)
    model = build_model(TinyHost(2))
    data = toy_data(6, batch=32)
    set_stage(model, "p0", S.TRAINING)
    set_stage(model, "p1", S.BLENDING)
    model.slot("p1").alpha = 0.7
    _randomise(model, "p0")
    _randomise(model, "p1")
    result = evaluate(model, data, loss_fn, correct_fn, example_fn=_per_example, epoch=2)
    model.eval()
    gain_diffs, removal_diffs = [], []
    with torch.no_grad():
        for x, y in data:
            base = _per_example(model(x), y)
            with model.force_alpha("p0", 1.0):
                gain_diffs.append(_per_example(model(x), y) - base)
            with model.force_alpha("p1", 0.0):
                removal_diffs.append(base - _per_example(model(x), y))
    assert result.seed_gain_ses["p0"] == pytest.approx(_paired_se(gain_diffs), rel=1e-6)
    assert result.contribution_ses["p1"] == pytest.approx(_paired_se(removal_diffs), rel=1e-6)
    assert result.seed_gain_ses["p0"] > 0 and result.contribution_ses["p1"] > 0
    assert model.slot("p0").state.seed_gain_se == result.seed_gain_ses["p0"]
    assert model.slot("p1").state.contribution_se == result.contribution_ses["p1"]
    report = {r.slot: r for r in model.slot_reports()}
    assert report["p0"].seed_gain_se == result.seed_gain_ses["p0"]
    assert report["p0"].lower_bound(2.0) == pytest.approx(result.seed_gains["p0"] - 2 * result.seed_gain_ses["p0"])


def test_without_per_example_scores_each_batch_is_one_paired_unit():
    torch.manual_seed(5)
    model = build_model(TinyHost(2))
    data = toy_data(6, batch=32)
    set_stage(model, "p0", S.TRAINING)
    _randomise(model, "p0")
    result = evaluate(model, data, loss_fn, correct_fn, epoch=1)
    model.eval()
    diffs = []
    with torch.no_grad():
        for x, y in data:
            base = _per_example(model(x), y).mean()
            with model.force_alpha("p0", 1.0):
                diffs.append((_per_example(model(x), y).mean() - base).reshape(1))
    assert result.seed_gain_ses["p0"] == pytest.approx(_paired_se(diffs), rel=1e-5)

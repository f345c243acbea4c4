import math

import pytest
from policy_testkit import context

from esper_core.errors import ConfigError
from esper_policies.heuristic import HeuristicPolicy
from esper_policies.heuristic_config import HeuristicConfig


def test_defaults_are_the_design_defaults():
    # DESIGN §6's defaults, with the measured changes of docs/growth.md: germinate from epoch 1
    # without waiting for a plateau, fossilize on G5's statistic, avoid a culled blueprint, use
    # the task's blueprints in its order of preference.
    c = HeuristicConfig()
    assert c.min_epochs_before_germinate == 1 and c.blueprint_choice == "preference"
    assert (c.plateau_epochs_to_germinate, c.plateau_threshold) == (0, 0.5)
    assert (c.cull_after_epochs_without_improvement, c.cull_if_accuracy_drops_by) == (5, 2.0)
    assert (c.fossilize_min_contribution, c.confidence_z, c.embargo_epochs_after_cull) == (0.0, 1.645, 5)
    assert c.blueprint_penalty_on_cull == 4.0
    assert (c.blueprint_penalty_decay, c.blueprint_penalty_threshold) == (1.0, 3.0)
    assert (c.slot_choice, c.max_added_fraction, c.repeat_fossilized_blueprint) == ("cheapest", 1.0, True)
    assert c.advance_when_allowed is True and c.history_window == 10


def test_unknown_option_names_it_and_lists_the_allowed_ones():
    with pytest.raises(ConfigError) as info:
        HeuristicConfig.from_options({"plateau_epochs": 2})
    message = str(info.value)
    assert "policy 'heuristic': unknown option 'plateau_epochs'" in message
    assert "plateau_epochs_to_germinate" in message and "advance_when_allowed" in message


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("min_epochs_before_germinate", -1),
        ("plateau_epochs_to_germinate", True),
        ("plateau_epochs_to_germinate", 2.5),
        ("plateau_threshold", "0.5"),
        ("plateau_threshold", math.nan),
        ("smoothing", 0.0),
        ("blueprint_penalty_decay", 1.5),
        ("cull_if_accuracy_drops_by", 0),
        ("slot_choice", "middle"),
        ("advance_when_allowed", 1),
        ("fossilize_min_contribution", math.inf),
        ("decision_history", 0),
    ],
)
def test_bad_values_are_config_errors_naming_the_key(key, value):
    with pytest.raises(ConfigError, match=f"^policy 'heuristic' option '{key}' = .* is invalid; expected "):
        HeuristicConfig.from_options({key: value})


def test_options_reach_the_policy_and_its_tracker():
    options = {"plateau_threshold": 1.0, "history_window": 4, "smoothing": 1.0,
               "min_seed_improvement": 0.2, "fossilize_min_contribution": -1}
    p = HeuristicPolicy.from_context(context=context(options))
    assert p.config.fossilize_min_contribution == -1
    t = p.tracker.config
    assert (t.plateau_threshold, t.history_window, t.smoothing) == (1.0, 4, 1.0)
    assert t.min_seed_improvement == 0.2
    with pytest.raises(ConfigError, match="'typo'"):
        HeuristicPolicy.from_context(context=context({"typo": 1}))


@pytest.mark.parametrize(("key", "high"), [("envs", 1024), ("group_size", 1024), ("episode_length", 100_000),
                                           ("hidden", 4096), ("update_epochs", 10_000), ("minibatches", 1024),
                                           ("bc_epochs", 10_000), ("rounds", 100_000)])
def test_every_ppo_count_has_a_maximum(key, high):
    # envs = 10**9 exhausted memory; a count beyond any real use is refused before any work
    from esper_core.options import parse_options
    from esper_policies.ppo.config import PPOConfig

    with pytest.raises(ConfigError, match=rf"policy 'ppo' option '{key}' = {high + 1} is invalid; "
                                          rf"expected an integer ≥ \d+ and ≤ {high}$"):
        parse_options(PPOConfig, {key: high + 1}, owner="policy 'ppo'")
    given = {key: high, **({"envs": 1024} if key == "group_size" else {})}
    assert getattr(parse_options(PPOConfig, given, owner="policy 'ppo'"), key) == high


def test_run_refuses_a_huge_envs_before_any_work(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from esper_core.cli.main import build_cli
    from esper_core.plugins.manager import PluginSettings

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(build_cli(PluginSettings()), [
        "run", "--task", "micro", "--epochs", "1", "--no-compare-baseline", "--policy", "ppo", "--rounds", "1",
        "--envs", "1000000000", "--out", "r"])
    assert result.exit_code == 2, result.output
    assert result.output == ("Error: policy 'ppo' option 'envs' = 1000000000 is invalid; "
                             "expected an integer ≥ 1 and ≤ 1024\n")
    assert list(tmp_path.iterdir()) == []

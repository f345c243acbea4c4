import subprocess
import sys
import textwrap

from policy_testkit import context, mask, report

from esper_core.contracts import Policy, PolicySpec
from esper_core.plugins import PluginSettings, build_catalog, load_plugins
from esper_policies import plugin


def test_hook_returns_valid_specs_whose_factories_build_policies():
    specs = plugin.esper_register_policies()
    assert [s.name for s in specs] == ["heuristic", "random", "noop", "ppo", "iql"]
    assert [s.learned for s in specs] == [False, False, False, True, True]
    for spec in specs[:3]:
        assert isinstance(spec, PolicySpec) and spec.description
        policy = spec.factory(context=context(seed=1))
        assert isinstance(policy, Policy) and policy.name == spec.name
        policy.reset(episode=0)
        m = mask(germinate=[0])
        assert m.allows(policy.decide(report=report(1, 50.0), mask=m))


def test_entry_point_registers_the_policies_in_the_catalog():
    catalog = build_catalog(load_plugins(PluginSettings(allow=("policies",))))
    assert {"heuristic", "random", "noop", "ppo"} <= set(catalog.policies.names())
    assert catalog.policies.provider("heuristic").distribution == "esper-policies"
    assert not [f for f in catalog.failures if f.distribution == "esper-policies"]


def test_plugin_and_policies_do_not_import_torch():
    code = textwrap.dedent("""
        import sys
        import esper_policies.plugin as plugin
        from esper_core.contracts import PolicyContext
        assert "torch" not in sys.modules, "plugin import pulled in torch"
        assert "esper_policies.heuristic" not in sys.modules, "plugin import is not lazy"
        ctx = PolicyContext(slot_names=["a"], blueprint_keys=["cnn:x"], topology="cnn",
                            max_epochs=5, seed=0)
        for spec in plugin.esper_register_policies():
            if not spec.learned:
                spec.factory(context=ctx)
        assert "torch" not in sys.modules, "building a hand-written policy pulled in torch"
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_package_exports_load_lazily():
    import esper_policies

    assert esper_policies.HeuristicPolicy.name == "heuristic"
    assert "SignalTracker" in dir(esper_policies)
    try:
        esper_policies.Nope  # noqa: B018
    except AttributeError as exc:
        assert "Nope" in str(exc)
    else:
        raise AssertionError("unknown attribute did not raise")


def test_learned_policies_declare_their_training_flags_with_their_configs_defaults():
    import attrs

    from esper_policies.iql.config import IQLConfig
    from esper_policies.ppo.config import PPOConfig

    specs = {s.name: s for s in plugin.esper_register_policies()}
    for name, config in (("ppo", PPOConfig), ("iql", IQLConfig)):
        fields = attrs.fields_dict(config)
        for option in specs[name].training_options:
            assert option.name in fields, f"{name} declares {option.name}, which its config lacks"
            if fields[option.name].default is not attrs.NOTHING:
                assert option.default == fields[option.name].default, (name, option.name)
    assert [o.flag for o in specs["ppo"].training_options] == ["--rounds", "--envs", "--episode-length", "--workers",
                                                                  "--bc-dataset"]
    assert [o.flag for o in specs["iql"].training_options] == ["--dataset"]
    assert [o.name for o in specs["ppo"].training_options if o.extends_on_resume] == ["rounds"]


def test_the_default_baseline_and_comparison_policies_are_declared_here():
    roles = {s.name: s.roles for s in plugin.esper_register_policies()}
    assert [n for n, r in roles.items() if "default" in r] == ["heuristic"]
    assert [n for n, r in roles.items() if "baseline" in r] == ["noop"]
    assert [n for n, r in roles.items() if "comparison" in r] == ["heuristic", "random", "noop"]

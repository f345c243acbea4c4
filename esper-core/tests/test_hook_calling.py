"""Hooks are called through pluggy, one plugin at a time: specname, tryfirst/trylast, wrappers,
call monitoring and ``ESPER_TRACE_HOOKS`` tracing work, and a raising plugin is isolated."""

from __future__ import annotations

import types

import pytest

from esper_core import hookimpl, lazy
from esper_core.contracts import BlueprintSpec, PolicySpec
from esper_core.errors import PluginError
from esper_core.plugins import PluginSettings, build_catalog, load_plugins
from esper_core.plugins.manager import TRACE_LINE_LIMIT, TRACE_PREFIX
from esper_core.testing.distributions import run_esper


def _plugin(name: str, **hooks: object) -> types.ModuleType:
    module = types.ModuleType(name)
    for attribute, function in hooks.items():
        setattr(module, attribute, function)
    return module


def _policies(*names: str, **marks: bool):
    @hookimpl(**marks)
    def esper_register_policies():
        return [PolicySpec(name=n, factory=lazy("builtins:dict"), description=n) for n in names]

    return esper_register_policies


def _blueprint(name: str) -> BlueprintSpec:
    return BlueprintSpec(name=name, topology="toy", factory=lazy("builtins:dict"),
                         param_estimate=lambda w: w, description=name)


def _load(*plugins: types.ModuleType, **settings: bool):
    return load_plugins(PluginSettings(autoload=False, **settings), extra=[(p.__name__, p) for p in plugins])


def test_an_implementation_named_by_specname_contributes_and_is_listed():
    @hookimpl(specname="esper_register_blueprints")
    def my_blueprints():
        return [_blueprint("spec_block")]

    loaded = _load(_plugin("specplug", my_blueprints=my_blueprints))
    catalog = build_catalog(loaded)
    assert catalog.blueprints.provider("toy:spec_block").name == "specplug"
    assert catalog.contributions["specplug"] == {"blueprints": ["toy:spec_block"]}
    info = next(p for p in loaded.plugins if p.name == "specplug")
    assert loaded.hooks_of(info) == ["esper_register_blueprints"]


def test_tryfirst_and_trylast_order_the_calls_and_the_registry_otherwise_load_order():
    loaded = _load(
        _plugin("late", esper_register_policies=_policies("late", trylast=True)),
        _plugin("plain_a", esper_register_policies=_policies("plain_a")),
        _plugin("early", esper_register_policies=_policies("early", tryfirst=True)),
        _plugin("plain_b", esper_register_policies=_policies("plain_b")),
    )
    assert [info.name for info, _ in loaded.call_each("esper_register_policies")] == [
        "early", "plain_a", "plain_b", "late"]
    assert [spec.name for spec in build_catalog(loaded).policies] == ["early", "plain_a", "plain_b", "late"]


def test_a_duplicate_names_the_plugin_called_first_first():
    loaded = _load(_plugin("one", esper_register_policies=_policies("same")),
                   _plugin("two", esper_register_policies=_policies("same", tryfirst=True)))
    with pytest.raises(PluginError, match="provided by both two local and one local"):
        build_catalog(loaded)


def test_a_wrapper_wraps_its_own_plugins_call():
    @hookimpl(specname="esper_register_policies", wrapper=True)
    def wrap_policies():
        results = yield  # one list of specs per implementation
        return [*results, [PolicySpec(name="added_by_wrapper", factory=lazy("builtins:dict"), description="w")]]

    plugin = _plugin("wrapped", esper_register_policies=_policies("inner"), wrap_policies=wrap_policies)
    loaded = _load(plugin, _plugin("other", esper_register_policies=_policies("other")))
    catalog = build_catalog(loaded)
    assert not loaded.failures
    assert catalog.contributions["wrapped"]["policies"] == ["inner", "added_by_wrapper"]
    assert catalog.contributions["other"]["policies"] == ["other"]


def test_an_implementation_may_take_fewer_arguments_than_the_hook():
    added = []

    @hookimpl
    def esper_add_commands():
        added.append("called without cli")

    loaded = _load(_plugin("argless", esper_add_commands=esper_add_commands))
    loaded.call_each("esper_add_commands", cli=object())
    assert added == ["called without cli"] and not loaded.failures


def _raises():
    @hookimpl
    def esper_register_policies():
        raise RuntimeError("boom inside the hook")

    return esper_register_policies


def test_a_raising_plugin_is_dropped_whole_and_the_others_still_contribute():
    @hookimpl
    def esper_register_blueprints():
        return [_blueprint("from_broken")]

    broken = _plugin("broken", esper_register_blueprints=esper_register_blueprints,
                     esper_register_policies=_raises())
    loaded = _load(_plugin("before", esper_register_policies=_policies("before")), broken,
                   _plugin("after", esper_register_policies=_policies("after")))
    catalog = build_catalog(loaded)
    assert [spec.name for spec in catalog.policies] == ["before", "after"]
    assert "toy:from_broken" not in catalog.blueprints  # its earlier hook's blueprints go with it
    assert [(f.name, f.stage, f.error) for f in loaded.failures] == [
        ("broken", "esper_register_policies", "RuntimeError: boom inside the hook")]
    assert "broken" not in [p.name for p in loaded.plugins] and "broken" not in catalog.contributions


def test_strict_mode_makes_a_raising_hook_an_error_naming_the_plugin():
    loaded = _load(_plugin("broken", esper_register_policies=_raises()), strict=True)
    with pytest.raises(PluginError, match=r"plugin 'broken' from broken local failed \(esper_register_policies\)"):
        build_catalog(loaded)


def test_pluggy_call_monitoring_sees_each_plugins_call():
    loaded = _load(_plugin("a", esper_register_policies=_policies("a")),
                   _plugin("b", esper_register_policies=_policies("b")))
    seen = []
    loaded.pm.add_hookcall_monitoring(
        lambda hook_name, impls, kwargs: seen.append((hook_name, [loaded.pm.get_name(i.plugin) for i in impls])),
        lambda outcome, hook_name, impls, kwargs: None,
    )
    build_catalog(loaded)
    assert ("esper_register_policies", ["a:a"]) in seen and ("esper_register_policies", ["b:b"]) in seen


def test_trace_hooks_writes_pluggys_trace_to_stderr_readably(capsys):
    @hookimpl
    def esper_register_blueprints():
        return [_blueprint(f"block_{i}_{'x' * 40}") for i in range(20)]

    loaded = _load(_plugin("big", esper_register_blueprints=esper_register_blueprints),
                   _plugin("broken", esper_register_policies=_raises()), trace=True)
    build_catalog(loaded)
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert lines and all(line.startswith(TRACE_PREFIX) for line in lines)
    assert all(len(line) <= len(TRACE_PREFIX) + TRACE_LINE_LIMIT for line in lines)
    assert f"{TRACE_PREFIX}big:big.esper_register_blueprints() [plugin]" in lines
    assert f"{TRACE_PREFIX}  esper_register_blueprints [hook]" in lines  # pluggy's own tracer
    assert any(line.startswith(f"{TRACE_PREFIX}  finish esper_register_blueprints --> [[BlueprintSpec(")
               and line.endswith("...") for line in lines)
    assert (f"{TRACE_PREFIX}broken:broken.esper_register_policies() failed: RuntimeError: boom inside the hook "
            "[plugin]") in lines


def test_no_trace_without_the_switch(capsys):
    build_catalog(_load(_plugin("quiet", esper_register_policies=_policies("quiet"))))
    assert capsys.readouterr().err == ""


def test_trace_switch_comes_from_the_environment():
    assert PluginSettings.from_env({"ESPER_TRACE_HOOKS": "1"}).trace
    assert not PluginSettings.from_env({}).trace


def test_help_lists_the_commands_plugins_add():
    # Each plugin imports its command module inside esper_add_commands, never at import, and
    # none imports torch: test_cli checks `esper --help` leaves torch unimported.
    result = run_esper(["--help"])
    assert result.returncode == 0, result.stderr
    for command in ("report", "runs", "collect", "antipatterns"):
        assert f"  {command}" in result.stdout, command

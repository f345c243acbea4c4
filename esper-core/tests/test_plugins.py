"""Plugin loading: good, broken and duplicate plugins from throw-away distributions."""

from __future__ import annotations

import json
import sys

import pytest

from esper_core.errors import PluginError, UnknownNameError
from esper_core.plugins import PluginSettings, build_catalog, load_plugins
from esper_core.testing.distributions import run_esper

GOOD_PLUGIN = '''
from esper_core import hookimpl, lazy
from esper_core.contracts import BlueprintSpec

@hookimpl
def esper_register_blueprints():
    return [BlueprintSpec(name="toy_block", topology="toy", factory=lazy("builtins:dict"),
                          param_estimate=lambda w: 2 * w, description="a toy blueprint")]
'''

IMPORT_ERROR = "import definitely_not_a_module_xyz\n"
BAD_SIGNATURE = '''
from esper_core import hookimpl

@hookimpl
def esper_register_blueprints(unexpected_argument):
    return []
'''
UNKNOWN_HOOK = '''
from esper_core import hookimpl

@hookimpl
def esper_register_wormholes():
    return []
'''
RAISING = '''
from esper_core import hookimpl

@hookimpl
def esper_register_policies():
    raise RuntimeError("boom inside the hook")
'''
WRONG_TYPE = '''
from esper_core import hookimpl

@hookimpl
def esper_register_tasks():
    return ["not a TaskSpec"]
'''


@pytest.fixture
def isolated_path(monkeypatch, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    import importlib

    importlib.invalidate_caches()
    return site


def _load(isolated_path, plugin_dir, monkeypatch, env=None, **dists):
    for module, source in dists.items():
        plugin_dir(dist=f"esper-test-{module}", module=module, source=source)
    for key in ("ESPER_PLUGINS", "ESPER_DISABLE_PLUGIN_AUTOLOAD", "ESPER_STRICT_PLUGINS"):
        monkeypatch.delenv(key, raising=False)
    for name in dists:
        sys.modules.pop(name, None)
    return load_plugins(PluginSettings.from_env(env or {}))


def test_good_plugin_contributes_components(isolated_path, plugin_dir, monkeypatch):
    loaded = _load(isolated_path, plugin_dir, monkeypatch, toyplug=GOOD_PLUGIN)
    names = [p.name for p in loaded.plugins]
    assert "core" in names and "toyplug" in names
    catalog = build_catalog(loaded)
    assert catalog.blueprints.get("toy:toy_block").param_estimate(4) == 8
    assert catalog.contributions["toyplug"] == {"blueprints": ["toy:toy_block"]}
    info = catalog.blueprints.provider("toy:toy_block")
    assert (info.distribution, info.version) == ("esper-test-toyplug", "1.0.0")


@pytest.mark.parametrize(
    ("source", "stage", "needle"),
    [
        (IMPORT_ERROR, "import", "definitely_not_a_module_xyz"),
        (BAD_SIGNATURE, "register", "unexpected_argument"),
        (UNKNOWN_HOOK, "register", "esper_register_wormholes"),
        (RAISING, "esper_register_policies", "boom inside the hook"),
        (WRONG_TYPE, "esper_register_tasks", "list of TaskSpec"),
    ],
    ids=["import-error", "bad-signature", "unknown-hook", "raising-hook", "wrong-return-type"],
)
def test_broken_plugin_is_reported_and_skipped(isolated_path, plugin_dir, monkeypatch, source, stage, needle):
    loaded = _load(isolated_path, plugin_dir, monkeypatch, brokenplug=source, toyplug=GOOD_PLUGIN)
    catalog = build_catalog(loaded)
    failures = [f for f in loaded.failures if f.name == "brokenplug"]
    assert len(failures) == 1
    failure = failures[0]
    assert failure.stage == stage
    assert needle in failure.error
    assert (failure.distribution, failure.version) == ("esper-test-brokenplug", "1.0.0")
    assert "brokenplug" not in [p.name for p in loaded.plugins]
    # the others keep working
    assert "toy:toy_block" in catalog.blueprints
    assert len(catalog.gates) == 6


def test_strict_mode_raises_naming_the_plugin(isolated_path, plugin_dir, monkeypatch):
    with pytest.raises(PluginError, match="brokenplug.*esper-test-brokenplug 1.0.0"):
        _load(isolated_path, plugin_dir, monkeypatch, env={"ESPER_STRICT_PLUGINS": "1", "ESPER_PLUGINS": "brokenplug"},
              brokenplug=IMPORT_ERROR)


def test_strict_mode_covers_hook_failures(isolated_path, plugin_dir, monkeypatch):
    loaded = _load(isolated_path, plugin_dir, monkeypatch,
                   env={"ESPER_STRICT_PLUGINS": "true", "ESPER_PLUGINS": "brokenplug"}, brokenplug=RAISING)
    with pytest.raises(PluginError, match="boom inside the hook"):
        build_catalog(loaded)


def test_allow_list_loads_only_named_plugins(isolated_path, plugin_dir, monkeypatch):
    loaded = _load(isolated_path, plugin_dir, monkeypatch, env={"ESPER_PLUGINS": "toyplug"},
                   toyplug=GOOD_PLUGIN, brokenplug=IMPORT_ERROR)
    assert sorted(p.name for p in loaded.plugins) == ["core", "toyplug"]
    assert loaded.failures == []


def test_allow_list_accepts_distribution_names(isolated_path, plugin_dir, monkeypatch):
    loaded = _load(isolated_path, plugin_dir, monkeypatch, env={"ESPER_PLUGINS": "esper-test-toyplug"},
                   toyplug=GOOD_PLUGIN)
    assert "toyplug" in [p.name for p in loaded.plugins]


def test_disable_autoload_keeps_only_builtins(isolated_path, plugin_dir, monkeypatch):
    loaded = _load(isolated_path, plugin_dir, monkeypatch, env={"ESPER_DISABLE_PLUGIN_AUTOLOAD": "1"},
                   toyplug=GOOD_PLUGIN)
    assert [p.name for p in loaded.plugins] == ["core"]
    catalog = build_catalog(loaded)
    assert len(catalog.alpha_schedules) == 3 and len(catalog.blueprints) == 0


def test_duplicate_component_names_both_distributions(isolated_path, plugin_dir, monkeypatch):
    loaded = _load(isolated_path, plugin_dir, monkeypatch, toyplug=GOOD_PLUGIN, twinplug=GOOD_PLUGIN)
    with pytest.raises(PluginError) as info:
        build_catalog(loaded)
    message = str(info.value)
    assert "duplicate blueprint 'toy:toy_block'" in message
    assert "esper-test-toyplug 1.0.0" in message and "esper-test-twinplug 1.0.0" in message


def test_unknown_name_lists_known_and_suggests(isolated_path, plugin_dir, monkeypatch):
    catalog = build_catalog(_load(isolated_path, plugin_dir, monkeypatch, toyplug=GOOD_PLUGIN))
    with pytest.raises(UnknownNameError) as info:
        catalog.blueprints.resolve("toy_blok", "toy")
    assert "unknown toy blueprint 'toy_blok' (did you mean 'toy_block'?)" in str(info.value)
    with pytest.raises(UnknownNameError, match="known alpha schedules: cosine, linear, tanh"):
        catalog.alpha_schedules.get("sigmoid")


def test_cli_lists_broken_plugin_and_keeps_working(plugin_dir, tmp_path):
    site = plugin_dir(dist="esper-test-brokenplug", module="brokenplug", source=IMPORT_ERROR)
    result = run_esper(["plugins", "--json"], extra_path=site)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert any(f["name"] == "brokenplug" and f["stage"] == "import" for f in data["failures"])
    assert {"esper-core", "esper-policies"} <= {p["distribution"] for p in data["plugins"]}
    blueprints = run_esper(["blueprints", "--json"], extra_path=site)
    assert blueprints.returncode == 0, blueprints.stderr
    assert "brokenplug" in blueprints.stderr  # reported as a warning, not fatal


def test_cli_strict_mode_exits_non_zero_naming_plugin(plugin_dir):
    site = plugin_dir(dist="esper-test-brokenplug", module="brokenplug", source=IMPORT_ERROR)
    only = {"ESPER_PLUGINS": "brokenplug,policies"}
    for args, env in ((["plugins"], {"ESPER_STRICT_PLUGINS": "1"}), (["--strict-plugins", "plugins"], {})):
        result = run_esper(args, extra_path=site, env={**only, **env})
        assert result.returncode == 2
        assert "brokenplug" in result.stderr and "Traceback" not in result.stderr


def test_cli_duplicate_is_an_error_naming_both(plugin_dir):
    plugin_dir(dist="esper-test-toyplug", module="toyplug", source=GOOD_PLUGIN)
    site = plugin_dir(dist="esper-test-twinplug", module="twinplug", source=GOOD_PLUGIN)
    result = run_esper(["blueprints"], extra_path=site)
    assert result.returncode == 2
    assert "esper-test-toyplug" in result.stderr and "esper-test-twinplug" in result.stderr
    assert "Traceback" not in result.stderr


def test_trace_hooks_writes_calls_to_stderr(plugin_dir):
    site = plugin_dir(dist="esper-test-toyplug", module="toyplug", source=GOOD_PLUGIN)
    result = run_esper(["plugins"], extra_path=site, env={"ESPER_TRACE_HOOKS": "1"})
    assert result.returncode == 0
    assert "[esper hooks]" in result.stderr and "esper_add_commands" in result.stderr


EXITS_AT_IMPORT = "import sys\nsys.exit(3)\n"
BASE_EXCEPTION_AT_IMPORT = "class Escape(BaseException):\n    pass\n\nraise Escape('not an Exception')\n"
EXITS_IN_HOOK = '''
import sys
from esper_core import hookimpl

@hookimpl
def esper_register_blueprints():
    sys.exit("leaving from a hook")
'''


@pytest.mark.parametrize(("source", "stage", "needle"), [
    (EXITS_AT_IMPORT, "import", "SystemExit: called sys.exit(3)"),
    (BASE_EXCEPTION_AT_IMPORT, "import", "Escape: not an Exception"),
    (EXITS_IN_HOOK, "esper_register_blueprints", "sys.exit('leaving from a hook')"),
], ids=["sys-exit-at-import", "base-exception-at-import", "sys-exit-in-hook"])
def test_a_plugin_leaving_through_base_exception_is_isolated(isolated_path, plugin_dir, monkeypatch, source,
                                                             stage, needle):
    loaded = _load(isolated_path, plugin_dir, monkeypatch, brokenplug=source, toyplug=GOOD_PLUGIN)
    catalog = build_catalog(loaded)
    failures = [f for f in loaded.failures if f.name == "brokenplug"]
    assert [(f.stage, needle in f.error) for f in failures] == [(stage, True)]
    assert "toy:toy_block" in catalog.blueprints


def test_strict_mode_names_a_plugin_that_exits_at_import(isolated_path, plugin_dir, monkeypatch):
    with pytest.raises(PluginError, match=r"brokenplug.*SystemExit: called sys.exit\(3\)"):
        _load(isolated_path, plugin_dir, monkeypatch, env={"ESPER_STRICT_PLUGINS": "1", "ESPER_PLUGINS": "brokenplug"},
              brokenplug=EXITS_AT_IMPORT)


def test_cli_keeps_working_when_a_plugin_exits_at_import(plugin_dir):
    site = plugin_dir(dist="esper-test-brokenplug", module="brokenplug", source=EXITS_AT_IMPORT)
    result = run_esper(["blueprints", "--json"], extra_path=site)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) and "brokenplug" in result.stderr
    strict = run_esper(["--strict-plugins", "blueprints"], extra_path=site, env={"ESPER_PLUGINS": "brokenplug"})
    assert strict.returncode == 2 and "sys.exit(3)" in strict.stderr and "Traceback" not in strict.stderr


RAISING_COMMAND = '''
import click
from esper_core import hookimpl

@hookimpl
def esper_add_commands(cli):
    @cli.command("boom")
    def boom():
        """Fails."""
        {}["missing key"]
'''


def test_cli_names_plugin_code_that_raises_in_its_command(plugin_dir):
    site = plugin_dir(dist="esper-test-boomplug", module="boomplug", source=RAISING_COMMAND)
    result = run_esper(["boom"], extra_path=site)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert "plugin code boomplug.esper_add_commands.<locals>.boom (from esper-test-boomplug) raised: " \
           "KeyError: 'missing key'" in result.stderr

"""The blueprint declaration helper, and every installed blueprint's factory and estimate.

Factories are ``"module:attr"`` strings imported only when a seed is built, so a misspelt one
would pass every listing and fail only inside a run; the catalog test resolves them all.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from esper_core.blueprint_catalog import BlueprintEntry, check_width, declare_blueprints
from esper_core.lazy import LazyCallable
from esper_core.plugins import PluginSettings, build_catalog, load_plugins


def _entry(**overrides: object) -> BlueprintEntry:
    fields: dict[str, object] = dict(name="block", index=5, factory="blocks:Block", estimate=lambda w: 2 * w,
                                     description="a block")
    fields.update(overrides)
    return BlueprintEntry(**fields)  # type: ignore[arg-type]


def _installed_blueprints() -> list:
    catalog = build_catalog(load_plugins(PluginSettings(strict=True)))
    specs = [spec for topology in catalog.blueprints.topologies() for spec in catalog.blueprints.for_topology(topology)]
    if not specs:  # pragma: no cover - only when esper-core is installed alone
        pytest.skip("no blueprint distribution is installed")
    return specs


def test_every_installed_blueprint_resolves_its_factory_and_prices_itself() -> None:
    for spec in _installed_blueprints():
        try:
            factory = spec.factory.resolve() if isinstance(spec.factory, LazyCallable) else spec.factory
        except (ImportError, AttributeError) as exc:
            pytest.fail(f"{spec.key}: its factory {spec.factory!r} does not resolve: {exc}")
        assert callable(factory), spec.key
        for width in (1, 16):
            params = spec.param_estimate(width)
            # 0 is a real count (the identity control seed has no parameters).
            assert isinstance(params, int) and not isinstance(params, bool) and params >= 0, (spec.key, width, params)


def test_declared_specs_carry_every_field_and_a_lazy_factory_into_the_package() -> None:
    estimate = lambda w: 3 * w  # noqa: E731
    [spec] = declare_blueprints(topology="toy", factories="toy_pkg.blueprints", entries=[_entry(
        estimate=estimate, identity_at_init=True, is_antipattern=True, tokens=["A", "B"], paper="a paper",
        metadata={"family": "blocks"})])
    assert (spec.key, spec.action_index, spec.description, spec.paper) == ("toy:block", 5, "a block", "a paper")
    assert spec.identity_at_init and spec.is_antipattern and spec.tokens == ("A", "B")
    assert spec.metadata == {"family": "blocks"}
    assert spec.param_estimate is estimate
    assert isinstance(spec.factory, LazyCallable) and spec.factory.path == "toy_pkg.blueprints.blocks:Block"
    # Nothing is imported until the factory is resolved, and a misspelt path fails there.
    with pytest.raises(ModuleNotFoundError, match="toy_pkg"):
        spec.factory.resolve()


def test_defaults_match_a_plain_blueprint_spec() -> None:
    [spec] = declare_blueprints(topology="toy", factories="pkg", entries=[_entry(index=None)])
    assert spec.action_index is None and spec.tokens is None and spec.paper is None and spec.metadata == {}
    assert not spec.identity_at_init and not spec.is_antipattern


@pytest.mark.parametrize("path", ["blocks", "blocks:", ":Block", "blocks Block", "blocks:Block:x", 3])
def test_a_factory_that_is_not_module_attr_is_refused_at_declaration(path: object) -> None:
    with pytest.raises(ValueError, match=r"BlueprintEntry.factory must look like 'module:attr'"):
        _entry(factory=path)


def test_a_non_callable_estimate_is_refused() -> None:
    with pytest.raises(TypeError, match="estimate must be callable"):
        _entry(estimate=12)


@pytest.mark.parametrize("package", ["", "pkg:blocks", "pkg..blocks", None])
def test_a_factories_package_that_is_not_a_dotted_name_is_refused(package: object) -> None:
    with pytest.raises(ValueError, match="factories must be a dotted package name"):
        declare_blueprints(topology="toy", factories=package, entries=[_entry()])  # type: ignore[arg-type]


def test_spec_validation_still_applies() -> None:
    with pytest.raises(ValueError, match="action_index"):
        declare_blueprints(topology="toy", factories="pkg", entries=[_entry(index=34)])


@pytest.mark.parametrize("width", [0, -3, True, 1.5, "8", None])
def test_check_width_refuses_what_no_blueprint_can_build(width: object) -> None:
    with pytest.raises(ValueError, match=r"width must be an integer >= 1, got"):
        check_width(width)  # type: ignore[arg-type]


def test_check_width_returns_a_valid_width() -> None:
    assert check_width(1) == 1 and check_width(64) == 64


def test_the_helper_imports_no_torch() -> None:
    code = "import sys, esper_core.blueprint_catalog; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

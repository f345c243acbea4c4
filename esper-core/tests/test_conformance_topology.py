"""The blueprint conformance kit asks the topology's plugin for its input layout."""

from __future__ import annotations

import pytest

from esper_core.contracts import BlueprintSpec, TopologySpec
from esper_core.testing.conformance import BlueprintConformance, installed_topology


def _identity(*, width):
    import torch

    return torch.nn.Identity()


SPEC = BlueprintSpec(name="same", topology="flat", factory=_identity, param_estimate=lambda w: 0,
                     description="identity on a topology no plugin installs", identity_at_init=True)


def _flat_input(*, width, size, batch, generator):
    import torch

    return torch.randn(batch, width, generator=generator)


class TestADeclaredTopologyFeedsTheKit(BlueprintConformance):
    spec = SPEC
    topology = TopologySpec(name="flat", description="vectors", example_input=_flat_input)

    def test_inputs_have_the_declared_layout(self):
        assert tuple(self.make_input(4, 7).shape) == (2, 4)


def test_the_installed_topologies_give_their_layouts():
    assert tuple(installed_topology("cnn").example_input(width=3, size=4, batch=2).shape) == (2, 3, 4, 4)
    assert tuple(installed_topology("transformer").example_input(width=3, size=4, batch=2).shape) == (2, 4, 3)


def test_an_unknown_topology_says_how_to_provide_one():
    class Unknown(BlueprintConformance):
        spec = SPEC

    with pytest.raises(LookupError, match="no installed plugin declares the topology 'flat'.*override make_input"):
        Unknown().make_input(4, 2)

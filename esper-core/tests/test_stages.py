import itertools

import pytest

from esper_core.contracts import TRANSITIONS, SeedStage, can_transition, check_transition
from esper_core.errors import InvalidTransitionError

HAPPY = [SeedStage.DORMANT, SeedStage.GERMINATED, SeedStage.TRAINING, SeedStage.BLENDING,
         SeedStage.SHADOWING, SeedStage.PROBATIONARY, SeedStage.FOSSILIZED]
VALID = {
    *itertools.pairwise(HAPPY),
    *((s, SeedStage.CULLED) for s in HAPPY[1:-1]),
    (SeedStage.CULLED, SeedStage.EMBARGOED),
    (SeedStage.EMBARGOED, SeedStage.RESETTING),
    (SeedStage.RESETTING, SeedStage.DORMANT),
    (SeedStage.UNKNOWN, SeedStage.DORMANT),
}


def test_eleven_stages():
    assert len(SeedStage) == 11


@pytest.mark.parametrize(("src", "dst"), list(itertools.product(SeedStage, SeedStage)))
def test_every_pair_matches_the_design_table(src, dst):
    expected = (src, dst) in VALID
    assert can_transition(src, dst) is expected
    if expected:
        check_transition(src, dst)
    else:
        with pytest.raises(InvalidTransitionError) as info:
            check_transition(src, dst)
        assert src.name in str(info.value) and dst.name in str(info.value)


def test_fossilized_is_terminal():
    assert TRANSITIONS[SeedStage.FOSSILIZED] == frozenset()
    with pytest.raises(InvalidTransitionError, match="terminal"):
        check_transition(SeedStage.FOSSILIZED, SeedStage.CULLED)

"""Worker for the two-rank gloo test (a module of its own so spawned processes can import it)."""

from __future__ import annotations

import torch
import torch.distributed as dist


def run(rank: int, init_file: str, world_size: int) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank,
                            world_size=world_size)
    try:
        torch.set_num_threads(1)
        from kasmina_helpers import build_model, linear_blueprint

        from esper_core.contracts import SeedStage
        from esper_core.errors import EsperError
        from esper_core.kasmina import agree, agree_all, agree_min, is_distributed

        assert is_distributed()
        assert agree(True) is True
        assert agree(rank == 0) is False
        assert agree_min(rank + 5) == 5
        assert agree_all([True, rank == 1, False]) == [True, False, False]

        # Rank 1 has a budget too small for the blueprint: both ranks must refuse.
        model = build_model(param_budget=1000 if rank == 0 else 10)
        result = model.germinate("p0", linear_blueprint(), epoch=0)
        assert not result.passed
        assert model.slot("p0").stage is SeedStage.DORMANT
        if rank == 0:
            assert "another rank" in result.reason
        # Same budget everywhere: both germinate.
        model = build_model(param_budget=1000)
        assert model.germinate("p0", linear_blueprint(), epoch=0).passed
        # Ranks issuing different commands is an error on every rank.
        try:
            if rank == 0:
                model.cull("p0", epoch=0, reason="test")
            else:
                model.advance("p0", epoch=0)
        except EsperError as exc:
            assert "disagree" in str(exc)
        else:
            raise AssertionError("disagreeing commands were accepted")
    finally:
        dist.destroy_process_group()

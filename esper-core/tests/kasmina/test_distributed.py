import pytest
import torch.distributed as dist
import torch.multiprocessing as mp
from kasmina_dist_worker import run

from esper_core.kasmina import agree, agree_all, agree_min, is_distributed


def test_identity_without_process_group():
    assert not is_distributed()
    assert agree(True) is True and agree(False) is False
    assert agree_min(7) == 7 and agree_all([True, False]) == [True, False]


@pytest.mark.distributed
@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="needs gloo")
def test_two_gloo_ranks_agree(tmp_path):
    mp.spawn(run, args=(str(tmp_path / "init"), 2), nprocs=2, join=True)

"""Two gloo processes evaluate exactly what one process does: same samples, same numbers."""

import json
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import gvae.evaluation.runner as ev
from tests.launching import free_port
from tests.test_eval import TinyModel

RUN = {"metrics": ["mmd", "msssim", "recon", "elbo", "iwae"], "num_samples": 150, "iwae_k": 3, "seed": 4,
       "msssim_pairs": 20}


def _worker(rank: int, world: int, port: int, out: str, real: torch.Tensor) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        results = ev.evaluate(TinyModel().eval(), real, None, **RUN)
        if rank == 0:
            with open(out, "w") as f:
                json.dump(results, f)
        else:
            assert results == {}
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_processes_give_the_results_of_one(tmp_path):
    real = TinyModel().sample(130, generator=torch.Generator().manual_seed(9))  # 3 blocks: ranks get 2 and 1
    port = free_port()
    out = tmp_path / "rank0.json"
    mp.spawn(_worker, args=(2, port, str(out), real), nprocs=2, join=True)
    single = json.loads(json.dumps(ev.evaluate(TinyModel().eval(), real, None, **RUN)))
    assert json.loads(out.read_text()) == single

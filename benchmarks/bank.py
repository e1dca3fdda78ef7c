"""Adapter tuning and bank collection speed on ml-100k, side by side in one run.

    python benchmarks/bank.py [--steps 300] [--grid-step 0.05]
    python benchmarks/bank.py --workers 1 2      # bank collection on local Ray vs in-process (benchmarks/bank_ray.py)

Prints seconds to tune one adapter with cached backbone states vs re-running the frozen backbone every step, their
ratio, and seconds to collect a 21-preference x 4-checkpoint bank. Targets (2 CPU cores): one adapter <= 5 s,
bank <= 2 min.
"""
import argparse
import shutil
import tempfile
import time

import torch
from common import backbone_run, machine, print_table

from recbole_paragon import pipeline
from recbole_paragon.training.bank import collect_bank
from recbole_paragon.objectives.base import CachedBatch


def live_batches(trainer, train_data):
    """Training batches whose backbone states are computed on the fly (what tuning costs without the cache)."""
    interactions = train_data._dataset.inter_feat
    model = trainer.model

    def draw(rng: torch.Generator) -> CachedBatch:
        interaction = interactions[torch.randint(len(interactions), (trainer.batch_size,), generator=rng)]
        hidden = model.sequence_representation(interaction)
        scores = model.score_representation(hidden)
        scores[:, 0] = -torch.inf
        candidates = scores.topk(trainer.objectives[-1].num_candidates, dim=1).indices
        return CachedBatch(hidden, interaction[model.ITEM_ID], interaction[model.USER_ID], candidates)

    return draw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=None, help="adapter steps (default: config adapter_steps)")
    parser.add_argument("--grid-step", type=float, default=0.05)
    parser.add_argument("--workers", type=int, nargs="+", default=None, help="time Ray collection (bank_ray.py)")
    args, _ = parser.parse_known_args()
    if args.workers:
        import bank_ray

        return bank_ray.main()
    overrides = {"adapter_steps": args.steps} if args.steps else {}
    config, _, splits, backbone = backbone_run(overrides=overrides)
    start = time.perf_counter()
    trainer = pipeline.adapter_trainer(config, backbone["model"], *splits)
    cache_seconds = time.perf_counter() - start
    preference = [0.5, 0.5]
    start = time.perf_counter()
    trainer.tune(preference)
    cached = time.perf_counter() - start
    start = time.perf_counter()
    trainer.tune(preference, batches=live_batches(trainer, splits[0]))
    uncached = time.perf_counter() - start
    directory = tempfile.mkdtemp(prefix="bank-benchmark-")
    grid = torch.tensor([[round(i * args.grid_step, 6), round(1 - i * args.grid_step, 6)]
                         for i in range(int(round(1 / args.grid_step)) + 1)])
    start = time.perf_counter()
    bank = collect_bank(trainer, config, directory, show_progress=False, grid=grid)
    bank_seconds = time.perf_counter() - start
    shutil.rmtree(directory)
    print(f"machine: {machine()}; ml-100k, {len(trainer.caches['train'])} training sequences, "
          f"{trainer.steps} steps x batch {trainer.batch_size} per adapter")
    print_table([
        ["cache all splits once", f"{cache_seconds:.2f}", ""],
        ["tune one adapter, cached states", f"{cached:.2f}", "target <= 5 s"],
        ["tune one adapter, backbone re-run every step", f"{uncached:.2f}", f"cached is {uncached / cached:.1f}x faster"],
        [f"bank: {len(grid)} preferences x {len(bank) // len(grid)} checkpoints = {len(bank)} adapters",
         f"{bank_seconds:.1f}", "target <= 120 s"],
    ], ["what", "seconds", "note"])


if __name__ == "__main__":
    main()

"""Adapter-bank collection on a local Ray vs in-process, on ml-100k, side by side in one run.

    python benchmarks/bank_ray.py [--workers 1 2] [--steps 300] [--grid-step 0.05] [--seeds 0]

Collects the same bank (grid preferences x seeds, ``bank_checkpoints`` kept) in-process, then on a local Ray with each
``--workers`` count (one Ray task per tuning run, backbone states shipped once), and prints seconds and the speed-up
over the in-process collection, with and without Ray's start-up, and how far each Ray bank is from the in-process
one (largest absolute difference of the adapter vectors).
"""
import argparse
import shutil
import tempfile
import time

import torch
from common import backbone_run, machine, print_table

from recbole_paragon import pipeline
from recbole_paragon.training.bank import collect_bank
from recbole_paragon.training.distributed import collect_bank_ray, ray_connection


def timed_bank(trainer, config, grid, collect):
    directory = tempfile.mkdtemp(prefix="bank-ray-benchmark-")
    try:
        start = time.perf_counter()
        bank = collect(trainer, config, directory, show_progress=False, grid=grid)
        return time.perf_counter() - start, bank
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="Ray worker counts to time")
    parser.add_argument("--steps", type=int, default=None, help="adapter steps (default: config adapter_steps)")
    parser.add_argument("--grid-step", type=float, default=0.05)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="bank_seeds")
    args = parser.parse_args()
    overrides = {"adapter_steps": args.steps} if args.steps else {}
    config, _, splits, backbone = backbone_run(overrides=overrides)
    trainer = pipeline.adapter_trainer(config, backbone["model"], *splits)
    config["bank_seeds"] = args.seeds
    grid = torch.tensor([[round(i * args.grid_step, 6), round(1 - i * args.grid_step, 6)]
                         for i in range(int(round(1 / args.grid_step)) + 1)])
    runs = len(grid) * len(args.seeds)

    serial_seconds, serial = timed_bank(trainer, config, grid, collect_bank)
    rows = [["in-process (ray_address: ~)", "", f"{serial_seconds:.1f}", "1.00x", "1.00x", ""]]
    for workers in args.workers:
        config["ray_address"], config["num_workers"] = "local", workers
        start = time.perf_counter()
        with ray_connection("local", workers, 10):
            startup = time.perf_counter() - start
            seconds, bank = timed_bank(trainer, config, grid, collect_bank_ray)
        difference = (torch.stack(bank.vectors) - torch.stack(serial.vectors)).abs().max().item()
        rows.append([f"local Ray, {workers} worker{'s' if workers > 1 else ''}", f"{startup:.1f}", f"{seconds:.1f}",
                     f"{serial_seconds / seconds:.2f}x", f"{serial_seconds / (seconds + startup):.2f}x",
                     f"{difference:.1e}"])
    config["ray_address"] = None
    print(f"machine: {machine()}; ml-100k, {len(trainer.caches['train'])} training sequences, {runs} tuning runs "
          f"({len(grid)} preferences x {len(args.seeds)} seeds) = {len(serial)} adapters, {trainer.steps} steps x "
          f"batch {trainer.batch_size} each")
    print_table(rows, ["bank collection", "Ray start s", "bank s", "speed-up", "speed-up incl. start",
                       "max |diff| vs in-process"])


if __name__ == "__main__":
    main()

"""Bank time per preference against K: does a tuning run cost more than its objectives' own cost?

    python benchmarks/bank_cost.py [--dataset ml-100k] [--objectives accuracy,diversity,exposure,calibration,novelty]

One trainer with every objective; for K = 1 ... len(objectives) the first K objectives tune one adapter at the
centroid of their simplex (the bank's inner loop, ``adapter_steps`` steps, no checkpoint evaluation), and each
objective X after the first is timed alone beside accuracy (w = (.5, .5)): its own cost is that run minus the
accuracy-only run. The prediction for K objectives is accuracy alone plus the own costs of the K - 1 others; the
table prints measured / predicted (1.00: K adds nothing beyond the objectives' own cost). Every run is repeated
``--repeats`` times, interleaved, and the fastest kept (the least disturbed by other work on the machine).
"""
import argparse
import os
import time
from typing import Dict, List, Tuple

import torch
from common import backbone_run, machine, print_table

from recbole_paragon import pipeline
from recbole_paragon.settings import torch_threads


def tuning_seconds(trainer, objectives: List, weights: List[float]) -> float:
    """Seconds of one tuning run on ``objectives`` at ``weights`` (scales computed before the clock starts)."""
    trainer.objectives, trainer._scales = objectives, None
    trainer.loss_scales()
    start = time.perf_counter()
    with torch_threads(trainer.threads):  # as tune() runs it
        trainer._tune(torch.tensor(weights), 0, trainer.steps, (), False, None)
    return time.perf_counter() - start


def runs(trainer) -> Dict[Tuple[str, ...], Tuple[List, List[float]]]:
    """The runs to time: the first K objectives at their centroid, and accuracy + each other objective."""
    everything, names = list(trainer.objectives), list(trainer.objective_names)
    plan = {tuple(names[:k]): (everything[:k], [1.0 / k] * k) for k in range(1, len(everything) + 1)}
    for objective, name in zip(everything[1:], names[1:]):
        plan[(names[0], name)] = ([everything[0], objective], [0.5, 0.5])
    return plan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--model", default="ParagonSASRec")
    parser.add_argument("--objectives", default="accuracy,diversity,exposure,calibration,novelty")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    names = args.objectives.split(",")
    config, _, splits, backbone = backbone_run(args.model, args.dataset, {"objectives": names})
    trainer = pipeline.adapter_trainer(config, backbone["model"], *splits)
    plan, seconds = runs(trainer), {}
    for _ in range(args.repeats):
        for key, (objectives, weights) in plan.items():
            seconds[key] = min(seconds.get(key, float("inf")), tuning_seconds(trainer, objectives, weights))
    alone = seconds[(names[0],)]
    own = {name: seconds[(names[0], name)] - alone for name in names[1:]}
    print(f"machine: {machine()}; load {os.getloadavg()[0]:.1f}; dataset {args.dataset}; "
          f"{trainer.steps} steps per run, fastest of {args.repeats}")
    print_table([[f"+ {name}", f"{seconds[(names[0], name)]:.2f}", f"{own[name]:+.2f}"] for name in names[1:]],
                [f"{names[0]} + objective", "s (w = .5, .5)", f"own cost (s beyond {names[0]} alone {alone:.2f})"])
    print()
    rows = []
    for k in range(1, len(names) + 1):
        predicted = alone + sum(own[name] for name in names[1:k])
        measured = seconds[tuple(names[:k])]
        rows.append([k, ",".join(names[:k]), f"{measured:.2f}", f"{predicted:.2f}", f"{measured / predicted:.2f}"])
    print_table(rows, ["K", "objectives", "s measured", "s predicted (own costs)", "measured / predicted"])


if __name__ == "__main__":
    main()

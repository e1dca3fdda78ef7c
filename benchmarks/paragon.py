"""The whole of Paragon on a dataset, every method side by side, over generator seeds (mean ± sd).

    python benchmarks/paragon.py --dataset=ml-100k [--model=ParagonGRU4Rec] [--objectives=accuracy,diversity,fairness]
                                 [--sparse] [--retrain] [--seeds 0 1 2] [--group_by activity] [--fairness_loss gap]

One backbone and one bank are shared; each generator seed (``generator_seed``) trains its own generators in its
own run directory and evaluates every method, and the summary gives mean ± sd over the seeds of the HV ratio to
re-tuning, Spearman over the grid and along the rays, and fidelity in units of the seed-noise floor.

Dense bank: w1 in {0, .05, ..., 1}, tested at w1 = i/10 (held out of generator training). ``--sparse``: bank every
0.2, tested at the mid-gap points 0.1, 0.3, ..., 0.9, where lookups cannot simply return a neighbour. ``--retrain``
adds the whole model retrained from scratch on the weighted loss at w = (.5, .5) (``--retrain-all``: also at (1, 0)
and (0, 1)), for ``evaluation_retrain_epochs`` epochs.
"""
import argparse
import json
import os

import numpy as np
from common import BENCH_DIR, machine, parsed_settings, print_table

from recbole_paragon import run_recbole_paragon
from recbole_paragon.artifacts import (BACKBONE_CHECKPOINT, BACKBONE_METADATA, BACKBONE_STATE, BANK_METADATA,
                                       BANK_TENSORS)
from recbole_paragon.evaluation import summary_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--model", default="ParagonSASRec")
    parser.add_argument("--objectives", default="accuracy,diversity")
    parser.add_argument("--sparse", action="store_true")
    parser.add_argument("--retrain", action="store_true")
    parser.add_argument("--retrain-all", action="store_true")
    parser.add_argument("--retrain-epochs", type=int, default=10)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="generator training seeds")
    parser.add_argument("--group_by", default=None)
    parser.add_argument("--fairness_loss", default=None)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="more settings, e.g. finetune_steps=1000 (named in the run directories)")
    args = parser.parse_args()
    objectives = args.objectives.split(",")
    overrides = {"checkpoint_dir": BENCH_DIR, "objectives": objectives, "state": "WARNING"}
    overrides.update({k: v for k, v in (("group_by", args.group_by), ("fairness_loss", args.fairness_loss)) if v})
    tag = f"{args.model}-{args.dataset}"
    if len(objectives) > 2:
        overrides.update(bank_grid_step=0.1, evaluation_grid_step=0.25)  # 66 bank, 15 test preferences
    if objectives != ["accuracy", "diversity"]:  # another bank: its own run directory
        tag += "-" + "-".join(objectives)
    if args.sparse:
        overrides.update(bank_grid_step=0.2, evaluation_grid_step=0.2, evaluation_grid_offset=0.1)
        tag += "-sparse"
    tag += "".join(f"-{v}" for v in (args.group_by, args.fairness_loss) if v)
    overrides.update(parsed_settings(args.set))
    args.bank_tag = tag  # settings of --set that do not change the bank reuse the bank of the run without them
    tag += "".join(f"-{item}" for item in args.set)
    if args.retrain or args.retrain_all:
        overrides["evaluation_retrain_preferences"] = [[0.5, 0.5]] + ([[1.0, 0.0], [0.0, 1.0]] if args.retrain_all
                                                                     else [])
        overrides["evaluation_retrain_epochs"] = args.retrain_epochs
    reports = [run_seed(args, overrides, tag, seed) for seed in args.seeds]
    print(f"\nmachine: {machine()}; {tag}; generator seeds {args.seeds}; values mean ± sd over seeds")
    print_table(seed_summary(reports), ["method", "HV / retune", *[f"Spearman {o}" for o in objectives],
                                        *[f"ray Spearman {o}" for o in objectives],
                                        *[f"fidelity / floor {k}" for k in reports[0]["hypervolume_reference"]
                                          ["metrics"]], "ms / adaptation"])
    print(json.dumps({"timing_ratios": reports[-1]["timing_ratios"], "noise_floor": reports[-1].get("noise_floor"),
                      "user_groups": reports[-1].get("user_groups")}, indent=1))


def run_seed(args, overrides, tag, seed):
    """One generator seed: its own run directory sharing the backbone and the bank (hard links)."""
    backbone_dir = os.path.join(BENCH_DIR, f"{args.model}-{args.dataset}")
    first_dir = os.path.join(BENCH_DIR, tag)
    run_dir = first_dir if seed == args.seeds[0] else f"{first_dir}-seed{seed}"
    os.makedirs(run_dir, exist_ok=True)
    shared = {name: backbone_dir for name in (BACKBONE_CHECKPOINT, BACKBONE_STATE, BACKBONE_METADATA)}
    bank_dir = first_dir if run_dir != first_dir else os.path.join(BENCH_DIR, args.bank_tag)
    if bank_dir != run_dir:  # hard links: a bank that does not match the run's settings is replaced, not edited
        shared.update({name: bank_dir for name in (BANK_TENSORS, BANK_METADATA)})
    for name, folder in shared.items():
        source, target = os.path.join(folder, name), os.path.join(run_dir, name)
        if os.path.isfile(source) and not os.path.exists(target):
            os.link(source, target)
    result = run_recbole_paragon(args.model, args.dataset, None, {**overrides, "run_dir": run_dir,
                                                                  "generator_seed": seed})
    print(f"generator seed {seed}: report in {run_dir}")
    print(summary_table(result["report"]))
    return result["report"]


def _mean_sd(values) -> str:
    values = [v for v in values if v is not None and np.isfinite(v)]
    if not values:
        return "—"
    return f"{np.mean(values):.3f} ± {np.std(values, ddof=1) if len(values) > 1 else 0.0:.3f}"


def seed_summary(reports):
    """One row per method: mean ± sd over the seeds' reports."""
    objectives = reports[0]["objectives"]
    keys = reports[0]["hypervolume_reference"]["metrics"]
    rows = []
    for method in reports[0]["methods"]:
        hv = [r["hypervolume"][method] / r["hypervolume"]["retune"] for r in reports if r["hypervolume"].get("retune")]
        grid = [[r["spearman"][method].get(o) for r in reports] for o in objectives]
        rays = [[r["ray_spearman"][method].get(o) for r in reports] for o in objectives]
        fidelity = [[(r.get("fidelity") or {}).get(method, {}).get(k, np.nan) / r["noise_floor"][k]
                     for r in reports if r.get("noise_floor", {}).get(k)] for k in keys]
        ms = [1000 * r["timing"][method] for r in reports]
        rows.append([method, _mean_sd(hv), *map(_mean_sd, grid), *map(_mean_sd, rays), *map(_mean_sd, fidelity),
                     _mean_sd(ms)])
    return rows


if __name__ == "__main__":
    main()

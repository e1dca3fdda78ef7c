"""The whole of Paragon on a dataset, every method side by side, ratios printed (one run).

    python benchmarks/paragon.py --dataset=ml-100k [--model=ParagonGRU4Rec] [--objectives=accuracy,diversity,fairness]
                                 [--sparse] [--retrain]

Dense bank: w1 in {0, .05, ..., 1}, tested at w1 = i/10 (held out of generator training). ``--sparse``: bank every
0.2, tested at the mid-gap points 0.1, 0.3, ..., 0.9, where lookups cannot simply return a neighbour. ``--retrain``
adds the whole model retrained from scratch on the weighted loss at w = (.5, .5) (``--retrain-all``: also at (1, 0)
and (0, 1)), for ``evaluation_retrain_epochs`` epochs.
"""
import argparse
import json
import os

from common import BENCH_DIR, machine

from recbole_paragon import run_recbole_paragon
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
    args = parser.parse_args()
    objectives = args.objectives.split(",")
    overrides = {"checkpoint_dir": BENCH_DIR, "objectives": objectives, "state": "WARNING"}
    tag = f"{args.model}-{args.dataset}"
    if len(objectives) > 2:
        overrides.update(bank_grid_step=0.1, evaluation_grid_step=0.25)  # 66 bank, 15 test preferences
        tag += "-" + "-".join(objectives)
    if args.sparse:
        overrides.update(bank_grid_step=0.2, evaluation_grid_step=0.2, evaluation_grid_offset=0.1)
        tag += "-sparse"
    if args.retrain or args.retrain_all:
        overrides["evaluation_retrain_preferences"] = [[0.5, 0.5]] + ([[1.0, 0.0], [0.0, 1.0]] if args.retrain_all
                                                                     else [])
        overrides["evaluation_retrain_epochs"] = args.retrain_epochs
    # the backbone is shared between protocols; each protocol's report gets its own directory
    backbone_dir = os.path.join(BENCH_DIR, f"{args.model}-{args.dataset}")
    overrides["run_dir"] = os.path.join(BENCH_DIR, tag)
    os.makedirs(overrides["run_dir"], exist_ok=True)
    shared = ["backbone.pth", "backbone.json"]
    if not args.sparse and len(objectives) == 2:  # the default bank and generators are reused when settings match
        shared += ["bank.pt", "bank.json", "generator-diffusion.pt", "generator-diffusion.json"]
    for name in shared:
        source, target = os.path.join(backbone_dir, name), os.path.join(overrides["run_dir"], name)
        if os.path.isfile(source) and not os.path.exists(target):
            os.link(source, target)
    result = run_recbole_paragon(args.model, args.dataset, None, overrides)
    report = result["report"]
    print(f"machine: {machine()}; {tag}; report in {overrides['run_dir']}")
    print(summary_table(report))
    volumes = report["hypervolume"]
    ratios = dict(report["timing_ratios"])
    if volumes.get("retune"):
        ratios.update({f"HV({m}) / HV(retune)": v / volumes["retune"] for m, v in volumes.items()})
    print(json.dumps({"ratios": ratios, "noise_floor": report.get("noise_floor"), "fidelity": report.get("fidelity"),
                      "pearson": report["pearson"].get("paragon")}, indent=1))


if __name__ == "__main__":
    main()

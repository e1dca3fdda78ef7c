"""How few DDIM steps the diffusion generator needs: time per adapter against quality, side by side in one run.

    python benchmarks/sampling_steps.py --run_dir saved/ParagonSASRec-ml-100k [--steps 1 2 5 10 20] [--seeds 0 1 2]

Uses a finished run (its backbone, generator and ``report.json``): for each number of DDIM steps and sampling seed,
the adapters of the report's test preferences are generated, timed one preference at a time on one thread (as a
deployed service would), and evaluated on the test split. Quality is the HV ratio to the report's re-tuned adapters
(the report's shared reference point) and fidelity in units of the seed-noise floor; mean ± sd over sampling seeds.
"""
import argparse
import json
import os
import time

import numpy as np
import torch
from common import machine, print_table

from recbole_paragon import pipeline
from recbole_paragon.evaluation import fidelity, hypervolume
from recbole_paragon.quick_start import build_config, prepare_data
from recbole_paragon.store import load_generator
from recbole_paragon.generators import GeneratedAdapters


def load_run(run_dir: str):
    with open(os.path.join(run_dir, "report.json"), encoding="utf-8") as handle:
        report = json.load(handle)
    settings = {k: v for k, v in report["config"].items() if k in ("model", "dataset", "objectives", "metrics",
                                                                    "group_by", "fairness_loss")}
    config = build_config(settings["model"], settings["dataset"], None,
                          {**settings, "run_dir": run_dir, "state": "WARNING", "stage": "evaluate"})
    _, splits = prepare_data(config)
    backbone = pipeline.backbone_stage(config, *splits)
    trainer = pipeline.adapter_trainer(config, backbone["model"], *splits)
    generator, metadata = load_generator(run_dir, kind="diffusion")
    return report, trainer, GeneratedAdapters(generator, metadata)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run_dir", required=True)
    parser.add_argument("--steps", type=int, nargs="+", default=[1, 2, 5, 10, 20])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    report, trainer, adapters = load_run(args.run_dir)
    keys = report["hypervolume_reference"]["metrics"]
    directions = report["hypervolume_reference"]["directions"]
    reference = report["hypervolume_reference"]["point"]
    retune = report["methods"]["retune"]
    preferences = torch.tensor([e["preference"] for e in retune])
    seed_values = {k: [[e["seed_metrics"][s][k] for e in retune] for s in range(len(retune[0]["seed_metrics"]))]
                   for k in keys}
    retune_hv = report["hypervolume"]["retune"]
    torch.set_num_threads(1)
    rows = []
    for steps in args.steps:
        runs = []
        for seed in args.seeds:
            adapters.vectors(preferences[:1], steps=steps, seed=seed)  # warm
            start = time.perf_counter()
            vectors = [adapters.vectors(p[None], steps=steps, seed=seed)[0] for p in preferences]
            ms = 1000 * (time.perf_counter() - start) / len(preferences)
            metrics = [dict(trainer.evaluate_vector(v, "test")) for v in vectors]
            points = [[m[k] for k in keys] for m in metrics]
            runs.append({"ms": ms, "hv": hypervolume(points, directions, reference) / retune_hv,
                         **{k: fidelity([m[k] for m in metrics], seed_values[k]) / report["noise_floor"][k]
                            for k in keys}})
        rows.append([steps] + [f"{np.mean([r[c] for r in runs]):.3f} ± {np.std([r[c] for r in runs], ddof=1):.3f}"
                               for c in ["ms", "hv", *keys]])
    print(f"machine: {machine()}; run {args.run_dir}; {len(preferences)} test preferences; sampling seeds "
          f"{args.seeds}; one preference per call, 1 thread")
    print_table(rows, ["DDIM steps", "ms / adapter", "HV / retune", *[f"fidelity / floor {k}" for k in keys]])


if __name__ == "__main__":
    main()

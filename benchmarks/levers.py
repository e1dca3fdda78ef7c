"""Each objective's lever before it is offered: accuracy + X, tuned along the ray from the accuracy vertex to X's
vertex, over tuning seeds, on the test split.

    python benchmarks/levers.py [--dataset ml-100k] [--objectives exposure,novelty,embedding_diversity,calibration]
    python benchmarks/levers.py --synthetic long --objectives exposure,novelty,embedding_diversity

Per objective X: the backbone's metric, X's vertex (w = (0, 1)) with its lever — the improvement over the backbone
in paired bootstrap standard errors over the test users (target >= 3), per seed —, the ray Spearman of w_X with
X's metric on the seed means (target >= .9) and its smallest per seed, NDCG@10 at both ends, and the seconds of one
bank preference (a tuning run at w = (.5, .5)) beside the same run on accuracy alone, timed side by side. For exposure
the table adds RecBole's own TailPercentage@10 and GiniIndex@10 along the ray (do they run through the plugin, and
agree?), and every row what the vertex does to the gap between the most active 20 % of users and the rest
(GroupGap@10, ``group_by: activity``): does an item-side objective change what the user groups get?

``--synthetic long`` builds (once, benchmarks/synthetic.py) a dataset unlike ml-100k: 6 000 users, 8 000 items, long
session histories (about 50 interactions per user), and uses its copy with no ``.user`` and no ``.item`` file — no
categories at all.
"""
import argparse
import os
import time
from typing import Dict, List

import numpy as np
import torch
from common import BENCH_DIR, backbone_run, machine, print_table
from scipy.stats import spearmanr
from synthetic import SHAPES, without_item_file, write_dataset

from recbole_paragon import pipeline
from recbole_paragon.evaluation.levers import bootstrap_difference
from recbole_paragon.objectives import OBJECTIVES
from recbole_paragon.settings import torch_threads

EXTRA = {"exposure": ["TailPercentage", "GiniIndex"]}


def synthetic_data(name: str) -> Dict[str, str]:
    """Write the synthetic shape and return the dataset name and data path of its interactions-only copy."""
    folder = os.path.join(BENCH_DIR, "synthetic-data")
    return {"dataset": without_item_file(folder, write_dataset(SHAPES[name], folder)), "data_path": folder}


def bank_preference_seconds(trainer, repeats: int = 3) -> Dict[str, float]:
    """One bank preference (a tuning run at w = (.5, .5)) beside the same run on the accuracy loss alone, timed
    side by side, interleaved, the fastest of ``repeats`` each (the least disturbed by other work)."""
    objectives, with_objective, alone = trainer.objectives, [], []
    for _ in range(repeats):
        start = time.perf_counter()
        trainer.tune([0.5, 0.5], seed=0)
        with_objective.append(time.perf_counter() - start)
        trainer.objectives = objectives[:1]
        try:
            start = time.perf_counter()
            with torch_threads(trainer.threads):  # as tune() runs it
                trainer._tune(torch.tensor([1.0]), 0, trainer.steps, (), False, None)
            alone.append(time.perf_counter() - start)
        finally:
            trainer.objectives = objectives
    return {"with": min(with_objective), "alone": min(alone)}


def ray_runs(trainer, points: int, seeds: List[int]):
    """Test metrics per seed and ray point, and the collected test data of each seed's vertex."""
    weights = [i / (points - 1) for i in range(points)]
    metrics, vertices = [], []
    for seed in seeds:
        row = []
        for w in weights:
            vector = trainer.tune([1 - w, w], seed=seed)[-1][1]
            row.append(dict(trainer.evaluate_vector(vector, "test")))
        vertices.append(trainer.split_evaluator.collected(vector, "test"))
        metrics.append(row)
    return weights, metrics, vertices


def fmt(values, digits: int = 4) -> str:
    values = np.asarray(values, dtype=float)
    return f"{values.mean():.{digits}f} ± {values.std(ddof=1) if len(values) > 1 else 0.0:.{digits}f}"


def measure(args, name: str, data: Dict[str, str]) -> List[str]:
    objective = OBJECTIVES[name]
    key = f"{objective.metric_class.lower()}@10"
    metrics = ["NDCG", objective.metric_class, "GroupGap"] + EXTRA.get(name, [])
    config, _, splits, backbone = backbone_run(args.model, data["dataset"], {
        "data_path": data["data_path"], "objectives": ["accuracy", name], "metrics": metrics,
        "group_by": "activity"})
    trainer = pipeline.adapter_trainer(config, backbone["model"], *splits)
    cost = bank_preference_seconds(trainer)
    if args.cost_only:
        return [name, f"{cost['with']:.2f}", f"{cost['alone']:.2f}", f"{cost['with'] / cost['alone']:.2f}"]
    reference = trainer.split_evaluator.collected(None, "test")
    plain = dict(trainer.evaluate_vector(None, "test"))
    weights, runs, vertices = ray_runs(trainer, args.points, args.seeds)
    sign = 1.0 if objective.bigger_is_better else -1.0
    levers = []
    for vertex in vertices:
        difference = bootstrap_difference(config, vertex, reference, key, args.bootstrap, 0)
        levers.append(sign * difference["delta"] / difference["se"])
    means = [np.mean([run[i][key] for run in runs]) for i in range(len(weights))]
    per_seed = [spearmanr(weights, [r[key] for r in run]).statistic * sign for run in runs]
    if EXTRA.get(name):
        extra_keys = [f"{m.lower()}@10" for m in EXTRA[name]]
        print(f"\n{name}: RecBole's own metrics along the ray (seed means) beside {key}")
        print_table([[f"{w:.2f}"] + [f"{np.mean([run[i][k] for run in runs]):.4f}" for k in [key] + extra_keys]
                     for i, w in enumerate(weights)], [f"w_{name}", key] + extra_keys)
    return [name, key, f"{plain[key]:.4f}", fmt([run[-1][key] for run in runs]), fmt(levers, 1),
            f"{spearmanr(weights, means).statistic * sign:+.3f}", f"{min(per_seed):+.3f}",
            f"{plain['ndcg@10']:.4f}", fmt([run[-1]["ndcg@10"] for run in runs]),
            f"{plain['groupgap@10']:.4f} -> {fmt([run[-1]['groupgap@10'] for run in runs])}",
            f"{cost['with']:.2f}", f"{cost['alone']:.2f}", f"{cost['with'] / cost['alone']:.2f}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--synthetic", choices=sorted(SHAPES), default=None, help="a synthetic shape, interactions only")
    parser.add_argument("--model", default="ParagonSASRec")
    parser.add_argument("--objectives", default="exposure,novelty,embedding_diversity,calibration")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="tuning seeds")
    parser.add_argument("--points", type=int, default=6, help="preferences along the ray, vertices included")
    parser.add_argument("--bootstrap", type=int, default=200, help="bootstrap resamples of the test users")
    parser.add_argument("--cost-only", action="store_true", help="only the seconds of a bank preference")
    args = parser.parse_args()
    data = synthetic_data(args.synthetic) if args.synthetic else {"dataset": args.dataset, "data_path": None}
    print(f"machine: {machine()}; load {os.getloadavg()[0]:.1f}; dataset {data['dataset']}; seeds {args.seeds}")
    rows = [measure(args, name, data) for name in args.objectives.split(",")]
    print()
    if args.cost_only:
        print_table(rows, ["objective", "s / bank pref. (with accuracy)", "s accuracy only", "ratio"])
        return
    print_table(rows, ["objective", "metric", "backbone", "vertex (mean ± sd)", "lever SE (>= 3)",
                       "ray Spearman (>= .9)", "worst seed", "NDCG@10 backbone", "NDCG@10 vertex",
                       "GroupGap@10 (activity) backbone -> vertex", "s / bank pref.", "s accuracy only", "ratio"])


if __name__ == "__main__":
    main()

"""Controllability of tuned adapters on ml-100k: metrics along the preference grid, with Spearman correlations.

    python benchmarks/tradeoff.py [--points 11] [--objectives accuracy,diversity]

As the second objective's weight rises, its metric must improve (AlphaNDCG@10 up, GroupGap@10 down) and NDCG@10
must fall: Spearman >= 0.9 in absolute value over >= 11 grid points.
"""
import argparse

from common import backbone_run, machine, print_table
from scipy.stats import spearmanr

from recbole_paragon import pipeline

METRIC = {"diversity": "alphandcg@10", "fairness": "groupgap@10"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, default=11)
    parser.add_argument("--objectives", default="accuracy,diversity")
    args = parser.parse_args()
    objectives = args.objectives.split(",")
    second = objectives[1]
    overrides = {"objectives": objectives, "metrics": ["Recall", "NDCG", "AlphaNDCG", "GroupGap"]}
    config, _, splits, backbone = backbone_run(overrides=overrides)
    trainer = pipeline.adapter_trainer(config, backbone["model"], *splits)
    weights = [i / (args.points - 1) for i in range(args.points)]
    rows, accuracy, other = [], [], []
    for w in weights:
        result = trainer.evaluate_vector(trainer.tune([1 - w, w])[-1][1], "test")
        accuracy.append(result["ndcg@10"])
        other.append(result[METRIC[second]])
        rows.append([f"{w:.2f}", f"{result['ndcg@10']:.4f}", f"{result['alphandcg@10']:.4f}",
                     f"{result['groupgap@10']:.4f}"])
    print(f"machine: {machine()}; ml-100k test split; {second} weight w, accuracy weight 1 - w")
    print_table(rows, [f"w_{second}", "NDCG@10", "AlphaNDCG@10", "GroupGap@10"])
    print(f"Spearman(w_{second}, NDCG@10) = {spearmanr(weights, accuracy).statistic:+.3f} (target <= -0.9)")
    print(f"Spearman(w_{second}, {METRIC[second]}) = {spearmanr(weights, other).statistic:+.3f} "
          f"(target {'>= +0.9' if second == 'diversity' else '<= -0.9'})")


if __name__ == "__main__":
    main()

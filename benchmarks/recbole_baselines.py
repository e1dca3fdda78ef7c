"""RecBole's own models on Paragon's accuracy / diversity / fairness plane, beside Paragon's fronts, in one run.

    python benchmarks/recbole_baselines.py [--models Pop BPR GRU4Rec SASRec BERT4Rec NARM LightSANs] [--epochs N]
        [--group_by activity] [--paragon_reports saved/benchmarks/<run>/report.json ...] [--plot baselines.png]

Every model is plain RecBole, trained and tested through the plugin's entry (same data split, history length,
training defaults and early stopping as Paragon's backbone), and measured with the same metrics: NDCG@10,
Recall@10, AlphaNDCG@10, ILD@10, GroupGap@10 and WorstGroupNDCG@10 (groups: ``group_by``), plus training seconds.
Paragon's fronts (re-tuned and generated adapters of each given report) are printed beside them, and the plot puts
RecBole's models as points over those fronts on the accuracy/diversity and accuracy/fairness planes.
"""
import argparse
import json
import os
import time

from common import BENCH_DIR, machine, print_table

from recbole_paragon import pipeline
from recbole_paragon.evaluation.plots import _figure, _save
from recbole_paragon.quick_start import build_config, prepare_data

MODELS = ["Pop", "BPR", "GRU4Rec", "SASRec", "BERT4Rec", "NARM", "LightSANs"]
KEYS = ["ndcg@10", "recall@10", "alphandcg@10", "ild@10", "groupgap@10", "worstgroupndcg@10"]
METRICS = ["Recall", "NDCG", "AlphaNDCG", "ILD", "GroupGap", "WorstGroupNDCG"]
FRONT_METHODS = ("retune", "diffusion")


def train_model(name: str, overrides) -> dict:
    config = build_config(name, "ml-100k", None, {"checkpoint_dir": os.path.join(BENCH_DIR, "recbole"),
                                                  "state": "WARNING", "metrics": METRICS, **overrides})
    _, splits = prepare_data(config)
    start = time.perf_counter()
    result = pipeline.train_and_test(config, *splits, saved=True)
    return {**result["test_result"], "seconds": time.perf_counter() - start}


def trained_models(names, overrides, saved: str, reuse: bool) -> dict:
    """Each model's test results, saved after every model; with ``reuse`` a model already measured with the same
    settings is taken from ``saved`` (an interrupted run continues where it stopped)."""
    done = {}
    if reuse and os.path.isfile(saved):
        with open(saved, encoding="utf-8") as handle:
            done = {name: r for name, r in json.load(handle).items() if r.get("settings") == overrides}
    models = {}
    for name in names:
        models[name] = done.get(name) or {**train_model(name, overrides), "settings": overrides}
        with open(saved + ".tmp", "w", encoding="utf-8") as handle:
            json.dump({**done, **models}, handle, indent=1)
        os.replace(saved + ".tmp", saved)
    return models


def fronts(paths):
    """``{label: [(metrics of one test preference), ...]}`` of the re-tuned and generated adapters of each report."""
    found = {}
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            report = json.load(handle)
        tag = os.path.basename(os.path.dirname(path))
        for method in FRONT_METHODS:
            if report["methods"].get(method):
                found[f"{tag}:{method}"] = [entry["metrics"] for entry in report["methods"][method]]
    return found


def plot(models, paragon, path: str) -> str:
    fig = _figure(11, 4.5)
    for column, other in enumerate(("alphandcg@10", "groupgap@10"), start=1):
        ax = fig.add_subplot(1, 2, column)
        for label, points in paragon.items():
            xy = [(p["ndcg@10"], p[other]) for p in points if other in p]
            if xy:
                xy.sort()
                ax.plot(*zip(*xy), marker=".", linewidth=1, label=f"Paragon {label}")
        for name, result in models.items():
            ax.scatter(result["ndcg@10"], result[other], marker="*", s=120, zorder=3)
            ax.annotate(name, (result["ndcg@10"], result[other]), fontsize=8, xytext=(4, 4),
                        textcoords="offset points")
        ax.set_xlabel("NDCG@10 (accuracy)")
        ax.set_ylabel(other + (" (smaller is fairer)" if other.startswith("groupgap") else " (diversity)"))
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    return _save(fig, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=MODELS)
    parser.add_argument("--epochs", type=int, default=None, help="default: the plugin's yaml (early stopping)")
    parser.add_argument("--group_by", default="activity")
    parser.add_argument("--paragon_reports", nargs="*", default=[])
    parser.add_argument("--plot", default=os.path.join(BENCH_DIR, "recbole_baselines.png"))
    parser.add_argument("--reuse", action="store_true",
                        help="take models already measured with these settings from the last run's JSON")
    args = parser.parse_args()
    overrides = {"group_by": args.group_by, **({"epochs": args.epochs} if args.epochs else {})}
    models = trained_models(args.models, overrides, os.path.join(BENCH_DIR, "recbole_baselines.json"), args.reuse)
    print(f"machine: {machine()}; ml-100k test split; group_by={args.group_by}; plain RecBole models")
    print_table([[name] + [f"{r[k]:.4f}" for k in KEYS] + [f"{r['seconds']:.0f}"] for name, r in models.items()],
                ["model"] + KEYS + ["seconds"])
    paragon = fronts(args.paragon_reports)
    for label, points in paragon.items():
        print(f"\nParagon front {label} ({len(points)} test preferences)")
        print_table([[f"{p.get(k, float('nan')):.4f}" for k in KEYS] for p in points], KEYS)
    print(f"\nplot: {plot(models, paragon, args.plot)}")


if __name__ == "__main__":
    main()

"""Multi-objective strategies side by side on ml-100k, in one run: linear scalarisation vs PUB vs PMTRec.

    python benchmarks/strategies.py [--points 11] [--epochs 6] [--seeds 0 1 2] [--skip-adapters] [--skip-backbone]
    python benchmarks/strategies.py --three [--group_by activity] [--fairness_loss worst_group] [--seeds 0 1 2]
    python benchmarks/strategies.py --many accuracy,diversity,exposure,calibration,novelty [--budget 20 --rays 1]

1. Adapter tuning: on one frozen SASRec backbone, an adapter per preference w_acc = 0, .1, ..., 1 with each strategy;
   test NDCG@10 / AlphaNDCG@10 per point, Hypervolume of each strategy's front against one shared reference point,
   Pearson(weight, metric) and seconds per adapter.
2. Backbone training with the category auxiliary task (predict the next item's genres): plain RecBole training (no
   auxiliary task) vs linear / PUB / PMTRec on [CE, category BCE] at weights 1 : backbone_auxiliary_weights; the same
   epochs (no early stopping, final model tested) and seeds for all; test NDCG@10 and Recall@10 mean ± std over the
   seeds, and training seconds per epoch.
3. ``--three``: three objectives (accuracy, diversity, fairness; the fairness loss is far smaller than CE, the case
   PUB and PMTRec were made for) on the simplex grid of step 0.25 (15 preferences): per strategy and tuning seed, the
   3-D hypervolume (one reference for all) and per objective Spearman over the grid and along the rays; mean ± sd
   over the seeds, and which strategy wins beyond the seed spread. ``--many``: the same on any objectives (K = 4, 5:
   losses whose magnitudes differ by orders), on a budget of vertices and Sobol points plus rays.
"""
import argparse
import math
import os
import statistics
import time

import torch
from common import BENCH_DIR, backbone_run, machine, print_table
from recbole.utils import init_seed

from recbole_paragon import pipeline
from recbole_paragon.evaluation import controllability, hypervolumes
from recbole_paragon.evaluation.measures import ray_controllability
from recbole_paragon.preference import budgeted_preferences, ray_preferences, simplex_grid
from recbole_paragon.quick_start import build_config
from recbole_paragon.training import BackboneTrainer
from recbole_paragon.registry import get_model

STRATEGIES = ["linear", "pub", "pmtrec"]


def mean_std(values) -> str:
    """Mean ± sd over the seeds that have a value ("—" when none has: e.g. no rays)."""
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return "—"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values) if len(values) > 1 else 0.0:.4f}"
METRICS = {"accuracy": ("ndcg@10", "max"), "diversity": ("alphandcg@10", "max")}


def adapter_fronts(points: int) -> None:
    config, _, splits, backbone = backbone_run()
    pipeline.add_objective_metrics(config)
    trainer = pipeline.adapter_trainer(config, backbone["model"], *splits)
    results, seconds = {}, {}
    for strategy in STRATEGIES:
        trainer.strategy_name = strategy
        entries, spent = [], []
        for i in range(points):
            w = torch.tensor([i / (points - 1), 1 - i / (points - 1)])
            start = time.perf_counter()
            vector = trainer.tune(w, seed=0)[-1][1]
            spent.append(time.perf_counter() - start)
            entries.append({"preference": w.tolist(), "metrics": dict(trainer.evaluate_vector(vector, "test"))})
        results[strategy], seconds[strategy] = entries, statistics.mean(spent)
    keys = [m for m, _ in METRICS.values()]
    volumes, reference = hypervolumes(results, keys, [d for _, d in METRICS.values()])
    control = controllability(results, METRICS, list(METRICS))
    print(f"\n1. adapter tuning, {points} preferences w_acc = i/{points - 1}, {trainer.steps} steps, seed 0; "
          f"HV reference {reference}")
    rows = [[f"w_acc={e['preference'][0]:.1f}"] + [f"{results[s][n]['metrics'][k]:.4f}" for s in STRATEGIES for k in keys]
            for n, e in enumerate(results["linear"])]
    print_table(rows, ["preference"] + [f"{s} {k}" for s in STRATEGIES for k in keys])
    print()
    print_table([[s, f"{volumes[s]:.5f}", f"{volumes[s] / volumes['linear']:.3f}",
                  f"{control[s]['accuracy']['pearson']:.3f}", f"{control[s]['diversity']['pearson']:.3f}",
                  f"{seconds[s]:.2f}"] for s in STRATEGIES],
                ["strategy", "HV", "HV / linear", "Pearson accuracy", "Pearson diversity", "s / adapter"])


def train_variant(splits, seed: int, epochs: int, strategy: str) -> dict:
    """Train a fresh backbone (``strategy=None``: no auxiliary task, RecBole's loop) and test its final epoch."""
    overrides = {"state": "WARNING", "show_progress": False, "seed": seed, "epochs": epochs, "eval_step": epochs,
                 "checkpoint_dir": os.path.join(BENCH_DIR, "strategies")}
    if strategy is not None:
        overrides.update(backbone_auxiliary=["category"], backbone_strategy=strategy)
    config = build_config("ParagonSASRec", "ml-100k", None, overrides)
    train, valid, test = splits
    init_seed(seed, True)
    train.generator.manual_seed(seed)  # every variant sees the same batches for a seed
    model = get_model("ParagonSASRec")(config, train._dataset)
    trainer = BackboneTrainer(config, model)
    epoch_seconds = []
    train_epoch = trainer._train_epoch

    def timed_epoch(*args, **kwargs):
        start = time.perf_counter()
        loss = train_epoch(*args, **kwargs)
        epoch_seconds.append(time.perf_counter() - start)
        return loss

    trainer._train_epoch = timed_epoch
    trainer.fit(train, valid, saved=False, show_progress=False)
    result = trainer.evaluate(test, load_best_model=False, show_progress=False)
    return {"ndcg": result["ndcg@10"], "recall": result["recall@10"], "seconds": statistics.mean(epoch_seconds)}


def backbone_strategies(epochs: int, seeds) -> None:
    _, _, splits, _ = backbone_run()
    variants = {"plain (no auxiliary task)": None, **{f"{s} + category task": s for s in STRATEGIES}}
    runs = {name: [] for name in variants}
    for seed in seeds:  # seed-major order: any change in machine load spreads over all variants alike
        for name, strategy in variants.items():
            runs[name].append(train_variant(splits, seed, epochs, strategy))

    base = statistics.mean(r["seconds"] for r in runs["plain (no auxiliary task)"])
    print(f"\n2. backbone training, SASRec on ml-100k, {epochs} epochs, seeds {list(seeds)}, final model on test")
    print_table([[name, mean_std([r["ndcg"] for r in rs]), mean_std([r["recall"] for r in rs]),
                  f"{statistics.mean(r['seconds'] for r in rs):.1f}",
                  f"{statistics.mean(r['seconds'] for r in rs) / base:.2f}x"] for name, rs in runs.items()],
                ["training", "NDCG@10", "Recall@10", "s / epoch", "vs plain"])


def many_objective_fronts(objectives, seeds, overrides, budget=None, rays=0) -> None:
    """Per strategy and tuning seed, the K-dimensional HV and the Spearman of every weight on one preference set:
    the simplex grid of step .25 (K = 3), or ``budget`` vertices + Sobol points and ``rays`` rays per objective."""
    config, _, splits, backbone = backbone_run(overrides={"objectives": list(objectives), **overrides})
    pipeline.add_objective_metrics(config)
    trainer = pipeline.adapter_trainer(config, backbone["model"], *splits)
    METRIC_OF = {o.name: (o.metric(), "max" if o.bigger_is_better else "min") for o in trainer.objectives}
    K = len(objectives)
    grid = simplex_grid(K, 0.25) if budget is None else torch.cat(
        [budgeted_preferences(K, budget, "sobol", int(config["seed"])), ray_preferences(K, rays, int(config["seed"]))])
    results = {}  # (strategy, seed) -> entries
    for seed in seeds:
        for strategy in STRATEGIES:
            trainer.strategy_name = strategy
            results[(strategy, seed)] = [{"preference": w.tolist(), "metrics": dict(trainer.evaluate_vector(
                trainer.tune(w, seed=seed)[-1][1], "test"))} for w in grid]
    named = {f"{s}/{seed}": entries for (s, seed), entries in results.items()}
    keys, directions = [m for m, _ in METRIC_OF.values()], [d for _, d in METRIC_OF.values()]
    volumes, reference = hypervolumes(named, keys, directions)
    grid_control = controllability(named, METRIC_OF, list(METRIC_OF))
    ray_control = ray_controllability(named, METRIC_OF, list(METRIC_OF))
    print(f"\n3. objectives {list(METRIC_OF)}, {len(grid)} preferences (budget {budget}, rays {rays}), "
          f"{trainer.steps} steps, "
          f"tuning seeds {list(seeds)}, fairness_loss={config['fairness_loss']}, group_by={config['group_by']}, "
          f"objective_scale={config['objective_scale']}; {len(reference)}-D HV reference {reference}")

    rows, hv = [], {}
    for strategy in STRATEGIES:
        names = [f"{strategy}/{seed}" for seed in seeds]
        hv[strategy] = [volumes[n] for n in names]
        rows.append([strategy, mean_std([v * 1e6 for v in hv[strategy]])]
                    + [mean_std([grid_control[n][o]["spearman"] for n in names]) for o in METRIC_OF]
                    + [mean_std([ray_control[n][o] for n in names]) for o in METRIC_OF])
    print_table(rows, ["strategy", "HV x 1e6"] + [f"Spearman {o}" for o in METRIC_OF]
                + [f"ray Spearman {o}" for o in METRIC_OF])
    best = max(STRATEGIES, key=lambda s: statistics.mean(hv[s]))
    others = [s for s in STRATEGIES if s != best]
    margin = {s: statistics.mean(hv[best]) - statistics.mean(hv[s]) for s in others}
    spread = {s: (statistics.stdev(hv[best]) + statistics.stdev(hv[s])) if len(seeds) > 1 else 0.0 for s in others}
    verdict = [f"{best} vs {s}: +{margin[s] * 1e6:.3f}e-6, {'beyond' if margin[s] > spread[s] else 'within'} the "
               f"seed spread ({spread[s] * 1e6:.3f}e-6)" for s in others]
    print(f"largest mean HV: {best}; " + "; ".join(verdict))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=11)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--skip-adapters", action="store_true")
    parser.add_argument("--skip-backbone", action="store_true")
    parser.add_argument("--three", action="store_true", help="only the three-objective comparison")
    parser.add_argument("--many", default=None, help="only the comparison on these objectives, e.g. "
                        "accuracy,diversity,exposure,calibration (with --budget and --rays)")
    parser.add_argument("--budget", type=int, default=20)
    parser.add_argument("--rays", type=int, default=1)
    parser.add_argument("--group_by", default="activity")
    parser.add_argument("--fairness_loss", default=None)
    parser.add_argument("--objective_scale", default=None)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    if args.three:
        overrides = {k: v for k, v in (("group_by", args.group_by), ("fairness_loss", args.fairness_loss),
                                       ("objective_scale", args.objective_scale)) if v}
        many_objective_fronts(["accuracy", "diversity", "fairness"], args.seeds, overrides)
        return
    if args.many:
        many_objective_fronts(args.many.split(","), args.seeds, {}, args.budget, args.rays)
        return
    if not args.skip_adapters:
        adapter_fronts(args.points)
    if not args.skip_backbone:
        backbone_strategies(args.epochs, args.seeds)


if __name__ == "__main__":
    main()

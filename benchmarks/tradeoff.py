"""Controllability of tuned adapters on ml-100k: metrics along the preference grid, over tuning seeds.

    python benchmarks/tradeoff.py [--points 11] [--objectives accuracy,diversity] [--seeds 0 1 2]
    python benchmarks/tradeoff.py --objectives accuracy,fairness --group_by activity [--fairness_loss gap worst_group]
    python benchmarks/tradeoff.py --levelling --group_by activity [--fairness_loss worst_group]

Two objectives: as the second objective's weight f rises (accuracy 1 - f), its metric must improve (AlphaNDCG@10 up,
GroupGap@10 down) and NDCG@10 fall: |Spearman| >= 0.9 over >= 11 grid points (on the seed means). With fairness,
the backbone's gap is printed with its bootstrap standard error over users, the per-group NDCG@10 of every point,
and the smallest f that halves the gap with <= 10 % NDCG@10 lost.

``--levelling`` (accuracy, diversity, fairness): at each accuracy weight a = .25, .5, .75 the remaining 1 - a moves
from diversity to fairness; the gap must fall monotonically (within the seed spread) and WorstGroupNDCG@10 not fall.
"""
import argparse
import math
from typing import Dict, List

import numpy as np
import torch
from common import backbone_run, machine, parsed_settings, print_table
from scipy.stats import spearmanr

from recbole_paragon import pipeline

METRIC = {"diversity": "alphandcg@10", "fairness": "groupgap@10"}
METRICS = ["Recall", "NDCG", "AlphaNDCG", "GroupGap", "WorstGroupNDCG", "GroupNDCG"]


def ndcg_of_target(scores: torch.Tensor, target: torch.Tensor, k: int) -> torch.Tensor:
    """NDCG@k per row of one held-out ``target`` item under ``scores [B, n_items]``."""
    rank = (scores > scores.gather(1, target[:, None])).sum(1) + 1
    return torch.where(rank <= k, 1.0 / torch.log2(rank.double() + 1), torch.zeros_like(rank.double()))


def per_user_ndcg(trainer, split: str = "test", k: int = 10) -> torch.Tensor:
    """NDCG@k of the plain backbone per cached row (one held-out item per user)."""
    cache = trainer.caches[split]
    values = []
    with torch.no_grad():
        for batch in cache.chunks(4096):
            scores = trainer.model.score_representation(batch.hidden)
            scores[:, 0] = -torch.inf
            values.append(ndcg_of_target(scores, batch.target, k))
    return torch.cat(values)


def bootstrap_gap(values: torch.Tensor, groups: torch.Tensor, draws: int = 1000, seed: int = 0):
    """(gap, bootstrap standard error) of the max - min of group means, users resampled within each group."""
    rng = np.random.default_rng(seed)
    ids = [g for g in torch.unique(groups).tolist() if g > 0]
    per_group = [values[groups == g].numpy() for g in ids]
    gap = max(v.mean() for v in per_group) - min(v.mean() for v in per_group)
    boots = []
    for _ in range(draws):
        means = [rng.choice(v, len(v)).mean() for v in per_group]
        boots.append(max(means) - min(means))
    return float(gap), float(np.std(boots))


def mean_sd(runs: List[Dict[str, float]], key: str) -> str:
    values = [r[key] for r in runs]
    return f"{np.mean(values):.4f} ± {np.std(values, ddof=1) if len(values) > 1 else 0.0:.4f}"


def tune_runs(trainer, preference, seeds) -> List[Dict[str, float]]:
    return [dict(trainer.evaluate_vector(trainer.tune(preference, seed=s)[-1][1], "test")) for s in seeds]


def backbone_gap(trainer) -> None:
    groups = pipeline.run_user_groups(trainer)
    users = trainer.caches["test"].users
    gap, se = bootstrap_gap(per_user_ndcg(trainer), groups.ids[users])
    print(f"user groups ({groups.method}): {groups.sizes()}")
    print(f"backbone GroupGap@10 on test = {gap:.4f}, bootstrap SE over users = {se:.4f} ({gap / se:.1f} SE; "
          "target >= 3)")


def seen_items(trainer, dataset, k: int = 10) -> None:
    """Per group: the share of the backbone's top-k the user has already rated (RecBole's sequential evaluation
    does not mask them; ml-100k has no repeats, so they are wasted slots), and NDCG@k with and without them."""
    groups = pipeline.run_user_groups(trainer)
    cache, inter = trainer.caches["test"], dataset.inter_feat
    users, items = inter[dataset.uid_field], inter[dataset.iid_field]
    share, plain, masked = [], [], []
    with torch.no_grad():
        for batch in cache.chunks(1024):
            rated = torch.zeros(len(batch.users), dataset.item_num, dtype=torch.bool)
            row = torch.full((dataset.user_num,), -1, dtype=torch.long)
            row[batch.users] = torch.arange(len(batch.users))
            mine = row[users] >= 0
            rated[row[users[mine]], items[mine]] = True
            rated[torch.arange(len(batch.users)), batch.target] = False  # only the items before the test item
            scores = trainer.model.score_representation(batch.hidden)
            scores[:, 0] = -torch.inf
            share.append(rated.gather(1, scores.topk(k).indices).float().mean(1))
            plain.append(ndcg_of_target(scores, batch.target, k))
            masked.append(ndcg_of_target(scores.masked_fill(rated, -torch.inf), batch.target, k))
    ids = groups.ids[cache.users]
    rows = [[name] + [f"{float(torch.cat(v)[ids == gid].mean()):.4f}" for v in (share, plain, masked)]
            for gid, name in groups.names.items()]
    print(f"\nbackbone top-{k} on test, per group ({groups.method}):")
    print_table(rows, ["group", f"already rated in top-{k}", f"NDCG@{k}", f"NDCG@{k}, rated items masked"])


def two_objective_sweep(trainer, second: str, points: int, seeds) -> None:
    weights = [i / (points - 1) for i in range(points)]
    runs = [tune_runs(trainer, [1 - f, f], seeds) for f in weights]
    group_keys = sorted(k for k in runs[0][0] if k.startswith("groupndcg@10["))
    keys = ["ndcg@10", METRIC[second]] + (["worstgroupndcg@10"] + group_keys if second == "fairness" else [])
    rows = [[f"{f:.2f}"] + [mean_sd(r, k) for k in keys] for f, r in zip(weights, runs)]
    print_table(rows, [f"w_{second}"] + keys)
    means = {k: [float(np.mean([x[k] for x in r])) for r in runs] for k in keys}
    print(f"Spearman(w_{second}, NDCG@10) = {spearmanr(weights, means['ndcg@10']).statistic:+.3f} (target <= -0.9)")
    print(f"Spearman(w_{second}, {METRIC[second]}) = {spearmanr(weights, means[METRIC[second]]).statistic:+.3f} "
          f"(target {'>= +0.9' if second == 'diversity' else '<= -0.9'})")
    if second == "fairness":
        gap0, ndcg0 = means["groupgap@10"][0], means["ndcg@10"][0]
        ok = [f for f, g, n in zip(weights, means["groupgap@10"], means["ndcg@10"]) if g <= gap0 / 2 and n >= 0.9 * ndcg0]
        print(f"smallest f halving the gap ({gap0:.4f} -> <= {gap0 / 2:.4f}) with <= 10 % NDCG@10 lost: "
              f"{ok[0] if ok else 'none'}")
        rising = [means["worstgroupndcg@10"][i + 1] - means["worstgroupndcg@10"][i] for i in range(points - 1)
                  if weights[i + 1] <= 0.75]
        print(f"WorstGroupNDCG@10 over f <= 0.75: from {means['worstgroupndcg@10'][0]:.4f} to "
              f"{means['worstgroupndcg@10'][weights.index(0.7) if 0.7 in weights else -1]:.4f}; "
              f"largest drop between neighbours {min(rising + [0.0]):+.4f}")


def levelling_sweep(trainer, seeds) -> None:
    shares = [0.0, 0.25, 0.5, 0.75, 1.0]
    for a in (0.25, 0.5, 0.75):
        runs = [tune_runs(trainer, [a, (1 - a) * (1 - t), (1 - a) * t], seeds) for t in shares]
        group_keys = sorted(k for k in runs[0][0] if k.startswith("groupndcg@10["))
        keys = ["ndcg@10", "alphandcg@10", "groupgap@10", "worstgroupndcg@10"] + group_keys
        print(f"\naccuracy weight a = {a}: fairness share t of the remaining {1 - a:.2f} (diversity gets the rest)")
        print_table([[f"{t:.2f}"] + [mean_sd(r, k) for k in keys] for t, r in zip(shares, runs)], ["t"] + keys)
        gaps = [[x["groupgap@10"] for x in r] for r in runs]
        spread = max(np.std(g, ddof=1) if len(g) > 1 else 0.0 for g in gaps)
        steps = [np.mean(gaps[i + 1]) - np.mean(gaps[i]) for i in range(len(shares) - 1)]
        falls = np.mean(gaps[-1]) < np.mean(gaps[0]) - spread
        verdict = ("falls monotonically" if falls and all(s <= spread for s in steps)
                   else "does NOT fall monotonically beyond the seed spread")
        print(f"gap steps {['%+.4f' % s for s in steps]} vs seed sd {spread:.4f}: {verdict}; Spearman(t, gap) = "
              f"{spearmanr(shares, [np.mean(g) for g in gaps]).statistic:+.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=11)
    parser.add_argument("--objectives", default="accuracy,diversity")
    parser.add_argument("--group_by", default=None, help="field | activity | popularity | length")
    parser.add_argument("--group_quantile", type=float, default=None)
    parser.add_argument("--fairness_loss", nargs="+", default=[None], help="one or more of gap worst_group cvar")
    parser.add_argument("--objective_scale", default=None, help="none | initial")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="more settings, e.g. "
                        "fairness_temperature=1.0")
    parser.add_argument("--levelling", action="store_true", help="the three-objective no-levelling-down sweep")
    parser.add_argument("--seen", action="store_true", help="only the backbone's already-rated share of top-10 per "
                        "group, and NDCG@10 with those items masked")
    args = parser.parse_args()
    objectives = ["accuracy", "diversity", "fairness"] if args.levelling else args.objectives.split(",")
    for loss in args.fairness_loss:
        overrides = {"objectives": objectives, "metrics": METRICS,
                     **parsed_settings(args.set)}
        overrides.update({k: v for k, v in (("group_by", args.group_by), ("group_quantile", args.group_quantile),
                                            ("fairness_loss", loss),
                                            ("objective_scale", args.objective_scale)) if v is not None})
        config, dataset, splits, backbone = backbone_run(overrides=overrides)
        trainer = pipeline.adapter_trainer(config, backbone["model"], *splits)
        print(f"\nmachine: {machine()}; ml-100k test split; objectives {objectives}; tuning seeds {args.seeds}; "
              f"fairness_loss={config['fairness_loss']}, group_by={config['group_by']}, objective_scale="
              f"{config['objective_scale']}, {args.set}; values mean ± sd over seeds")
        if "fairness" in objectives:
            backbone_gap(trainer)
        if args.seen:
            seen_items(trainer, dataset)
            continue
        if args.levelling:
            levelling_sweep(trainer, args.seeds)
        else:
            two_objective_sweep(trainer, objectives[1], args.points, args.seeds)


if __name__ == "__main__":
    main()

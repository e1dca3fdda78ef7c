"""Many-objective control (K = 4, 5): where generating adapters must beat looking them up.

    python benchmarks/many_objectives.py --objectives accuracy,diversity,exposure,calibration \\
        --budgets 10 30 100 --headline 30 --seeds 0 1 2 [--dataset ml-100k | --synthetic long] [--set KEY=VALUE ...]
        [--eval-set KEY=VALUE ...] [--beside LABEL=REPORT_PATTERN ...]

Protocol: a budgeted bank per N (the K vertices + N - K scrambled-Sobol preferences; one bank of the largest N is
tuned and every smaller bank is its prefix), 20 test preferences drawn uniformly inside the simplex plus one ray
per objective (4 points each), all seeded and none a bank preference. Every method adapts the frozen backbone at
every test preference: re-tuning (3 seeds, once: it does not depend on N), the diffusion generator, the
hypernetwork and the conditioned adapter (trained per N and generator seed), and the lookups (nearest,
barycentric soup of the cell's bank adapters, neighbour soup). Measures, from the reports: K-dimensional
hypervolume against one reference point per run of this script (the worst value of each metric over every point
of every method and N, printed), as a ratio to re-tuning's; ray Spearman of each weight with its metric; fidelity
|metric - mean of the re-tuned seeds| per objective in units of the re-tuning seeds' own noise floor;
milliseconds per adaptation. Plus the objectives' conflicts on the bank (Spearman of each pair of metrics over
the bank's adapters) and their levers (bank.json).

Prints the headline table at ``--headline`` N (mean ± sd over ``--seeds``) and the sweep over ``--budgets``
(``--sweep-seeds``, default the first seed); writes the plot of HV and fidelity against N to ``--plot``.
``--beside diffusion_before=/backup/{run}/report.json`` puts the diffusion generator of saved reports (``{run}``:
N30-s0, ...; the same test preferences, checked) beside this run's methods as LABEL, under the same reference point
and re-tuning: a variant against the reports it replaced, side by side.
"""
import argparse
import hashlib
import json
import os
from typing import Any, Dict, List

import numpy as np
import torch
from common import BENCH_DIR, machine, parsed_settings, print_table
from scipy.stats import spearmanr
from synthetic import SHAPES, write_dataset

from recbole_paragon import run_recbole_paragon
from recbole_paragon.artifacts import BACKBONE_CHECKPOINT, BACKBONE_METADATA, BACKBONE_STATE
from recbole_paragon.evaluation.measures import default_reference, hypervolume, method_points, noise_floor
from recbole_paragon.preference import budgeted_preferences, matches_any
from recbole_paragon.training.bank import AdapterBank

GENERATED = ["diffusion", "hypernet", "conditioned"]
LOOKUPS = ["nearest", "barycentric_soup", "neighbour_soup"]


def link_backbone(backbone_dir: str, run_dir: str) -> None:
    os.makedirs(run_dir, exist_ok=True)
    for name in (BACKBONE_CHECKPOINT, BACKBONE_STATE, BACKBONE_METADATA):
        source, target = os.path.join(backbone_dir, name), os.path.join(run_dir, name)
        if os.path.isfile(source) and not os.path.exists(target):
            os.link(source, target)


def run(args, settings: Dict[str, Any], run_dir: str, **overrides) -> Dict[str, Any]:
    link_backbone(args.backbone_dir, run_dir)
    return run_recbole_paragon(args.model, args.dataset, None, {**settings, "run_dir": run_dir, **overrides})


def prefix_bank(master_dir: str, run_dir: str, budget: int, objectives: int, seed: int) -> None:
    """The first ``budget`` preferences of the master bank (a budgeted bank is a prefix of a larger one)."""
    master = AdapterBank.load(master_dir)
    keep = budgeted_preferences(objectives, budget, "sobol", seed)
    tensors = master.tensors()
    rows = torch.nonzero(matches_any(tensors["preferences"], keep)).flatten().tolist()
    bank = AdapterBank(master.settings)
    for i in rows:
        bank.add(master.vectors[i], master.preferences[i], master.steps[i], master.seeds[i], master.metrics[i],
                 master.seconds[i])
    if len({tuple(p) for p in bank.preferences}) != budget:
        raise SystemExit(f"the master bank lacks preferences of the budget {budget}")
    bank.save(run_dir)


def conflicts(master_dir: str, keys: List[str]) -> List[List[str]]:
    """Spearman of each pair of objective metrics over the bank's final adapters (negative: they conflict)."""
    bank = AdapterBank.load(master_dir)
    final = max(bank.steps)
    values = {k: [m[k] for m, s in zip(bank.metrics, bank.steps) if s == final] for k in keys}
    return [[a] + [f"{spearmanr(values[a], values[b]).statistic:+.2f}" if a != b else "—" for b in keys]
            for a in keys]


def evaluate_reports(reports: Dict[str, Dict[str, Any]], reference_run: str):
    """HV ratios, ray Spearman, fidelity per objective and ms per adaptation of every method of every run."""
    first = reports[reference_run]
    keys, directions = first["hypervolume_reference"]["metrics"], first["hypervolume_reference"]["directions"]
    retune = first["methods"]["retune"]
    points = [method_points(entries, keys) for report in reports.values() for entries in report["methods"].values()]
    reference = default_reference(points, directions)
    retune_hv = hypervolume(method_points(retune, keys), directions, reference)
    seeds = [[[e["seed_metrics"][s][k] for e in retune] for s in range(len(retune[0]["seed_metrics"]))] for k in keys]
    floors = [noise_floor(v) for v in seeds]
    means = [np.mean(v, axis=0) for v in seeds]
    table = {}
    for name, report in reports.items():
        for method, entries in report["methods"].items():
            values = method_points(entries, keys)
            table[(name, method)] = {
                "hv": hypervolume(values, directions, reference) / retune_hv,
                "rays": [report["ray_spearman"][method].get(o) for o in report["objectives"]],
                "fidelity": [float(np.mean(np.abs(values[:, i] - means[i]))) / floors[i] for i in range(len(keys))],
                "ms": 1000 * report["timing"][method]}
    return table, reference, keys


def beside(report: Dict[str, Any], run_name: str, patterns: Dict[str, str]) -> Dict[str, Any]:
    """``report`` with the diffusion generator of each saved report ``pattern.format(run=run_name)`` as a method
    named by its label (test preferences must match)."""
    for label, pattern in patterns.items():
        with open(pattern.format(run=run_name), encoding="utf-8") as handle:
            other = json.load(handle)
        entries = other["methods"]["diffusion"]
        if [e["preference"] for e in entries] != [e["preference"] for e in report["methods"]["diffusion"]]:
            raise SystemExit(f"{pattern.format(run=run_name)} was tested at other preferences")
        report["methods"][label] = entries
        report["ray_spearman"][label] = other["ray_spearman"]["diffusion"]
        report["timing"][label] = other["timing"]["diffusion"]
    return report


def fmt(values) -> str:
    values = [v for v in values if v is not None and np.isfinite(v)]
    if not values:
        return "—"
    return f"{np.mean(values):.3f} ± {np.std(values, ddof=1) if len(values) > 1 else 0.0:.3f}"


def budget_rows(table, budget: int, method: str) -> List[Dict[str, Any]]:
    """``method``'s rows of every run at bank size ``budget`` (each size has the generator seeds it was run with)."""
    return [row for (run, name), row in table.items() if name == method and run.startswith(f"N{budget}-s")]


def sweep_cell(table, budget: int, method: str) -> str:
    rows = budget_rows(table, budget, method)
    return f"{fmt([r['hv'] for r in rows])} / {fmt([np.mean(r['fidelity']) for r in rows])}"


def plot(table, budgets, methods, path: str) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4))
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(1, 2, i) for i in (1, 2)]
    for method in methods:
        hv = [np.mean([row["hv"] for row in budget_rows(table, n, method)]) for n in budgets]
        fid = [np.mean([np.mean(row["fidelity"]) for row in budget_rows(table, n, method)]) for n in budgets]
        axes[0].plot(budgets, hv, marker="o", label=method)
        axes[1].plot(budgets, fid, marker="o", label=method)
    axes[0].set(xlabel="bank preferences N", ylabel="HV / re-tuning", xscale="log")
    axes[1].set(xlabel="bank preferences N", ylabel="mean fidelity / noise floor", xscale="log")
    for ax in axes:
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--data_path", default=None)
    parser.add_argument("--synthetic", choices=sorted(SHAPES), default=None, help="a synthetic shape (with topics)")
    parser.add_argument("--model", default="ParagonSASRec")
    parser.add_argument("--objectives", default="accuracy,diversity,exposure,calibration")
    parser.add_argument("--budgets", type=int, nargs="+", default=[10, 30, 100])
    parser.add_argument("--headline", type=int, default=30)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="generator seeds at the headline")
    parser.add_argument("--sweep-seeds", type=int, nargs="+", default=None, help="generator seeds elsewhere")
    parser.add_argument("--test", type=int, default=20, help="uniform test preferences")
    parser.add_argument("--rays", type=int, default=1, help="rays per objective (4 test preferences each)")
    parser.add_argument("--plot", default=None)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE")
    parser.add_argument("--eval-set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="settings of the evaluation stage only (sampling, generators): the same run directories "
                             "are evaluated again, their bank and re-tuned adapters reused, their reports replaced")
    parser.add_argument("--beside", nargs="*", default=[], metavar="LABEL=REPORT_PATTERN",
                        help="saved reports' diffusion generator beside this run's methods ({run}: N30-s0, ...)")
    parser.add_argument("--backbone-tag", default=None, help="a backbone of its own (with --set changing it)")
    args = parser.parse_args()
    objectives = args.objectives.split(",")
    extra = parsed_settings(args.set)
    if args.synthetic:
        args.data_path = os.path.join(BENCH_DIR, "synthetic-data")
        args.dataset = write_dataset(SHAPES[args.synthetic], args.data_path)
    tag = f"many-{args.dataset}-" + "-".join(o[:4] for o in objectives)
    if args.set:  # a short, stable name for the extra settings (printed below)
        tag += "-" + hashlib.sha1(" ".join(args.set).encode()).hexdigest()[:8]
    args.backbone_dir = os.path.join(BENCH_DIR, f"{args.model}-{args.dataset}" + (f"-{args.backbone_tag}"
                                                                                   if args.backbone_tag else ""))
    settings = {"checkpoint_dir": BENCH_DIR, "objectives": objectives, "state": "WARNING",
                "data_path": args.data_path, "evaluation_sample": args.test, "evaluation_rays": args.rays,
                "lever_bootstrap": 100, **extra}
    master = os.path.join(BENCH_DIR, f"{tag}-bank")
    run(args, settings, master, stage="bank", bank_budget=max(args.budgets))
    link_backbone(master, args.backbone_dir)  # a backbone trained by the bank run: every run below shares it
    sweep_seeds = args.sweep_seeds or args.seeds[:1]
    reports, reference_run = {}, f"N{args.headline}-s{args.seeds[0]}"
    for budget in sorted(set(args.budgets) | {args.headline}):
        for seed in args.seeds if budget == args.headline else sweep_seeds:
            name = f"N{budget}-s{seed}"
            run_dir = os.path.join(BENCH_DIR, f"{tag}-{name}")
            if not os.path.isfile(os.path.join(run_dir, "bank.json")):
                os.makedirs(run_dir, exist_ok=True)
                prefix_bank(master, run_dir, budget, len(objectives), int(settings.get("seed", 2020)))
            methods = GENERATED + LOOKUPS + ["soup", "backbone"] + (["retune"] if name == reference_run else [])
            result = run(args, {**settings, **parsed_settings(args.eval_set)}, run_dir, stage="evaluate",
                         bank_budget=budget, generator_seed=seed, evaluation_methods=methods)
            reports[name] = beside(result["report"], name, parsed_settings(args.beside))
            print(f"{name}: report in {run_dir}", flush=True)
    table, reference, keys = evaluate_reports(reports, reference_run)
    print(f"\nmachine: {machine()}; load {os.getloadavg()[0]:.1f}; {tag} = {' '.join(args.set) or 'defaults'}; "
          f"evaluated with {' '.join(args.eval_set) or 'defaults'}")
    print(f"HV reference point (worst of every point, every method and N): {dict(zip(keys, np.round(reference, 5)))}")
    print(f"\nconflicts on the bank of {max(args.budgets)} (Spearman of metric pairs over its final adapters):")
    print_table(conflicts(master, keys), ["metric"] + keys)
    bank = AdapterBank.load(master)
    print(f"bank: {len(set(map(tuple, bank.preferences)))} preferences, {np.mean(bank.seconds):.2f} s per tuning run "
          f"(K = {len(objectives)}; the same steps with each objective alone: benchmarks/levers.py)")
    levers = reports[reference_run].get("levers", {}).get("objectives", {})
    print("\nlevers (vertex against the backbone, bootstrap SE):",
          {name: round(lever["lever_se"], 1) for name, lever in levers.items()})
    methods = list(reports[reference_run]["methods"])
    runs = [f"N{args.headline}-s{s}" for s in args.seeds]
    print(f"\nheadline: N = {args.headline}, generator seeds {args.seeds} (mean ± sd)")
    rows = {m: [table[(r, m)] for r in runs if (r, m) in table] for m in methods}  # retune: the reference run
    print_table([[m, fmt([r["hv"] for r in rows[m]])]
                 + [fmt([r["rays"][i] for r in rows[m]]) for i in range(len(objectives))]
                 + [fmt([r["fidelity"][i] for r in rows[m]]) for i in range(len(keys))]
                 + [fmt([r["ms"] for r in rows[m]])] for m in methods],
                ["method", "HV / retune"] + [f"ray {o}" for o in objectives] + [f"fid {k}" for k in keys] + ["ms"])
    print(f"\nsweep over N (generator seeds {sweep_seeds} beside the headline's)")
    budgets = sorted(set(args.budgets) | {args.headline})
    print_table([[m] + [sweep_cell(table, n, m) for n in budgets] for m in GENERATED + LOOKUPS],
                ["method (HV / mean fidelity)"] + [f"N = {n}" for n in budgets])
    if args.plot:
        print(f"plot: {plot(table, budgets, GENERATED + LOOKUPS, args.plot)}")
    with open(os.path.join(BENCH_DIR, f"{tag}-summary.json"), "w") as handle:
        json.dump({f"{k[0]}|{k[1]}": v for k, v in table.items()}, handle, indent=1)


if __name__ == "__main__":
    main()

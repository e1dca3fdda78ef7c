"""What the pipeline costs as users, items and categories grow, on synthetic RecBole datasets (benchmarks/synthetic.py).

    python benchmarks/scale.py --shape ml100k-like [--epochs 6] [--preferences 21] [--methods diffusion mmr ...]
    python benchmarks/scale.py --shape 25k --accuracy-candidates 50
    python benchmarks/scale.py --shape ml-100k            # RecBole's bundled ml-100k itself, same stages
    python benchmarks/scale.py --curve --base 25k --accuracy-candidates 50

Pipeline mode runs every stage on one shape and prints seconds per stage (load, backbone, cache, bank, generators,
evaluation and per method) and per bank preference (tuning + metrics of its checkpoints on the selection sample).
``--preferences`` thins the bank grid and ``--methods`` the evaluated methods when a full run does not fit.

Curve mode measures one bank preference (w = (.5, .5), ``adapter_steps`` steps, its ``bank_checkpoints`` measured
on the selection sample) on RecBole's ml-100k and on shapes that change one of users (interactions per user kept),
items or categories from ``--base``, with an untrained backbone (the cost of a step does not depend on the
weights), once with the full CE and once with ``--accuracy-candidates`` (at most ``diversity_candidates``: the
cache is built for the larger of the two); ratios are to the base shape's cost, beside the size ratio.

Synthetic data: ``synthetic.CATEGORY_FIELD`` as ``category_field`` (not ml-100k's ``class``), no ``.user`` file,
so fairness groups are ``group_by: activity``.
"""
import argparse
import contextlib
import glob
import os
import resource
import shutil
import time
from typing import Any, Dict, Iterator, List, Tuple

import torch
from common import BENCH_DIR, machine, parsed_settings, print_table
from synthetic import CATEGORY_FIELD, SHAPES, Shape, write_dataset

from recbole_paragon import pipeline
from recbole_paragon.baselines import METHODS
from recbole_paragon.quick_start import build_config, prepare_data
from recbole_paragon.registry import get_model
from recbole_paragon.training.bank import collect_bank

DATA_DIR = os.path.join(BENCH_DIR, "scale-data")
METRICS = ["Recall", "NDCG"]


def overrides(args, shape_name: str, **extra) -> Dict[str, Any]:
    """The run's settings: synthetic data columns, the benchmark's run directory, the chosen options."""
    settings: Dict[str, Any] = {"checkpoint_dir": os.path.join(BENCH_DIR, "scale"), "state": "WARNING",
                                "show_progress": False, "metrics": METRICS, "epochs": args.epochs,
                                "stopping_step": args.epochs}
    if shape_name != "ml-100k":
        settings.update(data_path=DATA_DIR, category_field=CATEGORY_FIELD, group_by="activity",
                        load_col={"inter": ["user_id", "item_id", "rating", "timestamp"],
                                  "item": ["item_id", CATEGORY_FIELD]})
    if args.accuracy_candidates:
        settings["accuracy_candidates"] = args.accuracy_candidates
    if args.methods:
        settings["evaluation_methods"] = args.methods
    return {**settings, **parsed_settings(args.set), **extra}


def dataset_name(args) -> str:
    if args.shape == "ml-100k":
        return "ml-100k"
    return write_dataset(SHAPES[args.shape], DATA_DIR)


def timed_methods(seconds: Dict[str, float]) -> None:
    """Accumulate each evaluation method's wall time (adaptation + its evaluation) into ``seconds``."""
    for name, cls in METHODS.items():
        original = cls.adapt

        def adapt(self, preference, _original=original, _name=name):
            start = time.perf_counter()
            try:
                return _original(self, preference)
            finally:
                seconds[_name] = seconds.get(_name, 0.0) + time.perf_counter() - start

        cls.adapt = adapt


def cpu_seconds() -> float:
    """CPU time of this process, every thread (user + system)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@contextlib.contextmanager
def measured(stages: Dict[str, Tuple[float, float]], name: str) -> Iterator[Dict[str, str]]:
    """Record ``(wall, cpu)`` seconds of the block under ``name`` (the yielded dict may rename it: ``{"name": ..}``)."""
    label = {"name": name}
    wall, cpu = time.perf_counter(), cpu_seconds()
    yield label
    stages[label["name"]] = (time.perf_counter() - wall, cpu_seconds() - cpu)


def grid(count: int) -> torch.Tensor:
    weights = torch.linspace(0, 1, count)
    return torch.stack([weights, 1 - weights], 1)


def fresh_run_directory(config, backbone: bool) -> None:
    """Drop a previous run's bank and generators, and its backbone too with ``backbone`` (else it is reused when
    its settings match)."""
    from recbole_paragon.artifacts import run_directory

    patterns = ["bank.*", "generator-*"] + (["backbone.*"] if backbone else [])
    for pattern in patterns:
        for path in glob.glob(os.path.join(run_directory(config), pattern)):
            os.remove(path)


def pipeline_run(args) -> None:
    name = dataset_name(args)
    extra = {"bank_preferences": grid(args.preferences).tolist()} if args.preferences != 21 else {}
    config = build_config("ParagonSASRec", name, None, overrides(args, args.shape, **extra))
    if not args.reuse:
        fresh_run_directory(config, args.train_backbone)
    stages: Dict[str, Tuple[float, float]] = {}
    with measured(stages, "load data"):
        _, splits = prepare_data(config)
    pipeline.add_objective_metrics(config)
    with measured(stages, "backbone") as label:
        backbone = pipeline.backbone_stage(config, *splits)
        label["name"] = f"backbone ({args.epochs} epochs{', reused' if backbone['reused'] else ''})"
    with measured(stages, "cache every split"):
        trainer = pipeline.adapter_trainer(config, backbone["model"], *splits)
    with measured(stages, "bank") as label:
        bank = pipeline.bank_stage(config, trainer)
        runs = len(bank) // (len(config["bank_checkpoints"]) + 1)
        label["name"] = f"bank ({runs} preferences x {len(bank) // runs} checkpoints)"
    generators = {}
    for kind in ("diffusion", "hypernet"):
        with measured(stages, f"generator ({kind})"):
            generators[kind] = pipeline.generator_stage(config, trainer, bank, kind=kind, show_progress=False)
    methods: Dict[str, float] = {}
    timed_methods(methods)
    with measured(stages, f"evaluate ({len(config['evaluation_methods'])} methods x 11 preferences)"):
        pipeline.evaluate_stage(config, trainer, bank, generators)
    report(args, config, trainer, bank, stages, methods)


def report(args, config, trainer, bank, stages, methods) -> None:
    caches, runs = trainer.caches, len(bank) // (len(config["bank_checkpoints"]) + 1)
    bank_wall = next(wall for what, (wall, _) in stages.items() if what.startswith("bank"))
    tuning = sum(bank.seconds[:: len(bank) // runs])
    print(f"\nmachine: {machine()}; load average {os.getloadavg()[0]:.1f}; dataset {config['dataset']}: "
          f"{len(caches['train'])} training sequences, {len(caches['test'])} test users, "
          f"{trainer.model.n_items} items, {int(trainer.objectives_by_name('diversity').category_ids.max())} "
          f"categories; selection sample {len(caches['selection'])} users; accuracy_candidates "
          f"{config['accuracy_candidates']}{'; bank and generators reused' if args.reuse else ''}")
    rows = [[what, f"{wall:.1f}", f"{cpu:.1f}"] for what, (wall, cpu) in stages.items()]
    rows += [["  per bank preference: tuning", f"{tuning / runs:.2f}", ""],
             ["  per bank preference: checkpoint metrics", f"{(bank_wall - tuning) / runs:.2f}", ""],
             ["  per bank preference: total", f"{bank_wall / runs:.2f}", ""]]
    rows += [[f"  evaluate: {method}", f"{seconds:.1f}", ""] for method, seconds in methods.items()]
    rows += [["whole pipeline", f"{sum(w for w, _ in stages.values()):.1f}",
              f"{sum(c for _, c in stages.values()):.1f}"]]
    print_table(rows, ["stage", "wall s", "cpu s (all threads)"])


# ---------------------------------------------------------------- cost curve


def curve_shapes(base: Shape) -> List[tuple]:
    """(axis, factor, shape): RecBole's ml-100k (the reference of the 2x target), then users, items and categories
    scaled one at a time around ``base``."""
    per_user = base.interactions / base.users
    shapes = [("base", 1.0, base), ("ml-100k", 0.0, None)]
    for factor in (0.25, 0.5, 2.0):
        users = int(base.users * factor)
        shapes.append(("users", factor, Shape(users, base.items, base.categories, int(users * per_user))))
    for factor in (0.25, 0.5, 5 / 3):
        shapes.append(("items", factor, Shape(base.users, int(base.items * factor), base.categories,
                                                base.interactions)))
    for factor in (1 / 12, 0.25, 5 / 3):
        shapes.append(("categories", factor, Shape(base.users, base.items, int(base.categories * factor),
                                                     base.interactions)))
    return shapes


def one_preference(trainer, config, candidates) -> float:
    """Seconds of one bank preference (tuning + checkpoint metrics) with the accuracy objective's candidates."""
    trainer.objectives_by_name("accuracy").num_candidates = candidates
    directory = os.path.join(BENCH_DIR, "scale", f"curve-{time.monotonic_ns()}")
    os.makedirs(directory)
    start = time.perf_counter()
    collect_bank(trainer, config, directory, show_progress=False, grid=torch.tensor([[0.5, 0.5]]))
    seconds = time.perf_counter() - start
    shutil.rmtree(directory)
    return seconds


def curve_run(args) -> None:
    measured = []
    for axis, factor, shape in curve_shapes(SHAPES[args.base]):
        name = "ml-100k" if shape is None else write_dataset(shape, DATA_DIR)
        config = build_config("ParagonSASRec", name, None, overrides(args, name))
        _, splits = prepare_data(config)
        pipeline.add_objective_metrics(config)
        model = get_model(config["model"])(config, splits[0]._dataset).to(config["device"])
        trainer = pipeline.adapter_trainer(config, model, *splits)
        costs = [one_preference(trainer, config, None), one_preference(trainer, config, args.accuracy_candidates)]
        size = "943x1682x19 (real)" if shape is None else f"{shape.users}x{shape.items}x{shape.categories}"
        measured.append((axis, size, factor, costs))
        print(axis, size, costs, flush=True)
    base, reference = measured[0][3], measured[1][3]
    rows = [[axis, size, f"{factor:.2f}" if axis != "ml-100k" else "-", f"{full:.2f}", f"{full / base[0]:.2f}",
             f"{top:.2f}", f"{top / base[1]:.2f}", f"{top / reference[0]:.2f}"]
            for axis, size, factor, (full, top) in measured]
    print(f"\nmachine: {machine()}; load average {os.getloadavg()[0]:.1f}; one bank preference = "
          f"{config['adapter_steps']} steps + {len(config['bank_checkpoints']) + 1} checkpoints on "
          f"<= {config['selection_users']} selection users; untrained backbone")
    print_table(rows, ["axis", "users x items x categories", "size ratio", "full CE s", "ratio",
                       f"CE top-{args.accuracy_candidates} s", "ratio", "÷ ml-100k full CE"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", default="ml100k-like", choices=[*SHAPES, "ml-100k"])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--preferences", type=int, default=21, help="bank preferences (21 = the default grid)")
    parser.add_argument("--methods", nargs="+", default=None, help="evaluation methods (default: every one)")
    parser.add_argument("--accuracy-candidates", type=int, default=None, help="accuracy_candidates (default ~)")
    parser.add_argument("--reuse", action="store_true", help="keep the run directory's bank and generators")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="more settings, e.g. finetune_selection=last")
    parser.add_argument("--train-backbone", action="store_true", help="train the backbone even if one is saved")
    parser.add_argument("--curve", action="store_true", help="cost curve of one bank preference")
    parser.add_argument("--base", default="25k", choices=list(SHAPES))
    args = parser.parse_args()
    if args.curve:
        if not args.accuracy_candidates:
            parser.error("--curve compares the full CE with --accuracy-candidates N")
        curve_run(args)
    else:
        pipeline_run(args)


if __name__ == "__main__":
    main()

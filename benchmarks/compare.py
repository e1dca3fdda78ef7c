"""RecBole's models beside Paragon's fronts on a dataset, through ``--stage=compare``; wall time on Ray and serially.

    python benchmarks/compare.py [--dataset ml-100k | --synthetic compare] [--modes ray serial] [--tag NAME]
        [--serial_threads N] [--set KEY=VALUE ...]

One Paragon run (backbone, bank, generator, evaluation: reused when already done with the same settings) and the
compare stage on it, once per mode: ``ray`` (one Ray task per model and seed, ``num_workers`` at a time, one CPU and
one torch thread each) and ``serial`` (one after another in this process, ``--serial_threads`` torch threads, default
torch's own). Each mode keeps its own results (``<run_dir>/compare-<mode>``, swapped in while it runs), so both
really train, side by side in one run, and an interrupted benchmark resumes each mode where it stopped. Prints the comparison table of the run's
report (``report.md``, ``compare.png`` in the run directory), the wall time of each mode and their ratio, and how
far the two modes' measurements differ.

``--synthetic compare`` writes (once) a dataset of ``synthetic.py``'s generator: no ``.user`` file, categories in
the ``topics`` field, fairness groups by activity. ``--set`` takes any setting (``objectives=[accuracy,diversity,
fairness]``, ``eval_args={mode: uni100}``, ``epochs=5``, ``compare_models=[Pop,SASRec]``...).
"""
import argparse
import datetime
import json
import os
import shutil
import subprocess
import time

import torch
from common import BENCH_DIR, machine, parsed_settings, print_table
from synthetic import CATEGORY_FIELD, Shape, write_dataset

from recbole_paragon import run_recbole_paragon
from recbole_paragon.compare import COMPARE_DIR
from recbole_paragon.evaluation.comparison import comparison_table

SHAPES = {"compare": Shape(1500, 1000, 40, 40_000)}
SYNTHETIC = {"category_field": CATEGORY_FIELD, "group_by": "activity", "title_field": None,
             "load_col": {"inter": ["user_id", "item_id", "rating", "timestamp"], "item": ["item_id", CATEGORY_FIELD]}}


def load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def run_mode(dataset: str, settings: dict, mode: str) -> dict:
    """The compare stage with ``mode``'s results swapped into ``<run_dir>/compare``; returns the report."""
    run_dir = settings["run_dir"]
    kept, live = os.path.join(run_dir, f"{COMPARE_DIR}-{mode}"), os.path.join(run_dir, COMPARE_DIR)
    if os.path.isdir(live):  # a previous mode interrupted before it was put away: set it aside
        shutil.move(live, live + f"-interrupted-{int(time.time())}")
    if os.path.isdir(kept):
        shutil.move(kept, live)
    try:
        result = run_recbole_paragon("ParagonSASRec", dataset, None,
                                     {**settings, "stage": "compare", "compare_ray": mode == "ray"})
    finally:
        if os.path.isdir(live):
            shutil.move(live, kept)
    return result["report"]


def mode_rows(reports: dict) -> list:
    rows = []
    for mode, report in reports.items():
        compare = report["compare"]
        seconds = [r["seconds"] for r in compare["runs"] if r.get("seconds") and not r.get("reused")]
        wall = compare.get("wall_seconds")
        rows.append([mode, compare["execution"], str(compare["trained"]), "—" if wall is None else f"{wall:.0f}",
                     f"{sum(seconds):.0f}", f"{sum(seconds) / wall:.2f}" if wall and seconds else "—"])
    return rows


def largest_difference(reports: dict) -> str:
    """The largest difference of a model's mean metric between two modes (threads change float sums a little)."""
    if len(reports) < 2:
        return "one mode only"
    first, second = (r["compare"]["models"] for r in list(reports.values())[:2])
    gaps = [(abs(first[m]["mean"][k] - second[m]["mean"][k]), m, k) for m in first if m in second
            for k in first[m]["mean"] if first[m]["mean"][k] is not None and second[m]["mean"].get(k) is not None]
    if not gaps:
        return "nothing to compare"
    gap, model, key = max(gaps)
    return f"largest difference of a mean between the modes: {gap:.4f} ({model} {key})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--synthetic", choices=sorted(SHAPES), help="a dataset built here instead of --dataset")
    parser.add_argument("--modes", nargs="+", default=["ray", "serial"], choices=["ray", "serial"])
    parser.add_argument("--tag", default=None, help="run directory suffix (default: the test's eval mode)")
    parser.add_argument("--serial_threads", type=int, default=None,
                        help="torch threads of the serial mode (default: torch's own; each Ray task has one)")
    parser.add_argument("--set", nargs="*", default=[], help="KEY=VALUE settings (values read as YAML)")
    args = parser.parse_args()
    settings = {"checkpoint_dir": os.path.join(BENCH_DIR, "compare"), "state": "WARNING", "show_progress": False,
                **parsed_settings(args.set)}
    dataset = args.dataset
    if args.synthetic:
        data_path = os.path.join(BENCH_DIR, "compare-data")
        dataset = write_dataset(SHAPES[args.synthetic], data_path)
        settings = {**SYNTHETIC, "data_path": data_path, **settings}
    mode = (settings.get("eval_args") or {}).get("mode", "full")
    tag = args.tag or (mode if isinstance(mode, str) else "-".join(mode.values()))
    settings.setdefault("run_dir", os.path.join(BENCH_DIR, "compare", f"ParagonSASRec-{dataset}-{tag}"))
    print(f"date: {datetime.datetime.now().isoformat(timespec='seconds')}; machine: {machine()}; nproc "
          f"{os.cpu_count()}; load before: {load()}")
    print(f"dataset {dataset}; settings {json.dumps(settings, sort_keys=True)}")
    reports = {}
    for name in args.modes:
        if name == "serial" and args.serial_threads:
            torch.set_num_threads(args.serial_threads)
        start = time.perf_counter()
        reports[name] = run_mode(dataset, settings, name)
        print(f"mode {name}: {time.perf_counter() - start:.0f} s in all (Paragon's stages reused or run first); "
              f"load after: {load()}", flush=True)
    last = reports[args.modes[-1]]
    print()
    print(comparison_table(last))
    print(f"\nreport: {os.path.join(settings['run_dir'], 'report.md')} and compare.png")
    print()
    print_table(mode_rows(reports), ["mode", "execution", "trainings", "wall s", "sum of task s", "tasks in parallel"])
    walls = {m: r["compare"].get("wall_seconds") for m, r in reports.items()}
    if walls.get("ray") and walls.get("serial"):
        print(f"serial / Ray wall time: {walls['serial'] / walls['ray']:.2f}x")
    print(largest_difference(reports))


if __name__ == "__main__":
    main()

"""Shared set-up for the benchmarks: machine description, ml-100k backbone trained once and reused."""
from __future__ import annotations

import os
import platform
import sys
from typing import Any, Dict, Optional, Tuple

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from recbole_paragon import pipeline  # noqa: E402
from recbole_paragon.quick_start import build_config, prepare_data  # noqa: E402

BENCH_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "saved", "benchmarks")


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{os.cpu_count()} cores, {cpu}, torch {torch.__version__} ({torch.get_num_threads()} threads), no GPU"


def backbone_run(model: str = "ParagonSASRec", dataset: str = "ml-100k",
                 overrides: Optional[Dict[str, Any]] = None) -> Tuple[Any, Any, Tuple, Dict[str, Any]]:
    """Config, dataset, splits and the backbone (trained on first use, then reused from saved/benchmarks)."""
    config_dict = {"checkpoint_dir": BENCH_DIR, "state": "WARNING", "show_progress": False, **(overrides or {})}
    config = build_config(model, dataset, None, config_dict)
    dataset_object, splits = prepare_data(config)
    backbone = pipeline.backbone_stage(config, *splits)
    return config, dataset_object, splits, backbone


def print_table(rows, headers) -> None:
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
    line = " | ".join(str(h).ljust(w) for h, w in zip(headers, widths))
    print(line)
    print("-|-".join("-" * w for w in widths))
    for row in rows:
        print(" | ".join(str(v).ljust(w) for v, w in zip(row, widths)))


def parsed_settings(items) -> Dict[str, Any]:
    """``KEY=VALUE`` command-line items as settings (values read as YAML: numbers, lists, ~)."""
    import yaml

    pairs = [item.split("=", 1) for item in items]
    bad = [item for item, pair in zip(items, pairs) if len(pair) != 2 or not pair[0]]
    if bad:
        raise SystemExit(f"--set takes KEY=VALUE items, got {bad}")
    return {key: yaml.safe_load(value) for key, value in pairs}


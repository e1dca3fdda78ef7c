"""An objective's lever: how far its own vertex (all weight on it) moves its metric from a reference, in bootstrap
standard errors over the evaluated users. A weight whose vertex stays within the metric's sampling noise of the
backbone barely changes the recommendations: the product says so instead of offering a dead slider.

The difference of one RecBole metric between two collected evaluations of the *same* rows (two adapters on one
split) is bootstrapped paired: each resample draws users with replacement and recomputes the metric on both.
"""
from __future__ import annotations

from typing import Dict

import torch
from recbole.evaluator import DataStruct
from recbole.evaluator import register as recbole_register

Tensor = torch.Tensor


def resampled(struct: DataStruct, rows: Tensor) -> DataStruct:
    """``struct`` with its per-row entries (``rec.*``) restricted to ``rows`` (repeats allowed); data shared."""
    count = len(struct.get("rec.items")) if "rec.items" in struct else len(struct.get("rec.topk"))
    out = DataStruct()
    for key, value in struct._data_dict.items():
        per_row = key.startswith("rec.") and torch.is_tensor(value) and value.dim() > 0 and len(value) == count
        out.set(key, value[rows] if per_row else value)
    return out


def metric_value(config, struct: DataStruct, key: str) -> float:
    """One metric (``key`` like ``ndcg@10``) of a collected evaluation, computed by its RecBole class alone."""
    metric = recbole_register.metrics_dict[key.split("@")[0]](config)
    metric.decimal_place = 10  # RecBole rounds to 4 places: too coarse for differences of a few 1e-4
    return float(metric.calculate_metric(struct)[key])


def bootstrap_difference(config, struct: DataStruct, reference: DataStruct, key: str, resamples: int,
                         seed: int) -> Dict[str, float]:
    """``metric(struct) − metric(reference)`` and its paired bootstrap standard error over users."""
    count = len(struct.get("rec.topk"))
    if len(reference.get("rec.topk")) != count:
        raise ValueError("a paired bootstrap needs two evaluations of the same rows")
    generator = torch.Generator().manual_seed(int(seed))
    differences = []
    for _ in range(int(resamples)):
        rows = torch.randint(count, (count,), generator=generator)
        differences.append(metric_value(config, resampled(struct, rows), key) -
                           metric_value(config, resampled(reference, rows), key))
    delta = metric_value(config, struct, key) - metric_value(config, reference, key)
    return {"delta": delta, "se": float(torch.tensor(differences).std())}

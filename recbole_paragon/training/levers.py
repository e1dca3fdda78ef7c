"""Each objective's lever on the user's data, measured when the bank is complete (see
:mod:`recbole_paragon.evaluation.levers`): its vertex's metric against the backbone's — for accuracy, which the
backbone was trained for, against the least accurate other vertex — in paired bootstrap standard errors over the
selection users; and whether its side information (categories, user groups) covers enough of the data to mean what
it says. Both end in ``bank.json`` and the report, with a warning for every objective that has no lever.
"""
from __future__ import annotations

import math
from logging import getLogger
from typing import Any, Dict, List, Optional

import torch

from recbole_paragon.evaluation.levers import bootstrap_difference, metric_value
from recbole_paragon.preference import matches_any
from recbole_paragon.settings import setting
from recbole_paragon.training.adapter_trainer import SELECTION, AdapterTrainer
from recbole_paragon.training.bank import AdapterBank

#: The objective a backbone is trained for: its lever is what the other vertices take away.
BACKBONE_OBJECTIVE = "accuracy"


def vertex_vector(trainer: AdapterTrainer, bank: AdapterBank, index: int) -> torch.Tensor:
    """The final adapter of the first seed at the vertex ``e_index`` from the bank, or tuned now (not stored)."""
    vertex = torch.zeros(len(trainer.objective_names))
    vertex[index] = 1.0
    tensors = bank.tensors()
    final = (tensors["steps"] == tensors["steps"].max()) & matches_any(tensors["preferences"], vertex[None])
    if final.any():
        rows = torch.nonzero(final).flatten()
        return tensors["vectors"][rows[tensors["seeds"][rows].argmin()]]
    return trainer.tune(vertex, seed=0)[-1][1]


def measure_levers(config, trainer: AdapterTrainer, bank: AdapterBank) -> Dict[str, Any]:
    """``{"objectives": {name: lever}, "warnings": [...]}`` for the run's objectives (see the module)."""
    resamples, minimum = int(setting(config, "lever_bootstrap")), float(setting(config, "lever_min_se"))
    evaluator = trainer.split_evaluator
    backbone = evaluator.collected(None, SELECTION)
    vertices = [evaluator.collected(vertex_vector(trainer, bank, i), SELECTION)
                for i in range(len(trainer.objectives))]
    levers: Dict[str, Any] = {}
    for index, objective in enumerate(trainer.objectives):
        key, sign = objective.metric(), (1.0 if objective.bigger_is_better else -1.0)
        reference, name = backbone, "backbone"
        if objective.name == BACKBONE_OBJECTIVE and len(vertices) > 1:
            others = [i for i in range(len(vertices)) if i != index]
            worst = min(others, key=lambda i: sign * metric_value(config, vertices[i], key))
            reference, name = vertices[worst], f"{trainer.objective_names[worst]} vertex"
        difference = bootstrap_difference(config, vertices[index], reference, key, resamples,
                                          int(setting(config, "seed")))
        improvement = sign * difference["delta"]
        lever = improvement / difference["se"] if difference["se"] > 0 else math.copysign(math.inf, improvement)
        levers[objective.name] = {"metric": key, "reference": name,
                                  "vertex_value": metric_value(config, vertices[index], key),
                                  "reference_value": metric_value(config, reference, key),
                                  "improvement": improvement, "se": difference["se"], "lever_se": lever,
                                  "has_lever": bool(lever >= minimum)}
    return {"objectives": levers, "warnings": lever_warnings(levers, minimum) + list(trainer.notes)}


def lever_warnings(levers: Dict[str, Dict[str, Any]], minimum: float) -> List[str]:
    """One sentence per objective without a lever (fewer than ``minimum`` standard errors)."""
    return [f"{name} has no lever on this data: its vertex moves {lever['metric']} by {lever['lever_se']:.1f} "
            f"standard errors from the {lever['reference']} (< {minimum:g}): w_{name} will barely change the "
            "recommendations" for name, lever in levers.items() if not lever["has_lever"]]


def record_levers(config, trainer: AdapterTrainer, bank: AdapterBank, directory: str,
                  levers: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Measure the levers once per bank (stored in ``bank.json``), log them, warn about the dead ones."""
    if bank.levers.get("bank_fingerprint") != bank.fingerprint():  # a new or grown bank is measured again
        bank.levers = {**(levers or measure_levers(config, trainer, bank)), "bank_fingerprint": bank.fingerprint()}
        bank.save(directory)
    logger = getLogger()
    for name, lever in bank.levers["objectives"].items():
        logger.info(f"lever of {name}: {lever['metric']} {lever['reference_value']:.4f} ({lever['reference']}) -> "
                    f"{lever['vertex_value']:.4f} at its vertex, {lever['lever_se']:.1f} standard errors")
    for warning in bank.levers["warnings"]:
        if warning not in trainer.notes:  # the run's notes on its data were logged when it began
            logger.warning(warning)
    return bank.levers

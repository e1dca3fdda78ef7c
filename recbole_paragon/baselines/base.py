"""What an adaptation method is, the registry of them, and the loop that runs them side by side.

A method maps a preference to the test metrics of the backbone adapted for it and the seconds the adaptation took
(evaluation itself not counted). Adding a baseline is one class with a ``name``, decorated with :func:`register`,
in a module of this package.
"""
from __future__ import annotations

import time
from logging import getLogger
from abc import ABC, abstractmethod
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch

from recbole_paragon.evaluation.evaluator import SplitEvaluator
from recbole_paragon.generators import GeneratedAdapters
from recbole_paragon.preference import matches_any
from recbole_paragon.training.adapter_trainer import AdapterTrainer
from recbole_paragon.training.bank import AdapterBank

Entry = Dict[str, Any]  # {"metrics": {...}, "seconds": s[, "seed_metrics": [...]]}


def timed(function: Callable[[], Any]) -> Tuple[Any, float]:
    """``(function(), seconds it took)``."""
    start = time.perf_counter()
    value = function()
    return value, time.perf_counter() - start


class MethodContext:
    """What the methods share: one frozen backbone (its trainer and cached splits), the bank, the generators."""

    def __init__(self, config, trainer: AdapterTrainer, bank: AdapterBank, generators: Dict[str, GeneratedAdapters],
                 holdout: torch.Tensor, retrain_preferences: torch.Tensor, split: str = "test") -> None:
        self.config = config
        self.trainer = trainer
        self.bank = bank
        self.generators = generators
        self.split = split
        self.retrain_preferences = retrain_preferences
        tensors = bank.tensors()
        final = (tensors["steps"] == tensors["steps"].max()) & (tensors["seeds"] == tensors["seeds"].min())
        self.bank_vectors, self.bank_preferences = tensors["vectors"][final], tensors["preferences"][final]
        lookup = final & ~matches_any(tensors["preferences"], holdout)
        self.lookup_vectors, self.lookup_preferences = tensors["vectors"][lookup], tensors["preferences"][lookup]

    @property
    def evaluator(self) -> SplitEvaluator:
        return self.trainer.split_evaluator

    def evaluate(self, vector: Optional[torch.Tensor]) -> Dict[str, float]:
        """Test metrics of the backbone with adapter ``vector`` (None: no adapter)."""
        return dict(self.evaluator.vector(vector, self.split))

    def objective_index(self, name: str) -> int:
        if name not in self.trainer.objective_names:
            raise ValueError(f"this method needs the {name} objective; the run's objectives are "
                             f"{self.trainer.objective_names}")
        return self.trainer.objective_names.index(name)


class AdaptationMethod(ABC):
    """One way to adapt the frozen backbone to a preference."""

    name: str = ""

    def __init__(self, context: MethodContext) -> None:
        self.context = context

    def unavailable(self) -> Optional[str]:
        """Why the method cannot run on this run's objectives (then it is left out and the report says why)."""
        return None

    def prepare(self) -> None:
        """Called once before the first preference (warm-up that a deployed method would not pay per call)."""

    def applies_to(self, preference: torch.Tensor) -> bool:
        """Whether the method is run at this preference (all of them, unless it is too costly)."""
        return True

    @abstractmethod
    def adapt(self, preference: torch.Tensor) -> Entry:
        """``{"metrics": test metrics, "seconds": adaptation time}`` at ``preference``."""


METHODS: Dict[str, type] = {}


def register(cls: type) -> type:
    """Class decorator: make an :class:`AdaptationMethod` available under its ``name``."""
    if not cls.name or cls.name in METHODS:
        raise ValueError(f"adaptation method {cls.__name__} needs a unique name, got {cls.name!r}")
    METHODS[cls.name] = cls
    return cls


def check_method_names(names: List[str]) -> List[str]:
    """``names`` if every one is a registered method; an unknown name lists the registered ones."""
    unknown = [name for name in names if name not in METHODS]
    if unknown:
        raise ValueError(f"unknown evaluation method(s) {unknown} in evaluation_methods; available: "
                         f"{', '.join(sorted(METHODS))}")
    return names


def build_methods(names: List[str], context: MethodContext) -> Tuple[List[AdaptationMethod], Dict[str, str]]:
    """The named methods that can run, in order, and why each other one cannot; an unknown name lists the
    registered ones."""
    methods, skipped = [], {}
    for method in (METHODS[name](context) for name in check_method_names(names)):
        reason = method.unavailable()
        if reason is None:
            methods.append(method)
        else:
            skipped[method.name] = reason
            getLogger().warning(f"evaluation method {method.name} left out: {reason}")
    return methods, skipped


def run_methods(methods: List[AdaptationMethod], preferences: torch.Tensor) -> Dict[str, List[Entry]]:
    """Results per method and preference: ``{name: [{preference, metrics, seconds[, seed_metrics]}]}``."""
    for method in methods:
        method.prepare()
    results: Dict[str, List[Entry]] = {method.name: [] for method in methods}
    for preference in preferences:
        for method in methods:
            if method.applies_to(preference):
                results[method.name].append({"preference": preference.tolist(), **method.adapt(preference)})
    return results

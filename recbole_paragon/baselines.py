"""Ways to adapt a frozen backbone to a new preference, compared side by side by the evaluation stage.

Every method maps a preference to test metrics and the seconds it took to adapt (evaluation itself not counted):
``paragon`` (diffusion-generated adapter), ``hypernet`` (MLP-generated adapter), ``retune`` (adapter tuned at that
preference, several seeds: the quality ceiling), ``retrain`` (whole model trained from scratch on the weighted loss),
``soup`` (interpolation of the one-objective adapters), ``mmr`` (MMR re-ranking of backbone scores, λ = accuracy
weight), ``nearest`` (bank adapter with the closest preference), ``neighbour_soup`` (average of the two nearest bank
adapters) and ``backbone`` (no adapter).
"""
from __future__ import annotations

import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch

from recbole_paragon.bank import AdapterBank
from recbole_paragon.evaluation import mmr_rerank
from recbole_paragon.objectives.base import CachedBatch
from recbole_paragon.preference import SAME_PREFERENCE, matches_any, preference_distances
from recbole_paragon.serving import GeneratedAdapters
from recbole_paragon.strategies import build_strategy
from recbole_paragon.trainer.adapter_trainer import AdapterTrainer
from recbole_paragon.utils import config_get, get_model

Result = Tuple[Dict[str, float], float]


def timed(function: Callable[[], Any]) -> Tuple[Any, float]:
    start = time.perf_counter()
    value = function()
    return value, time.perf_counter() - start


class AdaptationMethods:
    """The baselines for one backbone, bank and set of generators; each ``method(w)`` returns (metrics, seconds)."""

    def __init__(self, config, trainer: AdapterTrainer, bank: AdapterBank, generators: Dict[str, GeneratedAdapters],
                 holdout: torch.Tensor, split: str = "test") -> None:
        self.config = config
        self.trainer = trainer
        self.generators = generators
        self.split = split
        self.bank = bank
        tensors = bank.tensors()
        final = (tensors["steps"] == tensors["steps"].max()) & (tensors["seeds"] == tensors["seeds"].min())
        self.bank_vectors, self.bank_preferences = tensors["vectors"][final], tensors["preferences"][final]
        lookup = final.clone()
        if len(holdout):
            lookup &= ~matches_any(tensors["preferences"], holdout)
        self.lookup_vectors, self.lookup_preferences = tensors["vectors"][lookup], tensors["preferences"][lookup]
        for adapters in generators.values():  # a deployed generator is warm: the first call's set-up is not timed
            adapters.vectors(torch.full((1, len(trainer.objective_names)), 1.0 / len(trainer.objective_names)))

    def evaluate(self, vector: Optional[torch.Tensor]) -> Dict[str, float]:
        return dict(self.trainer.evaluate_vector(vector, self.split))

    # -- generated ---------------------------------------------------------------------------------------------------
    def generated(self, kind: str, preference: torch.Tensor) -> Result:
        vectors, seconds = timed(lambda: self.generators[kind].vectors(preference[None]))
        return self.evaluate(vectors[0]), seconds

    # -- tuned -------------------------------------------------------------------------------------------------------
    def retune(self, preference: torch.Tensor, seed: int) -> Result:
        """Tune at the preference; a bank run with the same preference and seed is the same computation (tuning
        is deterministic given the seed), so its final adapter and recorded tuning time are reused."""
        stored = [i for i in self.bank.find(preference.tolist(), seed) if self.bank.steps[i] == self.trainer.steps]
        if stored:
            return self.evaluate(self.bank.vectors[stored[0]]), self.bank.seconds[stored[0]]
        runs, seconds = timed(lambda: self.trainer.tune(preference, seed=seed))
        return self.evaluate(runs[-1][1]), seconds

    def retrain(self, preference: torch.Tensor) -> Result:
        """A new model trained end to end (backbone and adapter) on the weighted loss, from scratch."""
        return timed_result(lambda: retrain_model(self.config, self.trainer, preference), self.trainer, self.split)

    # -- parameter arithmetic over the bank --------------------------------------------------------------------------
    def soup(self, preference: torch.Tensor) -> Result:
        corners = torch.eye(len(preference))
        distance = preference_distances(corners, self.bank_preferences)
        if (distance.min(1).values >= SAME_PREFERENCE).any():
            raise ValueError("soup needs bank adapters at every one-objective preference (e.g. w=(1,0) and (0,1))")
        ends = self.bank_vectors[distance.argmin(1)]
        vector, seconds = timed(lambda: preference @ ends)
        return self.evaluate(vector), seconds

    def nearest(self, preference: torch.Tensor, count: int = 1) -> Result:
        def pick():
            distance = preference_distances(preference[None], self.lookup_preferences)[0]
            return self.lookup_vectors[distance.topk(count, largest=False).indices].mean(0)

        vector, seconds = timed(pick)
        return self.evaluate(vector), seconds

    # -- re-ranking and the plain backbone ----------------------------------------------------------------------------
    def mmr(self, preference: torch.Tensor) -> Result:
        categories = self.trainer.objectives_by_name("diversity").item_categories
        k = int(config_get(self.config, "diversity_topk", 10))
        seconds = []

        def rescore(scores):
            reranked, elapsed = timed(lambda: mmr_rerank(scores, categories, float(preference[0]), k))
            seconds.append(elapsed)
            return reranked

        self.trainer.model.adapter.reset_parameters()
        metrics = dict(self.trainer.evaluate_cache(self.trainer.caches[self.split], self.trainer.model.adapter,
                                                   rescore=rescore))
        return metrics, sum(seconds)

    def backbone(self, preference: torch.Tensor) -> Result:
        return self.evaluate(None), 0.0


def timed_result(train: Callable[[], Any], trainer: AdapterTrainer, split: str) -> Result:
    """Train a model with ``train`` (returns it), evaluate it on the split via a fresh cache."""
    from recbole_paragon.trainer.cache import RepresentationCache

    model, seconds = timed(train)
    loader = trainer.loaders[split]
    cache = RepresentationCache.build(model, loader, 1)
    original = trainer.model
    trainer.model = model
    try:
        metrics = dict(trainer.evaluate_cache(cache, model.adapter))
    finally:
        trainer.model = original
    return metrics, seconds


def retrain_model(config, trainer: AdapterTrainer, preference: torch.Tensor):
    """Train backbone and adapter together from scratch on ``Σ wᵢ·Lᵢ`` for ``evaluation_retrain_epochs`` epochs."""
    from recbole.utils import init_seed

    init_seed(config["seed"], config["reproducibility"])
    train_data = trainer.loaders["train"]
    model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
    model.adapter.requires_grad_(True)
    objectives = [type(o)(config, train_data._dataset, model) for o in trainer.objectives]
    optimizer = torch.optim.Adam(model.parameters(), lr=float(config["learning_rate"]))
    strategy = build_strategy(trainer.strategy_name, config, preference.tolist())
    parameters = list(model.parameters())
    candidates = int(config_get(config, "diversity_candidates", 50))
    model.train()
    for _ in range(int(config_get(config, "evaluation_retrain_epochs", 10))):
        for interaction in train_data:
            interaction = interaction.to(model.device)
            hidden = model.differentiable_representation(interaction)
            rows = model.adapter(hidden)
            scores = model.score_representation(rows)
            top = scores.detach().clone()
            top[:, 0] = -torch.inf
            batch = CachedBatch(hidden, interaction[model.POS_ITEM_ID], interaction[model.USER_ID],
                                top.topk(candidates, dim=1).indices)
            strategy.step([o.loss(batch, rows, scores) for o in objectives], optimizer, parameters, rows=rows)
    return model.eval()


def run_methods(methods: AdaptationMethods, names: List[str], preferences: torch.Tensor, retune_seeds: List[int],
                retrain_preferences: torch.Tensor) -> Dict[str, List[Dict[str, Any]]]:
    """Results per method and preference: ``{name: [{preference, metrics, seconds[, seed_metrics]}]}``."""
    results: Dict[str, List[Dict[str, Any]]] = {name: [] for name in names}
    for preference in preferences:
        for name in names:
            if name == "retune":
                runs = [methods.retune(preference, seed) for seed in retune_seeds]
                keys = runs[0][0].keys()
                metrics = {k: sum(r[0][k] for r in runs) / len(runs) for k in keys}
                entry = {"metrics": metrics, "seconds": sum(r[1] for r in runs) / len(runs),
                         "seed_metrics": [r[0] for r in runs]}
            elif name == "retrain":
                if not contains(retrain_preferences, preference):
                    continue
                metrics, seconds = methods.retrain(preference)
                entry = {"metrics": metrics, "seconds": seconds}
            else:
                metrics, seconds = method_function(methods, name)(preference)
                entry = {"metrics": metrics, "seconds": seconds}
            results[name].append({"preference": preference.tolist(), **entry})
    return results


def contains(preferences: torch.Tensor, preference: torch.Tensor) -> bool:
    return bool(matches_any(preference[None], preferences).any())


def method_function(methods: AdaptationMethods, name: str) -> Callable[[torch.Tensor], Result]:
    table = {
        "paragon": lambda w: methods.generated("diffusion", w),
        "hypernet": lambda w: methods.generated("hypernet", w),
        "soup": methods.soup,
        "mmr": methods.mmr,
        "nearest": methods.nearest,
        "neighbour_soup": lambda w: methods.nearest(w, count=2),
        "backbone": methods.backbone,
    }
    if name not in table:
        raise ValueError(f"unknown evaluation method {name!r}; available: {', '.join(sorted(table) + ['retrain', 'retune'])}")
    return table[name]

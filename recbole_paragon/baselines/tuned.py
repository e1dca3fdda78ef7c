"""Tuned at the preference itself: re-tuning the adapter (the quality ceiling) and retraining the whole model."""
from __future__ import annotations

import os
from typing import Dict, Tuple

import torch

from recbole_paragon.artifacts import RETUNED, fingerprint, load_tensors, run_directory, save_tensors
from recbole_paragon.baselines.base import AdaptationMethod, Entry, register, timed
from recbole_paragon.model.cache import top_candidates
from recbole_paragon.objectives.base import CachedBatch, Scores
from recbole_paragon.preference import matches_any
from recbole_paragon.registry import get_model
from recbole_paragon.settings import setting
from recbole_paragon.strategies import build_strategy
from recbole_paragon.training.adapter_trainer import cache_candidates, weighted_step
from recbole_paragon.training.bank import bank_settings


@register
class Retune(AdaptationMethod):
    """An adapter tuned at the preference with each of ``evaluation_retune_seeds``; metrics are the seed mean."""

    name = "retune"

    def prepare(self) -> None:
        """Load the adapters re-tuned by an earlier evaluation with the same tuning settings (``retuned.pt``):
        re-evaluating a run after changing a generator or sampling setting does not tune them again."""
        self.path = os.path.join(run_directory(self.context.config), RETUNED)
        self.settings = fingerprint(bank_settings(self.context.config, self.context.trainer))
        self.retuned: Dict[Tuple, Tuple[torch.Tensor, float]] = {}
        if os.path.isfile(self.path):
            stored = load_tensors(self.path, "delete it to re-tune its adapters")
            if stored.get("settings") == self.settings:
                self.retuned = {tuple(k): (v, s) for k, v, s in zip(stored["keys"], stored["vectors"],
                                                                      stored["seconds"])}

    def tune(self, preference: torch.Tensor, seed: int):
        """``(metrics, seconds)`` of one tuning run. A bank run with the same preference and seed is the same
        computation (tuning is deterministic given the seed), so its final adapter and tuning time are reused, and
        so is a run of an earlier evaluation (``retuned.pt``, saved after every run: an interrupted one resumes)."""
        context = self.context
        stored = [i for i in context.bank.find(preference, seed) if context.bank.steps[i] == context.trainer.steps]
        if stored:
            return context.evaluate(context.bank.vectors[stored[0]]), context.bank.seconds[stored[0]]
        key = (*(round(float(w), 6) for w in preference), int(seed))
        if key not in self.retuned:
            runs, seconds = timed(lambda: context.trainer.tune(preference, seed=seed))
            self.retuned[key] = (runs[-1][1].detach().cpu(), seconds)
            save_tensors(self.path, {"settings": self.settings, "keys": [list(k) for k in self.retuned],
                                     "vectors": [v for v, _ in self.retuned.values()],
                                     "seconds": [s for _, s in self.retuned.values()]})
        vector, seconds = self.retuned[key]
        return context.evaluate(vector), seconds

    def adapt(self, preference: torch.Tensor) -> Entry:
        runs = [self.tune(preference, int(seed)) for seed in setting(self.context.config, "evaluation_retune_seeds")]
        keys = runs[0][0].keys()
        return {"metrics": {k: sum(r[0][k] for r in runs) / len(runs) for k in keys},
                "seconds": sum(r[1] for r in runs) / len(runs), "seed_metrics": [r[0] for r in runs]}


@register
class Retrain(AdaptationMethod):
    """A new model (backbone and adapter) trained from scratch on ``Σ wᵢ·Lᵢ`` at the preferences of
    ``evaluation_retrain_preferences`` only (it costs a whole training each)."""

    name = "retrain"

    def applies_to(self, preference: torch.Tensor) -> bool:
        return bool(matches_any(preference[None], self.context.retrain_preferences).any())

    def adapt(self, preference: torch.Tensor) -> Entry:
        model, seconds = timed(lambda: retrain_model(self.context, preference))
        loader = self.context.trainer.loaders[self.context.split]
        return {"metrics": dict(self.context.evaluator.trained_model(model, loader)), "seconds": seconds}


def retrain_model(context, preference: torch.Tensor):
    """Train backbone and adapter together from scratch on ``Σ wᵢ·Lᵢ`` for ``evaluation_retrain_epochs`` epochs,
    with the adapter-tuning step (:func:`weighted_step`) on the live representation."""
    from recbole.utils import init_seed

    config, trainer = context.config, context.trainer
    init_seed(config["seed"], config["reproducibility"])
    train_data = trainer.loaders["train"]
    model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
    model.adapter.requires_grad_(True)
    objectives = [type(o)(config, train_data._dataset, model) for o in trainer.objectives]
    optimizer = torch.optim.Adam(model.parameters(), lr=float(config["learning_rate"]))
    strategy = build_strategy(trainer.strategy_name, config, preference)
    parameters = list(model.parameters())
    candidates = cache_candidates(config, objectives)
    model.train()
    for _ in range(int(setting(config, "evaluation_retrain_epochs"))):
        for interaction in train_data:
            interaction = interaction.to(model.device)
            hidden = model.differentiable_representation(interaction)
            rows = model.adapter(hidden)
            scores = model.score_representation(rows)
            batch = CachedBatch(hidden, interaction[model.POS_ITEM_ID], interaction[model.USER_ID],
                                top_candidates(scores, candidates))
            weighted_step(objectives, strategy, optimizer, parameters, batch, rows, Scores(rows, model, scores),
                          trainer.loss_scales())
    return model.eval()

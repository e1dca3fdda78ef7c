"""Backbone stage: RecBole's own training loop and loss; the adapter is attached but frozen (identity).

With auxiliary tasks (``backbone_auxiliary``, see :mod:`recbole_paragon.model.auxiliary`) each batch gives several
losses — the backbone's own first — and ``backbone_strategy`` (linear, pub, pmtrec) turns them into one update,
exactly as adapter tuning does; without them RecBole's own epoch loop runs unchanged.
"""
from __future__ import annotations

import os
from typing import Optional, Tuple

from recbole.trainer import Trainer
from recbole.utils import set_color

from recbole_paragon.artifacts import BACKBONE_CHECKPOINT, atomic_path, run_directory
from recbole_paragon.metrics import set_item_embeddings
from recbole_paragon.model.auxiliary import backbone_strategy
from recbole_paragon.strategies import Strategy
from recbole_paragon.training.progress import progress


class BackboneTrainer(Trainer):
    """RecBole ``Trainer`` that writes its checkpoint atomically to ``<run_dir>/backbone.pth`` and trains with a
    multi-objective strategy when the model has auxiliary tasks."""

    def __init__(self, config, model):
        super().__init__(config, model)
        self.run_dir = run_directory(config)
        self.saved_model_file = os.path.join(self.run_dir, BACKBONE_CHECKPOINT)
        self.strategy: Optional[Strategy] = None
        tasks = list(getattr(model, "auxiliary_tasks", None) or {})
        if tasks:
            self.strategy = backbone_strategy(config, tasks)
        # EmbeddingILD reads the item table the model has when a metric is computed (the best checkpoint's at test)
        set_item_embeddings(self.eval_collector, lambda: self.model.item_vectors())

    def _train_epoch(self, train_data, epoch_idx, loss_func=None, show_progress=False):
        if self.strategy is None:
            return super()._train_epoch(train_data, epoch_idx, loss_func=loss_func, show_progress=show_progress)
        return self._train_epoch_multitask(train_data, epoch_idx, show_progress)

    def _train_epoch_multitask(self, train_data, epoch_idx: int, show_progress: bool) -> Tuple[float, ...]:
        """One epoch of ``strategy.step`` on ``[backbone loss, *auxiliary losses]``; returns per-loss sums."""
        self.model.train()
        parameters = [p for p in self.model.parameters() if p.requires_grad]
        batches = progress(train_data, set_color(f"Train {epoch_idx:>5}", "pink"), show_progress,
                           total=len(train_data), ncols=100)
        totals = None
        for interaction in batches:
            losses, representation = self.model.backbone_losses(interaction.to(self.device))
            self._check_nan(sum(losses))
            self.strategy.step(losses, self.optimizer, parameters, rows=representation)
            values = tuple(float(loss.detach()) for loss in losses)
            totals = values if totals is None else tuple(a + b for a, b in zip(totals, values))
        self.strategy.on_epoch_end(epoch_idx)
        return totals

    def _save_checkpoint(self, epoch, verbose=True, **kwargs):
        os.makedirs(self.run_dir, exist_ok=True)
        final_path = self.saved_model_file
        with atomic_path(final_path) as temporary:
            self.saved_model_file = temporary
            try:
                super()._save_checkpoint(epoch, verbose=False, **kwargs)
            finally:
                self.saved_model_file = final_path
        if verbose:
            self.logger.info(f"Saving current: {final_path}")

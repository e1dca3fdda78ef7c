"""Backbone stage: RecBole's own training loop and loss; the adapter is attached but frozen (identity)."""
from __future__ import annotations

import os

from recbole.trainer import Trainer

from recbole_paragon.io import atomic_path, run_directory


class BackboneTrainer(Trainer):
    """RecBole ``Trainer`` that writes its checkpoint atomically to ``<run_dir>/backbone.pth``."""

    def __init__(self, config, model):
        super().__init__(config, model)
        self.run_dir = run_directory(config)
        self.saved_model_file = os.path.join(self.run_dir, "backbone.pth")

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

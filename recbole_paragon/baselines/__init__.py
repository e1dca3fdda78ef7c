"""Ways to adapt a frozen backbone to a new preference, compared side by side by the evaluation stage.

``diffusion`` (diffusion-generated adapter, Paragon), ``hypernet`` (MLP-generated adapter), ``retune`` (adapter tuned at that
preference, several seeds: the quality ceiling), ``retrain`` (whole model trained from scratch on the weighted
loss), ``soup`` (interpolation of the one-objective adapters), ``mmr`` (MMR re-ranking of backbone scores,
λ = accuracy weight), ``nearest`` (bank adapter with the closest preference), ``neighbour_soup`` (average of the
two nearest bank adapters) and ``backbone`` (no adapter). Each is a registered class (:mod:`.base`).
"""
from recbole_paragon.baselines import backbone, bank_lookup, generated, mmr, tuned  # noqa: F401  (register)
from recbole_paragon.baselines.base import (METHODS, AdaptationMethod, MethodContext, build_methods,
                                            check_method_names, register, run_methods)
from recbole_paragon.baselines.mmr import mmr_rerank, multi_hot_categories

__all__ = ["METHODS", "AdaptationMethod", "MethodContext", "build_methods", "check_method_names", "mmr_rerank",
           "multi_hot_categories", "register", "run_methods"]

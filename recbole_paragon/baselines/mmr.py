"""MMR re-ranking of the plain backbone's scores: the classic diversity baseline (no adapter)."""
from __future__ import annotations

import math
from typing import Optional

import torch

from recbole_paragon.baselines.base import AdaptationMethod, Entry, register, timed
from recbole_paragon.objectives.base import first_topk
from recbole_paragon.objectives.category_index import dense_to_ids, distinct_category_ids
from recbole_paragon.objectives.side_information import multi_hot
from recbole_paragon.settings import setting

Tensor = torch.Tensor


def multi_hot_categories(item_category_ids: Tensor, n_categories: Optional[int] = None) -> Tensor:
    """Padded category ids ``[N, C]`` (0 = padding) → multi-hot float ``[N, n_categories]`` whose column 0, the
    padding id, is always zero (so column ``c`` is category id ``c``)."""
    ids = item_category_ids.long()
    if ids.dim() == 1:
        ids = ids[:, None]
    width = int(n_categories) if n_categories is not None else (int(ids.max()) + 1 if ids.numel() else 1)
    return torch.nn.functional.pad(multi_hot(ids, width), (1, 0))


def category_id_rows(item_categories: Tensor) -> Tensor:
    """Distinct padded category ids ``[N, c]`` from ids (integer) or a 0/1 multi-hot (float) ``[N, C]``."""
    if item_categories.is_floating_point():
        return dense_to_ids(item_categories)
    return distinct_category_ids(item_categories)


def jaccard_to(cats: Tensor, sizes: Tensor, chosen: Tensor, chosen_sizes: Tensor) -> Tensor:
    """Jaccard similarity ``[U, n]`` of the category sets ``cats [U, n, c]`` (sizes ``[U, n]``) to one chosen set
    per user ``chosen [U, c]`` (sizes ``[U]``); 0 when both sets are empty."""
    inter = ((cats[:, :, :, None] == chosen[:, None, None, :]) & (chosen > 0)[:, None, None, :]).sum((2, 3)).double()
    union = sizes + chosen_sizes[:, None] - inter
    nonempty = union > 0
    return torch.where(nonempty, inter / torch.where(nonempty, union, torch.ones_like(union)), torch.zeros_like(union))


@torch.no_grad()
def mmr_rerank(scores: Tensor, item_categories: Tensor, lam: float, k: int,
               candidates: Optional[int] = None) -> Tensor:
    """Maximal Marginal Relevance re-ranking of backbone ``scores [U, N]`` (item 0 = padding).

    Among each user's top-``candidates`` items (default ``mmr_candidates``; finite scores only; item 0 is never a
    candidate), greedily pick
    ``k`` items maximising ``lam·rel(i) − (1−lam)·max_{j picked} sim(i, j)``: ``rel`` = scores min-max normalised
    per user over the candidates, ``sim`` = Jaccard of the items' category sets (0 if both are empty). Ties go to
    the higher original score, so ``lam = 1`` reproduces the plain top-k exactly. ``item_categories [N, ·]`` is
    either a float 0/1 multi-hot ``[N, C]`` or integer padded category ids ``[N, c]`` (0 = padding); similarity is
    computed on ids, so its cost grows with c, not with the number of categories.

    Returns a score matrix for a top-k evaluator: the picked items score ``k, k−1, …, 1`` in pick order; every other
    finite score is shifted below them (``score − row max − 1 ≤ −1``), keeping its original order; item 0 and
    non-finite scores become / stay ``−inf``. Users with fewer than ``k`` finite candidates get fewer picks.
    """
    if scores.dim() != 2:
        raise ValueError(f"scores must be [users, items], got shape {tuple(scores.shape)}")
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam must be in [0, 1], got {lam}")
    n_users, n_items = scores.shape
    ids = category_id_rows(item_categories).to(scores.device)
    if ids.shape[0] != n_items:
        raise ValueError(f"item_categories has {item_categories.shape[0]} rows, scores {n_items} items")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    out_dtype = scores.dtype if scores.is_floating_point() else torch.float
    work = scores.detach().double().clone()
    work[:, 0] = -math.inf
    work[torch.isnan(work)] = -math.inf
    candidates = int(setting(None, "mmr_candidates") if candidates is None else candidates)
    n_cand = min(n_items, max(candidates, k))
    cand_scores, cand_items = torch.topk(work, n_cand, dim=1, sorted=True)  # descending: index = original rank
    valid = torch.isfinite(cand_scores)

    # relevance: min-max over each user's valid candidates
    low = torch.where(valid, cand_scores, torch.full_like(cand_scores, math.inf)).min(dim=1, keepdim=True).values
    high = torch.where(valid, cand_scores, torch.full_like(cand_scores, -math.inf)).max(dim=1, keepdim=True).values
    spread = high - low
    safe_spread = torch.where(spread > 0, spread, torch.ones_like(spread))
    rel = torch.where(spread > 0, (cand_scores - low) / safe_spread, torch.ones_like(cand_scores))
    rel = torch.where(valid, rel, torch.zeros_like(rel))

    cats = ids[cand_items]  # [U, n_cand, c]
    sizes = (cats > 0).sum(-1).double()
    max_sim = torch.zeros_like(rel)
    available = valid.clone()
    rows = torch.arange(n_users, device=scores.device)
    picks, picked_ok = [], []
    for _ in range(min(k, n_cand)):
        value = lam * rel - (1.0 - lam) * max_sim
        value = torch.where(available, value, torch.full_like(value, -math.inf))
        choice = value.argmax(dim=1)  # first maximum = best original rank among ties
        ok = available[rows, choice]
        picks.append(choice)
        picked_ok.append(ok)
        available[rows[ok], choice[ok]] = False
        max_sim = torch.maximum(max_sim, jaccard_to(cats, sizes, cats[rows, choice], sizes[rows, choice]))

    finite = torch.isfinite(work)
    row_max = torch.where(finite, work, torch.full_like(work, -math.inf)).max(dim=1, keepdim=True).values
    row_max = torch.where(torch.isfinite(row_max), row_max, torch.zeros_like(row_max))
    out = torch.where(finite, work - row_max - 1.0, torch.full_like(work, -math.inf))
    for position, (choice, ok) in enumerate(zip(picks, picked_ok)):
        items = cand_items[rows, choice]
        out[rows[ok], items[ok]] = float(k - position)
    return out.to(out_dtype)


@register
class MMR(AdaptationMethod):
    """MMR re-ranking of the plain backbone's top ``mmr_candidates`` with λ = the accuracy weight, categories of the
    diversity objective, ``k`` = the first ``topk``; the seconds are those of re-ranking."""

    name = "mmr"

    def adapt(self, preference: torch.Tensor) -> Entry:
        context = self.context
        lam = float(preference[context.objective_index("accuracy")])
        categories = context.trainer.objectives[context.objective_index("diversity")].category_ids
        k, candidates = first_topk(context.config), int(setting(context.config, "mmr_candidates"))
        seconds = []

        def rescore(scores):
            reranked, elapsed = timed(lambda: mmr_rerank(scores, categories, lam, k, candidates))
            seconds.append(elapsed)
            return reranked

        return {"metrics": dict(context.evaluator.rescored(context.split, rescore)), "seconds": sum(seconds)}

"""MMR re-ranking of the plain backbone's scores: the classic diversity baseline (no adapter)."""
from __future__ import annotations

import math
from typing import Callable, Optional

import torch

from recbole_paragon.baselines.base import AdaptationMethod, Entry, register, timed
from recbole_paragon.objectives.base import first_topk
from recbole_paragon.objectives.category_index import dense_to_ids, distinct_category_ids
from recbole_paragon.objectives.side_information import multi_hot
from recbole_paragon.settings import setting, torch_threads

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


def jaccard_to(slots: Tensor, sizes: Tensor, chosen: Tensor, chosen_sizes: Tensor) -> Tensor:
    """Jaccard similarity ``[U, n]`` of the category sets ``slots [U, c, n]`` (slot-major: each comparison runs
    over all candidates at once; sizes ``[U, n]``) to one chosen set per user ``chosen [U, c]`` (sizes ``[U]``);
    0 when both sets are empty. Ids are distinct within a set."""
    chosen = chosen.masked_fill(chosen == 0, -1)  # padding never matches
    inter = torch.zeros(sizes.shape, dtype=torch.int32, device=slots.device)
    for slot in range(slots.shape[1]):
        for other in range(chosen.shape[1]):
            inter += slots[:, slot] == chosen[:, other, None]
    inter = inter.double()
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
    work = candidate_scores(scores)
    candidates = int(setting(None, "mmr_candidates") if candidates is None else candidates)
    n_cand = min(n_items, max(candidates, k))
    cand_scores, cand_items = torch.topk(work, n_cand, dim=1, sorted=True)  # descending: index = original rank
    cand_scores = cand_scores.double()
    valid = torch.isfinite(cand_scores)
    picks, picked_ok = greedy_picks(relevance(cand_scores, valid), valid, category_similarity(ids[cand_items].int()),
                                    lam, k)
    return placed_scores(work, cand_items, picks, picked_ok, k)


def candidate_scores(scores: Tensor) -> Tensor:
    """Float scores with item 0 and every non-finite score set to −inf (one pass over ``[U, N]``)."""
    work = scores.detach() if scores.is_floating_point() else scores.detach().float()
    work = torch.nan_to_num(work, nan=-math.inf, posinf=-math.inf, neginf=-math.inf)
    work[:, 0] = -math.inf
    return work


def relevance(cand_scores: Tensor, valid: Tensor) -> Tensor:
    """Candidate scores min-max normalised over each user's valid candidates (1 when they are all equal)."""
    low = torch.where(valid, cand_scores, torch.full_like(cand_scores, math.inf)).min(dim=1, keepdim=True).values
    high = torch.where(valid, cand_scores, torch.full_like(cand_scores, -math.inf)).max(dim=1, keepdim=True).values
    spread = high - low
    safe_spread = torch.where(spread > 0, spread, torch.ones_like(spread))
    rel = torch.where(spread > 0, (cand_scores - low) / safe_spread, torch.ones_like(cand_scores))
    return torch.where(valid, rel, torch.zeros_like(rel))


Similarity = Callable[[Tensor, Tensor], Tensor]


def category_similarity(cats: Tensor) -> Similarity:
    """``similarity(rows, choice)``: Jaccard ``[U, n]`` of every candidate's category set (``cats [U, n, c]``) to
    the one chosen per user."""
    sizes = (cats > 0).sum(-1).double()
    slots = cats.transpose(1, 2).contiguous()
    return lambda rows, choice: jaccard_to(slots, sizes, cats[rows, choice], sizes[rows, choice])


def embedding_similarity(unit: Tensor) -> Similarity:
    """``similarity(rows, choice)``: cosine ``[U, n]`` of every candidate's unit embedding (``unit [U, n, H]``) to
    the one chosen per user (diversity without categories)."""
    return lambda rows, choice: (unit @ unit[rows, choice][:, :, None]).squeeze(-1).double()


def greedy_picks(rel: Tensor, valid: Tensor, similarity: Similarity, lam: float, k: int):
    """MMR's greedy choice, vectorised over users: ``k`` candidate positions per user and whether each was valid."""
    max_sim = torch.zeros_like(rel)
    available = valid.clone()
    rows = torch.arange(len(rel), device=rel.device)
    picks, picked_ok = [], []
    for _ in range(min(k, rel.shape[1])):
        value = torch.where(available, lam * rel - (1.0 - lam) * max_sim, torch.full_like(rel, -math.inf))
        choice = value.argmax(dim=1)  # first maximum = best original rank among ties
        ok = available[rows, choice]
        picks.append(choice)
        picked_ok.append(ok)
        available[rows[ok], choice[ok]] = False
        max_sim = torch.maximum(max_sim, similarity(rows, choice))
    return picks, picked_ok


def placed_scores(work: Tensor, cand_items: Tensor, picks, picked_ok, k: int) -> Tensor:
    """Picked items score ``k, k−1, …`` in pick order; every other finite score is shifted below them, in order."""
    row_max = work.max(dim=1, keepdim=True).values
    out = work - (torch.where(torch.isfinite(row_max), row_max, torch.zeros_like(row_max)) + 1.0)
    rows = torch.arange(len(work), device=work.device)
    for position, (choice, ok) in enumerate(zip(picks, picked_ok)):
        items = cand_items[rows, choice]
        out[rows[ok], items[ok]] = float(k - position)
    return out


def mmr_order(cand_scores: Tensor, cand_items: Tensor, similarity: Similarity, lam: float, k: int) -> Tensor:
    """Each user's candidates ``cand_items [U, n]`` (scores ``cand_scores``, best first) re-ordered: MMR's ``k`` picks
    in pick order, then the other candidates in their original order (non-finite ones last) — the ranking
    :func:`mmr_rerank`'s score matrix gives, without building it. ``similarity`` compares these candidates
    (:func:`category_similarity` or :func:`embedding_similarity`)."""
    cand_scores = cand_scores.double()
    valid = torch.isfinite(cand_scores)
    picks, picked_ok = greedy_picks(relevance(cand_scores, valid), valid, similarity, lam, k)
    count = cand_items.shape[1]
    key = torch.arange(count, device=cand_items.device).repeat(len(cand_items), 1) + k
    key = torch.where(valid, key, key + count)
    rows = torch.arange(len(cand_items), device=cand_items.device)
    for position, (choice, ok) in enumerate(zip(picks, picked_ok)):
        key[rows[ok], choice[ok]] = position
    return cand_items.gather(1, key.argsort(1))


@register
class MMR(AdaptationMethod):
    """MMR re-ranking of the plain backbone's top ``mmr_candidates`` with λ = the accuracy weight, ``k`` = the first
    ``topk``, and the run's diversity as similarity: category Jaccard (``diversity``) or the backbone's embedding
    cosine (``embedding_diversity``). The backbone's candidates do not depend on the preference: they are found once
    (:meth:`prepare`); the seconds are those of re-ranking them, and the re-ranked lists are evaluated as they are
    (no score matrix)."""

    name = "mmr"

    def unavailable(self) -> Optional[str]:
        names = self.context.trainer.objective_names
        if "accuracy" not in names or not {"diversity", "embedding_diversity"} & set(names):
            return "MMR trades accuracy against diversity: it needs the accuracy objective and diversity or " \
                   "embedding_diversity"
        return None

    def prepare(self) -> None:
        context = self.context
        topk = setting(context.config, "topk")
        count = max([int(setting(context.config, "mmr_candidates"))] + list(topk if isinstance(topk, list) else [topk]))
        self.candidates = context.evaluator.backbone_top(context.split, count)
        names = context.trainer.objective_names
        if "diversity" in names:
            ids = context.trainer.objectives[names.index("diversity")].category_ids
            self.similarity_of = lambda items: category_similarity(ids[items].int())
        else:
            unit = torch.nn.functional.normalize(context.trainer.model.item_vectors().detach(), dim=-1)
            self.similarity_of = lambda items: embedding_similarity(unit[items])

    def adapt(self, preference: torch.Tensor) -> Entry:
        context = self.context
        lam = float(preference[context.objective_index("accuracy")])
        k, (scores, items) = first_topk(context.config), self.candidates
        chunk = int(setting(context.config, "eval_batch_size"))

        def rerank():
            return torch.cat([mmr_order(s, i, self.similarity_of(i), lam, k)
                              for s, i in zip(scores.split(chunk), items.split(chunk))])

        with torch_threads(int(setting(context.config, "compute_threads"))):  # small ops: one thread is fastest
            lists, seconds = timed(rerank)
        return {"metrics": dict(context.evaluator.ranked(context.split, lists)), "seconds": seconds}

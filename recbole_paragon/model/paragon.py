"""``Paragon<Backbone>``: any supported RecBole sequential model with an adapter on its sequence representation.

Classes are generated on demand from the backbone class (``make_paragon_class(SASRec)`` -> ``ParagonSASRec``): the
mixin overrides only ``forward``, so the backbone's own ``calculate_loss``, ``predict`` and ``full_sort_predict`` run
unchanged and see the adapted representation. Because the backbone is frozen when adapters are tuned, its
pre-adapter representation can be cached (:meth:`ParagonMixin.sequence_representation`) and scored again without
re-running the encoder (:meth:`ParagonMixin.score_representation`, or :meth:`ParagonMixin.score_items` for some
items only); tests check both reproduce ``full_sort_predict``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from recbole.model.abstract_recommender import SequentialRecommender
from torch import nn

from recbole_paragon.artifacts import tensors_fingerprint
from recbole_paragon.model.adapter import Adapter
from recbole_paragon.model.auxiliary import build_auxiliary_tasks
from recbole_paragon.settings import setting

PREFIX = "Paragon"


@dataclass(frozen=True)
class ScoreHead:
    """An affine score head: item ``i`` scores ``h · f(W_i) (+ b_i) (/ T)``, ``W`` the item table of attribute
    ``table`` (its first ``n_items`` rows), ``f`` a row-wise ``transform`` (ReLU, L2 normalisation), ``b`` the
    per-item ``bias`` attribute and ``T`` the ``temperature`` attribute, where given."""

    table: str = "item_embedding"
    transform: Optional[Callable[[torch.Tensor], torch.Tensor]] = None
    bias: Optional[str] = None
    temperature: Optional[str] = None

    def _finish(self, model, scores: torch.Tensor, items: Optional[torch.Tensor]) -> torch.Tensor:
        if self.bias is not None:
            bias = getattr(model, self.bias)
            scores = scores + (bias if items is None else bias[items])
        return scores if self.temperature is None else scores / getattr(model, self.temperature)

    def item_weights(self, model, items: Optional[torch.Tensor]) -> torch.Tensor:
        """The item table rows the scores use ``[n_items, H]`` (``items``: ``[B, n, H]``), after ``transform``."""
        weight = getattr(model, self.table).weight
        weight = weight[: model.n_items] if items is None else F.embedding(items, weight)  # (a faster weight[items])
        return weight if self.transform is None else self.transform(weight)

    def scores(self, model, hidden: torch.Tensor) -> torch.Tensor:
        """All-item scores ``[B, n_items]``."""
        return self._finish(model, hidden @ self.item_weights(model, None).T, None)

    def item_scores(self, model, hidden: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Scores ``[B, n]`` of ``items [B, n]``: cost ``B·n·H`` instead of ``B·n_items·H``."""
        weight = self.item_weights(model, items)  # [B, n, H]
        return self._finish(model, (weight @ hidden[:, :, None]).squeeze(-1), items)

    def index_table(self, model) -> Optional[torch.Tensor]:
        """Item vectors ``[n_items, H (+1)]`` whose inner product with :meth:`index_query` orders items exactly as
        the scores do, for a nearest-neighbour index: ``f(W)``, the bias as one more coordinate, a positive
        temperature dropped (it scales every score alike). ``None`` when no such table exists (temperature <= 0)."""
        if self.temperature is not None and not float(getattr(model, self.temperature)) > 0:
            return None
        table = self.item_weights(model, None).detach()
        if self.bias is not None:
            table = torch.cat([table, getattr(model, self.bias).detach()[: model.n_items, None]], dim=1)
        return table

    def index_query(self, hidden: torch.Tensor) -> torch.Tensor:
        """Adapted states ``[B, H]`` as queries of :meth:`index_table` (a 1 for the bias coordinate)."""
        return hidden if self.bias is None else torch.cat([hidden, torch.ones(len(hidden), 1)], dim=1)


_DOT = ScoreHead()

#: Backbones that can be wrapped, each with the affine head that turns its representation into item scores.
SCORE_HEADS: Dict[str, ScoreHead] = {
    "SASRec": _DOT,
    "GRU4Rec": _DOT,
    "BERT4Rec": ScoreHead(bias="output_bias"),
    "NARM": _DOT,
    "STAMP": _DOT,
    "Caser": _DOT,
    "NextItNet": _DOT,
    "LightSANs": _DOT,
    "CORE": ScoreHead(transform=lambda weight: F.normalize(weight, dim=-1), temperature="temperature"),
    "SRGNN": _DOT,
    "GCSAN": _DOT,
    "FEARec": _DOT,
    "GRU4RecF": _DOT,
    "SASRecF": _DOT,
    "FDSA": _DOT,
    "HRM": _DOT,
    "NPE": ScoreHead(transform=torch.relu),
    "SHAN": _DOT,
    "HGN": ScoreHead(table="item_embedding_for_prediction"),
    "FOSSIL": _DOT,
}

#: The ``loss_type`` values each backbone's RecBole implementation trains with (CE and BPR unless listed).
LOSS_TYPES: Dict[str, Tuple[str, ...]] = {"CORE": ("CE",)}
#: Sequential models that cannot be wrapped, and why.
UNSUPPORTED: Dict[str, str] = {
    "DIN": "a click-through-rate model: forward returns logits for given items, there is no sequence representation",
    "DIEN": "a click-through-rate model: forward returns logits for given items, there is no sequence representation",
    "FPMC": "scores are a sum of two factorisations, not a function of one sequence representation",
    "RepeatNet": "forward returns a probability distribution over items, not a representation",
    "TransRec": "scores are translation distances, not an affine function of the representation",
    "S3Rec": "needs a separate self-supervised pre-training stage",
    "GRU4RecCPR": "the softmax-CPR output head mixes several representations per step",
    "SASRecCPR": "the softmax-CPR output head mixes several representations per step",
    "SINE": "multi-interest model: several representations per sequence",
    "GRU4RecKG": "knowledge-aware: needs a knowledge graph (.kg, .link) with pre-trained entity vectors "
                 "(preload_weight), which neither RecBole's bundled data nor the test data carry, so it is untested",
    "KSR": "knowledge-aware: needs a knowledge graph (.kg, .link) with pre-trained entity vectors (preload_weight), "
           "which neither RecBole's bundled data nor the test data carry, so it is untested",
}
_UNTESTED = "not yet wrapped and tested; supported backbones: {supported}"


class _RepresentationCaptured(Exception):
    """Raised by ``forward`` to stop ``full_sort_predict`` once the representation is captured."""

    def __init__(self, representation: torch.Tensor) -> None:
        super().__init__("representation captured")
        self.representation = representation


class ParagonMixin:
    """Adds a residual adapter after the backbone's ``forward`` and the tools to tune it with a frozen backbone."""

    backbone_name: str = ""

    def __init__(self, config, dataset) -> None:
        losses = supported_losses(self.backbone_name)
        if str(setting(config, "loss_type")) not in losses:
            raise ValueError(f"{PREFIX}{self.backbone_name} trains with loss_type {' or '.join(losses)} "
                             f"(RecBole's {self.backbone_name}), got {setting(config, 'loss_type')!r}")
        super().__init__(config, dataset)
        embedding = getattr(self, "item_embedding", None)
        if not isinstance(embedding, nn.Embedding):
            raise ValueError(f"{self.backbone_name} has no item_embedding to size the adapter from")
        self.adapter_dim = int(setting(config, "adapter_dim"))
        self.adapter = Adapter(embedding.embedding_dim, self.adapter_dim)
        self.adapter.requires_grad_(bool(setting(config, "train_adapter_with_backbone")))
        self.auxiliary_tasks = build_auxiliary_tasks(config, dataset, embedding.embedding_dim)
        self._captured: Optional[list] = None
        self._stop_after_forward = False

    # -- the only override of the backbone ------------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        representation = super().forward(*args, **kwargs)
        if self._captured is not None:
            self._captured.append(representation)
            if getattr(self, "_stop_after_forward", False):
                raise _RepresentationCaptured(representation)
        return self.adapter(representation)

    def backbone_losses(self, interaction) -> Tuple[List[torch.Tensor], torch.Tensor]:
        """``([backbone loss, *auxiliary task losses], representation)`` for multi-task backbone training.

        The representation is the pre-adapter output of the backbone's first ``forward`` in ``calculate_loss``
        (``[B, H]``, or ``[B, L, H]`` for per-position models): every loss depends on it, so per-user strategies
        (PMTRec) can weight its rows. Auxiliary tasks see the last valid position of per-position outputs.
        """
        self._captured = []
        try:
            loss = self.calculate_loss(interaction)
            representation = self._captured[0]
        finally:
            self._captured = None
        losses = [sum(loss) if isinstance(loss, tuple) else loss]
        hidden = representation
        if hidden.dim() == 3:
            hidden = self.gather_indexes(hidden, interaction[self.ITEM_SEQ_LEN] - 1)
        target = interaction[self.POS_ITEM_ID]
        losses += [task.loss(hidden, target) for task in self.auxiliary_tasks.values()]
        return losses, representation

    # -- frozen-backbone tuning ----------------------------------------------------------------------------------
    def freeze_backbone(self) -> None:
        """Only the adapter trains from now on; the backbone stays in eval mode (no dropout)."""
        for name, parameter in self.named_parameters():
            parameter.requires_grad_(name.startswith("adapter."))

    def backbone_parameters(self):
        return [p for n, p in self.named_parameters() if not n.startswith("adapter.")]

    def backbone_state_dict(self) -> Dict[str, torch.Tensor]:
        return {k: v for k, v in self.state_dict().items() if not k.startswith("adapter.")}

    def backbone_fingerprint(self) -> str:
        """SHA-256 over the backbone's parameter names and values: identifies the backbone an adapter belongs to."""
        return tensors_fingerprint(self.backbone_state_dict())

    def get_adapter_vector(self) -> torch.Tensor:
        return self.adapter.get_vector()

    def set_adapter_vector(self, vector: torch.Tensor) -> None:
        self.adapter.set_vector(vector)

    @torch.no_grad()
    def sequence_representation(self, interaction) -> torch.Tensor:
        """The backbone's pre-adapter representation ``[B, H]`` that ``full_sort_predict`` scores (no gradient)."""
        return self.differentiable_representation(interaction)

    def differentiable_representation(self, interaction) -> torch.Tensor:
        """As :meth:`sequence_representation`, keeping the graph (to train the whole model on other losses).

        ``full_sort_predict`` prepares the input exactly as evaluation does and calls ``forward`` once (every wrapped
        backbone does); it is stopped right after that call, so the all-item scores it would compute next are not."""
        self._captured, self._stop_after_forward = [], True
        try:
            self.full_sort_predict(interaction)
            captured = self._captured[-1]
        except _RepresentationCaptured as stop:
            captured = stop.representation
        finally:
            self._captured, self._stop_after_forward = None, False
        if captured.dim() == 3:  # per-position output (BERT4Rec): the scored position is the last one
            captured = self.gather_indexes(captured, interaction[self.ITEM_SEQ_LEN] - 1)
        return captured

    def score_representation(self, hidden: torch.Tensor) -> torch.Tensor:
        """All-item scores ``[B, n_items]`` for already-adapted representations, as ``full_sort_predict`` computes."""
        return SCORE_HEADS[self.backbone_name].scores(self, hidden)

    def score_items(self, hidden: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Scores ``[B, n]`` of given ``items [B, n]`` (the matching columns of :meth:`score_representation`)."""
        return SCORE_HEADS[self.backbone_name].item_scores(self, hidden, items)

    def item_vectors(self) -> torch.Tensor:
        """What each item is to the score head, ``[n_items, H]`` (row 0: padding): the embeddings that
        embedding diversity measures distances between."""
        return SCORE_HEADS[self.backbone_name].item_weights(self, None)

    def index_table(self) -> Optional[torch.Tensor]:
        """The item vectors a nearest-neighbour index searches (``ScoreHead.index_table``), or ``None``."""
        return SCORE_HEADS[self.backbone_name].index_table(self)

    def index_query(self, hidden: torch.Tensor) -> torch.Tensor:
        """Adapted states as queries of :meth:`index_table`."""
        return SCORE_HEADS[self.backbone_name].index_query(hidden)


_CLASS_CACHE: Dict[str, type] = {}


def make_paragon_class(backbone: type) -> type:
    """Build (once) and return ``Paragon<Backbone>`` for a supported RecBole sequential model class."""
    name = backbone.__name__
    if name in _CLASS_CACHE:
        return _CLASS_CACHE[name]
    if not (isinstance(backbone, type) and issubclass(backbone, SequentialRecommender)):
        raise ValueError(
            f"only sequential models can be wrapped by Paragon; {name} is not a RecBole SequentialRecommender"
        )
    if name in UNSUPPORTED:
        raise ValueError(f"{PREFIX}{name} cannot be built: {name} {UNSUPPORTED[name]}")
    if name not in SCORE_HEADS:
        raise ValueError(f"{PREFIX}{name}: {name} is " + _UNTESTED.format(supported=", ".join(SCORE_HEADS)))
    cls = type(
        f"{PREFIX}{name}",
        (ParagonMixin, backbone),
        {"backbone_name": name, "__module__": __name__, "__doc__": f"{name} with a Paragon adapter."},
    )
    _CLASS_CACHE[name] = cls
    globals()[cls.__name__] = cls  # picklable: RecBole checkpoints pickle the config, which holds the class
    return cls


def __getattr__(name: str) -> type:
    """Unpickling a checkpoint in a fresh process rebuilds ``Paragon<Backbone>`` on first lookup."""
    if name.startswith(PREFIX) and len(name) > len(PREFIX):
        from recbole.utils import get_model as recbole_get_model

        return make_paragon_class(recbole_get_model(name[len(PREFIX):]))
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def supported_losses(backbone_name: str) -> Tuple[str, ...]:
    """The ``loss_type`` values a wrapped backbone trains with."""
    return LOSS_TYPES.get(backbone_name, ("CE", "BPR"))


def supported_model_names():
    return [PREFIX + name for name in SCORE_HEADS]

"""A generator kind is wired into every place docs/ARCHITECTURE.md lists under "Where a new piece goes" (the ones a
test can see): a kind added to ``GENERATORS`` and forgotten in one of them fails here, naming the place."""
from types import SimpleNamespace

import pytest
import torch

from recbole_paragon.baselines import METHODS
from recbole_paragon.baselines.generated import Generated
from recbole_paragon.generators import GENERATORS
from recbole_paragon.schema import SCHEMA
from recbole_paragon.settings import yaml_defaults
from recbole_paragon.training.generator_trainer import GeneratorTrainer

KINDS = sorted(GENERATORS)


@pytest.mark.parametrize("kind", KINDS)
def test_the_schema_offers_it_and_its_settings_have_rules(kind):
    assert kind in SCHEMA["generator"].choices, f"add {kind!r} to the choice of 'generator' in schema.py"
    own = [key for key in yaml_defaults() if key.startswith(f"{kind}_")]
    if f"{kind}_" in GENERATORS[kind].settings_prefixes:  # a kind with settings of its own names their prefix
        assert own, f"{kind}'s settings go in properties/overall.yaml, prefixed {kind}_"
    else:
        assert not own, f"{kind} has settings prefixed {kind}_: put '{kind}_' in its settings_prefixes"
    assert not [key for key in own if key not in SCHEMA], "every setting needs a rule in SCHEMA"


@pytest.mark.parametrize("kind", KINDS)
def test_its_settings_enter_the_generator_fingerprint(kind):
    cls = GENERATORS[kind]
    assert cls.kind == kind, f"name the class's kind {kind!r}"
    if any(key.startswith(f"{kind}_") for key in yaml_defaults()):
        assert f"{kind}_" in cls.settings_prefixes, f"put '{kind}_' in its settings_prefixes"
    assert cls.training in ("bank", "objectives", "lookup"), \
        "say whether it learns from the bank, from the objectives, or is a lookup built from the bank"
    if cls.training == "objectives":
        assert callable(getattr(cls, "for_adapter", None)), "an objectives-trained generator builds for_adapter()"


@pytest.mark.parametrize("kind", KINDS)
def test_the_evaluation_has_a_method_named_after_it(kind):
    method = METHODS.get(kind)
    assert method is not None and issubclass(method, Generated) and method.kind == kind, \
        f"register a Generated subclass with name = kind = {kind!r} in baselines/generated.py"


@pytest.mark.parametrize("kind", KINDS)
def test_the_trainer_runs_the_loop_its_training_names(kind, monkeypatch):
    trainer = GeneratorTrainer.__new__(GeneratorTrainer)  # only fit()'s dispatch is exercised
    trainer.kind = kind
    trainer.adapter_trainer = SimpleNamespace(threads=None)
    trainer.split = lambda exclude: ({}, torch.zeros(0, 2))
    trainer.available_rows = lambda exclude=None: {}
    trainer._fit_diffusion = lambda *args, **kwargs: "bank"
    trainer._fit_on_objectives = lambda *args, **kwargs: "objectives"
    if GENERATORS[kind].training == "lookup":
        monkeypatch.setattr(GENERATORS[kind], "from_bank_rows", classmethod(lambda cls, rows: "lookup"))
    assert trainer.fit(show_progress=False) == GENERATORS[kind].training

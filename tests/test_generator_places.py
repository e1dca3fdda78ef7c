"""A generator kind is wired into every place docs/ARCHITECTURE.md lists under "Where a new piece goes" (the ones a
test can see): a kind added to ``GENERATORS`` and forgotten in one of them fails here, naming the place."""
from types import SimpleNamespace

import pytest
import torch

from recbole_paragon.baselines import METHODS
from recbole_paragon.baselines.generated import Generated
from recbole_paragon.generators import GENERATORS
from recbole_paragon.pipeline import GENERATOR_PREFIXES
from recbole_paragon.schema import SCHEMA
from recbole_paragon.settings import yaml_defaults
from recbole_paragon.training.generator_trainer import GeneratorTrainer

KINDS = sorted(GENERATORS)


@pytest.mark.parametrize("kind", KINDS)
def test_the_schema_offers_it_and_its_settings_have_rules(kind):
    assert kind in SCHEMA["generator"].choices, f"add {kind!r} to the choice of 'generator' in schema.py"
    own = [key for key in yaml_defaults() if key.startswith(f"{kind}_")]
    assert own, f"{kind}'s settings go in properties/overall.yaml, prefixed {kind}_"
    assert not [key for key in own if key not in SCHEMA], "every setting needs a rule in SCHEMA"


@pytest.mark.parametrize("kind", KINDS)
def test_its_settings_enter_the_generator_fingerprint(kind):
    assert f"{kind}_" in GENERATOR_PREFIXES, f"add '{kind}_' to GENERATOR_PREFIXES in pipeline.py"


@pytest.mark.parametrize("kind", KINDS)
def test_the_evaluation_has_a_method_named_after_it(kind):
    method = METHODS.get(kind)
    assert method is not None and issubclass(method, Generated) and method.kind == kind, \
        f"register a Generated subclass with name = kind = {kind!r} in baselines/generated.py"


@pytest.mark.parametrize("kind", KINDS)
def test_the_trainer_runs_its_own_loop(kind):
    trainer = GeneratorTrainer.__new__(GeneratorTrainer)  # only fit()'s dispatch is exercised
    trainer.kind = kind
    trainer.adapter_trainer = SimpleNamespace(threads=None)
    trainer.split = lambda exclude: ({}, torch.zeros(0, 2))
    trainer.available_rows = lambda exclude=None: {}
    loops = [name for name in dir(GeneratorTrainer) if name.startswith("_fit_")]
    for name in loops:
        setattr(trainer, name, lambda *args, _name=name, **kwargs: _name)
    assert f"_fit_{kind}" in loops, f"write GeneratorTrainer._fit_{kind} (training/generator_trainer.py)"
    assert trainer.fit(show_progress=False) == f"_fit_{kind}", "GeneratorTrainer.fit must call it for this kind"

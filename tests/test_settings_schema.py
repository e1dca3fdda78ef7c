"""One settings surface: every setting of the yaml has a rule, every rule refuses bad values with an error naming
the key, the Config checks them all when it is built, renamed settings still work (with a warning), likely typos
get a "did you mean", and RecBole's own entry points know the Paragon models."""
import glob
import json
import os
import warnings

import pytest
import yaml

from recbole_paragon.baselines import METHODS
from recbole_paragon.config import Config
from recbole_paragon.generators import GENERATORS
from recbole_paragon.pipeline import stale_generator_reason
from recbole_paragon.quick_start import STAGES
from recbole_paragon.schema import (OLD_NAMES, RENAMED, RENAMED_VALUES, SCHEMA, SettingWarning, check_settings,
                                    modernise)
from recbole_paragon.settings import PROPERTIES_DIR, setting, yaml_defaults, yaml_loader
from recbole_paragon.strategies import STRATEGIES

from conftest import TEST_CONFIG, TEST_DATA


def yaml_settings():
    """Every key written in the plugin's yaml files (overall, dataset, model)."""
    found = {}
    for path in glob.glob(os.path.join(PROPERTIES_DIR, "**", "*.yaml"), recursive=True):
        with open(path, encoding="utf-8") as handle:
            found.update(yaml.load(handle, Loader=yaml_loader()) or {})
    return found


def tiny(tmp_path, **overrides):
    return Config("ParagonSASRec", "ml-tiny", [TEST_CONFIG],
                  {"data_path": TEST_DATA, "checkpoint_dir": str(tmp_path / "saved"), **overrides})


def test_every_yaml_setting_has_a_rule_and_every_rule_a_yaml_default():
    written = set(yaml_settings())
    assert written - set(SCHEMA) == set(), "settings without a rule in recbole_paragon/schema.py"
    assert set(SCHEMA) - written == set(), "rules for settings the yaml does not write"
    assert os.path.basename(os.path.dirname(PROPERTIES_DIR + os.sep)) == "properties"


def test_every_default_follows_its_rule():
    check_settings(yaml_settings())


@pytest.mark.parametrize("key", sorted(k for k, rule in SCHEMA.items() if rule.invalid))
def test_every_constrained_setting_refuses_bad_values_naming_the_key(key):
    for bad in SCHEMA[key].invalid:
        with pytest.raises(ValueError, match=f"setting {key}=.* is not allowed: {key} takes "):
            check_settings({key: bad})


@pytest.mark.parametrize("key, bad", [("finetune_steps", -1), ("dit_condition_mode", "sideways"),
                                      ("diffusion_condition_on_zero", "yes"), ("bank_seeds", [0.5]),
                                      ("sampling_guidance_scale", float("inf")), ("serve_port", 70000),
                                      ("group_quantile", [0.5, 0.2]), ("epochs", "many")])
def test_the_config_checks_every_setting_when_it_is_built(tmp_path, key, bad):
    with pytest.raises(ValueError, match=f"setting {key}="):
        tiny(tmp_path, **{key: bad})


def test_setting_checks_what_it_reads_from_a_plain_mapping():
    with pytest.raises(ValueError, match="setting finetune_steps=-1 is not allowed"):
        setting({"finetune_steps": -1}, "finetune_steps")
    assert setting({"finetune_steps": 7}, "finetune_steps") == 7
    assert setting({}, "finetune_steps") == yaml_defaults()["finetune_steps"]


def test_tilde_is_a_value_of_its_own_only_where_the_rule_allows_none(tmp_path):
    key = "finetune_functional_max_objectives"  # ~ = no limit; its yaml default is 2
    assert SCHEMA[key].optional and yaml_defaults()[key] == 2
    assert setting({key: None}, key) is None and setting({}, key) == 2 and setting(None, key) == 2
    assert setting(tiny(tmp_path, **{key: None}), key) is None and setting(tiny(tmp_path), key) == 2
    assert not SCHEMA["finetune_steps"].optional  # elsewhere ~ still means the default
    assert setting({"finetune_steps": None}, "finetune_steps") == yaml_defaults()["finetune_steps"]
    assert setting(tiny(tmp_path, selection_users=None), "selection_users") is None  # every user


def test_choices_of_registry_backed_settings_match_the_registries():
    assert set(SCHEMA["strategy"].choices) == set(SCHEMA["backbone_strategy"].choices) == set(STRATEGIES)
    assert set(SCHEMA["generator"].choices) == set(GENERATORS)
    assert set(SCHEMA["stage"].choices) == set(STAGES) | {"serve"}
    assert set(yaml_defaults()["evaluation_methods"]) <= set(METHODS)


def test_a_likely_typo_gets_did_you_mean_and_a_custom_key_passes_quietly(tmp_path):
    with pytest.warns(SettingWarning) as caught:
        config = tiny(tmp_path, generator_stesp=3, learnig_rate=0.01, n_layer=2)
    messages = " ".join(str(w.message) for w in caught)
    for typo, meant in (("generator_stesp", "generator_steps"), ("learnig_rate", "learning_rate"),
                        ("n_layer", "n_layers")):
        assert f"unknown setting '{typo}': did you mean '{meant}'?" in messages
    assert config["generator_stesp"] == 3  # RecBole passes it through; the warning says it has no effect
    with warnings.catch_warnings():
        warnings.simplefilter("error", SettingWarning)
        tiny(tmp_path, my_custom_model_knob=5)


def test_renamed_settings_and_stages_work_with_a_warning(tmp_path):
    with pytest.warns(SettingWarning, match="'generator_objective_steps' was renamed 'finetune_steps'"):
        config = tiny(tmp_path, generator_objective_steps=7, guidance_scale=1.5, stage="tune",
                      evaluation_methods=["paragon", "retune"], tune_stage="tune")
    assert config["finetune_steps"] == 7 and config["sampling_guidance_scale"] == 1.5
    assert "generator_objective_steps" not in config.final_config_dict
    assert config["stage"] == "tune_one" and config["sweep_stage"] == "adapter"
    assert config["evaluation_methods"] == ["diffusion", "retune"]
    with pytest.warns(SettingWarning, match="stage=generate was renamed stage=generate_one"):
        assert tiny(tmp_path, stage="generate")["stage"] == "generate_one"
    with pytest.warns(SettingWarning, match="both are given, 'generator_objective_steps=7' is ignored"):
        assert tiny(tmp_path, generator_objective_steps=7, finetune_steps=9)["finetune_steps"] == 9


def test_modernise_covers_every_rename_and_an_old_generator_says_why_it_is_not_reused(tmp_path):
    settings = {old: 1 for old in RENAMED}
    modernise(settings)
    assert set(settings) == set(RENAMED.values())
    (tmp_path / "generator-diffusion.json").write_text(json.dumps({"kind": "diffusion", "generator_objective_steps": 2}))
    (tmp_path / "generator-diffusion.pt").write_bytes(b"")
    assert "saved by recbole-paragon 0.1" in stale_generator_reason(str(tmp_path), "diffusion")
    assert "generator_objective_steps is now finetune_steps" in stale_generator_reason(str(tmp_path), "diffusion")
    (tmp_path / "generator-diffusion.json").write_text(json.dumps({"kind": "diffusion", "finetune_steps": 2}))
    assert stale_generator_reason(str(tmp_path), "diffusion") == "was trained with other settings"
    assert set(OLD_NAMES) <= set(SCHEMA) and not set(RENAMED) & set(SCHEMA)
    for key, table in RENAMED_VALUES.items():
        assert set(table.values()) <= set(SCHEMA[key].choices or METHODS), key
    with pytest.warns(SettingWarning, match="'guidance_scale' was renamed 'sampling_guidance_scale'"):
        assert setting({"guidance_scale": 2.0}, "sampling_guidance_scale") == 2.0  # an old bundle's config


def test_recbole_entry_points_know_the_paragon_models(tmp_path, monkeypatch):
    import recbole.quick_start.quick_start as recbole_quick_start
    from recbole.config import Config as RecBoleConfig
    from recbole.quick_start import run_recbole
    from recbole.utils import get_model, get_trainer

    import recbole_paragon  # noqa: F401  (the import is all a RecBole script adds)
    from recbole_paragon.entry_points import RecBoleBackboneTrainer
    from recbole_paragon.model.paragon import ParagonMixin

    assert issubclass(get_model("ParagonSASRec"), ParagonMixin) and issubclass(get_model("ParagonGRU4Rec"),
                                                                                ParagonMixin)
    assert get_trainer(None, "ParagonSASRec") is RecBoleBackboneTrainer
    assert not issubclass(get_model("SASRec"), ParagonMixin)
    plain = recbole_quick_start.Config(model="SASRec", dataset="ml-tiny",
                                       config_dict={"data_path": TEST_DATA, "train_neg_sample_args": None})
    assert type(plain) is RecBoleConfig and "objectives" not in plain.final_config_dict  # RecBole's, untouched
    monkeypatch.chdir(tmp_path)
    result = run_recbole(model="ParagonSASRec", dataset="ml-tiny", config_file_list=[TEST_CONFIG],
                         config_dict={"data_path": TEST_DATA, "checkpoint_dir": str(tmp_path / "saved"),
                                      "epochs": 1})
    assert 0 <= result["test_result"]["ndcg@10"] <= 1
    run_dir = tmp_path / "saved" / "ParagonSASRec-ml-tiny"
    assert {"backbone.pth", "backbone-state.pt", "backbone.json"} <= set(os.listdir(run_dir))

    from recbole_paragon.store import saved_backbone_matches
    assert saved_backbone_matches(tiny(tmp_path, epochs=1))  # the plugin's later stages reuse this backbone

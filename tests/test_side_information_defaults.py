"""What a run does with the side information a dataset has: an ``.inter``-only dataset runs every stage with
objectives that need no categories, a single ``token_seq`` field is taken as the categories, thin categories are
reported, each objective's lever is measured and a dead one is warned about; a missing field names alternatives."""
import json
import os
import shutil

import pytest

from conftest import TEST_CONFIG, TEST_DATA
from recbole_paragon import pipeline, run_recbole_paragon
from recbole_paragon.quick_start import build_config, prepare_data
from recbole_paragon.objectives import MissingSideInformation

TINY_RUN = {"epochs": 1, "learning_rate": 0.005, "adapter_steps": 30, "adapter_batch_size": 128,
            "bank_grid_step": 0.5, "bank_checkpoints": [15], "lever_bootstrap": 50, "log_wandb": False}
WHOLE_PIPELINE = {"bank_grid_step": 0.125, "evaluation_grid_step": 0.5, "generator_validation_fraction": 0.0, "generator_steps": 60,
                  "generator_eval_interval": 60, "finetune_steps": 10, "diffusion_batch_size": 16, "dit_d_model": 32,
                  "dit_n_layers": 1, "dit_n_heads": 2, "diffusion_timesteps": 50, "evaluation_retune_seeds": [0],
                  "evaluation_methods": ["diffusion", "retune", "mmr", "nearest", "backbone"], "export_grid_step": 0.5}


def tiny_dataset(root, name, item_header=None, item_rows=None):
    """ml-tiny's interactions as dataset ``name`` under ``root``, with an optional ``.item`` file."""
    folder = root / name
    folder.mkdir(parents=True)
    shutil.copy(os.path.join(TEST_DATA, "ml-tiny", "ml-tiny.inter"), folder / f"{name}.inter")
    if item_header is not None:
        (folder / f"{name}.item").write_text("\n".join([item_header, *item_rows]) + "\n")
    return str(root)


def item_rows(keep=lambda index: True):
    with open(os.path.join(TEST_DATA, "ml-tiny", "ml-tiny.item")) as handle:
        rows = handle.read().splitlines()[1:]
    return [row if keep(i) else row.split("\t")[0] + "\t" for i, row in enumerate(rows)]


def run(tmp_path, dataset, data_path, **overrides):
    settings = {**TINY_RUN, "data_path": data_path, "checkpoint_dir": str(tmp_path / "saved"), "stage": "bank",
                **overrides}
    return run_recbole_paragon("ParagonSASRec", dataset, [TEST_CONFIG], settings)



def test_an_inter_only_dataset_runs_every_stage_without_categories(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    caplog.set_level("WARNING")
    result = run(tmp_path, "ml-inter", tiny_dataset(tmp_path / "data", "ml-inter"), stage="all", **WHOLE_PIPELINE)
    trainer = result["adapter_trainer"]
    assert trainer.objective_names == ["accuracy", "embedding_diversity"]
    run_dir = tmp_path / "saved" / "ParagonSASRec-ml-inter"
    report = json.loads((run_dir / "report.json").read_text())
    assert "embeddingild@10" in report["methods"]["diffusion"][0]["metrics"]
    assert any("no item categories" in note and "embedding_diversity" in note
               for note in report["levers"]["warnings"])
    assert set(report["levers"]["objectives"]) == {"accuracy", "embedding_diversity"}
    assert report["methods"]["mmr"] and "mmr" not in report.get("skipped_methods", {})  # MMR on embeddings
    assert "Levers" in (run_dir / "report.md").read_text()
    assert (run_dir / "bundle" / "manifest.json").is_file()
    said = [r for r in caplog.records if "no item categories" in r.getMessage()]
    assert len(said) == 1, "the default objectives on data without categories are logged once"


def test_asking_for_categories_the_data_lacks_names_the_field_and_what_works(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(MissingSideInformation, match="category_field='class'.*need no side information: accuracy, "
                                                     "embedding_diversity, exposure, novelty"):
        run(tmp_path, "ml-inter", tiny_dataset(tmp_path / "data", "ml-inter"), objectives=["accuracy", "diversity"])
    assert not (tmp_path / "saved").exists()


def side_information_notes(tmp_path, dataset, data_path, **overrides):
    """The config and what the run would say about the dataset's side information (nothing is trained)."""
    config = build_config("ParagonSASRec", dataset, [TEST_CONFIG], {
        **TINY_RUN, "data_path": data_path, "checkpoint_dir": str(tmp_path / "saved"), "load_col": None,
        **overrides})
    dataset_object, _ = prepare_data(config)
    return config, pipeline.check_side_information(config, dataset_object)


def test_the_only_token_seq_field_is_taken_as_the_categories(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = tiny_dataset(tmp_path / "data", "ml-topics", "item_id:token\ttopics:token_seq", item_rows())
    config, notes = side_information_notes(tmp_path, "ml-topics", data)
    assert config["category_field"] == "topics" and config["objectives"] == ["accuracy", "diversity"]
    assert any("using its only token_seq field 'topics'" in note for note in notes)


def test_categories_on_few_items_are_reported_with_what_would_serve(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = tiny_dataset(tmp_path / "data", "ml-sparse", "item_id:token\tclass:token_seq",
                        item_rows(lambda index: index % 20 == 0))
    _, notes = side_information_notes(tmp_path, "ml-sparse", data, objectives=["accuracy", "diversity", "calibration"])
    for name in ("diversity", "calibration"):
        assert any(note.startswith(f"{name}: only 5% of the items carry a category") for note in notes), notes
    assert any("diversity" in note and "embedding_diversity needs no categories" in note for note in notes)
    _, dense = side_information_notes(tmp_path, "ml-tiny", TEST_DATA)
    assert dense == []


def test_every_lever_is_stored_and_a_dead_one_warns_naming_it(paragon_run):
    result = run_recbole_paragon("ParagonSASRec", "ml-tiny", [TEST_CONFIG], {
        **paragon_run, "stage": "bank", "bank_grid_step": 0.5, "lever_bootstrap": 50,
        "objectives": ["accuracy", "fairness"], "lever_min_se": 1000.0})
    levers = json.loads(open(os.path.join(paragon_run["run_dir"], "bank.json")).read())["levers"]
    fairness = levers["objectives"]["fairness"]
    assert fairness["metric"] == "groupgap@10" and fairness["reference"] == "backbone" and fairness["se"] > 0
    assert levers["objectives"]["accuracy"]["reference"] == "fairness vertex"
    assert f"fairness has no lever on this data: its vertex moves groupgap@10 by {fairness['lever_se']:.1f} " \
           "standard errors from the backbone (< 1000)" in " ".join(levers["warnings"])
    assert result["bank"].levers["bank_fingerprint"] == result["bank"].fingerprint()

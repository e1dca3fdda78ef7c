"""Serving bundles: only JSON and plain tensors, a pickled payload never runs, and no raw data is needed to serve."""
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

from conftest import BUNDLE_OVERRIDES, REPO_DIR, TEST_CONFIG, TEST_DATA, TINY_BACKBONE_OVERRIDES
from recbole_paragon import ParagonRecommender, generate, run_recbole_paragon
from recbole_paragon.artifacts import ArtifactError
from recbole_paragon.bundle import files
from recbole_paragon.store import saved_backbone_matches

W2 = [0.5, 0.5]


class Payload:
    """A pickle that creates ``marker`` when it is unpickled: what a crafted checkpoint would do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.makedirs, (self.marker,)


def write_payload(path, marker):
    """A torch checkpoint (as RecBole writes them) whose pickle carries the payload."""
    torch.save({"state_dict": Payload(str(marker)), "config": None}, path)


def copy_run(tiny_bundle_run, root):
    config, _ = tiny_bundle_run
    target = root / "run"
    shutil.copytree(config["run_dir"], target)
    return {**config, "run_dir": str(target), "checkpoint_dir": str(root / "saved")}


def export(config, root):
    cwd = os.getcwd()
    os.chdir(root)
    try:
        return run_recbole_paragon("ParagonSASRec", "ml-tiny", [TEST_CONFIG], {**config, "stage": "export"})
    finally:
        os.chdir(cwd)


def test_payload_is_real(tmp_path):
    """Control: the crafted file does run its payload when unpickled the way RecBole's checkpoints are loaded."""
    write_payload(tmp_path / "evil.pth", tmp_path / "ran")
    torch.load(tmp_path / "evil.pth", weights_only=False)
    assert (tmp_path / "ran").exists()


def test_bundle_holds_only_json_and_plain_tensors(tiny_bundle_run):
    directory = os.path.join(tiny_bundle_run[0]["run_dir"], files.BUNDLE_DIR)
    names = sorted(os.listdir(directory))
    assert names == sorted([*files.FILES, files.MANIFEST])
    for name in names:
        path = os.path.join(directory, name)
        if name.endswith(".pt"):
            torch.load(path, weights_only=True)
        else:
            with open(path, encoding="utf-8") as handle:
                json.load(handle)
    manifest = files.read_manifest(directory)
    assert manifest["model"] == "ParagonSASRec" and manifest["objectives"] == ["accuracy", "diversity"]
    grid = json.load(open(os.path.join(directory, files.GRID)))
    assert [g["preference"] for g in grid["grid"]] == [[i / 4, 1 - i / 4] for i in range(5)]
    assert {"ndcg@10", "alphandcg@10"} <= set(grid["grid"][0]["metrics"])


def test_tampered_backbone_pickle_in_run_dir_never_runs(tiny_bundle_run, tmp_path):
    config = copy_run(tiny_bundle_run, tmp_path)
    marker = tmp_path / "payload-ran"
    write_payload(os.path.join(config["run_dir"], "backbone.pth"), marker)
    shutil.rmtree(os.path.join(config["run_dir"], files.BUNDLE_DIR))
    result = export(config, tmp_path)  # backbone, bank, generator reused; bundle written again
    assert result["reused"] and os.path.isdir(result["bundle"])
    ParagonRecommender.load(config["run_dir"]).recommend(users=["1"], preference=[0.5, 0.5])
    generate(config["run_dir"], [0.2, 0.8])
    assert not marker.exists()


def test_run_without_plain_backbone_is_retrained_not_unpickled(tiny_bundle_run, tmp_path):
    config = copy_run(tiny_bundle_run, tmp_path)
    marker = tmp_path / "payload-ran"
    os.remove(os.path.join(config["run_dir"], "backbone-state.pt"))  # a run of an older version
    write_payload(os.path.join(config["run_dir"], "backbone.pth"), marker)
    assert not saved_backbone_matches(config)
    assert not marker.exists()


@pytest.mark.parametrize("rewrite_manifest", [False, True])
def test_tampered_bundle_is_refused_and_its_payload_never_runs(tiny_bundle_run, tmp_path, rewrite_manifest):
    config = copy_run(tiny_bundle_run, tmp_path)
    directory = os.path.join(config["run_dir"], files.BUNDLE_DIR)
    marker = tmp_path / "payload-ran"
    write_payload(os.path.join(directory, files.BACKBONE), marker)
    if rewrite_manifest:  # an attacker who also rewrites the hashes still meets weights_only=True
        manifest = json.load(open(os.path.join(directory, files.MANIFEST)))
        manifest["files"][files.BACKBONE] = files.file_digest(os.path.join(directory, files.BACKBONE))
        json.dump(manifest, open(os.path.join(directory, files.MANIFEST), "w"))
    with pytest.raises(ArtifactError, match="backbone.pt"):
        ParagonRecommender.load(config["run_dir"])
    assert not marker.exists()


def test_missing_bundle_says_how_to_export(tmp_path):
    with pytest.raises(ArtifactError, match="--stage=export"):
        ParagonRecommender.load(str(tmp_path))


def test_export_is_reused_when_nothing_changed(tiny_bundle_run, tmp_path):
    config = copy_run(tiny_bundle_run, tmp_path)
    manifest = os.path.join(config["run_dir"], files.BUNDLE_DIR, files.MANIFEST)
    before = os.path.getmtime(manifest)
    export(config, tmp_path)
    assert os.path.getmtime(manifest) == before


SERVE_WITHOUT_DATA = """
import json, sys
from recbole_paragon import ParagonRecommender
recommender = ParagonRecommender.load(sys.argv[1])
print(json.dumps(recommender.recommend(users=["1", "7"], preference=[0.3, 0.7], k=5)))
"""


def test_bundle_serves_after_the_raw_dataset_is_deleted(tiny_bundle_run, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(os.path.join(TEST_DATA, "ml-tiny"), data / "ml-tiny")
    config = {**copy_run(tiny_bundle_run, tmp_path), "data_path": str(data)}
    shutil.rmtree(os.path.join(config["run_dir"], files.BUNDLE_DIR))
    export(config, tmp_path)
    shutil.rmtree(data)
    moved = tmp_path / "elsewhere"
    shutil.move(os.path.join(config["run_dir"], files.BUNDLE_DIR), moved)  # the bundle alone, no run directory
    environment = {**os.environ, "PYTHONPATH": REPO_DIR}
    output = subprocess.run([sys.executable, "-c", SERVE_WITHOUT_DATA, str(moved)], capture_output=True, text=True,
                            env=environment, cwd=tmp_path, timeout=300)
    assert output.returncode == 0, output.stderr[-2000:]
    served = json.loads(output.stdout.strip().splitlines()[-1])
    assert [len(items) for items in served] == [5, 5]
    assert served == ParagonRecommender.load(tiny_bundle_run[0]["run_dir"]).recommend(
        users=["1", "7"], preference=[0.3, 0.7], k=5)


def test_bundle_overrides_are_the_shared_ones():
    assert BUNDLE_OVERRIDES["export_grid_step"] == 0.25 and TINY_BACKBONE_OVERRIDES["data_path"] == TEST_DATA


# -- signed bundles ------------------------------------------------------------------------------------------------
KEY = "a-test-key-of-32-characters-long"


def scaled(value, factor):
    """Every float tensor of a nested payload times ``factor`` (what an attacker editing weights would write)."""
    if isinstance(value, torch.Tensor):
        return value * factor if value.is_floating_point() else value
    if isinstance(value, dict):
        return {k: scaled(v, factor) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(scaled(v, factor) for v in value)
    return value


def tamper_generator_and_manifest(directory):
    """Generator weights x1.5 and the manifest's hash rewritten to match: a checksum cannot tell."""
    path = os.path.join(directory, files.GENERATOR_TENSORS)
    torch.save(scaled(torch.load(path, weights_only=True), 1.5), path)
    manifest = json.load(open(os.path.join(directory, files.MANIFEST)))
    manifest["files"][files.GENERATOR_TENSORS] = files.file_digest(path)
    json.dump(manifest, open(os.path.join(directory, files.MANIFEST), "w"))


@pytest.fixture
def signed_run(tiny_bundle_run, tmp_path, monkeypatch):
    """A copy of the run whose bundle was exported with PARAGON_BUNDLE_KEY set."""
    monkeypatch.setenv("PARAGON_BUNDLE_KEY", KEY)
    config = copy_run(tiny_bundle_run, tmp_path)
    export(config, tmp_path)  # the unsigned bundle does not check out with the key set: exported again, signed
    return config, os.path.join(config["run_dir"], files.BUNDLE_DIR)


def test_signed_bundle_loads_and_an_edited_one_is_refused(signed_run, monkeypatch):
    config, directory = signed_run
    assert os.path.isfile(os.path.join(directory, "signature.json"))
    assert ParagonRecommender.load(config["run_dir"]).recommend(users=["1"], preference=W2, k=3)
    tamper_generator_and_manifest(directory)
    with pytest.raises(ArtifactError, match=r"signature.json does not sign .*manifest.json.*PARAGON_BUNDLE_KEY"):
        ParagonRecommender.load(config["run_dir"])
    monkeypatch.setenv("PARAGON_BUNDLE_KEY", "another-key-of-32-characters-xxx")
    with pytest.raises(ArtifactError, match="signed with another key"):
        ParagonRecommender.load(config["run_dir"])
    monkeypatch.delenv("PARAGON_BUNDLE_KEY")  # without a key the manifest is only a checksum: the edit goes through
    ParagonRecommender.load(config["run_dir"])


def test_unsigned_bundle_is_refused_when_a_key_is_set(tiny_bundle_run, tmp_path, monkeypatch):
    config = copy_run(tiny_bundle_run, tmp_path)
    monkeypatch.setenv("PARAGON_BUNDLE_KEY", KEY)
    with pytest.raises(ArtifactError, match=r"manifest.json is not signed .*export the bundle again with "
                                            r"PARAGON_BUNDLE_KEY set, or sign"):
        ParagonRecommender.load(config["run_dir"])
    monkeypatch.setenv("PARAGON_BUNDLE_KEY", "short")
    with pytest.raises(ArtifactError, match="at least 16 characters"):
        ParagonRecommender.load(config["run_dir"])


def test_a_trusted_bundle_can_be_signed_afterwards(tiny_bundle_run, tmp_path, monkeypatch):
    from recbole_paragon.bundle.sign import main as sign_main

    config = copy_run(tiny_bundle_run, tmp_path)
    monkeypatch.setenv("PARAGON_BUNDLE_KEY", KEY)
    sign_main([config["run_dir"]])
    assert ParagonRecommender.load(config["run_dir"]).recommend(users=["1"], preference=W2, k=3)


def test_a_setting_keyed_by_number_of_objectives_survives_the_bundles_json():
    from recbole_paragon.bundle.standin import BundleConfig, decode_config, encode_config
    from recbole_paragon.schema import check_setting

    encoded = json.loads(json.dumps(encode_config(BundleConfig({"diffusion_bank_blends": {4: 300, 5: 1000}}))))
    assert encoded["diffusion_bank_blends"] == {"4": 300, "5": 1000}  # JSON keys are strings
    decoded = decode_config(encoded, "bundle")["diffusion_bank_blends"]
    assert check_setting("diffusion_bank_blends", decoded) == {"4": 300, "5": 1000}  # still a valid value
    with pytest.raises(ValueError, match="diffusion_bank_blends"):
        check_setting("diffusion_bank_blends", {"four": 300})

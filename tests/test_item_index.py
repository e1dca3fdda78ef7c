"""The ANN item index: every score head maps onto it (or falls back to exact), the served top-K from the index
equals exact scoring on a small catalogue, seen items stay out, and the index is part of the (signed) bundle."""
import os
import shutil

import pytest
import torch

from conftest import TEST_CONFIG
from recbole_paragon import ParagonRecommender, run_recbole_paragon
from recbole_paragon.artifacts import ArtifactError
from recbole_paragon.bundle import files
from recbole_paragon.bundle.index import ItemIndex
from recbole_paragon.model.paragon import SCORE_HEADS, ScoreHead

W = [0.3, 0.7]
INDEXED = {"serve_index_min_items": 0}  # every catalogue indexed (ml-tiny's too)


class Head(torch.nn.Module):
    """A stand-in model for a score head: an item table, a bias, a temperature."""

    def __init__(self, temperature=0.5):
        super().__init__()
        self.n_items = 50
        self.item_embedding = torch.nn.Embedding(self.n_items, 6)
        self.output_bias = torch.nn.Parameter(torch.randn(self.n_items) * 3)
        self.temperature = temperature


@pytest.mark.parametrize("head", [SCORE_HEADS["SASRec"], SCORE_HEADS["BERT4Rec"], SCORE_HEADS["CORE"],
                                  SCORE_HEADS["NPE"], ScoreHead(bias="output_bias", temperature="temperature")])
def test_every_score_head_orders_items_as_the_index_table_does(head):
    torch.manual_seed(0)
    model, hidden = Head(), torch.randn(7, 6)
    table = head.index_table(model)
    by_index = head.index_query(hidden) @ table.T
    assert torch.equal(by_index.argsort(dim=1, descending=True), head.scores(model, hidden).argsort(dim=1,
                                                                                                   descending=True))


def test_a_head_without_an_index_table_falls_back_to_exact():
    assert ScoreHead(temperature="temperature").index_table(Head(temperature=-1.0)) is None
    assert SCORE_HEADS["HGN"].table == "item_embedding_for_prediction"  # its own table, a plain dot product


@pytest.fixture(scope="module")
def indexed_run(tiny_bundle_run, tmp_path_factory):
    """A copy of the run exported with an item index (the tiny catalogue counts as large)."""
    root = tmp_path_factory.mktemp("indexed")
    shutil.copytree(tiny_bundle_run[0]["run_dir"], root / "run")
    shutil.rmtree(root / "run" / files.BUNDLE_DIR)
    config = {**tiny_bundle_run[0], **INDEXED, "run_dir": str(root / "run"), "checkpoint_dir": str(root / "saved"),
              "stage": "export"}
    cwd = os.getcwd()
    os.chdir(root)
    try:
        run_recbole_paragon("ParagonSASRec", "ml-tiny", [TEST_CONFIG], config)
    finally:
        os.chdir(cwd)
    return config


def test_the_index_is_exported_in_the_manifest(indexed_run):
    manifest = files.read_manifest(os.path.join(indexed_run["run_dir"], files.BUNDLE_DIR))
    assert files.INDEX in manifest["files"]
    assert ParagonRecommender.load(indexed_run["run_dir"], settings=INDEXED).index is not None
    assert ParagonRecommender.load(indexed_run["run_dir"]).index is None  # the yaml's limit: 100 000 items
    assert ParagonRecommender.load(indexed_run["run_dir"], settings={"serve_index_min_items": 10 ** 9}).index is None


@pytest.mark.parametrize("exclude_seen", [True, False])
def test_top_k_from_the_index_equals_exact_scoring(indexed_run, exclude_seen):
    """On a small catalogue with a search breadth of the whole catalogue the index finds the exact top-K."""
    approximate = ParagonRecommender.load(indexed_run["run_dir"], settings={**INDEXED, "serve_index_expansion": 2000})
    exact = ParagonRecommender.load(indexed_run["run_dir"], settings={"serve_index_min_items": 10 ** 9})
    users = ["1", "2", "5", "150", "300"]
    found = approximate.rank(users=users, preference=W, k=10, exclude_seen=exclude_seen)
    expected = exact.rank(users=users, preference=W, k=10, exclude_seen=exclude_seen)
    assert found.items == expected.items
    assert torch.allclose(torch.tensor(found.scores), torch.tensor(expected.scores), atol=1e-5)  # re-scored exactly
    histories = approximate.rank(histories=[["100", "154", "7"]], preference=W, k=5, exclude_seen=exclude_seen)
    assert histories.items == exact.rank(histories=[["100", "154", "7"]], preference=W, k=5,
                                         exclude_seen=exclude_seen).items
    if exclude_seen:
        catalogue = approximate.catalogue
        for user, items in zip(users, found.items):
            assert not set(items) & set(catalogue.history(catalogue.user_ids([user])[0]).tolist())


def test_an_index_file_the_manifest_does_not_list_is_never_read(tiny_bundle_run, tmp_path):
    """Dropping an index into a bundle does not get it served: without a listed index one is built in memory."""
    shutil.copytree(os.path.join(tiny_bundle_run[0]["run_dir"], files.BUNDLE_DIR), tmp_path / "bundle")
    (tmp_path / "bundle" / files.INDEX).write_bytes(b"not an index")
    recommender = ParagonRecommender.load(str(tmp_path / "bundle"), settings=INDEXED)
    assert isinstance(recommender.index, ItemIndex)
    assert recommender.rank(users=["1"], preference=W, k=5).items[0]


def test_an_edited_index_is_refused(indexed_run, tmp_path):
    shutil.copytree(os.path.join(indexed_run["run_dir"], files.BUNDLE_DIR), tmp_path / "bundle")
    with open(tmp_path / "bundle" / files.INDEX, "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ArtifactError, match="items.faiss was changed after export"):
        ParagonRecommender.load(str(tmp_path / "bundle"))


def test_rows_whose_seen_items_fill_the_first_search_are_searched_again(indexed_run):
    """A narrow first search (breadth 1: k + serve_index_candidates items) for a user with a long history: the rows
    left short of unseen candidates are searched again for all their seen items too."""
    narrow = ParagonRecommender.load(indexed_run["run_dir"], settings={**INDEXED, "serve_index_expansion": 1,
                                                                      "serve_index_candidates": 0})
    exact = ParagonRecommender.load(indexed_run["run_dir"], settings={"serve_index_min_items": 10 ** 9})
    catalogue = narrow.catalogue
    heavy = max(catalogue.user_tokens[1:], key=lambda u: len(catalogue.history(catalogue.user_ids([u])[0])))
    seen = set(catalogue.history(catalogue.user_ids([heavy])[0]).tolist())
    assert len(seen) >= 20  # more than the first search returns (k = 10)
    asked, search = [], narrow.index.candidates
    narrow.index.candidates = lambda queries, count: asked.append((len(queries), count)) or search(queries, count)
    found = narrow.rank(users=[heavy, "1"], preference=W, k=10).items
    assert asked[0] == (2, 10) and asked[1][1] == 10 + len(seen)  # the second search: only the short rows
    expected = exact.rank(users=[heavy, "1"], preference=W, k=10).items
    assert [len(row) for row in found] == [10, 10] and not set(found[0]) & seen
    assert sum(len(set(a) & set(e)) for a, e in zip(found, expected)) >= 16

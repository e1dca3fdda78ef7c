"""ParagonRecommender: external ids mapped right, top-K equal to full_sort_predict, exclude_seen, caches, errors."""
import csv
import os
import threading
import time

import pytest
import torch
from recbole.data.interaction import Interaction

from conftest import TEST_DATA
from recbole_paragon import ParagonRecommender, generate
from recbole_paragon.bundle import UnknownIdError
from recbole_paragon.serving.batcher import GenerationBatcher
from recbole_paragon.serving.cache import AdapterCache
from recbole_paragon.serving.requests import Preference

W = [0.4, 0.6]


@pytest.fixture(scope="module")
def recommender(tiny_bundle_run):
    return ParagonRecommender.load(tiny_bundle_run[0]["run_dir"])


@pytest.fixture(scope="module")
def test_rows(tiny_bundle_run):
    """RecBole's own test split: per user token, (history before the target, target) as internal ids."""
    trainer = tiny_bundle_run[1]["adapter_trainer"]
    dataset = trainer.loaders["test"]._dataset
    tokens = dataset.field2id_token["user_id"]
    rows = {}
    for interaction, _, _, targets in trainer.loaders["test"]:
        for user, items, length, target in zip(interaction["user_id"], interaction["item_id_list"],
                                               interaction["item_length"], targets):
            rows[str(tokens[int(user)])] = (items[:int(length)].tolist(), int(target))
    return rows


def sequence_interaction(model, histories):
    length = model.max_seq_length
    items = torch.zeros(len(histories), length, dtype=torch.long)
    for row, history in enumerate(histories):
        items[row, :len(history[-length:])] = torch.tensor(history[-length:])
    return Interaction({model.ITEM_SEQ: items, model.USER_ID: torch.zeros(len(histories), dtype=torch.long),
                        model.ITEM_SEQ_LEN: torch.tensor([min(len(h), length) for h in histories])})


def test_histories_are_the_users_interactions_in_recbole_order(recommender, test_rows):
    catalogue = recommender.catalogue
    raw = {}
    with open(os.path.join(TEST_DATA, "ml-tiny", "ml-tiny.inter")) as handle:
        for row in list(csv.reader(handle, delimiter="\t"))[1:]:
            raw.setdefault(row[0], []).append(row[1])
    for user, (before, target) in test_rows.items():
        history = catalogue.history(catalogue.user_ids([user])[0]).tolist()
        assert history[-len(before) - 1:] == before + [target]  # RecBole's test sequence and target, same order
        assert sorted(catalogue.item_tokens[i] for i in history) == sorted(raw[user])  # external ids mapped right


def test_top_k_equals_full_sort_predict_of_the_generated_model(recommender, tiny_bundle_run):
    users = ["1", "2", "17", "150", "300"]
    ranking = recommender.rank(users=users, preference=W, k=10, exclude_seen=False)
    model = generate(tiny_bundle_run[0]["run_dir"], W)
    catalogue = recommender.catalogue
    histories = [catalogue.history(u).tolist() for u in catalogue.user_ids(users)]
    scores = model.full_sort_predict(sequence_interaction(model, histories))
    scores[:, 0] = -torch.inf
    top = scores.topk(10, dim=1)
    assert ranking.items == top.indices.tolist()
    assert torch.allclose(torch.tensor(ranking.scores), top.values, atol=1e-5)
    served = recommender.recommend(users=users, preference=W, k=10, exclude_seen=False)
    assert [[entry["item"] for entry in row] for row in served] == [
        [catalogue.item_tokens[i] for i in row] for row in top.indices.tolist()]


def test_free_history_equals_full_sort_predict(recommender, tiny_bundle_run):
    tokens = ["100", "154", "7", "50"]
    model = generate(tiny_bundle_run[0]["run_dir"], W)
    ids = recommender.catalogue.item_ids(tokens)
    scores = model.full_sort_predict(sequence_interaction(model, [ids]))
    scores[:, 0] = -torch.inf
    ranking = recommender.rank(histories=[tokens], preference=W, k=5, exclude_seen=False)
    assert ranking.items[0] == scores.topk(5).indices[0].tolist()


@pytest.mark.parametrize("who", ["users", "histories"])
def test_exclude_seen_removes_the_history_and_keeps_the_order(recommender, who):
    catalogue = recommender.catalogue
    history = catalogue.history(catalogue.user_ids(["5"])[0]).tolist()
    given = {"users": ["5"]} if who == "users" else {"histories": [[catalogue.item_tokens[i] for i in history]]}
    kept = recommender.rank(**given, preference=W, k=20, exclude_seen=True).items[0]
    everything = recommender.rank(**given, preference=W, k=100, exclude_seen=False).items[0]
    assert not set(kept) & set(history)
    assert kept == [i for i in everything if i not in set(history)][:20]
    assert set(everything[:20]) & set(history), "the test needs a user whose seen items rank high"


def test_items_are_described_in_external_tokens(recommender):
    entry = recommender.recommend(users=["1"], preference=W, k=3)[0][0]
    assert set(entry) == {"item", "score", "title", "categories"} and entry["title"] is None  # ml-tiny: no titles
    assert entry["item"] in recommender.catalogue.items and isinstance(entry["categories"], list)
    assert entry["categories"] and all(isinstance(c, str) for c in entry["categories"])


def test_two_preferences_give_independent_models(recommender, tiny_bundle_run):
    first = generate(tiny_bundle_run[0]["run_dir"], [1, 0])
    kept = first.get_adapter_vector()
    second = generate(tiny_bundle_run[0]["run_dir"], [0, 1])
    assert first is not second and torch.equal(first.get_adapter_vector(), kept)
    assert not torch.equal(first.get_adapter_vector(), second.get_adapter_vector())
    third = recommender.adapter([1, 0])
    assert torch.equal(third.get_adapter_vector(), kept) and third is not first
    assert recommender.model.adapter.up.weight.abs().sum() == 0  # the served model itself stays the identity


def test_known_user_states_are_computed_once(tiny_bundle_run, monkeypatch):
    recommender = ParagonRecommender.load(tiny_bundle_run[0]["run_dir"])
    calls = []
    original = recommender.model.sequence_representation
    monkeypatch.setattr(recommender.model, "sequence_representation",
                        lambda interaction: calls.append(len(interaction)) or original(interaction))
    recommender.recommend(users=["1", "2"], preference=[1, 0])
    recommender.recommend(users=["2", "1", "3"], preference=[0, 1])
    recommender.recommend(users=["3"], preference=[0.5, 0.5])
    assert calls == [2, 1]


def test_adapters_are_cached_per_preference(tiny_bundle_run):
    recommender = ParagonRecommender.load(tiny_bundle_run[0]["run_dir"], cache_size=2)
    assert not recommender.rank(users=["1"], preference=[1, 1]).cached
    assert recommender.rank(users=["1"], preference=[0.5, 0.5]).cached  # the same preference, normalised
    recommender.rank(users=["1"], preference=[1, 0])
    recommender.rank(users=["1"], preference=[0, 1])
    assert len(recommender.adapters) == 2 and not recommender.rank(users=["1"], preference=[1, 1]).cached


@pytest.mark.parametrize("kwargs, error, message", [
    ({"users": ["nobody"]}, UnknownIdError, "unknown user 'nobody'"),
    ({"histories": [["1", "no-such-item"]]}, UnknownIdError, "unknown item 'no-such-item'"),
    ({"users": ["1"], "preference": [1, 2, 3]}, ValueError, "needs 2 weights"),
    ({"users": ["1"], "preference": [-1, 2]}, ValueError, "non-negative"),
    ({"users": ["1"], "preference": [float("nan"), 1]}, ValueError, "finite"),
    ({"users": ["1"], "preference": [0, 0]}, ValueError, "not all be zero"),
    ({"users": ["1"], "preference": {"accuracy": 1, "novelty": 1}}, ValueError, "unknown objective"),
    ({"users": ["1"], "k": 0}, ValueError, "k must be an integer from 1 to 100"),
    ({"users": ["1"], "k": 101}, ValueError, "k must be"),
    ({"users": ["1"], "k": True}, ValueError, "k must be"),
    ({"users": "1"}, ValueError, "non-empty list"),
    ({"users": []}, ValueError, "non-empty list"),
    ({"histories": [[]]}, ValueError, "non-empty list of item tokens"),
    ({"users": ["1"], "histories": [["1"]]}, ValueError, "give either users or histories, not both"),
    ({}, ValueError, "say whom to recommend for"),
    ({"users": ["1"], "preference": None}, ValueError, "give a preference"),
])
def test_bad_input_names_the_problem(recommender, kwargs, error, message):
    with pytest.raises(error, match=message):
        recommender.recommend(**{"preference": W, **kwargs})


def test_preference_by_name_is_the_same_as_by_position(recommender):
    by_name, by_position = recommender.preference({"diversity": 3, "accuracy": 1}), recommender.preference([1, 3])
    assert by_name == by_position and by_name.values == (0.25, 0.75)
    assert torch.equal(by_name.tensor, torch.tensor([0.25, 0.75]))


def test_concurrent_new_preferences_share_sampling_passes():
    calls = []

    def slow_generate(preferences):
        calls.append(len(preferences))
        time.sleep(0.05)
        return preferences.repeat(1, 3)

    batcher = GenerationBatcher(slow_generate, max_batch=64, window=0.02, expected=lambda: 8)
    results = {}

    def ask(i):
        results[i] = batcher(torch.tensor([[i / 10, 1 - i / 10]]))

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(calls) == 8 and len(calls) <= 2
    assert all(torch.equal(results[i], torch.tensor([[i / 10, 1 - i / 10]]).repeat(1, 3)) for i in range(8))


def test_a_failed_pass_reaches_every_caller_and_the_next_pass_runs():
    state = {"fail": True}

    def generate_or_fail(preferences):
        if state["fail"]:
            raise RuntimeError("sampler broke")
        return preferences

    batcher = GenerationBatcher(generate_or_fail, max_batch=4)
    with pytest.raises(RuntimeError, match="sampler broke"):
        batcher(torch.ones(1, 2))
    state["fail"] = False
    assert torch.equal(batcher(torch.ones(2, 2)), torch.ones(2, 2))


def preferences(*rows):
    return [Preference(tuple(row), torch.tensor(row)) for row in rows]


def test_cache_evicts_least_recently_used():
    cache = AdapterCache(lambda p: p * 2, size=2)
    vectors, cached = cache.vectors(preferences([1.0, 0.0], [0.0, 1.0]))
    assert cached == [False, False] and torch.equal(vectors, torch.tensor([[2.0, 0.0], [0.0, 2.0]]))
    cache.vectors(preferences([1.0, 0.0]))  # touch: [1, 0] is now the most recent
    cache.vectors(preferences([0.5, 0.5]))  # evicts [0, 1]
    assert cache.vectors(preferences([1.0, 0.0], [0.0, 1.0]))[1] == [True, False]

"""The HTTP service: the same top-K as the Python API, 4xx that name the problem, never a 5xx (fuzzed), the CLI."""
import json
import math
import os
import re

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recbole_paragon.service import build_app
from recbole_paragon.service.app import STATIC_DIR
from recbole_paragon.service.server import parse_arguments
from run_recbole_paragon import wants_service

W = [0.4, 0.6]


LOCAL = "http://127.0.0.1"  # the Host header must be an allowed name (serve_allowed_hosts)


@pytest.fixture(scope="module")
def served(tiny_bundle_run):
    app, recommender = build_app(tiny_bundle_run[0]["run_dir"], {"serve_list_users": True})
    return TestClient(app, base_url=LOCAL), recommender


def test_health_objectives_and_users(served):
    client, recommender = served
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["model"] == "ParagonSASRec" and health["users"] == 300
    objectives = client.get("/objectives").json()
    assert [o["name"] for o in objectives["objectives"]] == ["accuracy", "diversity"]
    assert objectives["objectives"][0]["metric"] == "ndcg@10" and len(objectives["grid"]) == 5
    page = client.get("/users", params={"offset": 10, "limit": 5}).json()
    assert page["total"] == 300 and page["users"] == recommender.catalogue.user_tokens[11:16]


def test_recommend_equals_the_python_api(served):
    client, recommender = served
    for user in ["1", "42", "299"]:
        body = client.post("/recommend", json={"user": user, "preference": W, "k": 10}).json()
        assert body["items"] == recommender.recommend(users=[user], preference=W, k=10)[0]
        assert body["user"] == user and body["objectives"] == ["accuracy", "diversity"]
        assert body["preference"] == pytest.approx(W) and body["latency_ms"] > 0
        assert body["validation"]["preference"] == [0.5, 0.5] and "ndcg@10" in body["validation"]["metrics"]
    history = client.post("/recommend", json={"history": ["100", 154], "preference": {"diversity": 1}, "k": 3})
    assert history.status_code == 200 and len(history.json()["items"]) == 3
    assert history.json()["items"] == recommender.recommend(histories=[["100", "154"]], preference=[0, 1], k=3)[0]


def test_cached_flag_follows_the_adapter_cache(served):
    client, _ = served
    first = client.post("/recommend", json={"user": "3", "preference": [0.123, 0.877]}).json()
    second = client.post("/recommend", json={"user": "4", "preference": [0.123, 0.877]}).json()
    assert not first["cached"] and second["cached"] and len(second["items"]) == 10


@pytest.mark.parametrize("body, status, message", [
    ({"user": "nobody", "preference": W}, 404, "unknown user 'nobody'"),
    ({"history": ["1", "not-an-item"], "preference": W}, 404, "unknown item 'not-an-item'"),
    ({"user": "1", "preference": [1, 2, 3]}, 422, "needs 2 weights"),
    ({"user": "1", "preference": [-0.5, 1]}, 422, "non-negative"),
    ({"user": "1", "preference": [0, 0]}, 422, "not all be zero"),
    ({"user": "1", "preference": [], "k": 5}, 422, "preference is empty"),
    ({"user": "1", "preference": W, "k": 0}, 422, "k must be an integer from 1 to 100"),
    ({"user": "1", "preference": W, "k": 101}, 422, "k must be an integer from 1 to 100"),
    ({"user": "1", "history": ["1"], "preference": W}, 422, "give either user or history, not both"),
    ({"preference": W}, 422, "say whom to recommend for"),
    ({"user": "1"}, 422, "give a preference"),
    ({"user": "1", "preference": W, "colour": "red"}, 422, "colour"),
    ({"user": "1", "preference": "0.5;0.5"}, 422, "comma-separated numbers"),
    ({"user": "1", "preference": [1e308, 1e308]}, 422, "sum overflows"),
    ({"user": "1", "preference": [True, 1]}, 422, "numbers like"),
    ({"user": "1", "preference": W, "k": True}, 422, "k must be an integer"),
    ({"user": "1", "preference": W, "k": "5"}, 422, "k must be an integer"),
    ({"user": "1", "preference": W, "k": 5.0}, 422, "k must be an integer"),
    ({"user": "1", "preference": W, "exclude_seen": "no"}, 422, "exclude_seen must be true or false"),
    ([1, 2], 422, "must be a JSON object"),
])
def test_bad_input_is_a_4xx_naming_the_problem(served, body, status, message):
    response = served[0].post("/recommend", json=body)
    assert response.status_code == status
    assert message in json.dumps(response.json())


@pytest.mark.parametrize("raw", ['{"user": "1", "preference": [NaN, 1]}', '{"user": "1", "preference": [Infinity, 1]}',
                                 '{"user": "1", "preference": [1e999, 1]}', '{"user": "1", "preference": [0.5,',
                                 "not json at all", ""])
def test_non_finite_and_malformed_json_is_a_422(served, raw):
    response = served[0].post("/recommend", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.json()["detail"]


def test_openapi_docs_and_console_are_served_without_external_assets(served):
    client, _ = served
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    assert {"/health", "/objectives", "/users", "/recommend"} <= set(schema["paths"])
    page = client.get("/")
    assert page.status_code == 200 and "Paragon preference console" in page.text
    for name in os.listdir(STATIC_DIR):
        text = open(os.path.join(STATIC_DIR, name), encoding="utf-8").read()
        urls = set(re.findall(r"(?:https?:)?//[\w.-]+\.\w+", text)) - {"http://www.w3.org"}  # the SVG namespace
        assert not urls, f"{name} loads from outside the package: {urls}"
        assert client.get(f"/static/{name}").status_code == 200


# -- fuzzing: every operation of the OpenAPI document, bounded number of cases, never a 5xx -----------------------
TOKENS = st.one_of(st.sampled_from(["1", "2", "150", "300", "0", "[PAD]", "", "nobody"]), st.integers(-5, 400),
                   st.text(max_size=8))
NUMBERS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**20, 10**20), st.booleans(),
                    st.none(), st.text(max_size=4))
JSON = st.recursive(st.one_of(st.none(), st.booleans(), st.floats(allow_nan=False), st.text(max_size=6)),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                                max_size=3), max_leaves=8)
BODIES = st.one_of(
    st.fixed_dictionaries({}, optional={
        "user": TOKENS, "history": st.one_of(st.lists(TOKENS, max_size=12), JSON),
        "preference": st.one_of(st.lists(NUMBERS, max_size=4),
                                st.dictionaries(st.sampled_from(["accuracy", "diversity", "x"]), NUMBERS, max_size=3),
                                JSON),
        "k": st.one_of(st.integers(-3, 200), NUMBERS), "exclude_seen": st.one_of(st.booleans(), NUMBERS),
        "extra": JSON}),
    JSON)
QUERIES = st.fixed_dictionaries({}, optional={"offset": st.one_of(st.integers(-5, 10**6), st.text(max_size=4)),
                                              "limit": st.one_of(st.integers(-5, 5000), st.text(max_size=4))})


def encoded(body):
    return json.dumps(body, allow_nan=True)  # NaN and Infinity are sent as the JSON extensions Python writes


@settings(max_examples=120, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(body=BODIES, query=QUERIES)
def test_fuzzed_requests_never_get_a_5xx(served, body, query):
    client, _ = served
    operations = [(path, method) for path, item in client.get("/openapi.json").json()["paths"].items()
                  for method in item]
    assert sorted(operations) == sorted([("/health", "get"), ("/objectives", "get"), ("/users", "get"),
                                         ("/recommend", "post")])
    for path, method in operations:
        if method == "post":
            response = client.post(path, content=encoded(body), headers={"content-type": "application/json"})
        else:
            response = client.get(path, params=query)
        assert response.status_code < 500, (path, body, response.text)
        payload = response.json()
        if response.status_code >= 400:
            assert payload["detail"]
        elif path == "/recommend":
            assert all(math.isfinite(item["score"]) for item in payload["items"])


# -- command line --------------------------------------------------------------------------------------------------
def test_serve_command_line():
    assert wants_service(["serve", "--run_dir=x"]) and wants_service(["--stage=serve", "--run_dir=x"])
    assert not wants_service(["--stage=export"]) and not wants_service([])
    arguments = parse_arguments(["--stage=serve", "--run_dir=saved/run", "--port=8123"])
    assert (arguments.path, arguments.port, arguments.host) == ("saved/run", 8123, None)
    for bad in (["--run_dir=x", "--port=70000"], ["--run_dir=x", "--epochs=3"]):
        with pytest.raises(SystemExit):
            parse_arguments(bad)
    # without --run_dir the run directory is found as every stage finds it: <checkpoint_dir>/<model>-<dataset>
    assert parse_arguments(["--port=8000"]).path == os.path.join("saved", "ParagonSASRec-ml-100k")
    found = parse_arguments(["--stage=serve", "--model=ParagonGRU4Rec", "--dataset=shop", "--checkpoint_dir=runs"])
    assert found.path == os.path.join("runs", "ParagonGRU4Rec-shop")


def test_serve_stage_in_the_python_api_points_to_the_command_line():
    from recbole_paragon.quick_start import build_config

    with pytest.raises(ValueError, match="--stage=serve runs the HTTP service"):
        build_config("ParagonSASRec", "ml-tiny", config_dict={"stage": "serve"})


def test_serve_settings_on_the_command_line():
    arguments = parse_arguments(["--run_dir=x", "--serve_list_users=True", "--serve_workers=2", "--insecure"])
    assert arguments.settings == {"serve_list_users": True, "serve_workers": 2} and arguments.insecure
    for bad in (["--run_dir=x", "--serve_workers=0"], ["--run_dir=x", "--serve_workers=two"],
                ["--run_dir=x", "--serve_no_such_setting=1"], ["--run_dir=x", "--serve_list_users"]):
        with pytest.raises(SystemExit):
            parse_arguments(bad)


def test_a_worker_process_builds_its_own_app_from_what_the_parent_hands_it(tiny_bundle_run, monkeypatch):
    """serve_workers > 1: each uvicorn worker calls worker_app(), which loads the bundle itself (its own adapter
    cache and batcher) with the parent's settings and the token from the environment."""
    from recbole_paragon.service.server import WORKER_VARIABLE, worker_app

    monkeypatch.setenv(WORKER_VARIABLE, json.dumps({"path": tiny_bundle_run[0]["run_dir"], "host": "127.0.0.1",
                                                    "settings": {"serve_list_users": True}}))
    monkeypatch.setenv("PARAGON_API_TOKEN", "a-worker-token-0123456789")
    client = TestClient(worker_app(), base_url=LOCAL)
    assert client.get("/users").status_code == 401
    headers = {"Authorization": "Bearer a-worker-token-0123456789"}
    assert client.get("/users", headers=headers).json()["total"] == 300
    first = client.post("/recommend", json={"user": "1", "preference": W}, headers=headers).json()
    again = TestClient(worker_app(), base_url=LOCAL).post("/recommend", json={"user": "1", "preference": W},
                                                          headers=headers).json()
    assert not first["cached"] and not again["cached"] and first["items"] == again["items"]  # one cache each

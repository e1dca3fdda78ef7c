"""The service's door: token on every route but /health, no token-less bind beyond loopback, Host allow-list,
security headers, body limits, short error messages, and the same refusals in the same words as the Python API."""
import json
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient

from conftest import REPO_DIR
from recbole_paragon.service import build_app
from recbole_paragon.service.security import api_token, host_name, is_loopback
from recbole_paragon.service.server import check_exposure

TOKEN = "s3cret-token-of-the-test-suite-0123"
LOCAL = "http://127.0.0.1"
W = [0.4, 0.6]


@pytest.fixture(scope="module")
def built(tiny_bundle_run):
    return build_app(tiny_bundle_run[0]["run_dir"], {"serve_list_users": True, "serve_max_body_bytes": 4096},
                     token=TOKEN)


@pytest.fixture(scope="module")
def locked(built):
    return TestClient(built[0], base_url=LOCAL)


def every_route(client):
    """(method, path) of every route the app answers: the API's, the console's, the docs' and their files."""
    paths = [(method, path) for path, item in client.get("/openapi.json", headers=auth()).json()["paths"].items()
             for method in item]
    return paths + [("get", "/"), ("get", "/docs"), ("get", "/openapi.json"), ("get", "/static/console.js"),
                    ("get", "/docs/assets/swagger-ui-bundle.js")]


def auth(token=TOKEN):
    return {"Authorization": f"Bearer {token}"}


def test_every_route_but_health_needs_the_token(locked):
    routes = every_route(locked)
    assert ("post", "/recommend") in routes and ("get", "/users") in routes
    for method, path in routes:
        for headers in ({}, auth("wrong-token-of-the-same-sort-0123"), {"Authorization": TOKEN},
                        {"Authorization": f"Basic {TOKEN}"}):
            response = locked.request(method, path, headers=headers)
            if path == "/health":
                assert response.status_code == 200
            else:
                assert response.status_code == 401, (method, path, headers)
                assert response.headers["www-authenticate"] == "Bearer" and TOKEN not in response.text
    assert locked.get("/objectives", headers=auth()).status_code == 200
    body = locked.post("/recommend", json={"user": "1", "preference": W}, headers=auth())
    assert body.status_code == 200 and len(body.json()["items"]) == 10


def test_forged_host_is_refused_and_allowed_names_pass(locked):
    for host in ("evil.example", "127.0.0.1.evil.example", "attacker:8000", ""):
        response = locked.get("/objectives", headers={**auth(), "Host": host})
        assert response.status_code == 400 and "serve_allowed_hosts" in response.json()["detail"]
    for host in ("localhost:8000", "127.0.0.1", "[::1]:8000", "LOCALHOST"):
        assert locked.get("/objectives", headers={**auth(), "Host": host}).status_code == 200
    assert host_name("[::1]:80") == "::1" and host_name("example.org:8000") == "example.org"


def test_security_headers_on_every_answer(locked):
    for response in (locked.get("/health"), locked.get("/docs", headers=auth()), locked.get("/objectives")):
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        policy = response.headers["content-security-policy"]
        assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy and "http" not in policy


def test_oversized_bodies_and_wrong_content_types_are_refused_briefly(locked):
    big = json.dumps({"user": "1", "preference": W, "history": ["1"] * 2000})
    declared = locked.post("/recommend", content=big, headers={**auth(), "Content-Type": "application/json"})
    streamed = locked.post("/recommend", content=iter([big.encode()[:3000], big.encode()[3000:]]),
                           headers={**auth(), "Content-Type": "application/json"})  # chunked: no Content-Length
    for response in (declared, streamed):
        assert response.status_code == 413 and "serve_max_body_bytes (4096 bytes)" in response.json()["detail"]
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        headers = {**auth(), **({"Content-Type": content_type} if content_type else {})}
        response = locked.post("/recommend", content=json.dumps({"user": "1", "preference": W}), headers=headers)
        assert response.status_code == 415
        assert "Content-Type: application/json" in response.json()["detail"]
        assert (content_type or "none") in response.json()["detail"]


def test_a_huge_token_is_never_echoed(built, tiny_bundle_run):
    token = "x" * 1_000_000
    small = TestClient(built[0], base_url=LOCAL)
    refused = small.post("/recommend", json={"user": token, "preference": W}, headers=auth())
    assert refused.status_code == 413 and len(refused.text) < 300
    roomy, recommender = build_app(tiny_bundle_run[0]["run_dir"], {"serve_max_body_bytes": 2_000_000})
    response = TestClient(roomy, base_url=LOCAL).post("/recommend", json={"user": token, "preference": W})
    assert response.status_code == 404 and len(response.text) < 300 and "1000002 characters" in response.text
    with pytest.raises(LookupError) as python:
        recommender.recommend(users=[token], preference=W)
    assert str(python.value) == response.json()["detail"]


# -- the same refusal, in the same words, from HTTP and from Python -------------------------------------------------
SAME = [
    ({"preference": [1e308, 1e308]}, "their sum overflows"),
    ({"k": True}, "k must be an integer from 1 to 100, got True"),
    ({"k": "5"}, "k must be an integer from 1 to 100, got '5'"),
    ({"k": 2.0}, "k must be an integer"),
    ({"preference": [True, False]}, "got the weight True"),
    ({"preference": ["0.5", "0.5"]}, "got the weight '0.5'"),
    ({"preference": [0.5, 0.5, 0.5]}, "needs 2 weights"),
    ({"preference": {"accuracy": 1, "novelty": 1}}, "unknown objective"),
    ({"exclude_seen": 1}, "exclude_seen must be true or false"),
]


@pytest.mark.parametrize("change, message", SAME)
def test_http_and_python_refuse_alike(built, change, message):
    app, recommender = built
    client = TestClient(app, base_url=LOCAL)
    with pytest.raises(ValueError) as refused:
        recommender.recommend(**{"users": ["1"], "preference": W, **change})
    response = client.post("/recommend", json={"user": "1", "preference": W, **change}, headers=auth())
    assert response.status_code == 422 and response.json()["detail"] == str(refused.value)
    assert message in str(refused.value) and len(str(refused.value)) < 300


def test_overflowing_preference_is_not_cached(built):
    _, recommender = built
    cached = len(recommender.adapters)
    with pytest.raises(ValueError, match="overflows"):
        recommender.rank(users=["1"], preference=[1e308, 1e308])
    assert len(recommender.adapters) == cached


# -- starting the service ------------------------------------------------------------------------------------------
def test_token_comes_from_the_environment_or_a_file(tmp_path):
    assert api_token({}) is None and api_token({"PARAGON_API_TOKEN": ""}) is None
    assert api_token({"PARAGON_API_TOKEN": TOKEN}) == TOKEN
    (tmp_path / "token").write_text(TOKEN + "\n")
    assert api_token({"PARAGON_API_TOKEN_FILE": str(tmp_path / "token")}) == TOKEN
    for bad, message in (({"PARAGON_API_TOKEN": "short"}, "at least 16"),
                         ({"PARAGON_API_TOKEN": "has spaces in the token ok"}, "without spaces"),
                         ({"PARAGON_API_TOKEN": TOKEN, "PARAGON_API_TOKEN_FILE": "x"}, "not both"),
                         ({"PARAGON_API_TOKEN_FILE": str(tmp_path / "missing")}, "cannot be read")):
        with pytest.raises(ValueError, match=message):
            api_token(bad)


def test_binding_beyond_loopback_needs_a_token_or_insecure(capsys):
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5") and not is_loopback("example.org")
    check_exposure("127.0.0.1", None, False, True)  # loopback: no token needed
    check_exposure("0.0.0.0", TOKEN, False, False)
    with pytest.raises(SystemExit, match="refusing to serve on 0.0.0.0 without an API token"):
        check_exposure("0.0.0.0", None, False, False)
    check_exposure("0.0.0.0", None, True, False)
    assert "WITHOUT AN API TOKEN" in capsys.readouterr().err


def test_the_command_refuses_a_public_bind_before_loading_anything(tmp_path):
    environment = {"PATH": "/usr/bin:/bin", "PYTHONPATH": REPO_DIR}
    result = subprocess.run([sys.executable, "-m", "run_recbole_paragon", "--stage=serve",
                             f"--run_dir={tmp_path}", "--host=0.0.0.0", "--port=0"], capture_output=True, text=True,
                            env=environment, cwd=REPO_DIR, timeout=300)
    assert result.returncode != 0 and "refusing to serve on 0.0.0.0 without an API token" in result.stderr


def test_users_are_not_listed_by_default(tiny_bundle_run):
    app, _ = build_app(tiny_bundle_run[0]["run_dir"])
    client = TestClient(app, base_url=LOCAL)
    response = client.get("/users")
    assert response.status_code == 404 and "serve_list_users" in response.json()["detail"]
    assert "/users" not in client.get("/openapi.json").json()["paths"]
    assert client.post("/recommend", json={"user": "1", "preference": W}).status_code == 200  # no token on loopback


def test_the_access_log_is_on_and_holds_no_token_or_body(built, caplog):
    """uvicorn's access log (on by default) records method, path and status of each request, never its headers or
    body: the token and the preference sent stay out of it."""
    import logging
    import socket
    import threading
    import time

    import httpx
    import uvicorn

    from recbole_paragon.settings import setting

    assert setting(None, "serve_access_log") is True
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(built[0], host="127.0.0.1", port=port, access_log=True,
                                           log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    with caplog.at_level(logging.INFO, logger="uvicorn.access"):
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        response = httpx.post(f"http://127.0.0.1:{port}/recommend", headers=auth(),
                              json={"user": "7", "preference": [0.123456, 0.876544]})
        server.should_exit = True
        thread.join(timeout=10)
    assert response.status_code == 200
    lines = [record.getMessage() for record in caplog.records if record.name == "uvicorn.access"]
    assert any("POST /recommend" in line and "200" in line for line in lines), lines
    assert not any(TOKEN in line or "0.123456" in line or "Bearer" in line for line in lines)

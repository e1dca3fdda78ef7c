"""The preference console and the OpenAPI page in headless Chromium, against a real uvicorn on 127.0.0.1, with
every request that leaves the machine blocked (the pages must work offline).

Needs Debian's ``chromium`` (``apt-get install chromium``) and Playwright for Python (``pip install -e .[test]``;
Playwright's own browser download is never used). Without them the test skips with that message, unless
``PARAGON_REQUIRE_BROWSER=1`` (set by ``.ci/run``) makes it fail.
"""
import os
import socket
import threading
import time

import pytest

from recbole_paragon.service import build_app

CHROMIUM = os.environ.get("PARAGON_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
READY = "n => Number(document.body.dataset.requests) > n && document.body.dataset.state === 'ready'"


def require_browser():
    missing = []
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("Playwright for Python (pip install -e '.[test]')")
    if not os.path.isfile(CHROMIUM):
        missing.append(f"Chromium at {CHROMIUM} (apt-get install chromium, or set PARAGON_CHROMIUM)")
    if missing:
        message = "the console's browser test needs " + " and ".join(missing)
        if os.environ.get("PARAGON_REQUIRE_BROWSER") == "1":
            pytest.fail(message + " (PARAGON_REQUIRE_BROWSER=1)")
        pytest.skip(message)


@pytest.fixture(scope="module")
def live_service(tiny_bundle_run):
    """The service on a free loopback port, in a thread of this process."""
    import uvicorn

    app, recommender = build_app(tiny_bundle_run[0]["run_dir"], {"serve_list_users": True})
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}", recommender
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def page():
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.outside = []  # requests to anywhere but the service: blocked, and the tests check there are none
            page.route(lambda url: not url.startswith("http://127.0.0.1:"),
                       lambda route: (page.outside.append(route.request.url), route.abort()))
            yield page
        finally:
            browser.close()


def distinct(recommendations):
    return len({c for item in recommendations for c in item["categories"]})


def shown(page):
    """``(item tokens, distinct categories)`` of the list on the page."""
    rows = page.eval_on_selector_all("#items li", "rows => rows.map(r => [r.dataset.item, r.dataset.categories])")
    return [item for item, _ in rows], len({c for _, cats in rows for c in cats.split("|") if c})


def act(page, action):
    """Do ``action`` and wait until the page has shown the answer of the request it started."""
    count = int(page.get_attribute("body", "data-requests"))
    action()
    page.wait_for_function(READY, arg=count, timeout=20_000)


def test_moving_the_diversity_slider_diversifies_the_list(page, live_service):
    url, recommender = live_service
    # a user whose top-10 gains categories between w = (1, 0) and (1, 1) -> (0.5, 0.5), per the Python API
    user = next((u for u in recommender.catalogue.user_tokens[1:60]
                 if distinct(recommender.recommend(users=[u], preference=[0.5, 0.5])[0]) >
                 distinct(recommender.recommend(users=[u], preference=[1, 0])[0])), None)
    assert user is not None, "no user among the first 60 gets more categories with the diversity weight"
    page.goto(url + "/")
    page.wait_for_function(READY, arg=0, timeout=30_000)
    assert page.input_value("#w-diversity") == "0" and page.input_value("#w-accuracy") == "1"
    act(page, lambda: page.fill("#user", user))
    before, categories_before = shown(page)
    assert before == [e["item"] for e in recommender.recommend(users=[user], preference=[1, 0])[0]]

    act(page, lambda: (page.focus("#w-diversity"), page.keyboard.press("End")))  # the slider from 0 to 1
    assert page.input_value("#w-diversity") == "1"
    after, categories_after = shown(page)
    assert after != before and categories_after > categories_before
    assert after == [e["item"] for e in recommender.recommend(users=[user], preference=[0.5, 0.5])[0]]
    assert page.text_content("#share-diversity").endswith("0.50")  # the weight shown normalised
    assert page.get_attribute("#summary", "data-categories") == str(categories_after)
    assert page.locator("#current-point").count() == 1 and page.locator("#metrics tr").count() > 0
    assert page.outside == []


def test_a_bad_history_shows_the_services_message(page, live_service):
    url, _ = live_service
    page.goto(url + "/")
    page.wait_for_function(READY, arg=0, timeout=30_000)
    act(page, lambda: page.fill("#history", "100 no-such-item"))
    assert "unknown item 'no-such-item'" in page.text_content("#error")


def test_the_openapi_page_renders_offline(page, live_service):
    """/docs draws every operation from the package's own Swagger UI files; nothing is fetched from elsewhere."""
    url, _ = live_service
    blocked = []
    page.on("console", lambda message: blocked.append(message.text) if "Content Security Policy" in message.text
            else None)
    page.goto(url + "/docs")
    page.wait_for_selector(".opblock-summary-path", timeout=30_000)
    paths = page.eval_on_selector_all(".opblock-summary-path", "nodes => nodes.map(n => n.textContent.trim())")
    assert {"/health", "/objectives", "/users", "/recommend"} <= {p.replace("\u200b", "") for p in paths}
    assert "recbole-paragon" in page.text_content(".title")
    assert page.outside == [] and blocked == []

"""Screenshot of the preference console (docs/console.png) in headless Chromium, on a bundle of your choice.

    python docs/screenshot.py --run_dir=saved/ParagonSASRec-ml-100k [--user=196] [--diversity=0.6]
"""
import argparse
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from recbole_paragon.service import build_app  # noqa: E402

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
READY = "n => Number(document.body.dataset.requests) > n && document.body.dataset.state === 'ready'"


def main() -> None:
    import uvicorn
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run_dir", required=True)
    parser.add_argument("--user", default="196")
    parser.add_argument("--diversity", type=float, default=0.6)
    parser.add_argument("--output", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "console.png"))
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    app, _ = build_app(args.run_dir)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium, args=ARGS)
        page = browser.new_page(viewport={"width": 1360, "height": 680})
        page.goto(f"http://127.0.0.1:{port}/")
        page.wait_for_function(READY, arg=0)
        count = int(page.get_attribute("body", "data-requests"))
        page.select_option("#user", args.user)
        page.wait_for_function(READY, arg=count)
        count = int(page.get_attribute("body", "data-requests"))
        page.eval_on_selector("#w-diversity", "(el, v) => { el.value = v; el.dispatchEvent(new Event('input')); }",
                              str(args.diversity))
        page.wait_for_function(READY, arg=count)
        page.screenshot(path=args.output, full_page=True)
        browser.close()
    server.should_exit = True
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()

"""``python docs/check_offline.py site``: fail if the built site loads anything from another host.

Every ``<script src>``, ``<link href>`` (stylesheets, preconnects, icons), ``<img>``/``<iframe>``/``<source>`` and
every ``url(...)`` / ``@import`` in the site's CSS and JS must be a relative (local) path: the site is viewed on
machines without internet access. Plain ``<a href>`` links to other sites are allowed (they load nothing).
"""
from __future__ import annotations

import os
import re
import sys
from html.parser import HTMLParser
from typing import List, Tuple

REMOTE = re.compile(r"^(https?:)?//", re.I)
CSS_URL = re.compile(r"""(?:url\(\s*['"]?|@import\s+['"])((?:https?:)?//[^'")\s]+)""", re.I)
LOADING = {"script": "src", "link": "href", "img": "src", "iframe": "src", "source": "src", "embed": "src",
           "object": "data", "audio": "src", "video": "src"}


class Loads(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: List[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        wanted = LOADING.get(tag)
        self.urls += [value for name, value in attrs if name in (wanted, "srcset") and value]


def remote_loads(site: str) -> List[Tuple[str, str]]:
    """``(file, url)`` of everything in ``site`` that would be fetched from another host."""
    found = []
    for directory, _, names in os.walk(site):
        for name in names:
            path = os.path.join(directory, name)
            if name.endswith(".html"):
                parser = Loads()
                parser.feed(open(path, encoding="utf-8").read())
                found += [(path, url) for url in parser.urls if REMOTE.match(url.strip())]
            elif name.endswith((".css", ".js")):
                found += [(path, url) for url in CSS_URL.findall(open(path, encoding="utf-8").read())]
    return found


def main() -> int:
    site = sys.argv[1] if len(sys.argv) > 1 else "site"
    found = remote_loads(site)
    pages = sum(name.endswith(".html") for _, _, names in os.walk(site) for name in names)
    for path, url in found:
        print(f"{path}: loads {url} from another host")
    print(f"{site}: {pages} pages, {len(found)} references to other hosts")
    return 1 if found or not pages else 0


if __name__ == "__main__":
    sys.exit(main())

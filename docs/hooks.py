"""MkDocs hooks (``hooks:`` in mkdocs.yml): the pages written at build time, so nothing generated is committed.

- ``reference/settings.md``: every setting, from ``properties/`` and ``recbole_paragon/schema.py``
  (:mod:`settings_reference`);
- ``reference/api/<module>.md``: one mkdocstrings page per module of ``recbole_paragon``, and an index;
- ``benchmarks/RESULTS.md`` and ``benchmarks/history/*.md``: the repository's results pages, at the same relative
  paths, so their links work on the site as in the repository, and the pictures of ``benchmarks/history/``.

A module, a setting or a history file that others add appears on the next build with nothing else to edit. Links
from a page under ``docs/`` to ``../benchmarks/...`` (right in the repository) are rewritten to the copy on the site.
"""
from __future__ import annotations

import ast
import glob
import os
import posixpath
import re
import sys
import warnings
from typing import Dict, List

from mkdocs.structure.files import File

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PACKAGE = "recbole_paragon"
API_DIR = "reference/api"
SETTINGS_PAGE = "reference/settings.md"
MIRRORED = ("benchmarks/RESULTS.md", "benchmarks/history/*.md")
#: The pictures those pages show, copied beside them.
MIRRORED_IMAGES = ("benchmarks/history/*.png",)
LINK = re.compile(r"(\]\()([^)\s#]+)([^)]*\))")


def modules() -> List[str]:
    """Every module of the package, dotted, sorted (``__main__`` scripts left out)."""
    found = []
    for directory, _, names in os.walk(os.path.join(ROOT, PACKAGE)):
        for name in names:
            if name.endswith(".py") and name != "__main__.py":
                relative = os.path.relpath(os.path.join(directory, name), ROOT)[:-3].replace(os.sep, ".")
                found.append(relative[:-len(".__init__")] if relative.endswith(".__init__") else relative)
    return sorted(found)


def summary(module: str) -> str:
    """The first line of a module's docstring."""
    path = os.path.join(ROOT, *module.split("."))
    path = os.path.join(path, "__init__.py") if os.path.isdir(path) else path + ".py"
    doc = ast.get_docstring(ast.parse(open(path, encoding="utf-8").read())) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def api_pages() -> Dict[str, str]:
    """``{path: markdown}`` of the API reference: an index and one page per module."""
    pages = {f"{API_DIR}/{m}.md": f"# `{m}`\n\n::: {m}\n" for m in modules()}
    rows = [f"| [`{m}`]({m}.md) | {summary(m).replace('|', '/')} |" for m in modules()]
    pages[f"{API_DIR}/index.md"] = "\n".join([
        "# API reference", "",
        "Generated from the docstrings by mkdocstrings, one page per module. The names most users need are the",
        f"package's own ([`{PACKAGE}`]({PACKAGE}.md)): `run_recbole_paragon`, `objective_function`, `generate`,",
        "`generate_batch`, `ParagonRecommender`, `get_model`, `get_trainer`, `Config`.", "",
        "| module | what it holds |", "|---|---|", *rows, ""])
    return pages


def mirrored(patterns=MIRRORED) -> List[str]:
    """Repository-relative paths of the results pages (or, given ``MIRRORED_IMAGES``, their pictures) copied onto
    the site."""
    return sorted(os.path.relpath(p, ROOT).replace(os.sep, "/") for pattern in patterns
                  for p in glob.glob(os.path.join(ROOT, pattern)))


def on_config(config, **kwargs):
    """The nav's generated parts: the module pages under "API reference", every history file under "Results"."""
    groups: Dict[str, list] = {}
    for module in modules():
        package = module.split(".")[1] if module.count(".") else ""
        groups.setdefault(package, []).append({module: f"{API_DIR}/{module}.md"})
    api = [f"{API_DIR}/index.md"] + [entry for entry in groups.pop("")]
    api += [entries[0] if len(entries) == 1 else {name: entries} for name, entries in sorted(groups.items())]
    history = [p for p in mirrored() if p.startswith("benchmarks/history/")]
    index = "benchmarks/history/README.md"
    history = ([index] if index in history else []) + [p for p in history if p != index]
    for entry in config["nav"] or []:
        if isinstance(entry, dict) and "API reference" in entry:
            entry["API reference"] = api
        if isinstance(entry, dict) and "Results" in entry:
            entry["Results"] = ["benchmarks/RESULTS.md", {"History": history}]
    return config


def on_files(files, config, **kwargs):
    """Add the generated pages to the build."""
    sys.path[:0] = [p for p in (ROOT, HERE) if p not in sys.path]
    with warnings.catch_warnings():  # importing the package (numpy, Ray) warns; nothing the docs can act on
        warnings.simplefilter("ignore")
        from recbole_paragon import schema  # the checkout's, as mkdocstrings reads the checkout's sources
    from settings_reference import settings_page

    pages = {SETTINGS_PAGE: settings_page(os.path.join(ROOT, "properties"), schema), **api_pages()}
    pages.update({path: open(os.path.join(ROOT, path), encoding="utf-8").read() for path in mirrored()})
    pages.update({path: open(os.path.join(ROOT, path), "rb").read() for path in mirrored(MIRRORED_IMAGES)})
    for path, content in pages.items():
        files.append(File.generated(config, path, content=content))
    return files


def on_page_markdown(markdown, page, config, files, **kwargs):
    """A link from ``docs/<page>`` to a mirrored repository file (``../benchmarks/RESULTS.md``) points to its copy."""
    if page.file.generated_by:
        return markdown
    folder = posixpath.dirname(page.file.src_uri)
    copies = set(mirrored())

    def rewrite(match):
        target = posixpath.normpath(posixpath.join("docs", folder, match.group(2)))
        if target not in copies:
            return match.group(0)
        return match.group(1) + posixpath.relpath(target, folder or ".") + match.group(3)

    return LINK.sub(rewrite, markdown)

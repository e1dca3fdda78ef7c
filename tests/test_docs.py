"""The front door stays short and the documentation's generated parts stay complete: README and RESULTS fit their
budgets, every history file is reachable, the settings reference shows every setting, the offline check catches a
page that loads something from another host."""
import ast
import glob
import importlib.util
import os
import re
import sys

import pytest

from recbole_paragon import schema
from recbole_paragon.settings import PROPERTIES_DIR, yaml_defaults

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HISTORY = os.path.join(ROOT, "benchmarks", "history")


def docs_module(name):
    spec = importlib.util.spec_from_file_location(f"docs_{name}", os.path.join(ROOT, "docs", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def lines(*path):
    return open(os.path.join(ROOT, *path), encoding="utf-8").read().splitlines()


def test_readme_and_results_fit_their_budgets():
    assert len(lines("README.md")) <= 200, "README.md is the front door: move detail to docs/"
    assert len(lines("benchmarks", "RESULTS.md")) <= 150, "RESULTS.md holds current figures: logs go to history/"
    quick_start = "\n".join(lines("README.md"))
    assert "make demo" in quick_start and "make test" in quick_start and "pip install ." in quick_start


def test_every_history_file_is_linked_from_the_history_index():
    index = "\n".join(lines("benchmarks", "history", "README.md"))
    topics = [os.path.basename(p) for p in glob.glob(os.path.join(HISTORY, "*.md")) if not p.endswith("README.md")]
    assert topics, "benchmarks/history/ holds the record"
    unlinked = [t for t in topics if f"]({t})" not in index]
    assert not unlinked, f"add a line for {unlinked} to benchmarks/history/README.md"


def test_every_results_link_points_to_a_file():
    text = "\n".join(lines("benchmarks", "RESULTS.md"))
    targets = set(re.findall(r"\]\(([^)#\s]+)", text))
    assert targets and not [t for t in targets if not os.path.isfile(os.path.join(ROOT, "benchmarks", t))]


def test_the_settings_reference_parses_every_key_of_the_yaml():
    reference = docs_module("settings_reference")
    parsed = [s.key for section in reference.parse_yaml_sections(os.path.join(PROPERTIES_DIR, "overall.yaml"))
              for s in section.settings]
    assert sorted(parsed) == sorted(yaml_defaults())


def test_the_settings_reference_shows_every_setting_rule_and_old_name():
    page = docs_module("settings_reference").settings_page(PROPERTIES_DIR, schema)
    anchors = set(re.findall(r'<a id="(\w+)"></a>', page))
    assert set(schema.SCHEMA) <= anchors and set(yaml_defaults()) <= anchors
    assert all(f"`{old}`" in page for old in schema.RENAMED)
    row = next(line for line in page.splitlines() if 'id="group_by"' in line)
    assert "`field`" in row and schema.SCHEMA["group_by"].describe() in row and "\\|" in row  # default, rule, comment
    assert "&lt;checkpoint_dir&gt;" in page  # yaml prose is text, not HTML


@pytest.mark.parametrize("tag, remote", [('<script src="https://cdn.example/x.js"></script>', True),
                                         ('<link rel="stylesheet" href="//fonts.example/a.css">', True),
                                         ('<script src="../assets/x.js"></script>', False),
                                         ('<a href="https://recbole.io">RecBole</a>', False)])
def test_the_offline_check_flags_what_loads_from_another_host(tmp_path, tag, remote):
    (tmp_path / "index.html").write_text(f"<html><head>{tag}</head></html>", encoding="utf-8")
    found = docs_module("check_offline").remote_loads(str(tmp_path))
    assert bool(found) == remote


def test_every_picture_a_history_page_shows_exists_and_goes_onto_the_site():
    source = ast.parse(open(os.path.join(ROOT, "docs", "hooks.py"), encoding="utf-8").read())  # no mkdocs needed
    patterns = next(ast.literal_eval(node.value) for node in source.body if isinstance(node, ast.Assign)
                    and any(getattr(target, "id", "") == "MIRRORED_IMAGES" for target in node.targets))
    pictures = {os.path.relpath(p, ROOT).replace(os.sep, "/") for pattern in patterns
                for p in glob.glob(os.path.join(ROOT, pattern))}
    shown = {f"benchmarks/history/{name}" for path in glob.glob(os.path.join(HISTORY, "*.md"))
             for name in re.findall(r"!\[[^\]]*\]\(([^)\s]+\.png)\)", open(path, encoding="utf-8").read())}
    assert shown, "the history pages show their plots"
    assert shown <= pictures, f"missing from the site (or the repository): {sorted(shown - pictures)}"

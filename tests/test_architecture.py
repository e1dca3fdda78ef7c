"""The layout's rules, checked on the source: imports point down the stages, files stay small, and the yaml is the
only place a default value is written."""
import ast
import os
import re

import pytest

from recbole_paragon.settings import OVERALL_YAML, yaml_defaults

PACKAGE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "recbole_paragon")

#: Bottom first. A module may import from its own layer or any layer below it, never from above.
LAYERS = [
    {"compat", "rules", "schema", "settings", "artifacts", "preference", "echo"},
    {"strategies", "objectives"},
    {"metrics", "model"},
    {"generators", "evaluation"},
    {"training"},
    {"registry", "config", "store", "datasets", "entry_points"},
    {"baselines", "bundle"},
    {"pipeline"},
    {"quick_start", "serving", "compare"},
    {"sweep", "tune", "service", ""},  # "" is the package's own __init__
]
#: RecBole's own keys the plugin reads without redefining them in its yaml.
RECBOLE_KEYS = {"seed"}


def modules():
    found = {}
    for directory, _, files in os.walk(PACKAGE_DIR):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(directory, name)
                relative = os.path.relpath(path, PACKAGE_DIR)[:-3].replace(os.sep, ".")
                found[relative[:-len(".__init__")] if relative.endswith("__init__") else relative] = path
    return found


def imports_of(path):
    """Every ``recbole_paragon`` module a file imports, at module level or inside functions."""
    names = set()
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return {n[len("recbole_paragon."):] if n != "recbole_paragon" else "" for n in names
            if n == "recbole_paragon" or n.startswith("recbole_paragon.")}


def resolve(name, known):
    while name not in known and "." in name:
        name = name.rsplit(".", 1)[0]
    return name if name in known else None


def layer_of(module):
    top = module.split(".")[0]
    for index, layer in enumerate(LAYERS):
        if top in layer:
            return index
    raise AssertionError(f"module recbole_paragon.{module} is in no layer of this test: add its folder to LAYERS")


def graph():
    known = modules()
    edges = {}
    for module, path in known.items():
        targets = {resolve(n, known) for n in imports_of(path)} - {None, module}
        if path.endswith("__init__.py"):  # a package importing its own submodules is not a cycle
            targets = {t for t in targets if not t.startswith(module + ".") or module == ""}
        edges[module] = targets
    return edges


def test_every_import_points_down_the_layers():
    wrong = [(m, t) for m, targets in graph().items() for t in targets
             if t != "" and layer_of(t) > layer_of(m)]
    assert not wrong, f"imports from a lower layer to a higher one: {wrong}"


def test_the_import_graph_has_no_cycle():
    edges = graph()
    state = {}

    def visit(module, path):
        state[module] = "open"
        for target in edges[module]:
            if target == "" or target.startswith(module + "."):
                continue
            if state.get(target) == "open":
                raise AssertionError(f"import cycle: {' -> '.join(path + [target])}")
            if target not in state:
                visit(target, path + [target])
        state[module] = "done"

    for module in edges:
        if module not in state:
            visit(module, [module])


def test_no_source_file_over_400_lines():
    long = {m: n for m, p in modules().items() if (n := sum(1 for _ in open(p, encoding="utf-8"))) > 400}
    assert not long, f"files over 400 lines: {long}"


def sources():
    return {m: open(p, encoding="utf-8").read() for m, p in modules().items()}


def test_no_module_writes_a_second_default_for_a_yaml_key():
    keys = set(yaml_defaults())
    offenders = []
    for module, text in sources().items():
        if re.search(r"\bconfig_get\(", text):
            offenders.append((module, "config_get"))
        for key in keys:
            quoted = re.escape(f'"{key}"')
            patterns = [rf"config\w*\s*\[\s*{quoted}\s*\]\s*or\s", rf"config\w*\.get\(\s*{quoted}\s*,",
                        rf"setting\([^)]*{quoted}\s*,"]
            offenders += [(module, key) for pattern in patterns if re.search(pattern, text)]
    assert not offenders, f"literal defaults beside {OVERALL_YAML}: {offenders}"


def test_every_setting_the_code_reads_is_defined_in_the_yaml():
    keys = set(yaml_defaults()) | RECBOLE_KEYS
    read = {key for text in sources().values() for key in re.findall(r'setting\(\s*[\w.]*\s*,\s*"(\w+)"', text)}
    assert read, "the pattern found no setting() call: the test would pass vacuously"
    assert not read - keys, f"settings read but not defined in overall.yaml: {sorted(read - keys)}"


@pytest.mark.parametrize("name", ["DESIGN.md"])
def test_code_cites_no_document_outside_the_repository(name):
    assert not [m for m, text in sources().items() if name in text]

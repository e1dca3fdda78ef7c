"""The "Settings reference" page, written at build time from ``properties/`` and :mod:`recbole_paragon.schema`.

Every key of ``properties/overall.yaml`` with its default and comment, under the yaml's own section headings; what
``SCHEMA`` allows for it; its old name from ``RENAMED``; then the per-dataset / per-model yaml, the renamed values and
any rule whose default comes from elsewhere. A setting added to the yaml and the schema appears here on the next
``make docs`` with nothing else to edit.
"""
from __future__ import annotations

import html
import os
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import yaml

KEY = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*):(.*)$")
HEADING = re.compile(r"^# (---|===) (.*?) ?(-{3,}|={3,})?$")


@dataclass
class Setting:
    key: str
    raw: str  # the default as written in the yaml
    comment: List[str] = field(default_factory=list)


@dataclass
class Section:
    title: str
    level: int = 2  # 3: a sub-heading of a ``# ===`` group
    notes: List[str] = field(default_factory=list)
    settings: List[Setting] = field(default_factory=list)


def _split_comment(text: str) -> tuple:
    """``value  # comment`` -> (value, comment); a ``#`` inside quotes or brackets is part of the value."""
    depth, quote = 0, None
    for index, char in enumerate(text):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "[{(":
            depth += 1
        elif char in "]})":
            depth -= 1
        elif char == "#" and depth == 0 and (index == 0 or text[index - 1] in " \t"):
            return text[:index].strip(), text[index + 1:].strip()
    return text.strip(), ""


def parse_yaml_sections(path: str) -> List[Section]:
    """The yaml's keys, grouped under its ``# --- title ---`` headings (those right after a ``# === group ===``
    heading, with no blank line between, are its sub-headings); comments beside or under a key describe it."""
    sections = [Section("")]
    group, previous_blank, current = None, True, None
    lines = open(path, encoding="utf-8").read().splitlines()
    for line in lines:
        heading = HEADING.match(line)
        if heading:
            title = heading.group(2).strip()
            if heading.group(1) == "===":
                group = title
                sections.append(Section(title))
            else:
                group = None if previous_blank else group
                sections.append(Section(title, 3 if group else 2))
            current = None
        elif KEY.match(line):
            key, rest = KEY.match(line).groups()
            value, comment = _split_comment(rest)
            current = Setting(key, value, [comment] if comment else [])
            sections[-1].settings.append(current)
        elif line.startswith((" ", "\t")) and line.strip().startswith("#") and current is not None:
            current.comment.append(line.strip().lstrip("#").strip())
        elif line.startswith((" ", "\t")) and current is not None:  # a block value (eval_args)
            current.raw = (current.raw + "\n" + line).strip("\n")
        elif line.startswith("#"):
            sections[-1].notes.append(line.lstrip("#").strip())
            current = None
        previous_blank = not line.strip()
    return [s for s in sections if s.settings or s.notes or s.title]


def _shown(raw: str) -> str:
    if "\n" in raw or raw == "":
        value = yaml.safe_load(raw) if raw else None
        raw = yaml.safe_dump(value, default_flow_style=True, sort_keys=False).strip() if value is not None else ""
    return f"`{raw}`" if raw else ""


def _text(text: str) -> str:
    """Prose from the yaml as Markdown: ``<checkpoint_dir>`` is text, not a tag (code spans are left alone)."""
    parts = text.split("`")
    return "`".join(html.escape(part, quote=False) if index % 2 == 0 else part for index, part in enumerate(parts))


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(settings: List[Setting], schema, old_names: Dict[str, str]) -> List[str]:
    rows = ["| setting | default | allowed | description |", "|---|---|---|---|"]
    for item in settings:
        rule = schema.SCHEMA.get(item.key)
        allowed = rule.describe() if rule is not None else "not checked by the plugin"
        description = " ".join(item.comment)
        if item.key in old_names:
            description += f" (0.1 name: `{old_names[item.key]}`)"
        rows.append(f"| <a id=\"{item.key}\"></a>`{item.key}` | {_cell(_shown(item.raw))} | {_cell(_text(allowed))} | "
                    f"{_cell(_text(description))} |")
    return rows


def settings_page(properties_dir: str, schema) -> str:
    """The page's Markdown, from the yaml files under ``properties_dir`` and the ``schema`` module."""
    old_names: Dict[str, List[str]] = {}
    for old, new in schema.RENAMED.items():
        old_names.setdefault(new, []).append(old)
    shown_old = {new: ", ".join(olds) for new, olds in old_names.items()}
    out = ["# Settings reference", "",
           "Generated by `make docs` from `properties/overall.yaml` (every default, under the yaml's own",
           "headings), `recbole_paragon/schema.py` (what each setting allows: a wrong value fails when the",
           "configuration is built, naming the key, the value and this rule) and its table of renamed settings.",
           "Set any of them with `--key=value`, a yaml file (`--config_files`) or `config_dict`; RecBole's own",
           "settings work as in RecBole.", ""]
    covered = set()
    for section in parse_yaml_sections(os.path.join(properties_dir, "overall.yaml")):
        if section.title:
            out += [f"{'#' * section.level} {section.title[0].upper()}{section.title[1:]}", ""]
        out += [_text(" ".join(section.notes)), ""] if section.notes else []
        if section.settings:
            out += _table(section.settings, schema, shown_old) + [""]
        covered |= {s.key for s in section.settings}
    for folder, what in (("dataset", "dataset"), ("model", "model")):
        directory = os.path.join(properties_dir, folder)
        for name in sorted(os.listdir(directory)) if os.path.isdir(directory) else []:
            if not name.endswith(".yaml"):
                continue
            settings = [s for section in parse_yaml_sections(os.path.join(directory, name)) for s in section.settings]
            out += [f"## Defaults of the {what} `{name[:-5]}`", "",
                    f"`properties/{folder}/{name}` is read on top of `overall.yaml` when the {what} is "
                    f"`{name[:-5]}`.", ""] + _table(settings, schema, shown_old) + [""]
            covered |= {s.key for s in settings}
    rest = sorted(set(schema.SCHEMA) - covered)
    if rest:
        out += ["## Checked settings with RecBole's defaults", "",
                "No plugin yaml writes these; RecBole (or the model's own yaml) gives the default, the plugin checks "
                "the value.", "", "| setting | allowed |", "|---|---|"]
        out += [f"| <a id=\"{k}\"></a>`{k}` | {_cell(_text(schema.SCHEMA[k].describe()))} |" for k in rest] + [""]
    out += ["## Renamed settings", "",
            "The 0.1 spelling still works for one release, with a warning naming the new one.", "",
            "| 0.1 name | new name |", "|---|---|"]
    out += [f"| `{old}` | [`{new}`](#{new}) |" for old, new in sorted(schema.RENAMED.items())] + [""]
    out += ["## Renamed values", "", "| setting | 0.1 value | new value |", "|---|---|---|"]
    out += [f"| `{key}` | `{old}` | `{new}` |" for key, table in schema.RENAMED_VALUES.items()
            for old, new in table.items()] + [""]
    return "\n".join(out)


def main(argv: Optional[List[str]] = None) -> None:
    """``python docs/settings_reference.py [properties_dir]``: print the page (for a look without mkdocs)."""
    import sys

    from recbole_paragon import schema

    args = sys.argv[1:] if argv is None else argv
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    print(settings_page(args[0] if args else os.path.join(root, "properties"), schema))


if __name__ == "__main__":
    main()

"""Reading FHIR JSON elements: codings, codes, texts, dotted element paths, references.

Plain functions over parsed JSON (dicts and lists); nothing here knows the mapping table.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any, Iterable

from rdflib.namespace import PROV, RDFS

from ..vocab import NR

_SEGMENT = re.compile(r"^([A-Za-z0-9_*]+)(?:\[([^\]]+)\])?$")


# ---------------------------------------------------------------------------- JSON helpers


def codings(value: Any) -> list[dict]:
    """The codings of a CodeableConcept, a Coding, or a list of either."""
    if isinstance(value, list):
        return [c for v in value for c in codings(v)]
    if not isinstance(value, dict):
        return []
    if isinstance(value.get("coding"), list):
        return [c for c in value["coding"] if isinstance(c, dict)]
    if "code" in value and ("system" in value or not isinstance(value.get("code"), dict)):
        return [value]
    return []


def code_of(value: Any) -> list[str]:
    """Plain code strings of an element: a code, a CodeableConcept or a Coding."""
    if isinstance(value, str):
        return [value]
    return [str(c.get("code")) for c in codings(value) if c.get("code") is not None]


def text_of(value: Any) -> str | None:
    if isinstance(value, dict):
        if value.get("text"):
            return str(value["text"])
        for c in codings(value):
            if c.get("display"):
                return str(c["display"])
        for c in codings(value):
            if c.get("code"):
                return str(c["code"])
    return None


def select(node: Any, path: str, base: str) -> list[tuple[Any, str]]:
    """Values at a dotted element path, with their FHIR paths (lists are walked; a segment
    `name[code]` keeps the list items whose `code` has that code, e.g. component[zone])."""
    current = [(node, base)]
    if not path:
        return current
    for segment in path.split("."):
        m = _SEGMENT.match(segment)
        if not m:
            return []
        name, selector = m.group(1), m.group(2)
        nxt = []
        for value, where in current:
            if not isinstance(value, dict) or name not in value:
                continue
            child = value[name]
            if isinstance(child, list):
                for i, item in enumerate(child):
                    if selector is not None:
                        if not isinstance(item, dict) or selector not in code_of(item.get("code")):
                            continue
                    nxt.append((item, f"{where}.{name}[{i}]"))
            elif selector is None:
                nxt.append((child, f"{where}.{name}"))
        current = nxt
    return current


def iter_references(node: Any, where: str) -> Iterable[tuple[str, str]]:
    if isinstance(node, dict):
        ref = node.get("reference")
        if isinstance(ref, str):
            yield ref, where
        for key, value in node.items():
            if key == "contained":
                continue
            if isinstance(value, (dict, list)):
                yield from iter_references(value, f"{where}.{key}")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from iter_references(item, f"{where}[{i}]")



def describe(ctx: Any, resource: dict, element: str = "code") -> str:
    if element == "code" and "code" not in resource:
        element = next((k for k, v in resource.items() if k.lower().endswith("code")
                        and isinstance(v, dict)), element)
    parts = []
    for value, _ in select(resource, element, ""):
        for c in codings(value):
            text = f"{c.get('system', '?')}|{c.get('code', '?')}"
            if c.get("display"):
                text += f" ({c['display']})"
            parts.append(text)
        if isinstance(value, dict) and value.get("text") and not parts:
            parts.append(repr(value["text"]))
    return ", ".join(parts) or "no code"



def code_element(rules: list[dict]) -> str:
    for r in rules:
        if r.get("match", {}).get("element"):
            return r["match"]["element"]
    return "code"


def text_for(value: Any, rule: dict) -> str | None:
    primary = rule.get("primary", "code")
    for v, _ in select(value, primary, "") if isinstance(value, dict) else []:
        t = text_of(v)
        if t:
            return t
        if isinstance(v, dict) and "value" in v:
            return f"{v.get('value')} {v.get('unit') or v.get('code') or ''}".strip()
    if isinstance(value, dict):
        return text_of(value.get("code")) or text_of(value)
    return None


def person_name(resource: dict) -> str | None:
    for name in resource.get("name") or []:
        if isinstance(name, dict):
            if name.get("text"):
                return name["text"]
            parts = list(name.get("prefix") or []) + list(name.get("given") or [])
            if name.get("family"):
                parts.append(name["family"])
            if parts:
                return " ".join(parts)
    return None


def number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def expand(curie: str) -> str:
    prefix, _, local = curie.partition(":")
    spaces = {"nr": str(NR), "prov": str(PROV), "rdfs": str(RDFS)}
    return spaces[prefix] + local if prefix in spaces else curie


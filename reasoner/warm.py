"""The warmed state, part by part, as the disk cache stores it (reasoner/cache.py).

Two kinds of part, each one file of the cache:

* the **core**: the knowledge base (graphs, subclass closure, value sets, packs, prepared
  inference rules) and the case guard's derived terms; the same whatever the engine;
* one **section per engine and policy pack**: what deciding under that pack builds the first
  time: its compiled `Program` (reasoner/engines/compiled.py), and, when pySHACL decides under
  it, the parsed shapes graph, the prepared query of every SPARQL-based constraint and the
  prepared trace query of every criterion. A section is built and written when its pack is
  first used, so the first run under one pack costs about what an uncached run costs, not the
  warming of every pack.

A pack is warmed against empty tables, so that its section holds everything it needs even
when another pack shares a query; the section's objects refer to the core's objects (the
knowledge base, the pack, its graph) by name, not by copy (pickle's persistent ids).

"The tables" are the dictionaries in which the engines keep what they build lazily; each is
found by name and skipped if absent, so a change of engine costs only speed, never a result.
"""

from __future__ import annotations

import sys
import threading
from contextlib import contextmanager

#: one warming at a time in a process: the table of prepared queries is process-wide, and two
#: swaps interleaved would leave the wrong dictionary in place (costing speed, not results)
_WARMING = threading.Lock()
#: the shacl adapter module, whose process-wide table of prepared queries a section fills
_SHACL = "reasoner.engines.shacl"


def _table_slots(reasoner) -> dict[str, tuple[object, str]]:
    """name -> (owner, attribute) of each table deciding under a pack fills lazily."""
    determiner = reasoner.determiner
    slots = {"programs": (determiner, "programs"), "runners": (determiner, "_runners")}
    facts = getattr(determiner, "facts", None)
    if facts is not None:
        slots["trace"] = (facts, "_queries")
    shacl = sys.modules.get(_SHACL)
    if shacl is not None:
        slots["prepared"] = (shacl, "_PREPARED")
    return {name: (owner, attr) for name, (owner, attr) in slots.items()
            if isinstance(getattr(owner, attr, None), dict)}


def tables(reasoner) -> dict[str, dict]:
    return {name: getattr(owner, attr) for name, (owner, attr) in _table_slots(reasoner).items()}


@contextmanager
def _fresh_tables(reasoner):
    """Empty tables while a pack warms; yields them, then merges them into the real ones."""
    __import__(_SHACL)  # its table exists before the swap
    with _WARMING:
        yield from _swapped(reasoner)


def _swapped(reasoner):
    slots = _table_slots(reasoner)
    saved = {name: getattr(owner, attr) for name, (owner, attr) in slots.items()}
    fresh = {name: {} for name in slots}
    for name, (owner, attr) in slots.items():
        setattr(owner, attr, fresh[name])
    try:
        yield fresh
    finally:
        for name, (owner, attr) in slots.items():
            setattr(owner, attr, saved[name])
            for key, value in fresh[name].items():
                saved[name].setdefault(key, value)


#: what the core holds, by name (a file of another layout is not a core)
_CORE_FIELDS = ("kb", "guard")


def build_core(kb) -> dict:
    """The knowledge base with its derived tables computed now, and its case guard."""
    from .guard import guard_for

    kb.value_set_triples, kb.file_hashes  # noqa: B018 - cached properties, computed now
    for pack in kb.packs.values():
        pack.services, pack.illustrative_only, pack.condition_shapes  # noqa: B018
    return {"kb": kb, "guard": guard_for(kb)}


def is_core(state) -> bool:
    from .kb import KnowledgeBase

    return (isinstance(state, dict) and tuple(state) == _CORE_FIELDS
            and isinstance(state["kb"], KnowledgeBase))


def install_core(core: dict):
    """The core's knowledge base, its case guard registered (a process-wide table)."""
    from .guard import _GUARDS

    _GUARDS[core["kb"]] = core["guard"]
    return core["kb"]


def warm_pack(reasoner, pack) -> dict[str, dict] | None:
    """Build what deciding under `pack` needs with the reasoner's engine; returns the section
    (table -> entries), or None if warming failed (the pack then fails the same way when used,
    where it is reported as it always was)."""
    determiner = reasoner.determiner
    with _fresh_tables(reasoner) as fresh:
        try:
            program = getattr(determiner, "program", None)
            if program is not None:
                program(pack)
            engine_for = getattr(determiner, "engine_for", None)
            if engine_for is None or engine_for(pack) == "pyshacl":
                determiner.runner(pack).warm()
                _warm_trace_queries(reasoner, pack)
        except Exception:  # noqa: BLE001 - see the docstring
            return None
    return fresh


def apply_section(reasoner, section: dict[str, dict]) -> None:
    """Put a section's entries into the tables (an entry already built stays)."""
    if section.get("prepared"):
        __import__(_SHACL)
    current = tables(reasoner)
    for name, entries in section.items():
        table = current.get(name)
        if table is not None:
            for key, value in entries.items():
                table.setdefault(key, value)


def _warm_trace_queries(reasoner, pack) -> None:
    """Prepare every criterion's trace query (for pySHACL: the compiled engine's Program
    carries its own)."""
    from .vocab import NR

    facts = reasoner.determiner.facts
    for criterion in sorted({c for v in pack.versions for c in v.criteria}):
        text = pack.graph.value(criterion, NR.traceQuery)
        if text is not None:
            facts.query(pack, criterion, text)


def shared_objects(reasoner) -> dict[object, object]:
    """token -> object of the core that a section refers to instead of copying."""
    kb, determiner = reasoner.kb, reasoner.determiner
    out: dict[object, object] = {"kb": kb, "ontology": kb.ontology, "knowledge": kb.knowledge,
                                 "determiner": determiner}
    for name in ("facts", "citations"):
        if getattr(determiner, name, None) is not None:
            out[name] = getattr(determiner, name)
    for policy_id, pack in kb.packs.items():
        out[("pack", policy_id)] = pack
        out[("graph", policy_id)] = pack.graph
    return out

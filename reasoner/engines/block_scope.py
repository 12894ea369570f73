"""Set-at-a-time, part 1: which queries of a `Program` can run once over a block of cases, and
their block forms (reasoner/engines/block.py runs them; its docstring says why these rules).

`scoped` rewrites a SELECT (a SHACL-SPARQL constraint or a trace query) so that `$this` is bound
per case graph by a VALUES block; `scoped_rule` rewrites a CONSTRUCT rule into a SPARQL update
scoped by `GRAPH ?g`. Both return None for a query that must run per case.
"""

from __future__ import annotations

import re

_G = "nrBlockGraph"  # the variable naming a case's graph in a scoped query
_BODY_START = re.compile(r"(?is)\bSELECT\b[^{]*\{")
_SELECT_HEAD = re.compile(r"(?i)\bSELECT(\s+(?:DISTINCT|REDUCED))?\s")
_UNSAFE_WORDS = re.compile(r"(?i)\b(SELECT|GROUP\s+BY|HAVING|ORDER\s+BY|LIMIT|OFFSET|COUNT|SUM|"
                           r"MIN|MAX|AVG|SAMPLE|GROUP_CONCAT|SERVICE|GRAPH|MINUS)\b")
_TOKEN = re.compile(r'''"""(?:[^"\\]|\\.|"(?!""))*"""|'\'\'(?:[^'\\]|\\.|'(?!''))*\'\'\'|'''
                    r'''"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|<[^<>"{}|^`\\\s]*>|#[^\n]*|'''
                    r'''[?$][A-Za-z0-9_]+|[{}]|\bEXISTS\b|[^\s{}"'<#?$]+|\S''', re.I)


def scoped(text: str) -> str | None:
    """The query rewritten to run once over a block (`%VALUES%` marks where the VALUES rows
    go), or None when it cannot be scoped safely (module docstring)."""
    m = _BODY_START.search(text)
    if m is None or _G in text:
        return None
    head, body_start = text[:m.end()], m.end()
    # one entry per open nested group: [inside a top-level EXISTS, $this bound by a triple
    # pattern of this group so far, not an OPTIONAL whose left side leaves $this unbound]
    depth, groups, after_exists, close, paren = 0, [], False, None, 0
    after_optional = False
    for tok in _TOKEN.finditer(text, body_start):
        word = tok.group()
        if word.startswith(("#", '"', "'", "<")):
            continue
        if word == "{":
            depth += 1
            inside = (after_exists and depth == 1) or (bool(groups) and groups[-1][0])
            # an OPTIONAL's left side is its parent group: the join on $this is exact only
            # when the parent binds it (the top-level group does, by the VALUES)
            left_bound = not after_optional or depth == 1 or groups[-1][1] or groups[-1][0]
            groups.append([inside, False, left_bound])
            after_exists = after_optional = False
            continue
        if word == "}":
            if depth == 0:
                close = tok.start()
                break
            depth -= 1
            groups.pop()
            continue
        after_exists = word.upper().endswith("EXISTS")
        after_optional = word.upper() == "OPTIONAL"
        if word.lower() in ("?this", "$this") and depth > 0 and not groups[-1][0]:
            if not groups[-1][2]:
                return None  # an OPTIONAL using $this under a group that does not bind it
            if paren > 0 and not groups[-1][1]:
                return None  # used in an expression of a nested group before it is bound
            if paren == 0:
                groups[-1][1] = True  # a triple pattern binds it in this group
        paren += word.count("(") - word.count(")")
        if _UNSAFE_WORDS.search(word) or word.upper() in ("GROUP", "ORDER", "HAVING"):
            return None
    if close is None:
        return None
    tail = text[close + 1:]
    if _UNSAFE_WORDS.search(_strip_literals(tail)) or _UNSAFE_WORDS.search(
            _strip_literals(head[head.upper().find("SELECT") + 6:])):
        return None  # solution modifiers or aggregates outside the group
    hm = _SELECT_HEAD.search(head)
    if hm is None or re.search(r"(?i)\bSELECT\s+(DISTINCT\s+|REDUCED\s+)?\*", head):
        return None
    head = head[:hm.end()] + f"?{_G} " + head[hm.end():]
    return (f"{head} GRAPH ?{_G} {{ VALUES (?{_G} ?this) {{ %VALUES% }} "
            f"{text[body_start:close]} }} }}{tail}")


def _match_brace(text: str, start: int) -> int | None:
    """The index of the `}` closing the `{` at `start` (strings, IRIs, comments skipped)."""
    depth = 0
    for tok in _TOKEN.finditer(text, start):
        word = tok.group()
        if word == "{":
            depth += 1
        elif word == "}":
            depth -= 1
            if depth == 0:
                return tok.start()
    return None


def scoped_rule(text: str) -> str | None:
    """An inference rule (`CONSTRUCT { T } WHERE { P }`) as one SPARQL update over a block:
    `INSERT { GRAPH ?new { T } } WHERE { GRAPH ?g { P } BIND(<g>/new AS ?new) }`. `GRAPH ?g`
    evaluates P, subqueries and aggregates included, against each case's graph alone (SPARQL
    1.1 section 18.6, eval of Graph(var, P)), so the triples are exactly the rule's on each
    case; they go to a graph of their own, from which `_rule` takes the ones the case did not
    have. None (the rule runs per case) for a rule with solution modifiers after its pattern,
    with GRAPH, SERVICE or FROM of its own, or with a subquery: pyoxigraph 0.5 evaluates a
    subquery inside `GRAPH ?g` over every graph of the store, with ?g unbound (checked), so the
    six rules of knowledge/rules/ with subqueries run per case."""
    m = re.search(r"(?is)\bCONSTRUCT\s*\{", text)
    if m is None or _G in text:
        return None
    body = _strip_literals(text[m.start():])
    if re.search(r"(?i)\b(GRAPH|SERVICE|FROM|SELECT)\b", body):
        return None  # a subquery: oxigraph evaluates it over every graph, not the case's
    t_end = _match_brace(text, m.end() - 1)
    if t_end is None:
        return None
    w = re.match(r"(?is)\s*(WHERE\s*)?\{", text[t_end + 1:])
    if w is None:
        return None
    p_start = t_end + w.end()
    p_end = _match_brace(text, p_start)
    if p_end is None or text[p_end + 1:].strip():
        return None
    return (f"{text[:m.start()]}INSERT {{ GRAPH ?nrBlockNew {{ {text[m.end():t_end]} }} }} "
            f"WHERE {{ GRAPH ?{_G} {{ {text[p_start + 1:p_end]} }} "
            f"BIND(IRI(CONCAT(STR(?{_G}), \"/new\")) AS ?nrBlockNew) }}")


def _strip_literals(text: str) -> str:
    return re.sub(r'"[^"]*"|\'[^\']*\'|<[^>]*>|#[^\n]*', " ", text)

"""SPARQL results as a text table, CSV, or SPARQL 1.1 Query Results JSON."""

from __future__ import annotations

import csv
import io
import json


def render_results(result, fmt: str = "table") -> str:
    if result.type == "ASK":
        return ("true" if result.askAnswer else "false") + "\n"
    if result.type in ("CONSTRUCT", "DESCRIBE"):
        return result.graph.serialize(format="turtle")
    if fmt == "json":
        return result.serialize(format="json").decode("utf-8") + "\n"
    variables = [str(v) for v in result.vars]
    rows = [["" if row[v] is None else str(row[v]) for v in variables] for row in result]
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(variables)
        writer.writerows(rows)
        return buf.getvalue()
    widths = [max([len(v)] + [len(r[i]) for r in rows]) for i, v in enumerate(variables)]
    out = [" | ".join(v.ljust(w) for v, w in zip(variables, widths))]
    out.append("-+-".join("-" * w for w in widths))
    out.extend(" | ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows)
    out.append(f"({len(rows)} rows)")
    return "\n".join(out) + "\n"


def results_json(result) -> dict:
    return json.loads(result.serialize(format="json"))

"""Deciding a case under a policy pack, in the steps a reader follows top-down.

Verdict rule (docs/architecture.md, "Criteria and condition shapes"): a criterion is
not-applicable if a not-applicable condition holds, else unmet if an unmet condition holds,
else missing if a missing condition holds, else met. The outcome is denied if any criterion is
unmet, else pended if any is missing, else approved. A denial is only a recommendation:
`clinician_review_required` is set and the notice says so.

Start at `determiner.Determiner.determine`; each step is one module:

1. `case_graph`: the per-case graph (case triples, type closure, the knowledge about the
   concepts used, value sets, rule inferences kept apart), after `reasoner/guard` has checked
   that the case states case facts only, within the size limits, with plausible values;
2. the pack's shapes run over it: on the compiled engine (default) the rules, shapes and trace
   queries run in one pyoxigraph store (`reasoner/engines/compiled.py`, `compiled_run.py`);
   on pySHACL (`engine="pyshacl"`, or a pack using SHACL the compiled engine does not
   implement) the graph is built in rdflib and validated by `reasoner/engines/shacl.py`;
3. `verdicts`: SHACL results become condition hits of their criteria, the precedence above
   gives each criterion's verdict, the verdicts give the outcome and the information requests;
4. `facts`: each criterion's trace query names the case facts its verdict rests on, described
   with the document they came from;
5. `citations`: the bibliographic records and evidence statements behind each criterion;
6. `summary`: the request, patient, diagnoses and the items not recognised or not counted.
"""

from .case_graph import CaseGraph, build_case_graph
from .determiner import Determiner

__all__ = ["CaseGraph", "Determiner", "build_case_graph"]

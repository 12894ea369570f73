"""The compiled engine (reasoner/engines/compiled.py, compiled_run.py) against pySHACL, the oracle.

Every case input of the repository (each `case.ttl` and `bundle.json` under `cases/*/`, the files
of `cases/real-codes/`, the artefacts of `cases/realworld/` expected to decide, the two templates
of `docs/templates/`) is decided under every policy that covers it and every policy its
expectation names, by both engines: the JSON determinations and the letters must be
byte-identical, and a case one engine refuses the other refuses with the same message. Then the
SHACL-SPARQL semantics the compiled engine implements (pre-binding, messages, targets,
`?failure`, deactivation) are checked on small shapes against pySHACL, and a pack with a SHACL
Core constraint is shown to run on pySHACL and to be reported so by `reasoner check`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from rdflib import Graph

from reasoner.api import Reasoner
from reasoner.errors import ReasonerError
from reasoner.render.json import render_json

from .conftest import CASES, ROOT

REALWORLD = CASES / "realworld"
REAL_CODES = CASES / "real-codes"
#: update when case inputs are added or removed (the oracle must see every one of them)
EXPECTED_INPUTS = 138


def _expected_policies(path: Path) -> set[str]:
    """The policies a case's expectation names."""
    if path.parent.parent == REALWORLD:
        data = json.loads((path.parent / "expected.json").read_text(encoding="utf-8"))
        return {a["policy"] for a in data.get("one_of", [data]) if "policy" in a} or {"lcd-l39240"}
    if path.parent == REAL_CODES:
        expected = REAL_CODES / (path.name.rsplit(".", 1)[0] + ".expected.json")
    else:
        expected = path.parent / "expected.json"
    if not expected.exists():
        return set()
    return set(json.loads(expected.read_text(encoding="utf-8")).get("expected", {}))


def _decides(folder: Path) -> bool:
    data = json.loads((folder / "expected.json").read_text(encoding="utf-8"))
    return not any("refusal" in a for a in data.get("one_of", [data]))


def _inputs() -> list[Path]:
    out = sorted(p for name in ("case.ttl", "bundle.json") for p in CASES.glob(f"*/{name}"))
    out += sorted(p for p in REAL_CODES.iterdir() if not p.name.endswith(".expected.json"))
    for folder in sorted(p for p in REALWORLD.iterdir() if p.is_dir() and _decides(p)):
        out += [p for p in folder.iterdir() if p.name not in ("expected.json", "provenance.json")]
    out += [ROOT / "docs" / "templates" / "case.ttl", ROOT / "docs" / "templates" / "bundle.json"]
    return out


INPUTS = _inputs()


@pytest.fixture(scope="module")
def engines(reasoner):
    """The session's reasoner on each engine, sharing one knowledge base."""
    return Reasoner(reasoner.kb, engine="compiled"), Reasoner(reasoner.kb, engine="pyshacl")


def test_every_input_collected():
    assert len(INPUTS) == EXPECTED_INPUTS, [str(p.relative_to(ROOT)) for p in INPUTS]
    assert len({p.resolve() for p in INPUTS}) == len(INPUTS)


def test_every_pack_of_the_repo_runs_compiled(engines):
    compiled, _ = engines
    assert compiled.engines() == {pid: ("compiled", None) for pid in compiled.kb.packs}


def _outcome(r: Reasoner, case, policy: str) -> str:
    try:
        d = r.determine(case, policy)
    except ReasonerError as exc:
        return f"refused: {exc}"
    return render_json(d) + r.letter(d)


@pytest.mark.parametrize("path", INPUTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_compiled_equals_pyshacl(engines, path: Path):
    compiled, reference = engines
    try:
        case = compiled.load_case(path)
    except ReasonerError:
        pytest.fail(f"{path} does not load: the oracle must decide every input")
    try:
        policies = set(compiled.covering_policies(case))
    except ReasonerError:
        policies = set()
    policies |= _expected_policies(path)
    assert policies, f"no policy decides {path}"
    decided = 0
    for policy in sorted(policies):
        got, want = _outcome(compiled, case, policy), _outcome(reference, case, policy)
        assert got == want, f"{path} under {policy}: the engines differ"
        decided += not got.startswith("refused")
    assert decided, f"{path}: refused under every policy"


# ------------------------------------------------------------------ SHACL-SPARQL semantics

_SHAPES = """
@prefix sh: <http://www.w3.org/ns/shacl#> .
@prefix ex: <http://example.org/> .
@prefix owl: <http://www.w3.org/2002/07/owl#> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .

ex:prefixes a owl:Ontology ;
    sh:declare [ sh:prefix "ex" ; sh:namespace "http://example.org/"^^xsd:anyURI ] .

ex:S1 a sh:NodeShape ; sh:targetObjectsOf ex:request ; sh:severity sh:Warning ;
    sh:message "{$this} has {?value} ({?n})" ;
    sh:sparql [ sh:prefixes ex:prefixes ;
        sh:select "SELECT $this ?value ?n WHERE { $this ex:item ?value . ?value ex:n ?n }" ] .
ex:S2 a sh:NodeShape ; sh:targetNode ex:r1 ;
    sh:sparql [ sh:prefixes ex:prefixes ; sh:message "bound: {?fact}" ;
        sh:select "SELECT $this ?fact WHERE { BIND($this AS ?fact) }" ] .
ex:S3 a sh:NodeShape ; sh:targetSubjectsOf ex:item ;
    sh:message "failed" ;
    sh:sparql [ sh:prefixes ex:prefixes ;
        sh:select "SELECT $this ?failure WHERE { $this ex:item ?x . BIND(true AS ?failure) }" ] .
ex:S4 a sh:NodeShape ; sh:targetObjectsOf ex:request ; sh:message "off" ;
    sh:sparql [ sh:prefixes ex:prefixes ; sh:deactivated true ;
        sh:select "SELECT $this WHERE { }" ] .
ex:S5 a sh:NodeShape ; sh:targetObjectsOf ex:request ; sh:message "no value" ; sh:deactivated false ;
    sh:sparql [ sh:prefixes ex:prefixes ;
        sh:select "SELECT DISTINCT $this WHERE { $this ex:item ?x }" ] .
"""

_DATA = """
@prefix ex: <http://example.org/> .
@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .
ex:case ex:request ex:r1 , ex:r2 .
ex:r1 ex:item ex:a , ex:b .
ex:a ex:n "40.0"^^xsd:decimal .
ex:b ex:n "7" .
"""


class _Pack:
    def __init__(self, graph):
        self.policy_id, self.graph, self.sparql_prefixes = "test", graph, ""


def _compare(shapes: str, data: str):
    from reasoner.engines.compiled import compile_program
    from reasoner.engines.compiled_data import Terms
    from reasoner.engines.compiled_run import run_program
    from reasoner.engines.shacl import ShapesRunner

    sg, dg = Graph().parse(data=shapes, format="turtle"), Graph().parse(data=data, format="turtle")
    program = compile_program(_Pack(sg), ())
    assert program.fallback is None, program.fallback
    got = run_program(program, [(None, dg)], Terms(), None).report
    want = ShapesRunner(sg).validate(dg)

    def rows(report):
        return sorted((str(r.focus_node), str(r.source_shape), str(r.severity), str(r.value),
                       r.message, str(r.result_path)) for r in report.results)

    assert got.conforms == want.conforms
    assert rows(got) == rows(want)
    return rows(got)


def test_shacl_sparql_semantics_as_pyshacl():
    rows = _compare(_SHAPES, _DATA)
    messages = {r[4] for r in rows}
    # literals keep the data's own form (oxigraph would write 40), $this bound inside BIND
    assert "http://example.org/r1 has http://example.org/a (40.0)" in messages
    assert "bound: http://example.org/r1" in messages
    assert "failed" in messages and "off" not in messages
    assert len([r for r in rows if r[1].endswith("S5")]) == 1


_CORE = """
@prefix sh: <http://www.w3.org/ns/shacl#> .
@prefix nr: <https://w3id.org/necessity/ontology#> .
@prefix lcd: <https://w3id.org/necessity/policy/lcd-l39240/> .
lcd:extra-requested-date a sh:NodeShape ;
    sh:targetObjectsOf nr:indexRequest ;
    sh:property [ sh:path nr:requestedDate ; sh:minCount 1 ] .
"""


def test_core_constraint_falls_back_to_pyshacl(reasoner, tmp_path):
    """A pack with a SHACL Core property shape runs on pySHACL, decides as before, and
    `reasoner check` says so."""
    from reasoner.authoring import run_check

    for area in ("ontology", "knowledge"):
        shutil.copytree(ROOT / area, tmp_path / area)
    shutil.copytree(ROOT / "shapes" / "lcd-l39240", tmp_path / "shapes" / "lcd-l39240")
    (tmp_path / "shapes" / "lcd-l39240" / "zz-core.ttl").write_text(_CORE, encoding="utf-8")
    r = Reasoner.load(tmp_path)
    pack = r.kb.pack("lcd-l39240")
    program = r.determiner.program(pack)
    assert program.fallback and "sh:path" in program.fallback
    assert r.engines() == {"lcd-l39240": ("pyshacl", program.fallback)}
    case = r.load_case(CASES / "seed-l5-snrb" / "case.ttl")
    assert render_json(r.determine(case, "lcd-l39240")) == render_json(
        reasoner.determine(reasoner.load_case(CASES / "seed-l5-snrb" / "case.ttl"), "lcd-l39240"))

    report = run_check(tmp_path, hermit=False)
    notes = [p for p in report.problems if p.kind == "engine"]
    assert len(notes) == 1 and notes[0].file == "shapes/lcd-l39240"
    assert "runs on pySHACL" in notes[0].message and "sh:path" in notes[0].message


def test_core_constraint_on_a_node_shape_is_named():
    from reasoner.engines.compiled import compile_program

    g = Graph().parse(data="""
        @prefix sh: <http://www.w3.org/ns/shacl#> . @prefix ex: <http://example.org/> .
        ex:S a sh:NodeShape ; sh:targetNode ex:a ; sh:class ex:C .""", format="turtle")
    program = compile_program(_Pack(g), ())
    assert program.engine == "pyshacl" and "sh:class" in program.fallback


def test_program_is_plain_data(reasoner):
    import pickle

    reasoner.determiner.warm()
    programs = reasoner.determiner.programs
    assert set(programs) == set(reasoner.kb.packs)
    assert pickle.loads(pickle.dumps(programs)) == programs


def test_cli_engine_option(tmp_path):
    """`--engine pyshacl` and the default print the same determination and report."""
    from click.testing import CliRunner

    from reasoner.cli import main

    seed = str(CASES / "seed-l5-snrb")
    runner = CliRunner()
    outs = {}
    for engine in ("compiled", "pyshacl"):
        det = runner.invoke(main, ["determine", seed, "--format", "json", "--engine", engine])
        val = runner.invoke(main, ["validate", seed, "--engine", engine])
        assert det.exit_code == 0, det.output
        assert val.exit_code in (0, 1), val.output
        outs[engine] = (det.output, val.output, val.exit_code)
    assert outs["compiled"] == outs["pyshacl"]
    assert runner.invoke(main, ["determine", seed, "--engine", "fast"]).exit_code == 2


# ------------------------------------------------------------------ the report graph

#: a Turtle and a FHIR case of each outcome
REPORT_CASES = ["seed-l5-snrb", "approvable-left-l5", "denied-three-levels",
                "fhir-denied-imaging-wrong-side", "fhir-pended-no-reason-condition"]


@pytest.mark.parametrize("name", REPORT_CASES)
def test_report_graph_is_pyshacls(engines, name):
    """The compiled engine's SHACL validation report (`reasoner validate --format turtle`) is
    the graph pySHACL writes, blank nodes aside: each result with its focus node, value,
    path, message, severity, source shape, sh:SPARQLConstraintComponent and the
    sh:sourceConstraint node copied from the shapes graph."""
    from rdflib.compare import graph_diff, isomorphic, to_isomorphic
    from rdflib.namespace import SH

    compiled, reference = engines
    case = compiled.load_case(CASES / name)
    results = 0
    for policy in sorted(compiled.kb.packs):
        got = compiled.validate(case, policy).graph
        want = reference.validate(case, policy).graph
        if not isomorphic(got, want):
            _, only_got, only_want = graph_diff(to_isomorphic(got), to_isomorphic(want))
            pytest.fail(f"{name} under {policy}: compiled only {sorted(only_got)[:4]}, "
                        f"pySHACL only {sorted(only_want)[:4]}")
        results += len(list(got.subject_objects(SH.sourceConstraint)))
    assert results, f"{name}: no result with its sh:sourceConstraint under any pack"


def test_cli_turtle_report_is_the_same_graph_on_both_engines():
    from click.testing import CliRunner
    from rdflib.compare import isomorphic

    from reasoner.cli import main

    seed = str(CASES / "seed-l5-snrb")
    graphs = []
    for engine in ("compiled", "pyshacl"):
        out = CliRunner().invoke(main, ["validate", seed, "--policy", "lcd-l39240", "--format",
                                        "turtle", "--engine", engine])
        assert out.exit_code == 1, out.output  # the seed does not conform to the LCD pack
        graphs.append(Graph().parse(data=out.output, format="turtle"))
    assert len(graphs[0]) > 50 and isomorphic(*graphs)

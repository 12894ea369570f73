"""The generator of the FHIR cases `cases/fhir-*/`: run `python -m tests.fhir_cases.build`.

common.py (code systems, the base request, the case registry), fhir.py (FHIR R4 emitter and
the CDS Hooks / PAS wrappers), ttl.py (Turtle emitter), scenarios_*.py (the case specs by
theme), build.py (writes the case folders)."""

"""Intake: turning what callers send (FHIR R4 requests) into case graphs of the case model."""

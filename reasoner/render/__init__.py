"""Renderers: a Determination to JSON, to RDF (PROV-O) and to a letter. They format; they never decide."""

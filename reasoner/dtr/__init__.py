"""Documentation questionnaires for pended determinations (Da Vinci DTR; docs/dtr.md).

`questionnaire.build_questionnaire` turns a pended determination into a FHIR R4 Questionnaire,
one item per missing fact (`questions`: the facts, as data of the knowledge graph);
`answers.redecide` merges a QuestionnaireResponse into the case as facts with their provenance
and decides again, the new determination pointing to the one it revises.
"""

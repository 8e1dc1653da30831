"""Spider's official evaluation code (taoyds/spider, Apache-2.0), vendored from the dbgpt_hub 0.3.1 wheel.

Two modules, kept as close to the original text as possible so they stay diffable against it (each lists its
changes at the top): `process_sql` parses a SQL string into Spider's nested structure over a schema, and
`evaluation` scores two parsed queries component by component (exact set match) and grades a query's hardness.
engine/text2sql/evaluation.py is the only caller; learners never import this package directly.
"""

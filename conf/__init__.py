"""The configs that ship with orchestrator, installed as the package data `orchestrator.conf`.

Groups job/, sweep/, cluster/ and tracking/ for `orchestrator run` (whose primary config is the schema in
orchestrator/schema.py), and the cost models in cost/. A project's own ./conf (or --config-dir) is searched first,
so its configs add to these and replace same-named ones.
"""

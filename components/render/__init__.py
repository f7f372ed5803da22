"""Offline tooling: `python -m components.render`, the mock runtime, stack files, manifests, the JSON Schema.

No product module imports it."""

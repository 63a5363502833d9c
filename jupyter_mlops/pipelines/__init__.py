"""Notebook templates as pipeline steps: papermill DAGs with caching, lineage and sweeps."""

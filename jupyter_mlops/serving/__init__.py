"""Serving registered models: a model server process, deployments, traffic and capture."""

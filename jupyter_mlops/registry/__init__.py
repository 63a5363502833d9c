"""The MLflow model registry with promotion gates, an alias history and rollback."""

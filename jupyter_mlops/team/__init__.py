"""Team mode: a shared MLflow tracking server, and manifests for serving platforms."""

"""Cell tracking: IPython hooks -> write-ahead journal -> drainer process -> MLflow."""

"""torch (or scikit-learn) -> ONNX, checked for parity, logged as an MLflow model with a card."""

"""Analysis of a model on labelled data: metrics and curves, slices and fairness, feature
attributions (``evaluate()``), and the evidence promotion gates read from it."""

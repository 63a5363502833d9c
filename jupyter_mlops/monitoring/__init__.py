"""Drift inspection with Evidently's statistics, plotly figures, alerts and actions."""

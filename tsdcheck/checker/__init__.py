"""Generating traces, judging them with the model, proving properties, reporting."""

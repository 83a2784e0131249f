"""Signals from the model feedback source."""

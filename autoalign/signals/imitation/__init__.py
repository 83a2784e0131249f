"""Signals from the imitation source."""

"""Signals from the environment source."""

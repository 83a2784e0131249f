"""Signals from the inductive source."""

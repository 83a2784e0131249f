"""autoalign: align language models to the 3H standard with signals no person labels."""

__version__ = "0.1.0"

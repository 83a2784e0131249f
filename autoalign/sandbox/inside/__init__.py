"""Programs that run inside the sandbox. They are sent as source text (``python -I -S -c``), never imported there,
so they use the standard library only and run nothing at import; the host imports ``wire`` only to test it."""

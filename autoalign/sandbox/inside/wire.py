"""Plain values across the sandbox's pipes, one JSON object per line.

The test harness and the solution live in different processes, and only *data* crosses between them: None, bool,
int, float, complex, str, bytes, bytearray and lists, tuples, dicts, sets and frozensets of them. The harness
decodes what the solution sends with ``decode``, which builds exact built-in types only, so a returned object can
never bring its own ``__eq__`` (or any other code) into the process that compares it with the expected value.
Containers are tagged JSON objects (``{"l": [...]}`` a list, ``{"t": ...}`` a tuple, ``{"d": [[k, v], ...]}`` a
dict, ...); large ints travel in hex, which has no digit limit.

Runs inside the sandbox (stdlib only; importing it only binds names).
"""

import json
import os

# Bound once, when the channel is set up: a solution that later patches ``os.write`` or ``json.dumps`` in its own
# process breaks nothing but its own answers.
_write, _read, _dumps, _loads = os.write, os.read, json.dumps, json.loads
MAX_DEPTH = 100
_SMALL = 1 << 62
_SEQ = {"l": list, "t": tuple, "s": set, "f": frozenset}


class WireError(TypeError):
    """A value that is not plain data, or a message that is not one of ours."""


def encode(value, depth=0):
    """A JSON-able tree for a plain value (subclasses of the built-in types travel as their base type)."""
    if depth > MAX_DEPTH:
        raise WireError("nested too deeply")
    if value is None or isinstance(value, (bool, str)):
        return str.__str__(value) if isinstance(value, str) else value
    if isinstance(value, int):
        n = int(value)
        return n if -_SMALL < n < _SMALL else {"i": format(n, "x")}
    if isinstance(value, float):
        return float(value)
    if isinstance(value, complex):
        return {"c": [value.real, value.imag]}
    if isinstance(value, bytes):
        return {"b": bytes(value).hex()}
    if isinstance(value, bytearray):
        return {"y": bytes(value).hex()}
    if isinstance(value, dict):
        return {"d": [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in dict.items(value)]}
    for tag, kind in (("t", tuple), ("l", list), ("f", frozenset), ("s", set)):
        if isinstance(value, kind):
            return {tag: [encode(v, depth + 1) for v in kind.__iter__(value)]}
    raise WireError("not plain data")


def decode(tree, depth=0):
    """The value a tree stands for, built from exact built-in types only (raises ``WireError`` otherwise)."""
    if depth > MAX_DEPTH:
        raise WireError("nested too deeply")
    kind = type(tree)
    if tree is None or kind in (bool, int, float, str):
        return tree
    if kind is not dict or len(tree) != 1:
        raise WireError("not a plain value")
    (tag, body), = tree.items()
    try:
        if tag in _SEQ and type(body) is list:
            return _SEQ[tag](decode(v, depth + 1) for v in body)
        if tag == "d" and type(body) is list:
            out = {}
            for pair in body:
                if type(pair) is not list or len(pair) != 2:
                    raise WireError("not a dict item")
                out[decode(pair[0], depth + 1)] = decode(pair[1], depth + 1)
            return out
        if tag == "i" and type(body) is str:
            return int(body, 16)
        if tag in ("b", "y") and type(body) is str:
            return (bytes if tag == "b" else bytearray).fromhex(body)
        if tag == "c" and type(body) is list and len(body) == 2 and all(type(x) in (int, float) for x in body):
            return complex(body[0], body[1])
    except (TypeError, ValueError) as exc:  # an unhashable key or set item, bad hex
        raise WireError("not a plain value") from exc
    raise WireError("not a plain value")


def dumps(message):
    """One message as one line of bytes (JSON never contains a raw newline)."""
    return (_dumps(message, separators=(",", ":")) + "\n").encode("utf-8")


def loads(line):
    """One message from a line (raises ``WireError`` for anything that is not a JSON object)."""
    try:
        message = _loads(line.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise WireError("unreadable message") from exc
    if type(message) is not dict:
        raise WireError("not a message")
    return message


def send(fd, message):
    """Write one message to a pipe, all of it."""
    view = memoryview(dumps(message))
    while view:
        view = view[_write(fd, view):]


class Lines:
    """Bounded line reader on a raw pipe: ``next()`` is the next line, or None at end of file or when a line
    exceeds ``limit`` bytes (a peer that floods is treated as one that is gone)."""

    def __init__(self, fd, limit):
        self.fd, self.limit, self.buf = fd, limit, bytearray()

    def next(self):
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line = bytes(self.buf[:i + 1])
                del self.buf[:i + 1]
                return line
            if len(self.buf) > self.limit:
                return None
            chunk = _read(self.fd, 1 << 16)
            if not chunk:
                return None
            self.buf += chunk

"""The test harness of a graded run: it runs each test statement in its own process, where the solution's
functions are stand-ins that forward the call (plain arguments) to the solution's process and return the plain
value it sends back. The solution's code never runs here, so nothing it does (an early exit, a swallowed
exception, a printed marker, a patched ``assert`` or builtin, a trace function, an object whose ``__eq__`` always
says yes, digging through frames) reaches the comparisons or the verdict. Only after the last test does the
harness write its verdict, prefixed by the run's nonce, to a pipe only it holds.

A verdict's reason is written here from fixed words and the names of built-in exceptions, never from a message
or a value the solution chose, so it cannot carry the content of a file the solution read.

Runs inside the sandbox (stdlib only, nothing at import time).
"""

_NOT_IMPORTED = {"antigravity", "this", "turtle", "turtledemo", "idlelib", "tkinter", "webbrowser"}


class SolutionError(Exception):
    """The solution raised an exception that is not a built-in one (or could not be rebuilt here)."""


def _builtin_name(name):
    """``name`` when it names a built-in exception class, else None (a name the solution chose says nothing)."""
    import builtins

    if type(name) is not str or not name.isidentifier():
        return None
    cls = getattr(builtins, name, None)
    return name if isinstance(cls, type) and issubclass(cls, BaseException) else None


def remote_exception(name):
    """The exception a call raises when the solution raised ``name``: the built-in class itself when it is an
    ``Exception`` (so a test's ``except ValueError`` works), else ``SolutionError``."""
    import builtins

    known = _builtin_name(name)
    exc = None
    if known and issubclass(getattr(builtins, known), Exception):
        try:
            exc = getattr(builtins, known)("raised by the solution")
        except BaseException:
            exc = None
    exc = exc if exc is not None else SolutionError("raised by the solution")
    exc._autoalign_reason = "the solution raised " + (known or "an exception")
    return exc


def _gone():
    exc = SolutionError("the solution process ended")
    exc._autoalign_reason = "the solution process ended"
    return exc


class Channel:
    """The pipes to the solution's process; once it is gone, every call fails at once."""

    def __init__(self, req_fd, rep_fd, limit):
        self.req_fd, self.replies, self.gone = req_fd, Lines(rep_fd, limit), False  # noqa: F821

    def receive(self):
        line = None if self.gone else self.replies.next()
        if line is None:
            self.gone = True
            return None
        try:
            return loads(line)  # noqa: F821
        except WireError:  # noqa: F821
            self.gone = True  # out of step: nothing it sends later can be matched to a call
            return None

    def call(self, name, args, kwargs):
        if self.gone:
            raise _gone()
        try:
            message = {"call": name, "args": [encode(a) for a in args],  # noqa: F821
                       "kwargs": {str(k): encode(v) for k, v in kwargs.items()}}  # noqa: F821
        except WireError:  # noqa: F821
            raise TypeError("the sandbox passes only plain values to the solution") from None
        try:
            send(self.req_fd, message)  # noqa: F821
        except OSError:
            self.gone = True
            raise _gone() from None
        reply = self.receive()
        if reply is None:
            raise _gone()
        if "raised" in reply:
            raise remote_exception(reply["raised"])
        try:
            value = decode(reply["ok"])  # noqa: F821
        except (KeyError, WireError):  # noqa: F821
            exc = TypeError("the solution returned a value that is not plain data")
            exc._autoalign_reason = "the solution returned a value that is not plain data"
            raise exc from None
        _write_back(args, reply.get("args"))
        return value


def _write_back(args, back):
    """Apply the solution's in-place changes to the tests' mutable arguments (lists, dicts, sets, bytearrays)."""
    if type(back) is not list:
        return
    for arg, tree in zip(args, back):
        if tree is None or type(arg) not in (list, dict, set, bytearray):
            continue
        try:
            new = decode(tree)  # noqa: F821
        except WireError:  # noqa: F821
            continue
        if type(new) is not type(arg):
            continue
        if type(arg) in (list, bytearray):
            arg[:] = new
        else:
            arg.clear()
            arg.update(new)


class Remote:
    """A solution function as the tests see it: calling it asks the solution's process."""

    def __init__(self, channel, name):
        self._channel, self.__name__, self.__qualname__ = channel, name, name

    def __call__(self, *args, **kwargs):
        return self._channel.call(self.__name__, args, kwargs)

    def __repr__(self):
        return "<solution function %s>" % self.__name__


def names_used(code):
    """Every global or attribute name a compiled test (and the functions inside it) mentions."""
    import types

    out = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            out |= names_used(const)
    return out


def _stdlib(module):
    import sys

    if type(module) is not str or not all(part.isidentifier() for part in module.split(".")):
        return False
    top = module.split(".")[0]
    return top in sys.stdlib_module_names and top not in _NOT_IMPORTED


def bind(ns, described, used, channel):
    """Put the solution's names that the tests use into the tests' namespace: a function (any callable) is a
    stand-in that asks the solution, so every value a test compares came from the solution's process; a plain
    value is decoded; a stdlib module is the harness's own import, bound only under its own name (a test may lean
    on the prompt's ``import math``). A name that shadows a builtin is left out (the tests see the real ``abs``,
    ``len``, ``AssertionError``)."""
    import builtins
    import importlib

    if type(described) is not dict:
        return
    for name, entry in described.items():
        if type(name) is not str or name not in used or hasattr(builtins, name) or type(entry) is not dict:
            continue
        try:
            if "call" in entry:
                ns[name] = Remote(channel, name)
            elif "value" in entry:
                ns[name] = decode(entry["value"])  # noqa: F821
            elif "module" in entry and _stdlib(entry["module"]) and entry["module"].split(".")[0] == name:
                ns[name] = importlib.import_module(entry["module"].split(".")[0])
        except Exception:
            continue


def _undumpable():
    """Without a PID namespace the harness shares a PID space with the solution: make it undumpable, so a process
    of the same uid can neither ptrace it nor open its ``/proc/<pid>/mem`` or ``fd``."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 4
    except BaseException:
        pass


def _why(exc):
    reason = getattr(exc, "_autoalign_reason", None)
    if type(reason) is str:
        return reason
    return type(exc).__name__  # a class of the harness or of the tests: never the message


def judge(job_fd, req_fd, rep_fd, verdict_fd, limit, reason_chars):
    import builtins
    import json
    import os
    import sys

    job = read_job(job_fd)  # noqa: F821 - guard.py is sent first
    no_network()  # noqa: F821
    nonce, tests = job["nonce"], job["tests"]
    if job.get("undumpable"):
        _undumpable()

    def report(ran, failed, reason):
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BaseException:
                pass
        verdict = {"total": len(tests), "ran": ran, "failed": failed, "reason": reason[:reason_chars]}
        os.write(verdict_fd, (nonce + " " + json.dumps(verdict) + "\n").encode())
        os._exit(0)

    compiled = []
    for i, test in enumerate(tests):
        try:
            compiled.append(compile(test, "<test %d>" % (i + 1), "exec"))
        except BaseException as exc:
            report(0, 0, "invalid test %d: %s" % (i + 1, type(exc).__name__))
    channel = Channel(req_fd, rep_fd, limit)
    first = channel.receive()
    if first is None:
        report(0, 0, "the solution ended before the tests ran")
    if "import_error" in first:
        name = _builtin_name(first["import_error"])
        report(0, 0, "the solution raised %s before the tests ran" % (name or "an exception"))
    if type(first.get("ready")) is not dict:
        report(0, 0, "the solution sent no description of its names")
    ns = {"__name__": "__main__", "__builtins__": builtins}
    used = set()
    for code in compiled:
        used |= names_used(code)
    bind(ns, first["ready"], used, channel)
    ran = failed = 0
    reason = ""
    for i, code in enumerate(compiled):
        try:
            exec(code, ns)
        except BaseException as exc:
            failed += 1
            reason = reason or "test %d failed: %s" % (i + 1, _why(exc))
        ran += 1
    report(ran, failed, reason)

"""The solution's side of a graded run: run the model's code in a module of its own, then answer the harness's
calls (name + plain arguments) with plain results. Everything here is as untrusted as the code it runs: it holds
no secret and decides nothing. Whatever it sends, the harness only ever sees plain values (``wire.decode``), so
the most a program can do is return right values, or fail.

Runs inside the sandbox (stdlib only, nothing at import time).
"""

VALUE_BYTES = 64 * 1024  # a top-level data value larger than this is not offered to the tests


def _flush():
    import sys

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass


def _name_of(exc):
    try:
        return str(type(exc).__name__)[:80]
    except BaseException:
        return "Exception"


def describe(ns):
    """What the tests may see of the solution's top-level names: something to call, a module (the harness
    imports its own copy when it is a stdlib module), or a plain value."""
    import types

    out = {}
    for name, value in list(ns.items()):
        if type(name) is not str or name.startswith("__"):
            continue
        try:
            if isinstance(value, types.ModuleType):
                out[name] = {"module": str(value.__name__)}
            elif callable(value):
                out[name] = {"call": 1}
            else:
                tree = encode(value)  # noqa: F821 - wire.py is sent first
                if len(dumps(tree)) <= VALUE_BYTES:  # noqa: F821
                    out[name] = {"value": tree}
        except BaseException:
            continue
    return out


def answer(ns, message):
    """The reply to one call: ``ok`` (the result, and the arguments after the call when they are mutable, so an
    in-place change is seen by the tests), ``raised`` (the exception's type name) or ``unplain``."""
    name = message.get("call")
    fn = ns.get(name) if type(name) is str else None
    if fn is None:
        return {"raised": "NameError"}
    try:
        args = [decode(a) for a in message.get("args", [])]  # noqa: F821
        kwargs = {str(k): decode(v) for k, v in dict(message.get("kwargs", {})).items()}  # noqa: F821
    except BaseException:
        return {"raised": "TypeError"}
    try:
        result = fn(*args, **kwargs)
    except BaseException as exc:  # SystemExit from inside the function is a failure of that call, like any other
        return {"raised": _name_of(exc)}
    try:
        back = [encode(a) if type(a) in (list, dict, set, bytearray) else None for a in args]  # noqa: F821
        return {"ok": encode(result), "args": back}  # noqa: F821
    except BaseException:
        return {"unplain": 1}


def serve(job_fd, req_fd, rep_fd, limit):
    import os
    import sys

    job = read_job(job_fd)  # noqa: F821 - guard.py is sent first
    no_network()  # noqa: F821
    solution = type(sys)("solution")  # not ``__main__``: an ``if __name__ == "__main__":`` block does not run
    solution.__file__ = "solution.py"
    solution.__builtins__ = __builtins__
    sys.modules["solution"] = sys.modules["__main__"] = solution
    sys.argv = ["solution.py"]
    ns = solution.__dict__
    try:
        exec(compile(job.pop("code"), "solution.py", "exec"), ns)
    except BaseException as exc:
        _flush()
        send(rep_fd, {"import_error": _name_of(exc)})  # noqa: F821
        os._exit(1)
    _flush()
    send(rep_fd, {"ready": describe(ns)})  # noqa: F821
    requests = Lines(req_fd, limit)  # noqa: F821
    while True:
        line = requests.next()
        if line is None:
            break
        try:
            reply = answer(ns, loads(line))  # noqa: F821
        except BaseException:
            reply = {"unplain": 1}
        _flush()
        try:
            send(rep_fd, reply)  # noqa: F821
        except BaseException:
            break
    _flush()
    os._exit(0)

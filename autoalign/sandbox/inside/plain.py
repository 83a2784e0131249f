"""Plain mode: run one program as ``__main__`` and let it exit as it likes (``run_python``). Its exit status is
all the host learns: this mode runs trusted programs (an environment's expression) and is never a test verdict.

Runs inside the sandbox (stdlib only, nothing at import time).
"""


def run_plain(job_fd):
    import sys

    job = read_job(job_fd)  # noqa: F821 - guard.py is sent first
    no_network()  # noqa: F821
    source = job["code"]
    main = type(sys)("__main__")
    main.__file__ = "main.py"
    main.__builtins__ = __builtins__
    sys.modules["__main__"] = main
    sys.argv = ["main.py"]
    try:
        exec(compile(source, "main.py", "exec"), main.__dict__)
    except SystemExit:
        raise
    except BaseException as exc:
        import linecache
        import traceback

        linecache.cache["main.py"] = (len(source), None, source.splitlines(True), "main.py")
        tb = None if isinstance(exc, SyntaxError) else exc.__traceback__.tb_next  # hide our frame
        traceback.print_exception(type(exc), exc, tb)
        sys.stderr.flush()
        sys.exit(1)

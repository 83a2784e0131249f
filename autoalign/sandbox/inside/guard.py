"""First thing every sandboxed process runs: read its job from the input pipe (then closed, so nothing is left to
read later), and turn the network off at the socket constructors, so code that merely tries the network fails fast
even where there is no network namespace.

Runs inside the sandbox (stdlib only, nothing at import time).
"""


def read_job(fd):
    """The job the host wrote on ``fd`` (a JSON object), read to the end; ``fd`` is closed."""
    import json
    import os

    chunks = []
    while True:
        b = os.read(fd, 1 << 16)
        if not b:
            break
        chunks.append(b)
    os.close(fd)
    return json.loads(b"".join(chunks).decode("utf-8"))


def no_network():
    """Replace the socket constructors and resolvers with ones that raise ``PermissionError``."""
    import _socket
    import socket

    def _denied(*args, **kwargs):
        raise PermissionError("network access is disabled in the autoalign sandbox")

    class _NoSocket(socket.socket):
        def __init__(self, *args, **kwargs):
            _denied()

    class _NoRawSocket(_socket.socket):
        def __init__(self, *args, **kwargs):
            _denied()

    for mod, cls in ((socket, _NoSocket), (_socket, _NoRawSocket)):
        mod.socket = mod.SocketType = cls
        for name in ("socketpair", "fromfd", "create_connection", "create_server", "getaddrinfo",
                     "gethostbyname", "gethostbyname_ex", "gethostbyaddr", "getnameinfo"):
            if hasattr(mod, name):
                setattr(mod, name, _denied)

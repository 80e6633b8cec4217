"""How a client's traceback travels to the server through Ray's and Flower's error wrapping.

Flower turns a client exception into an error reply whose reason is Ray's nested repr. The
client (:mod:`simfl.engine.client_app`) puts its own traceback between markers; the server
(:mod:`simfl.engine.server_app`) recovers it with :func:`client_traceback`. Both import this
module, so neither imports the other.
"""

from __future__ import annotations

TRACEBACK_BEGIN, TRACEBACK_END = "<<simfl-client-traceback>>", "<<end-simfl-client-traceback>>"


class ClientTaskError(RuntimeError):
    """A client failure whose message holds the client's traceback between the markers."""


def wrap_traceback(client: object, formatted: str) -> str:
    """The message of a :class:`ClientTaskError` for ``client``'s ``traceback.format_exc()``."""
    return f"client {client}:\n{TRACEBACK_BEGIN}\n{formatted}{TRACEBACK_END}"


def client_traceback(reason: str) -> str:
    """The client's traceback inside an error reply's reason (the reason itself if absent)."""
    begin = reason.rfind(TRACEBACK_BEGIN)  # the last copy is the plain format_exc() text
    end = reason.find(TRACEBACK_END, begin)
    if begin < 0 or end < 0:
        return reason
    lines = reason[begin + len(TRACEBACK_BEGIN) : end].strip("\n").splitlines()
    if lines and "ray::" in lines[0]:  # Ray swaps the traceback header for its actor's name
        lines[0] = "Traceback (most recent call last):"
    return "\n".join(lines)

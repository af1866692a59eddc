"""Socket system calls given hostile arguments: every call answers an errno or a result, never a traceback.

Hypothesis throws random arguments (fds of real non-blocking sockets and of non-sockets, pointers into
and out of guest memory, lengths and flags at the edges, guest memory filled with random bytes, so
random ``msghdr``/``sockaddr``/``cmsg`` contents) at every socket call through the dispatcher, under a
root. The answer must be a result or ``-errno`` with errno in Linux's range.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

CALLS = [
    "bind", "connect", "listen", "accept4", "accept", "getsockname", "getpeername", "shutdown",
    "setsockopt", "getsockopt", "sendto", "recvfrom", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg",
]  # fmt: skip
EDGES = [0, 1, 2, 16, 28, 56, 110, 128, 4096, 2**31 - 1, 2**31, 2**32 - 1, 2**63, 2**64 - 1]


def _socket_fds(harness: object) -> list[int]:
    """Guest fds of non-blocking sockets: a stream pair, a datagram pair, a listener, an inet datagram socket."""
    fds = []
    for family, kind in ((socket.AF_UNIX, socket.SOCK_STREAM), (socket.AF_UNIX, socket.SOCK_DGRAM)):
        for sock in socket.socketpair(family, kind | socket.SOCK_NONBLOCK):
            fds.append(harness.state.fds.install(sock.detach()))  # type: ignore[attr-defined]
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
    listener.bind("")  # autobind: listen needs a name
    listener.listen(1)
    fds.append(harness.state.fds.install(listener.detach()))  # type: ignore[attr-defined]
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM | socket.SOCK_NONBLOCK)
    fds.append(harness.state.fds.install(udp.detach()))  # type: ignore[attr-defined]
    return fds


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_hostile_arguments_get_an_errno(
    data: st.DataObject, make_harness: Callable[..., object], tmp_path_factory: object
) -> None:
    root = Path(tmp_path_factory.mktemp("root"))  # type: ignore[attr-defined]
    harness = make_harness(root=str(root))
    fds = _socket_fds(harness)
    base = harness.SCRATCH  # type: ignore[attr-defined]
    harness.mem.write(base, data.draw(st.binary(max_size=512)))  # type: ignore[attr-defined]
    pointers = st.one_of(
        st.integers(base, base + 600), st.sampled_from([0, 1, base - 8, base + 0x10000 - 4, 2**64 - 1])
    )
    argument = st.one_of(
        st.sampled_from([*fds, -1, 0, 1, 999]), pointers, st.sampled_from(EDGES), st.integers()
    )
    name = data.draw(st.sampled_from(CALLS))
    first = data.draw(st.sampled_from([*fds, -1, 0, 999]))  # mostly real sockets, so the calls go deep
    args = [first, *data.draw(st.lists(argument, min_size=5, max_size=5))]
    try:
        result = harness.call(name, *args)  # type: ignore[attr-defined]
    finally:
        harness.state.fds.close_all()  # type: ignore[attr-defined]
        harness.state.fs.close()  # type: ignore[attr-defined]
    assert result >= 0 or -4095 <= result <= -1, (name, args, result)

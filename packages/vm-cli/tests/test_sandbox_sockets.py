"""`vm run --root` confinement of AF_UNIX socket names (guest/attacks/sockets.c).

The host listens next to the root (OUTSIDE/hostsock, OUTSIDE/hostdgram, the
abstract name of HOSTONLY); the guest binds its own sockets at the same paths
inside the root and tries to reach the host's through absolute paths, ``..``,
planted and self-made symbolic links, and abstract names, and to bind through
links. Besides the program's own verdicts and the usual host checks (nothing
outside the root created or changed), the host's sockets must have seen no
connection and no datagram.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from . import sandbox_fixtures as fixtures

sandbox = fixtures.sandbox


@pytest.fixture(scope="module", params=fixtures.ARCHES)
def arch(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _bound(kind: int, where: Path | bytes) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, kind | socket.SOCK_NONBLOCK)
    sock.bind(where if isinstance(where, bytes) else str(where))
    if kind == socket.SOCK_STREAM:
        sock.listen(16)
    return sock


def test_unix_socket_names_stay_in_the_root(tmp_path: Path, arch: str) -> None:
    programs = fixtures.binaries_for(arch)
    layout = sandbox.make_layout(tmp_path, {"sockets": programs["sockets"]})
    stream_path, dgram_path = layout.outside / "hostsock", layout.outside / "hostdgram"
    if len(bytes(stream_path)) >= 108:
        pytest.skip(f"the host's socket path is longer than sun_path: {stream_path}")
    host_stream = _bound(socket.SOCK_STREAM, stream_path)
    host_dgram = _bound(socket.SOCK_DGRAM, dgram_path)
    host_abstract = _bound(socket.SOCK_STREAM, b"\0" + layout.hostonly.encode())
    try:
        before = sandbox.snapshot_host(layout)
        done = sandbox.run_attack(layout, arch, "sockets")
        problems = sandbox.failures(layout, done, before)
        for name, sock in (("hostsock", host_stream), ("abstract", host_abstract)):
            try:
                sock.accept()[0].close()
                problems.append(f"the host's {name} listener was connected to")
            except BlockingIOError:
                pass
        try:
            problems.append(f"the host's datagram socket received {host_dgram.recv(64)!r}")
        except BlockingIOError:
            pass
    finally:
        for sock in (host_stream, host_dgram, host_abstract):
            sock.close()
    stdout = getattr(done, "stdout", "")
    assert not problems, "\n".join(problems) + f"\n--- guest stdout:\n{stdout}"
    grouped = sandbox.verdicts(stdout)
    contained = {text.partition(":")[0] for text in grouped["contained"]}
    blocked = {text.partition(":")[0]: text.rsplit("errno=", 1)[-1] for text in grouped["blocked"]}
    # every confined path reaches the guest's own socket, as in a real root
    assert {
        "connect-abs",
        "connect-dotdot",
        "connect-lnkdir_abs",
        "connect-lnkdir_rel",
        "connect-chain",
        "connect-guest-link-abs",
        "connect-guest-link-rel",
        "connect-relative",
        "sendto-abs",
        "sendto-lnkdir_abs",
        "sendto-guest-link",
        "autobind",
        "bind-lnkdir_abs",
        "bind-dotdot",
    } <= contained, stdout
    # abstract names are host-global: refused under --root (docs/security.md); bind never follows a last link
    assert blocked == {
        "connect-abstract-host": "EACCES",
        "sendto-abstract-host": "EACCES",
        "bind-abstract": "EACCES",
        "bind-guest-dangling-link": "EADDRINUSE",
        "bind-planted-abs-link": "EADDRINUSE",
    }, stdout

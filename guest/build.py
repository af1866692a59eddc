"""Build and run the RISC-V guest program suite: the oracle side of the ``vm run`` tests.

The suite (``guest/rv64/``, listed in ``guest/rv64/programs.toml``) is a set
of small deterministic static riscv64 Linux programs. This module compiles
them with Debian's cross compiler (``riscv64-linux-gnu-gcc -static -O2`` plus
per-program flags) into an output directory, rebuilding a program only when
its source, flags or compiler changed, and runs them under ``qemu-riscv64``
(qemu-user), whose behaviour ``vm run`` must reproduce byte for byte.

Importable (the vm-cli tests load it by path) and a command line tool::

    python guest/build.py [--out DIR] [--jobs N] [--list] [--count [--bench]]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import Any, Literal

import attrs
from vm_core.errors import ConfigurationError, NotFoundError, VmError
from vm_core.logging import get_logger

log = get_logger("vm_guest_build")

GUEST_DIR = Path(__file__).resolve().parent
SOURCE_DIR = GUEST_DIR / "rv64"
MANIFEST_PATH = SOURCE_DIR / "programs.toml"
REPO_ROOT = GUEST_DIR.parent
DEFAULT_OUT_DIR = REPO_ROOT / "build" / "guest" / "rv64"

COMPILER = "riscv64-linux-gnu-gcc"
QEMU = "qemu-riscv64"
DEBIAN_PACKAGES = "gcc-riscv64-linux-gnu qemu-user"
COMMON_CFLAGS = ("-static", "-O2", "-Wall", "-Wextra")
C_LIBS = ("-lm",)

#: The whole environment a guest sees, under qemu and under ``vm run`` alike (plus ``PYTHONPATH``, see
#: :func:`launcher_env`).
GUEST_ENV: Mapping[str, str] = {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "TZ": "UTC"}
#: The umask guest processes start with (programs that create files also set it themselves).
GUEST_UMASK = 0o022

DEFAULT_RUN_TIMEOUT_S = 60.0
_BUILD_KEY_SUFFIX = ".buildkey"
_ENDINGS = ("exit", "signal")
_MANIFEST_KEYS = {
    "name", "source", "cflags", "args", "bench_args", "writable_cwd", "ending", "status", "heavy", "no_snapshot",
    "execs", "forks",
}
#: Debian's binfmt_misc registration of qemu-riscv64 (qemu-user-binfmt; preserves argv[0]).
BINFMT_CONF = Path("/usr/lib/binfmt.d/qemu-riscv64.conf")
#: Mounts a binfmt_misc private to a new user+mount namespace, registers $1's line, runs the rest.
_BINFMT_SCRIPT = (
    'mount -t binfmt_misc none /proc/sys/fs/binfmt_misc && cat "$1" > /proc/sys/fs/binfmt_misc/register '
    '&& shift && exec "$@"'
)


class ToolchainMissing(NotFoundError):
    """The RISC-V cross compiler or qemu-user is not installed."""


class GuestBuildError(VmError):
    """A guest program failed to compile; the message carries the compiler's output."""


class GuestRunError(VmError):
    """A guest program could not be run to completion under qemu (it timed out)."""


@attrs.frozen
class GuestProgram:
    """One program of the suite, as the manifest describes it."""

    name: str
    source: str
    ending: Literal["exit", "signal"]
    status: int
    cflags: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    bench_args: tuple[str, ...] = ()
    writable_cwd: bool = False
    heavy: bool = False
    #: the program holds what snapshots refuse (pipes, event descriptors, timers): no snapshot chain
    no_snapshot: bool = False
    #: The program execs riscv64 programs: its oracle is :func:`exec_capable_qemu` (binfmt_misc).
    execs: bool = False
    #: The program creates guest processes (a snapshot of it is refused: its other processes are not captured).
    forks: bool = False

    @property
    def source_path(self) -> Path:
        return SOURCE_DIR / self.source

    @property
    def is_assembly(self) -> bool:
        return self.source.endswith(".S")

    @property
    def expected_returncode(self) -> int:
        """The returncode :mod:`subprocess` reports: the exit status, or minus the killing signal."""
        return -self.status if self.ending == "signal" else self.status

    @property
    def benchmark_args(self) -> tuple[str, ...]:
        return self.bench_args or self.args


def _string_tuple(entry: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = entry.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ConfigurationError(f"{where}: {key!r} must be a list of strings")
    return tuple(value)


def _program_from_entry(entry: Mapping[str, Any], where: str) -> GuestProgram:
    unknown = set(entry) - _MANIFEST_KEYS
    if unknown:
        raise ConfigurationError(f"{where}: unknown keys {sorted(unknown)}")
    name, source, ending, status = (entry.get(key) for key in ("name", "source", "ending", "status"))
    if not isinstance(name, str) or not name.isidentifier():
        raise ConfigurationError(f"{where}: 'name' must be an identifier-like string, got {name!r}")
    if not isinstance(source, str) or not source.endswith((".c", ".S")) or "/" in source:
        raise ConfigurationError(f"{where}: 'source' must name a .c or .S file in {SOURCE_DIR}")
    if ending not in _ENDINGS:
        raise ConfigurationError(f"{where}: 'ending' must be one of {_ENDINGS}, got {ending!r}")
    if not isinstance(status, int) or not 0 <= status <= 255 or (ending == "signal" and not 0 < status < 65):
        raise ConfigurationError(f"{where}: 'status' {status!r} is not a valid exit status or signal")
    flags = {key: entry.get(key, False) for key in ("writable_cwd", "heavy", "no_snapshot", "execs", "forks")}
    for key, flag in flags.items():
        if not isinstance(flag, bool):
            raise ConfigurationError(f"{where}: {key!r} must be true or false")
    return GuestProgram(
        name=name,
        source=source,
        ending=ending,
        status=status,
        cflags=_string_tuple(entry, "cflags", where),
        args=_string_tuple(entry, "args", where),
        bench_args=_string_tuple(entry, "bench_args", where),
        writable_cwd=flags["writable_cwd"],
        heavy=flags["heavy"],
        no_snapshot=flags["no_snapshot"],
        execs=flags["execs"],
        forks=flags["forks"],
    )


def load_manifest(path: Path = MANIFEST_PATH) -> tuple[GuestProgram, ...]:
    """Read and validate the suite's manifest, in file order."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise NotFoundError(f"guest manifest {path} does not exist") from err
    except tomllib.TOMLDecodeError as err:
        raise ConfigurationError(f"guest manifest {path} is not valid TOML: {err}") from err
    entries = document.get("program")
    if not isinstance(entries, list) or not entries:
        raise ConfigurationError(f"guest manifest {path} has no [[program]] tables")
    programs = [_program_from_entry(entry, f"{path.name} program #{i + 1}") for i, entry in enumerate(entries)]
    names = [program.name for program in programs]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ConfigurationError(f"guest manifest {path} names programs twice: {duplicates}")
    return tuple(programs)


def find_tool(name: str) -> str:
    """The absolute path of a toolchain program, or :class:`ToolchainMissing` naming the Debian packages."""
    found = shutil.which(name)
    if found is None:
        raise ToolchainMissing(
            f"{name} not found on PATH; the guest suite needs the RISC-V cross toolchain and qemu-user",
            hint=f"on Debian/Ubuntu: apt-get install {DEBIAN_PACKAGES}",
        )
    return found


def check_toolchain(*, compiler: str = COMPILER, qemu: str = QEMU) -> None:
    """Raise :class:`ToolchainMissing` unless both the cross compiler and qemu-user are installed."""
    find_tool(compiler)
    find_tool(qemu)


@cache
def _compiler_identity(compiler_path: str) -> str:
    result = subprocess.run([compiler_path, "--version"], capture_output=True, check=False)
    return f"{compiler_path}\n{result.stdout.decode(errors='replace').splitlines()[:1]}"


def compile_command(program: GuestProgram, output: Path, *, compiler: str = COMPILER) -> list[str]:
    """The compiler command line that builds ``program`` into ``output``."""
    libs = () if program.is_assembly else C_LIBS
    return [compiler, *COMMON_CFLAGS, *program.cflags, "-o", str(output), str(program.source_path), *libs]


def build_key(program: GuestProgram, *, compiler: str = COMPILER) -> str:
    """A digest of everything the binary depends on: source bytes, command line, compiler version."""
    try:
        source = program.source_path.read_bytes()
    except FileNotFoundError as err:
        raise NotFoundError(f"guest program {program.name}: source {program.source_path} does not exist") from err
    digest = hashlib.sha256()
    digest.update(source)
    digest.update("\0".join(compile_command(program, Path("OUT"), compiler=compiler)).encode())
    digest.update(_compiler_identity(find_tool(compiler)).encode())
    return digest.hexdigest()


def build_program(program: GuestProgram, out_dir: Path = DEFAULT_OUT_DIR, *, compiler: str = COMPILER) -> Path:
    """Compile one program into ``out_dir`` (unless already up to date) and return the binary's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    binary = out_dir / program.name
    key_file = out_dir / (program.name + _BUILD_KEY_SUFFIX)
    key = build_key(program, compiler=compiler)
    if binary.is_file() and key_file.is_file() and key_file.read_text(encoding="ascii") == key:
        log.debug("guest_build_up_to_date", program=program.name)
        return binary
    # Build under a private name, then rename: concurrent builders never see a half-written binary.
    scratch = out_dir / f".{program.name}.{os.getpid()}.tmp"
    command = compile_command(program, scratch, compiler=find_tool(compiler))
    result = subprocess.run(command, capture_output=True, check=False)
    diagnostics = (result.stdout + result.stderr).decode(errors="replace").strip()
    if result.returncode != 0:
        scratch.unlink(missing_ok=True)
        raise GuestBuildError(f"guest program {program.name} failed to compile:\n{diagnostics}")
    if diagnostics:
        log.warning("guest_compile_diagnostics", program=program.name, output=diagnostics)
    os.replace(scratch, binary)
    key_scratch = out_dir / f".{program.name}.{os.getpid()}.key"
    key_scratch.write_text(key, encoding="ascii")
    os.replace(key_scratch, key_file)
    log.info("guest_built", program=program.name, binary=str(binary))
    return binary


def build_all(
    out_dir: Path = DEFAULT_OUT_DIR,
    programs: Iterable[GuestProgram] | None = None,
    *,
    jobs: int | None = None,
    compiler: str = COMPILER,
) -> dict[str, Path]:
    """Build every program (default: the whole manifest) in parallel; map program name -> binary."""
    selected = tuple(load_manifest() if programs is None else programs)
    find_tool(compiler)
    workers = max(1, jobs if jobs is not None else (os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        binaries = list(pool.map(lambda program: build_program(program, out_dir, compiler=compiler), selected))
    return {program.name: binary for program, binary in zip(selected, binaries, strict=True)}


def guest_process_setup() -> None:
    """``preexec_fn`` for guest runs: no core dumps (qemu would write ``qemu_*.core`` into the cwd)."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def launcher_env() -> dict[str, str]:
    """The environment every guest launcher runs in: :data:`GUEST_ENV`, and this process's ``PYTHONPATH``.

    ``PYTHONPATH`` is passed on (to qemu and ``vm run`` alike, so guests
    still see the same environment) so that ``vm run`` imports the vm the
    caller imports, a work tree's sources rather than an installed copy.
    """
    env = dict(GUEST_ENV)
    if os.environ.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return env


def run_guest_command(
    command: Sequence[str], cwd: Path, *, timeout: float = DEFAULT_RUN_TIMEOUT_S
) -> tuple[bytes, bytes, int]:
    """Run any guest launcher (qemu, ``vm run``) the way the suite's oracle runs: fixed env, umask, no stdin."""
    try:
        result = subprocess.run(
            list(command),
            cwd=cwd,
            env=launcher_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            umask=GUEST_UMASK,
            preexec_fn=guest_process_setup,
            check=False,
        )
    except subprocess.TimeoutExpired as err:
        raise GuestRunError(f"{' '.join(command)} did not finish within {timeout:g} s") from err
    except FileNotFoundError as err:
        raise ToolchainMissing(f"cannot run {command[0]}: {err.strerror}") from err
    return result.stdout, result.stderr, result.returncode


def run_qemu(
    binary: Path, args: Sequence[str], cwd: Path, *, timeout: float = DEFAULT_RUN_TIMEOUT_S, qemu: str = QEMU
) -> tuple[bytes, bytes, int]:
    """Run ``binary args`` under qemu-user in ``cwd``; return (stdout, stderr, returncode).

    The returncode is :mod:`subprocess`'s: negative for a guest killed by a
    signal (qemu-user kills itself with the guest's signal).
    """
    return run_guest_command([find_tool(qemu), str(binary), *args], cwd, timeout=timeout)


@cache
def exec_capable_qemu(qemu: str = QEMU) -> tuple[str, ...]:
    """The command prefix that runs a riscv64 program under qemu-user able to ``execve`` riscv64 programs.

    qemu-user cannot exec a foreign program without binfmt_misc. This mounts
    a binfmt_misc instance private to a new user and mount namespace
    (Linux 6.7+), registers Debian's qemu-riscv64 line in it and runs
    ``qemu PROGRAM ARGS`` there: the host's binfmt_misc is never touched.
    ``ToolchainMissing`` says why when this host cannot do it.
    """
    unshare = shutil.which("unshare")
    if unshare is None or not BINFMT_CONF.is_file():
        raise ToolchainMissing(f"an exec-capable qemu oracle needs unshare(1) and {BINFMT_CONF} (qemu-user-binfmt)")
    prefix = (unshare, "--user", "--map-root-user", "--mount", "sh", "-c", _BINFMT_SCRIPT, "sh", str(BINFMT_CONF))
    probe = subprocess.run([*prefix, "true"], capture_output=True, timeout=30, check=False)
    if probe.returncode != 0:
        raise ToolchainMissing(
            "cannot mount a private binfmt_misc in a user namespace here: "
            + probe.stderr.decode(errors="replace").strip()
        )
    return (*prefix, find_tool(qemu))


def count_instructions(
    binary: Path, args: Sequence[str], cwd: Path, *, timeout: float = 600.0, qemu: str = QEMU
) -> int:
    """Guest instructions executed by ``binary args``: qemu single-steps and logs every translation block."""
    read_end, write_end = os.pipe()
    command = [find_tool(qemu), "-singlestep", "-d", "exec,nochain", "-D", f"/dev/fd/{write_end}", str(binary)]
    process = subprocess.Popen(
        [*command, *args],
        cwd=cwd,
        env=dict(GUEST_ENV),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        pass_fds=(write_end,),
        umask=GUEST_UMASK,
        preexec_fn=guest_process_setup,
    )
    os.close(write_end)
    # One "Trace ..." line per executed block, and -singlestep makes every block one instruction.
    # Count the marker in chunks; carrying the last len(marker)-1 bytes catches markers split across
    # chunks without counting any twice.
    marker = b"Trace "
    count = 0
    carry = b""
    with open(read_end, "rb", buffering=0) as log_stream:
        while chunk := log_stream.read(1 << 20):
            window = carry + chunk
            count += window.count(marker)
            carry = window[-(len(marker) - 1) :]
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired as err:
        process.kill()
        raise GuestRunError(f"counting instructions of {binary} took over {timeout:g} s") from err
    return count


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="guest/build.py", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT_DIR, help=f"output folder (default {DEFAULT_OUT_DIR})")
    parser.add_argument("--jobs", type=int, default=None, help="parallel compiler processes (default: CPU count)")
    parser.add_argument("--list", action="store_true", help="list the manifest and exit")
    parser.add_argument("--count", action="store_true", help="after building, count guest instructions per program")
    parser.add_argument("--bench", action="store_true", help="with --count: use the programs' benchmark arguments")
    parser.add_argument("programs", nargs="*", help="program names (default: all)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point; returns the exit status."""
    options = _parse_args(argv)
    try:
        programs = load_manifest()
        if options.programs:
            known = {program.name: program for program in programs}
            unknown = [name for name in options.programs if name not in known]
            if unknown:
                raise NotFoundError(f"no guest programs named {unknown}", hint=f"known: {', '.join(known)}")
            programs = tuple(known[name] for name in options.programs)
        if options.list:
            for program in programs:
                ending = f"{program.ending} {program.status}"
                print(f"{program.name:18} {program.source:22} {ending:10} args={list(program.args)}")
            return 0
        binaries = build_all(options.out.resolve(), programs, jobs=options.jobs)
        for name, binary in binaries.items():
            print(f"{name:18} {binary}")
        if options.count:
            total = 0
            for program in programs:
                args = program.benchmark_args if options.bench else program.args
                with tempfile.TemporaryDirectory(prefix="vm-guest-") as cwd:
                    count = count_instructions(binaries[program.name], args, Path(cwd))
                total += count
                print(f"{program.name:18} {count:>13,} instructions  args={list(args)}")
            print(f"{'total':18} {total:>13,} instructions")
    except VmError as err:
        print(f"guest/build.py: error: {err}", file=sys.stderr)
        return err.exit_code
    except BrokenPipeError:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

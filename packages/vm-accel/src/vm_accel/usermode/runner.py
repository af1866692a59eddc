"""Running a static x86-64 Linux program under KVM: the composition of the user-mode pieces.

:class:`KvmUserProcess` builds one KVM VM per program (the gVisor KVM
platform model): one RAM region holds the CPL 0 system area of
:func:`vm_accel.kvm.setup_long_mode`, the page tables and every page of the
process; a :class:`~vm_accel.usermode.address_space.KvmAddressSpace` is the
process's memory for vm-linux, which loads the ELF, builds the initial stack
and serves the system calls with its x86-64 table, exactly as it does for
emulated guests (same ``--root`` confinement, same file descriptors). The
program's own code runs at CPL 3 at hardware speed.

:func:`run_program` is the one-call form ``vm run --accel kvm`` uses.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
from vm_core.logging import get_logger
from vm_linux.process import LinuxProcess, ProcessResult

from vm_accel.kvm.long_mode import LongModeLayout, setup_long_mode
from vm_accel.kvm.system import DEFAULT_DEVICE_PATH, Kvm
from vm_accel.usermode.address_space import RESERVED_TOP, KvmAddressSpace
from vm_accel.usermode.cpu_setup import configure_user_vcpu, guest_hwcap
from vm_accel.usermode.engine import KvmUserCpu, KvmUserEngine
from vm_accel.usermode.frames import FrameAllocator
from vm_accel.usermode.page_tables import UserPageTables

log = get_logger("vm_accel.usermode.runner")

#: Guest RAM (reserved, not committed: host memory is used only as the guest touches it).
DEFAULT_RAM_SIZE = 4 << 30
ISA = "x86_64"


class KvmUserProcess:
    """One x86-64 Linux program in its own KVM VM; :meth:`run` it once, then :meth:`close`."""

    def __init__(
        self,
        program: str,
        argv: Sequence[str | bytes],
        envp: Sequence[str | bytes] | None = None,
        *,
        root: str | None = None,
        ram_size: int = DEFAULT_RAM_SIZE,
        device_path: str = DEFAULT_DEVICE_PATH,
        stdin: int = 0,
        stdout: int = 1,
        stderr: int = 2,
    ) -> None:
        self.kvm = Kvm(device_path)
        try:
            self.vm = self.kvm.create_vm()
            region = self.vm.add_memory(0, ram_size)
            self.vcpu = self.vm.create_vcpu()
            layout = LongModeLayout(base=0, identity_map_size=1 << 21)
            self.system = setup_long_mode(self.vcpu, layout)
            frames = FrameAllocator(region, RESERVED_TOP)
            self.tables = UserPageTables(region, frames)
            self.xcr0 = configure_user_vcpu(self.vcpu, layout, self.tables)
            self.mem = KvmAddressSpace(region, frames, self.tables)
            self.process = LinuxProcess(
                ISA, self.mem, program, argv, envp, root=root, stdin=stdin, stdout=stdout, stderr=stderr
            )
            # AT_HWCAP describes the CPU the program really runs on.
            self.process.abi = attrs.evolve(self.process.abi, hwcap_override=guest_hwcap(self.kvm.supported_cpuid()))
            arch = self.process.abi.arch
            self.cpu = KvmUserCpu(self.vcpu, self.mem, arch)
            self.engine = KvmUserEngine(self.vcpu, self.system, self.mem, arch)
        except BaseException:
            self.close()
            raise

    def run(self) -> ProcessResult:
        """Load the program, run it to its end and return how it ended."""
        entry, sp = self.process.load()
        self.process.init_cpu(self.cpu)
        log.info("kvm_user_start", entry=hex(entry), sp=hex(sp), frames=self.mem.frames.in_use)
        result = self.process.run(self.engine, self.cpu)
        log.info("kvm_user_end", status=result.exit_status, signal=result.signal, **self.engine.stats)
        return result

    def close(self) -> None:
        """Release the VM, its memory and the device (safe to call twice)."""
        mem = getattr(self, "mem", None)
        if mem is not None:
            mem.close()
        tables = getattr(self, "tables", None)
        if tables is not None:
            tables.release()
        vm = getattr(self, "vm", None)
        if vm is not None:
            vm.close()
        self.kvm.close()

    def __enter__(self) -> KvmUserProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_program(
    program: str,
    argv: Sequence[str | bytes],
    envp: Sequence[str | bytes] | None = None,
    *,
    root: str | None = None,
    ram_size: int = DEFAULT_RAM_SIZE,
) -> ProcessResult:
    """Run the static x86-64 ELF ``program`` with ``argv`` under KVM and return how it ended."""
    with KvmUserProcess(program, argv, envp, root=root, ram_size=ram_size) as process:
        return process.run()

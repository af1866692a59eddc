"""Benchmark: CPL 3 code under the pure-Python KVM backend.

1. A loop of 20 million iterations (add, dec, jnz) entered at CPL 3 through
   the ``sysretq`` stub, ending with ``syscall``: native speed expected.
2. System-call round trips: the guest calls ``syscall`` N times; each one
   goes through the CPL 0 stub to the host (hypercall port, or on KVM-PVM
   the #GP trap of the stub) and back. This is the cost step 2 (Linux
   programs) pays per system call.

Run: ``python packages/vm-accel/bench/cpl3_loop.py [iterations] [syscalls]``.
Guest code (GNU as, Intel syntax), hand-assembled below::

    loop:   mov ecx, N ; xor eax, eax ; 1: add rax, rcx ; dec rcx ; jnz 1b
            mov rdi, rax ; mov eax, 60 ; syscall
    calls:  mov r12d, N ; 1: mov eax, 39 ; syscall ; dec r12 ; jnz 1b
            mov rdi, rax ; mov eax, 60 ; syscall
"""

from __future__ import annotations

import sys
import time

import attrs
from vm_accel.kvm import Kvm, KvmVcpu, LongModeSystem, setup_long_mode

USER_CODE = 0x30000
USER_STACK = 0x80000


def loop_code(iterations: int) -> bytes:
    return bytes.fromhex(
        "b9" + iterations.to_bytes(4, "little").hex() + "31c04801c848ffc975f84889c7b83c0000000f05"
    )


def syscall_code(calls: int) -> bytes:
    return bytes.fromhex("41bc" + calls.to_bytes(4, "little").hex() + "b8270000000f0549ffcc75f44889c7b83c0000000f05")


class Syscalls:
    """getpid (39) answers 4242 and resumes; exit (60) stops with rdi."""

    def __init__(self, system: LongModeSystem) -> None:
        self.system = system
        self.count = 0
        self.trapped = False

    def port_read(self, vcpu: KvmVcpu, port: int, size: int) -> int:
        return 0

    def port_write(self, vcpu: KvmVcpu, port: int, size: int, value: int) -> None:
        if port == self.system.layout.exception_port:
            frame = self.system.read_exception_frame(vcpu)
            if not self.system.is_user_syscall_trap(frame):
                vcpu.request_stop(frame)
                return
            self.trapped = True
            self.system.return_from_user_syscall_trap(vcpu)
        self.count += 1
        regs = vcpu.get_regs()
        if regs.rax == 60:
            vcpu.request_stop(regs.rdi)
        else:
            vcpu.set_regs(attrs.evolve(regs, rax=4242))


def main() -> None:
    iterations = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000_000
    calls = int(sys.argv[2]) if len(sys.argv) > 2 else 2_000
    with Kvm() as kvm, kvm.create_vm() as vm:
        vm.add_memory(0, 0x100000)
        vcpu = vm.create_vcpu()
        system = setup_long_mode(vcpu)
        handler = Syscalls(system)
        vm.io.add_ports(system.layout.hypercall_port, 1, handler)
        vm.io.add_ports(system.layout.exception_port, 1, handler)

        vm.memory.write(USER_CODE, loop_code(iterations))
        system.start_user(vcpu, USER_CODE, USER_STACK)
        started = time.perf_counter()
        stop = vcpu.run()
        elapsed = time.perf_counter() - started
        expected = iterations * (iterations + 1) // 2
        status = "ok" if stop.value == expected else f"WRONG (got {stop.value}, want {expected})"
        print(f"CPL 3 loop: {iterations} iterations in {elapsed * 1000:.1f} ms "
              f"= {iterations / elapsed / 1e6:.0f} M iterations/s, result {status}")  # fmt: skip

        vm.memory.write(USER_CODE, syscall_code(calls))
        system.start_user(vcpu, USER_CODE, USER_STACK)
        handler.count = 0
        started = time.perf_counter()
        stop = vcpu.run()
        elapsed = time.perf_counter() - started
        path = "CPL 3 #GP trap (KVM-PVM)" if handler.trapped else "CPL 0 hypercall port"
        status = "ok" if stop.value == 4242 and handler.count == calls + 1 else f"WRONG ({stop.value})"
        print(f"syscalls: {handler.count} round trips in {elapsed * 1000:.1f} ms "
              f"= {elapsed / handler.count * 1e6:.1f} us each via {path}, result {status}")  # fmt: skip


if __name__ == "__main__":
    main()

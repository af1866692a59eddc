"""A Linux user-mode process: load the program, then run it, serving its system calls and signals.

:class:`LinuxProcess` ties the pieces together. :meth:`LinuxProcess.load`
maps the static ELF program, the initial stack and the signal-return
trampoline page; :meth:`LinuxProcess.init_cpu` sets the registers as Linux
does at ``execve``; :meth:`LinuxProcess.run` drives an engine slice by slice:

* ``SYSCALL``: dispatch it, then deliver any pending unblocked signal;
* ``FAULT`` / ``BREAKPOINT``: the fault's signal (SIGSEGV, SIGILL, SIGTRAP)
  is forced: delivered to the guest's handler if it has one and the signal is
  not blocked, otherwise it terminates the process (Linux's
  ``force_sig_fault``);
* ``BUDGET``: fire the guest timers that expired (:mod:`vm_linux.timers`) and
  deliver their signals, then continue, or stop when the total instruction
  limit is reached.

A system call that a signal interrupted (:mod:`vm_linux.waiting`) returns
``-EINTR`` or is restarted, decided in :meth:`LinuxProcess.deliver_pending`
by the handler that runs (``SA_RESTART``) as Linux's ``handle_signal`` does.

A signal's default action terminates the process with that signal unless the
signal is one Linux ignores by default (see :mod:`vm_linux.signals`). The
result is a :class:`ProcessResult`.
"""

from __future__ import annotations

import errno
import functools
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
from vm_core.arch import ArchInfo
from vm_core.errors import (
    Breakpoint,
    ConfigurationError,
    GuestFault,
    IllegalInstruction,
    MemoryFault,
    NotFoundError,
    VmError,
)
from vm_core.logging import get_logger
from vm_core.types import StopKind
from vm_mem import PAGE_SIZE, PROT_EXEC, PROT_READ, GuestMemoryExhausted

from vm_linux.abi import LinuxAbi
from vm_linux.elf import LoadedProgram, load_elf, read_program_file
from vm_linux.fdtable import FdTable
from vm_linux.fs import GuestFilesystem
from vm_linux.guest_errno import GuestErrno
from vm_linux.procfs_source import track_peak_mapped_pages
from vm_linux.signals import (
    DEFAULT_IGNORED,
    DEFAULT_STOP,
    ILL_ILLOPC,
    SA_NODEFER,
    SA_ONSTACK,
    SA_RESETHAND,
    SA_RESTART,
    SEGV_ACCERR,
    SEGV_MAPERR,
    SIG_DFL,
    SIG_IGN,
    SIGKILL,
    SIGSEGV,
    SIGSTOP,
    SIGTRAP,
    TRAP_BRKPT,
    SigAction,
    make_siginfo,
    sigbit,
    signal_name,
)
from vm_linux.stack import STACK_SIZE, ExecImage, InitialStack, build_initial_stack
from vm_linux.state import GuestExit, ProcessState
from vm_linux.syscalls import ABI_BUILDERS, SyscallDispatcher
from vm_linux.syscalls.exec_calls import ExecPlan, ExecRequested
from vm_linux.syscalls.registry import MASK64, Handler
from vm_linux.timers import SI_KERNEL
from vm_linux.vfs import VirtualFiles
from vm_linux.waiting import Restart

DEFAULT_SLICE = 100_000

#: ``load(mem, path, machine, *, limit, data)``: maps a program (a ``LoaderSpec``'s factory; default ELF).
ProgramLoader = Callable[..., LoadedProgram]
#: ``exec_hook(process, plan, engine, cpu) -> (engine, cpu)``: the new image of an ``execve`` (raises GuestErrno).
ExecHook = Callable[["LinuxProcess", ExecPlan, Any, Any], tuple[Any, Any]]


@attrs.frozen
class ProcessResult:
    """How the guest process ended: an exit status, a terminating signal, or neither (limit reached)."""

    exit_status: int | None
    signal: int | None
    instructions: int
    #: Why the VM itself killed the guest (out of memory), for the one line ``vm run`` prints; None otherwise.
    killed_because: str | None = None


def trampoline_address(stack_top: int) -> int:
    """Where the signal-return trampoline page goes: below the stack, one guard page between them."""
    return stack_top - STACK_SIZE - 2 * PAGE_SIZE


@functools.cache
def installed_arch(isa_name: str) -> ArchInfo:
    """The ArchInfo the installed front end of ``isa_name`` registered (``IsaSpec.arch``), through the plugins.

    For callers that name an ISA without handing its ArchInfo over (the composition root passes
    ``IsaSpec.arch`` itself); vm-linux never imports a front end.
    """
    from vm_core.plugins import collect_registry, make_plugin_manager

    spec = collect_registry(make_plugin_manager()).isa(isa_name)
    if spec.arch is None:
        raise NotFoundError(f"the installed {spec.name} front end registers no ArchInfo")
    return spec.arch


@functools.cache
def abi_for(isa_name: str, arch: ArchInfo | None = None) -> LinuxAbi:
    """The Linux ABI of ``isa_name`` on ``arch`` (default: the installed front end's); ``NotFoundError`` if none."""
    try:
        build = ABI_BUILDERS[isa_name]
    except KeyError:
        raise NotFoundError(
            f"no Linux user-mode ABI for ISA {isa_name!r}", hint=f"supported: {', '.join(sorted(ABI_BUILDERS))}"
        ) from None
    return build(arch if arch is not None else installed_arch(isa_name))


class LinuxProcess:
    """One guest program run as a Linux user-mode process (see the module docstring).

    ``abi`` is the ISA's :class:`~vm_linux.abi.LinuxAbi`: the composition root
    passes the one registered through ``vm_register_syscall_tables``, built
    from the ISA's :class:`~vm_core.arch.ArchInfo`; an ISA name builds
    vm-linux's own ABI for it (library and test use) from ``arch``, or when
    ``arch`` is None from the installed front end's ArchInfo.
    ``syscall_overrides`` maps system-call names or numbers to handlers that
    replace (or add to) the table's (``vm_register_syscalls``); ``load_program``
    maps the program (the chosen ``LoaderSpec``'s factory; default: ELF). ``network`` False
    (``vm run --net none``) refuses the guest every socket family but AF_UNIX (``EACCES``).
    """

    def __init__(
        self,
        abi: LinuxAbi | str,
        mem: Any,
        program: str,
        argv: Sequence[str | bytes],
        envp: Sequence[str | bytes] | None = None,
        *,
        root: str | None = None,
        stdin: int = 0,
        stdout: int = 1,
        stderr: int = 2,
        syscall_overrides: Mapping[str | int, Handler] | None = None,
        load_program: ProgramLoader = load_elf,
        arch: ArchInfo | None = None,
        network: bool = True,
        exec_hook: ExecHook | None = None,
    ) -> None:
        self.abi = abi_for(abi, arch) if isinstance(abi, str) else abi
        self.load_program = load_program
        self.mem = mem
        mem.address_limit = min(mem.address_limit, self.abi.user_address_limit)
        mem.mmap_base = self.abi.arch.mmap_base
        self.trampoline_addr = trampoline_address(self.abi.arch.stack_top)
        self.program_path = program
        self.argv = list(argv)
        if envp is None:
            envp = [f"{key}={value}" for key, value in os.environ.items()]
        self.envp = list(envp)
        if root is not None and not os.path.isdir(root):
            raise ConfigurationError(f"guest root {root!r} is not a directory")
        try:
            fs = GuestFilesystem(root, program)
        except GuestErrno:
            raise ConfigurationError(f"guest root {root!r} is not a directory") from None
        self.state = ProcessState(self.abi, mem, fs, FdTable.with_std_streams(stdin, stdout, stderr))
        self.state.inet_allowed = network
        fs.vfs = VirtualFiles(self)
        self.dispatcher = SyscallDispatcher(self.abi, syscall_overrides)
        self.loaded: LoadedProgram | None = None
        self.stack: InitialStack | None = None
        self.execfn: str | bytes = program
        self.exec_hook = exec_hook
        self.log = get_logger("vm_linux.process", program=program)

    def close(self) -> None:
        """Release every host descriptor the process holds (its files, root, working directory, program)."""
        self.state.fds.close_all()
        self.state.close_waker()
        self.state.fs.close()
        self.state.fs.vfs.close()

    # ------------------------------------------------------------------ start

    def load(self) -> tuple[int, int]:
        """Map the program, the stack and the sigreturn trampoline; return the initial (pc, sp)."""
        data = read_program_file(self.program_path)
        self.loaded, self.stack = self._map_image(self.mem, self.load_program, data)
        self._commit_image()
        return self.loaded.entry, self.stack.sp

    def _map_image(self, mem: Any, load_program: ProgramLoader, data: bytes) -> tuple[LoadedProgram, InitialStack]:
        """Map the program in ``data``, its initial stack and the sigreturn trampoline into ``mem``."""
        loaded = load_program(mem, self.program_path, self.abi.elf_machine, limit=self.trampoline_addr, data=data)
        stack = build_initial_stack(
            mem,
            loaded,
            self.argv,
            self.envp,
            execfn=self.execfn,
            stack_top=self.abi.arch.stack_top,
            page_size=self.abi.arch.page_size,
            hwcap=self.abi.hwcap,
            minsigstksz=self.abi.at_minsigstksz,
        )
        code = self.abi.signal_frames.trampoline_code
        mem.map(self.trampoline_addr, PAGE_SIZE, PROT_READ | PROT_EXEC, code)
        return loaded, stack

    def _commit_image(self) -> None:
        assert self.loaded is not None and self.stack is not None
        self.state.sigreturn_trampoline = self.trampoline_addr
        comm = os.path.basename(os.fsdecode(self.program_path))[:15]  # Linux: the execve'd name, TASK_COMM_LEN-1
        self.state.exec_image = ExecImage(program=self.loaded, stack=self.stack, comm=comm)
        track_peak_mapped_pages(self.state)

    def replace_image(
        self, plan: ExecPlan, mem: Any, load_program: ProgramLoader, *, abi: LinuxAbi | None = None,
        syscall_overrides: Mapping[str | int, Handler] | None = None,
    ) -> None:
        """``execve``'s new image on the new, empty address space ``mem`` (and ``abi``, for another ISA).

        The new image is mapped first; if that fails (a bad ELF: ``ENOEXEC``)
        nothing of the old one has changed. Then, as Linux does: descriptors
        with ``FD_CLOEXEC`` close, handled signals go back to their default
        (ignored ones and the mask stay), the alternate stack goes.
        """
        old = (self.abi, self.program_path, self.argv, self.envp, self.execfn, self.trampoline_addr)
        new_abi = abi if abi is not None else self.abi
        self.abi = new_abi
        self.trampoline_addr = trampoline_address(new_abi.arch.stack_top)
        self.program_path, self.argv, self.envp, self.execfn = plan.host_path, list(plan.argv), list(plan.envp), plan.execfn
        mem.address_limit = min(mem.address_limit, new_abi.user_address_limit)
        mem.mmap_base = new_abi.arch.mmap_base
        try:
            loaded, stack = self._map_image(mem, load_program, plan.data)
        except (VmError, ValueError) as err:
            self.abi, self.program_path, self.argv, self.envp, self.execfn, self.trampoline_addr = old
            self.log.info("exec_failed", program=plan.guest_path, reason=str(err))
            raise GuestErrno(errno.ENOEXEC) from None
        # the point of no return
        if abi is not None:
            self.state.abi = abi
            self.dispatcher = SyscallDispatcher(abi, syscall_overrides)
        self.mem = self.state.mem = mem
        self.load_program = load_program
        self.loaded, self.stack = loaded, stack
        state = self.state
        for fd in [fd for fd, entry in state.fds.files.items() if entry.cloexec]:
            state.fds.close(fd)
        state.signals.reset_for_exec()
        state.host_signals.reset_after_exec()
        state.timers.posix.clear()  # timer_create(2): deleted by execve; interval timers and alarm() stay
        state.clear_child_tid = 0
        state.shared_file_ranges = []
        state.fs.set_program(plan.host_path, plan.guest_path)
        self._commit_image()
        self.log = get_logger("vm_linux.process", program=plan.guest_path)
        self.log.debug("exec", program=plan.guest_path, argv=[os.fsdecode(arg) for arg in plan.argv])

    def _exec(self, plan: ExecPlan, engine: Any, cpu: Any) -> tuple[Any, Any]:
        """Serve ``execve``: the exec hook's new (engine, cpu), or the old ones with ``-errno`` in the result."""
        try:
            if self.exec_hook is None:
                self.log.info("exec_unsupported", reason="this process was built without an exec hook")
                raise GuestErrno(errno.ENOSYS)
            return self.exec_hook(self, plan, engine, cpu)
        except GuestErrno as err:
            cpu.regs[self.abi.result_register] = -err.code & MASK64
            return engine, cpu

    def init_cpu(self, cpu: Any) -> None:
        """Set ``cpu`` up as Linux leaves a new process: registers zero but ``sp``, ``pc`` = entry."""
        if self.loaded is None or self.stack is None:
            self.load()
        assert self.loaded is not None and self.stack is not None
        self.abi.init_registers(cpu, self.loaded.entry, self.stack.sp)

    # ------------------------------------------------------------------ running

    def run(
        self, engine: Any, cpu: Any, *, budget_per_slice: int = DEFAULT_SLICE, instruction_limit: int | None = None
    ) -> ProcessResult:
        """Run until the guest exits, a signal kills it, or ``instruction_limit`` instructions retired."""
        if budget_per_slice <= 0:
            raise ConfigurationError(f"budget_per_slice must be positive, not {budget_per_slice}")
        try:
            while True:
                budget = budget_per_slice
                if instruction_limit is not None:
                    left = instruction_limit - cpu.icount
                    if left <= 0:
                        return ProcessResult(exit_status=None, signal=None, instructions=cpu.icount)
                    budget = min(budget, left)
                try:
                    reason = engine.run(cpu, budget)
                except GuestFault as raised:
                    self.deliver_fault(cpu, raised)
                    continue
                kind = reason.kind
                if kind is StopKind.SYSCALL:
                    try:
                        self.dispatcher.dispatch(self.state, cpu)
                    except ExecRequested as request:
                        engine, cpu = self._exec(request.plan, engine, cpu)
                    self.state.timers.fire_due(self.state.signals)
                    self.deliver_pending(cpu)
                elif kind is StopKind.BUDGET:
                    # guest timers are deadlines checked between slices; a host signal may have queued one
                    if self.state.timers.armed or self.state.signals.pending:
                        self.state.timers.fire_due(self.state.signals)
                        self.deliver_pending(cpu)
                elif kind is StopKind.FAULT:
                    fault = reason.fault
                    if not isinstance(fault, GuestFault):
                        if isinstance(fault, VmError):
                            raise fault
                        raise VmError(f"the engine stopped on a fault it did not describe: {fault!r}")
                    self.deliver_fault(cpu, fault)
                elif kind is StopKind.BREAKPOINT:
                    self.deliver_fault(cpu, Breakpoint("breakpoint", pc=cpu.pc))
                elif kind is StopKind.EXITED:
                    return ProcessResult(reason.exit_status, reason.signal, cpu.icount)
        except GuestExit as end:
            if end.signal is not None:
                self.log.info("killed_by_signal", signal=signal_name(end.signal), pc=hex(cpu.pc))
            return ProcessResult(exit_status=end.status, signal=end.signal, instructions=cpu.icount)
        except (GuestMemoryExhausted, MemoryError) as exhausted:
            # Like the kernel's OOM killer: no errno can report a page that cannot be backed, so SIGKILL.
            reason = str(exhausted) if isinstance(exhausted, GuestMemoryExhausted) else "the host is out of memory"
            self.log.info("killed_out_of_memory", reason=reason, pc=hex(cpu.pc))
            return ProcessResult(exit_status=None, signal=SIGKILL, instructions=cpu.icount, killed_because=reason)
        finally:
            self.state.fds.close_all()

    # ------------------------------------------------------------------ signals

    def accept_host_signal(self, signo: int) -> bool:
        """Offer the guest a signal sent to the vm process (by a Python signal handler of the embedder).

        A guest that catches ``signo`` gets it (pending, ``si_code`` ``SI_KERNEL``: vm does not know
        the sender) and a blocking call it is in ends as :mod:`vm_linux.waiting` says; one that ignores
        it loses it. Either way the answer is True. With the default action the answer is False: the
        embedder ends the run (``vm run`` records it as interrupted).
        """
        handler = self.state.signals.action(signo).handler
        if handler == SIG_DFL:
            return False
        if handler != SIG_IGN:
            self.state.signals.queue(signo, make_siginfo(signo, SI_KERNEL))
            self.state.waker.wake()
        return True

    def deliver_pending(self, cpu: Any) -> None:
        """Deliver every pending, unblocked signal (each may run a handler or end the process).

        A system call a signal interrupted (``state.interrupted``, :mod:`vm_linux.waiting`) returns
        ``-EINTR`` or is restarted, decided by the first handler that runs; when none runs it is
        restarted. A mask a waiting call swapped in (``saved_mask``) goes into that handler's frame,
        or is restored here.
        """
        state = self.state
        while (item := state.signals.take_deliverable()) is not None:
            signo, siginfo = item
            self.deliver(cpu, signo, siginfo)
        if state.interrupted is not None:  # no handler ran (a stop signal): Linux restarts
            if state.interrupted[0] is Restart.NEVER:
                state.interrupted = None
            else:
                self.restart_syscall(cpu)
        if state.signals.saved_mask is not None:
            state.signals.set_blocked(state.signals.saved_mask)
            state.signals.saved_mask = None

    def restart_syscall(self, cpu: Any) -> None:
        """Put the interrupted system call back so it runs again: pc on its instruction, registers restored."""
        assert self.state.interrupted is not None
        how, number, first_arg = self.state.interrupted
        self.state.interrupted = None
        cpu.pc -= self.abi.syscall_insn_length
        if how is Restart.BLOCK and self.state.restart_block is not None:
            number = self.abi.syscall_number("restart_syscall")  # goes on where it was (time left)
        cpu.regs[self.abi.nr_register] = number
        cpu.regs[self.abi.arg_registers[0]] = first_arg

    def settle_interrupted(self, cpu: Any, act: SigAction) -> None:
        """Before a handler's frame is built: restart the interrupted call, or leave its ``-EINTR``."""
        if self.state.interrupted is None:
            return
        how = self.state.interrupted[0]
        if how is Restart.NOINTR or (how is Restart.SYS and act.flags & SA_RESTART):
            self.restart_syscall(cpu)
        else:
            self.state.interrupted = None
            self.state.restart_block = None

    def fault_siginfo(self, fault: GuestFault, pc: int) -> bytes:
        """The ``siginfo_t`` Linux builds for a synchronous fault."""
        if isinstance(fault, MemoryFault):
            code = SEGV_ACCERR if self.mem.is_mapped(fault.address, 1) else SEGV_MAPERR
            return make_siginfo(fault.signo, code, addr=fault.address)
        if isinstance(fault, IllegalInstruction):
            return make_siginfo(fault.signo, ILL_ILLOPC, addr=pc)
        if isinstance(fault, Breakpoint):
            return make_siginfo(SIGTRAP, TRAP_BRKPT, addr=pc)
        # any other fault says its own si_code (BUS_ADRALN, FPE_INTDIV, a front end's trap code) and,
        # when it has one, the data address it faulted on (si_addr), as Linux reports them
        address = getattr(fault, "address", None)
        return make_siginfo(fault.signo, int(getattr(fault, "si_code", 0)), addr=pc if address is None else address)

    def deliver_fault(self, cpu: Any, fault: GuestFault) -> None:
        """Force the fault's signal: a handler runs if installed and unblocked, else the process dies."""
        signo = fault.signo
        pc = fault.pc if fault.pc is not None else cpu.pc
        cpu.pc = pc
        act = self.state.signals.action(signo)
        self.log.debug("guest_fault", fault=str(fault), signal=signal_name(signo))
        if act.handler in (SIG_DFL, SIG_IGN) or self.state.signals.blocked & sigbit(signo):
            raise GuestExit(signal=signo)
        self.deliver(cpu, signo, self.fault_siginfo(fault, pc))

    def deliver(self, cpu: Any, signo: int, siginfo: bytes) -> None:
        """Deliver ``signo`` now: ignore it, end the process, or build a frame and enter its handler."""
        signals = self.state.signals
        act = signals.action(signo)
        if act.handler == SIG_IGN:
            return
        if act.handler == SIG_DFL:
            if signo in DEFAULT_IGNORED:
                return
            if signo in DEFAULT_STOP:
                self.log.info("stopped_by_signal", signal=signal_name(signo))
                os.kill(os.getpid(), SIGSTOP)  # the VM process stops; SIGCONT resumes the guest here
                return
            raise GuestExit(signal=signo)
        sp = cpu.regs[self.abi.sp_register]
        altstack = (signals.altstack[0], signals.altstack_flags(sp), signals.altstack[2])
        frame_sp = sp
        if act.flags & SA_ONSTACK and altstack[1] == 0:
            frame_sp = signals.altstack[0] + signals.altstack[2]
        restorer = act.restorer or self.state.sigreturn_trampoline
        self.settle_interrupted(cpu, act)
        old_mask = signals.blocked if signals.saved_mask is None else signals.saved_mask
        signals.saved_mask = None
        try:
            self.abi.signal_frames.push_frame(
                cpu, sp=frame_sp, signo=signo, siginfo=siginfo, old_mask=old_mask,
                altstack=altstack, handler=act.handler, restorer=restorer,
            )
        except MemoryFault:  # no room for the frame: Linux forces SIGSEGV with the default action
            raise GuestExit(signal=SIGSEGV) from None
        blocked = signals.blocked | act.mask
        if not act.flags & SA_NODEFER:
            blocked |= sigbit(signo)
        signals.set_blocked(blocked)
        if act.flags & SA_RESETHAND:
            signals.actions[signo] = SigAction()
            self.state.host_signals.mirror(signo, SigAction())
        self.log.debug("signal_delivered", signal=signal_name(signo), handler=hex(act.handler))

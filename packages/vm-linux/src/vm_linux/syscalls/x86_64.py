"""The x86-64 Linux ABI: system-call numbers, registers, ``struct stat``, ``arch_prctl`` and signal frames.

The number table was generated from the host's ``<asm/unistd_64.h>``
(Debian's linux-libc-dev). The system-call number is in rax, the arguments
in rdi, rsi, rdx, r10, r8, r9, the result in rax; the ``syscall``
instruction itself leaves the return address in rcx and rflags in r11, which
is all the kernel "clobbers". Legacy calls that other ISAs only have as
``*at`` variants (``open``, ``stat``, ``access``, ``pipe``, ``dup2``,
``unlink``, ``mkdir``, ``rename``...) are served by the shared ``*at``
handlers with ``AT_FDCWD``.

The register file of an x86-64 guest CPU (the 16 general registers, rflags,
the FS and GS bases; ``pc`` is rip) is the ISA's :class:`~vm_core.arch.ArchInfo`
(``vm_translate.x86_64.archinfo``), which also names the system-call registers
and the start state; :func:`x86_64_abi` and the signal frames look indices up there.
``arch_prctl(ARCH_SET_FS/GS, ...)`` sets the base registers, which the
engine (vm-accel's KVM runner) loads into the CPU before it resumes.

``struct stat`` is x86-64's own 144-byte layout (``nlink`` before ``mode``),
not asm-generic's. Signal frames follow arch/x86/kernel/signal_64.c: a
128-byte red zone is skipped, the FXSAVE image goes 64-byte aligned below
it, then the ``rt_sigframe`` (``pretcode``, ``ucontext``, ``siginfo``) with
``rsp`` at ``pretcode`` (the ``SA_RESTORER`` address glibc always passes).
"""

from __future__ import annotations

import errno
import os
import struct
import time
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from vm_core.arch import ArchInfo

from vm_linux.abi import LinuxAbi
from vm_linux.cpu import GuestCpu
from vm_linux.guest_errno import GuestErrno
from vm_linux.state import AT_FDCWD, ProcessState
from vm_linux.syscalls.registry import HANDLERS, MASK64, s32, syscall

#: What a user may change in rflags through sigreturn (the kernel's FIX_EFLAGS).
RFLAGS_USER_MASK = 0x00000001 | 0x4 | 0x10 | 0x40 | 0x80 | 0x100 | 0x400 | 0x800 | 0x40000 | 0x200000

ARCH_SET_GS, ARCH_SET_FS, ARCH_GET_FS, ARCH_GET_GS = 0x1001, 0x1002, 0x1003, 0x1004

X86_64_SYSCALLS: dict[int, str] = {
    0: "read", 1: "write", 2: "open", 3: "close", 4: "stat", 5: "fstat", 6: "lstat", 7: "poll", 8: "lseek",
    9: "mmap", 10: "mprotect", 11: "munmap", 12: "brk", 13: "rt_sigaction", 14: "rt_sigprocmask",
    15: "rt_sigreturn", 16: "ioctl", 17: "pread64", 18: "pwrite64", 19: "readv", 20: "writev", 21: "access",
    22: "pipe", 23: "select", 24: "sched_yield", 25: "mremap", 26: "msync", 27: "mincore", 28: "madvise",
    29: "shmget", 30: "shmat", 31: "shmctl", 32: "dup", 33: "dup2", 34: "pause", 35: "nanosleep",
    36: "getitimer", 37: "alarm", 38: "setitimer", 39: "getpid", 40: "sendfile", 41: "socket",
    42: "connect", 43: "accept", 44: "sendto", 45: "recvfrom", 46: "sendmsg", 47: "recvmsg", 48: "shutdown",
    49: "bind", 50: "listen", 51: "getsockname", 52: "getpeername", 53: "socketpair", 54: "setsockopt",
    55: "getsockopt", 56: "clone", 57: "fork", 58: "vfork", 59: "execve", 60: "exit", 61: "wait4",
    62: "kill", 63: "uname", 64: "semget", 65: "semop", 66: "semctl", 67: "shmdt", 68: "msgget",
    69: "msgsnd", 70: "msgrcv", 71: "msgctl", 72: "fcntl", 73: "flock", 74: "fsync", 75: "fdatasync",
    76: "truncate", 77: "ftruncate", 78: "getdents", 79: "getcwd", 80: "chdir", 81: "fchdir", 82: "rename",
    83: "mkdir", 84: "rmdir", 85: "creat", 86: "link", 87: "unlink", 88: "symlink", 89: "readlink",
    90: "chmod", 91: "fchmod", 92: "chown", 93: "fchown", 94: "lchown", 95: "umask", 96: "gettimeofday",
    97: "getrlimit", 98: "getrusage", 99: "sysinfo", 100: "times", 101: "ptrace", 102: "getuid",
    103: "syslog", 104: "getgid", 105: "setuid", 106: "setgid", 107: "geteuid", 108: "getegid",
    109: "setpgid", 110: "getppid", 111: "getpgrp", 112: "setsid", 113: "setreuid", 114: "setregid",
    115: "getgroups", 116: "setgroups", 117: "setresuid", 118: "getresuid", 119: "setresgid",
    120: "getresgid", 121: "getpgid", 122: "setfsuid", 123: "setfsgid", 124: "getsid", 125: "capget",
    126: "capset", 127: "rt_sigpending", 128: "rt_sigtimedwait", 129: "rt_sigqueueinfo",
    130: "rt_sigsuspend", 131: "sigaltstack", 132: "utime", 133: "mknod", 134: "uselib", 135: "personality",
    136: "ustat", 137: "statfs", 138: "fstatfs", 139: "sysfs", 140: "getpriority", 141: "setpriority",
    142: "sched_setparam", 143: "sched_getparam", 144: "sched_setscheduler", 145: "sched_getscheduler",
    146: "sched_get_priority_max", 147: "sched_get_priority_min", 148: "sched_rr_get_interval",
    149: "mlock", 150: "munlock", 151: "mlockall", 152: "munlockall", 153: "vhangup", 154: "modify_ldt",
    155: "pivot_root", 156: "_sysctl", 157: "prctl", 158: "arch_prctl", 159: "adjtimex", 160: "setrlimit",
    161: "chroot", 162: "sync", 163: "acct", 164: "settimeofday", 165: "mount", 166: "umount2",
    167: "swapon", 168: "swapoff", 169: "reboot", 170: "sethostname", 171: "setdomainname", 172: "iopl",
    173: "ioperm", 174: "create_module", 175: "init_module", 176: "delete_module", 177: "get_kernel_syms",
    178: "query_module", 179: "quotactl", 180: "nfsservctl", 181: "getpmsg", 182: "putpmsg",
    183: "afs_syscall", 184: "tuxcall", 185: "security", 186: "gettid", 187: "readahead", 188: "setxattr",
    189: "lsetxattr", 190: "fsetxattr", 191: "getxattr", 192: "lgetxattr", 193: "fgetxattr",
    194: "listxattr", 195: "llistxattr", 196: "flistxattr", 197: "removexattr", 198: "lremovexattr",
    199: "fremovexattr", 200: "tkill", 201: "time", 202: "futex", 203: "sched_setaffinity",
    204: "sched_getaffinity", 205: "set_thread_area", 206: "io_setup", 207: "io_destroy",
    208: "io_getevents", 209: "io_submit", 210: "io_cancel", 211: "get_thread_area", 212: "lookup_dcookie",
    213: "epoll_create", 214: "epoll_ctl_old", 215: "epoll_wait_old", 216: "remap_file_pages",
    217: "getdents64", 218: "set_tid_address", 219: "restart_syscall", 220: "semtimedop", 221: "fadvise64",
    222: "timer_create", 223: "timer_settime", 224: "timer_gettime", 225: "timer_getoverrun",
    226: "timer_delete", 227: "clock_settime", 228: "clock_gettime", 229: "clock_getres",
    230: "clock_nanosleep", 231: "exit_group", 232: "epoll_wait", 233: "epoll_ctl", 234: "tgkill",
    235: "utimes", 236: "vserver", 237: "mbind", 238: "set_mempolicy", 239: "get_mempolicy", 240: "mq_open",
    241: "mq_unlink", 242: "mq_timedsend", 243: "mq_timedreceive", 244: "mq_notify", 245: "mq_getsetattr",
    246: "kexec_load", 247: "waitid", 248: "add_key", 249: "request_key", 250: "keyctl", 251: "ioprio_set",
    252: "ioprio_get", 253: "inotify_init", 254: "inotify_add_watch", 255: "inotify_rm_watch",
    256: "migrate_pages", 257: "openat", 258: "mkdirat", 259: "mknodat", 260: "fchownat", 261: "futimesat",
    262: "newfstatat", 263: "unlinkat", 264: "renameat", 265: "linkat", 266: "symlinkat", 267: "readlinkat",
    268: "fchmodat", 269: "faccessat", 270: "pselect6", 271: "ppoll", 272: "unshare",
    273: "set_robust_list", 274: "get_robust_list", 275: "splice", 276: "tee", 277: "sync_file_range",
    278: "vmsplice", 279: "move_pages", 280: "utimensat", 281: "epoll_pwait", 282: "signalfd",
    283: "timerfd_create", 284: "eventfd", 285: "fallocate", 286: "timerfd_settime", 287: "timerfd_gettime",
    288: "accept4", 289: "signalfd4", 290: "eventfd2", 291: "epoll_create1", 292: "dup3", 293: "pipe2",
    294: "inotify_init1", 295: "preadv", 296: "pwritev", 297: "rt_tgsigqueueinfo", 298: "perf_event_open",
    299: "recvmmsg", 300: "fanotify_init", 301: "fanotify_mark", 302: "prlimit64", 303: "name_to_handle_at",
    304: "open_by_handle_at", 305: "clock_adjtime", 306: "syncfs", 307: "sendmmsg", 308: "setns",
    309: "getcpu", 310: "process_vm_readv", 311: "process_vm_writev", 312: "kcmp", 313: "finit_module",
    314: "sched_setattr", 315: "sched_getattr", 316: "renameat2", 317: "seccomp", 318: "getrandom",
    319: "memfd_create", 320: "kexec_file_load", 321: "bpf", 322: "execveat", 323: "userfaultfd",
    324: "membarrier", 325: "mlock2", 326: "copy_file_range", 327: "preadv2", 328: "pwritev2",
    329: "pkey_mprotect", 330: "pkey_alloc", 331: "pkey_free", 332: "statx", 333: "io_pgetevents",
    334: "rseq", 424: "pidfd_send_signal", 425: "io_uring_setup", 426: "io_uring_enter",
    427: "io_uring_register", 428: "open_tree", 429: "move_mount", 430: "fsopen", 431: "fsconfig",
    432: "fsmount", 433: "fspick", 434: "pidfd_open", 435: "clone3", 436: "close_range", 437: "openat2",
    438: "pidfd_getfd", 439: "faccessat2", 440: "process_madvise", 441: "epoll_pwait2",
    442: "mount_setattr", 443: "quotactl_fd", 444: "landlock_create_ruleset", 445: "landlock_add_rule",
    446: "landlock_restrict_self", 447: "memfd_secret", 448: "process_mrelease", 449: "futex_waitv",
    450: "set_mempolicy_home_node",
}

_STAT = struct.Struct("<QQQIIIIQqqqQQQQQQqqq")  # 144 bytes
_AT_FDCWD = AT_FDCWD & MASK64
_AT_SYMLINK_NOFOLLOW = 0x100
_AT_REMOVEDIR = 0x200
_O_WRONLY_CREAT_TRUNC = 0o1 | 0o100 | 0o1000
_F_GETFD = 1


def pack_x86_64_stat(st: os.stat_result) -> bytes:
    """x86-64 ``struct stat`` (144 bytes) from a host stat result."""
    a, m, c = (divmod(ns, 1_000_000_000) for ns in (st.st_atime_ns, st.st_mtime_ns, st.st_ctime_ns))
    return _STAT.pack(
        st.st_dev & MASK64, st.st_ino & MASK64, st.st_nlink, st.st_mode, st.st_uid, st.st_gid, 0,
        st.st_rdev & MASK64, st.st_size, st.st_blksize, st.st_blocks,
        a[0] & MASK64, a[1], m[0] & MASK64, m[1], c[0] & MASK64, c[1], 0, 0, 0,
    )  # fmt: skip


@syscall("arch_prctl")
def sys_arch_prctl(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    """FS/GS base get and set; every other code is EINVAL (as on a kernel without CET or AMX)."""
    code, arg = s32(a[0]), a[1]
    arch = st.abi.arch
    if code in (ARCH_SET_FS, ARCH_SET_GS):
        if arg >= arch.user_address_limit:  # the kernel's TASK_SIZE_MAX
            raise GuestErrno(errno.EPERM)
        cpu.regs[arch.index("fs_base" if code == ARCH_SET_FS else "gs_base")] = arg
        return 0
    if code in (ARCH_GET_FS, ARCH_GET_GS):
        base = cpu.regs[arch.index("fs_base" if code == ARCH_GET_FS else "gs_base")]
        st.mem.write(arg, struct.pack("<Q", base))
        return 0
    raise GuestErrno(errno.EINVAL)


def _via(target: str, st: ProcessState, cpu: Any, args: Sequence[int]) -> int | None:
    return HANDLERS[target](st, cpu, list(args) + [0] * (6 - len(args)))


@syscall("open")
def sys_open(st: ProcessState, cpu: Any, a: Sequence[int]) -> int | None:
    return _via("openat", st, cpu, [_AT_FDCWD, a[0], a[1], a[2]])


@syscall("creat")
def sys_creat(st: ProcessState, cpu: Any, a: Sequence[int]) -> int | None:
    return _via("openat", st, cpu, [_AT_FDCWD, a[0], _O_WRONLY_CREAT_TRUNC, a[1]])


@syscall("stat")
def sys_stat(st: ProcessState, cpu: Any, a: Sequence[int]) -> int | None:
    return _via("newfstatat", st, cpu, [_AT_FDCWD, a[0], a[1], 0])


@syscall("lstat")
def sys_lstat(st: ProcessState, cpu: Any, a: Sequence[int]) -> int | None:
    return _via("newfstatat", st, cpu, [_AT_FDCWD, a[0], a[1], _AT_SYMLINK_NOFOLLOW])


@syscall("access")
def sys_access(st: ProcessState, cpu: Any, a: Sequence[int]) -> int | None:
    return _via("faccessat", st, cpu, [_AT_FDCWD, a[0], a[1]])


@syscall("pipe")
def sys_pipe(st: ProcessState, cpu: Any, a: Sequence[int]) -> int | None:
    return _via("pipe2", st, cpu, [a[0], 0])


@syscall("dup2")
def sys_dup2(st: ProcessState, cpu: Any, a: Sequence[int]) -> int | None:
    if s32(a[0]) == s32(a[1]):  # dup2(fd, fd) only checks that fd is open
        _via("fcntl", st, cpu, [a[0], _F_GETFD])
        return s32(a[1])
    return _via("dup3", st, cpu, [a[0], a[1], 0])


@syscall("readlink")
def sys_readlink(st: ProcessState, cpu: Any, a: Sequence[int]) -> int | None:
    return _via("readlinkat", st, cpu, [_AT_FDCWD, a[0], a[1], a[2]])


@syscall("unlink")
def sys_unlink(st: ProcessState, cpu: Any, a: Sequence[int]) -> int | None:
    return _via("unlinkat", st, cpu, [_AT_FDCWD, a[0], 0])


@syscall("rmdir")
def sys_rmdir(st: ProcessState, cpu: Any, a: Sequence[int]) -> int | None:
    return _via("unlinkat", st, cpu, [_AT_FDCWD, a[0], _AT_REMOVEDIR])


@syscall("mkdir")
def sys_mkdir(st: ProcessState, cpu: Any, a: Sequence[int]) -> int | None:
    return _via("mkdirat", st, cpu, [_AT_FDCWD, a[0], a[1]])


@syscall("rename")
def sys_rename(st: ProcessState, cpu: Any, a: Sequence[int]) -> int | None:
    return _via("renameat", st, cpu, [_AT_FDCWD, a[0], _AT_FDCWD, a[1]])


@syscall("link")
def sys_link(st: ProcessState, cpu: Any, a: Sequence[int]) -> int | None:
    return _via("linkat", st, cpu, [_AT_FDCWD, a[0], _AT_FDCWD, a[1], 0])


@syscall("symlink")
def sys_symlink(st: ProcessState, cpu: Any, a: Sequence[int]) -> int | None:
    return _via("symlinkat", st, cpu, [a[0], _AT_FDCWD, a[1]])


@syscall("chmod")
def sys_chmod(st: ProcessState, cpu: Any, a: Sequence[int]) -> int | None:
    return _via("fchmodat", st, cpu, [_AT_FDCWD, a[0], a[1]])


@syscall("chown")
def sys_chown(st: ProcessState, cpu: Any, a: Sequence[int]) -> int | None:
    return _via("fchownat", st, cpu, [_AT_FDCWD, a[0], a[1], a[2], 0])


@syscall("lchown")
def sys_lchown(st: ProcessState, cpu: Any, a: Sequence[int]) -> int | None:
    return _via("fchownat", st, cpu, [_AT_FDCWD, a[0], a[1], a[2], _AT_SYMLINK_NOFOLLOW])


@syscall("mknod")
def sys_mknod(st: ProcessState, cpu: Any, a: Sequence[int]) -> int | None:
    return _via("mknodat", st, cpu, [_AT_FDCWD, a[0], a[1], a[2]])


@syscall("time")
def sys_time(st: ProcessState, cpu: Any, a: Sequence[int]) -> int:
    now = time.time_ns() // 1_000_000_000
    if a[0]:
        st.mem.write(a[0], struct.pack("<q", now))
    return now


# ---------------------------------------------------------------------- signal frames

FXSAVE_SIZE = 512
REDZONE = 128
UC_SIGCONTEXT_SS = 0x2
UC_STRICT_RESTORE_SS = 0x4
USER_CS = 0x33
USER_SS = 0x2B
UC_OFFSET = 8  # after pretcode
UC_STACK_OFFSET = UC_OFFSET + 16
SIGCONTEXT_OFFSET = UC_OFFSET + 40
UC_SIGMASK_OFFSET = SIGCONTEXT_OFFSET + 256
SIGINFO_OFFSET = UC_SIGMASK_OFFSET + 8
RT_SIGFRAME_SIZE = SIGINFO_OFFSET + 128  # 440
#: sigcontext order: r8..r15, rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp (then rip, eflags).
SIGCONTEXT_GPRS = ("r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
                   "rdi", "rsi", "rbp", "rbx", "rdx", "rax", "rcx", "rsp")  # fmt: skip
_SIGCONTEXT = struct.Struct("<18QHHHHQQQQQ")  # ... eflags, cs gs fs ss, err, trapno, oldmask, cr2, fpstate
#: ``syscall`` (rax = 15, rt_sigreturn): the restorer of a handler installed without SA_RESTORER.
SIGRETURN_TRAMPOLINE = bytes.fromhex("b80f0000000f05")


@runtime_checkable
class FxsaveCpu(Protocol):
    """A CPU that can hand out and take back its x87/SSE state as a 512-byte FXSAVE image."""

    def save_fpu_image(self) -> bytes: ...

    def load_fpu_image(self, image: bytes) -> None: ...


class X86_64SignalFrames:
    """:class:`vm_linux.abi.SignalFrameCodec` for x86-64 (see the module docstring), on ``arch``'s register file."""

    frame_size = RT_SIGFRAME_SIZE + FXSAVE_SIZE + REDZONE + 64
    trampoline_code = SIGRETURN_TRAMPOLINE

    def __init__(self, arch: ArchInfo) -> None:
        self._sigcontext = arch.indices(*SIGCONTEXT_GPRS)
        self._rsp, self._rdi, self._rsi, self._rdx, self._rax = arch.indices("rsp", "rdi", "rsi", "rdx", "rax")
        self._rflags = arch.index("rflags")

    def push_frame(
        self, cpu: GuestCpu, *, sp: int, signo: int, siginfo: bytes, old_mask: int,
        altstack: tuple[int, int, int], handler: int, restorer: int,
    ) -> None:
        """Write the frame below ``sp`` and point the CPU at ``handler`` (raises MemoryFault)."""
        regs = cpu.regs
        top = sp - REDZONE if sp == regs[self._rsp] else sp  # no red zone to keep on a fresh altstack
        fpstate = (top - FXSAVE_SIZE) & ~63
        frame = ((fpstate - RT_SIGFRAME_SIZE) & ~15) - 8
        image = cpu.save_fpu_image() if isinstance(cpu, FxsaveCpu) else bytes(FXSAVE_SIZE)
        ss_sp, ss_flags, ss_size = altstack
        gprs = [regs[i] & MASK64 for i in self._sigcontext]
        sigcontext = _SIGCONTEXT.pack(
            *gprs, cpu.pc & MASK64, regs[self._rflags] & MASK64, USER_CS, 0, 0, USER_SS, 0, 0,
            old_mask & MASK64, 0, fpstate,
        ).ljust(256, b"\0")
        head = struct.pack("<QQQQiiQ", restorer, UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS, 0, ss_sp, ss_flags, 0,
                           ss_size)  # fmt: skip
        cpu.mem.write(fpstate, image)
        cpu.mem.write(frame, head + sigcontext + struct.pack("<Q", old_mask & MASK64) + siginfo)
        regs[self._rsp] = frame
        regs[self._rdi] = signo
        regs[self._rsi] = frame + SIGINFO_OFFSET
        regs[self._rdx] = frame + UC_OFFSET
        regs[self._rax] = 0
        regs[self._rflags] &= ~(0x100 | 0x400 | 0x40000)  # TF, DF, AC cleared for the handler
        cpu.pc = handler

    def pop_frame(self, cpu: GuestCpu) -> tuple[int, tuple[int, int, int]]:
        """Restore the registers saved in the frame ``rsp - 8`` (the handler returned through pretcode)."""
        frame = (cpu.regs[self._rsp] - 8) & MASK64
        raw = cpu.mem.read(frame + UC_STACK_OFFSET, SIGINFO_OFFSET - UC_STACK_OFFSET)
        ss_sp, ss_flags, _pad, ss_size = struct.unpack_from("<QiiQ", raw, 0)
        fields = _SIGCONTEXT.unpack_from(raw, SIGCONTEXT_OFFSET - UC_STACK_OFFSET)
        (mask,) = struct.unpack_from("<Q", raw, UC_SIGMASK_OFFSET - UC_STACK_OFFSET)
        fpstate = fields[-1]
        image = cpu.mem.read(fpstate, FXSAVE_SIZE) if fpstate else None
        regs = cpu.regs
        for index, value in zip(self._sigcontext, fields[:16], strict=True):
            regs[index] = value
        cpu.pc = fields[16]
        regs[self._rflags] = (regs[self._rflags] & ~RFLAGS_USER_MASK) | (fields[17] & RFLAGS_USER_MASK)
        if image is not None and isinstance(cpu, FxsaveCpu):
            cpu.load_fpu_image(image)
        return mask, (ss_sp, ss_flags, ss_size)


def x86_64_abi(arch: ArchInfo) -> LinuxAbi:
    """The x86-64 Linux ABI on the register file and facts of ``arch`` (x86-64's ArchInfo)."""
    return LinuxAbi(
        arch=arch,
        syscall_names=X86_64_SYSCALLS,
        uname_machine="x86_64",
        syscall_insn_length=2,
        epoll_event_packed=True,
        pack_stat=pack_x86_64_stat,
        signal_frames=X86_64SignalFrames(arch),
        sigaction_has_restorer=True,
        minsigstksz=2048,
        at_minsigstksz=RT_SIGFRAME_SIZE + FXSAVE_SIZE + 64,
    )

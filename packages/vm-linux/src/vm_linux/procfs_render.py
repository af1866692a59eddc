"""The bytes of the virtual /proc files, rendered from a guest process's state (:class:`ProcSource`).

Formats and where each fact comes from:

``maps``
    qemu-riscv64 7.2's column format (``linux-user/syscall.c``
    ``open_self_maps``): ``%x-%x`` addresses without zero padding, ``rwxp``,
    ``%08x`` offset, ``%02x:%02x`` device, decimal inode, then blanks up to
    column 73 and the name; unnamed lines keep the blanks, as qemu prints
    them. (Linux itself zero-pads addresses to 8 digits and ends an unnamed
    line after the inode; the columns a parser reads are the same.) Ranges
    come from the guest address space, split where the program's file pages
    end: the program's segments name its *guest* path with the program file's
    device and inode; the other ranges are anonymous and named as Linux names
    them (``show_map_vma``): ``[heap]`` when the range touches
    ``[start_brk, brk]``, ``[stack]`` when it holds the initial stack
    pointer. vm has no ``[vdso]``/``[vvar]``; its signal-return page shows as
    the anonymous ``r-xp`` page it is. ``MAP_SHARED`` file mappings are
    ``s``; vm does not keep the names of ``mmap``-ed files, so they and
    private file mappings show without a name.
``stat``, ``statm``, ``status``
    Linux's formats (``fs/proc/array.c``, ``task_mmu.c``, 52 ``stat``
    fields); every value is listed in :func:`render_stat` and
    :func:`render_status`.
``cmdline``, ``environ``
    read from the guest's memory between the argument (environment) area's
    start and end, as Linux does, so a program that rewrites its ``argv``
    strings sees the change; ``cmdline`` follows Linux's ``setproctitle``
    rule (a non-NUL last byte continues into the environment area).
``auxv``
    the auxiliary vector vm built, ``AT_NULL`` pair included (Linux's saved
    copy, not the stack's).
``cpuinfo``
    riscv's format (``arch/riscv/kernel/cpu.c``, Linux 6.6+): one entry per
    CPU; the ISA string is what vm executes (RV64IMAFDC with Zicntr, Zicsr,
    Zifencei), ``mmu`` is ``sv39`` (vm's user address space is 39-bit), the
    ids are 0 (an implementation with no vendor id). qemu 7.2 does not
    emulate this file for riscv (it shows the host's), so Linux is the model.
``meminfo``
    ``MemTotal``, ``MemFree``, ``MemAvailable`` only, in Linux's column
    format, from the numbers given (the host's, or a memory limit).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Sequence

import attrs
from vm_mem import PAGE_SHIFT, PAGE_SIZE, PROT_EXEC, PROT_READ, PROT_WRITE, page_round_up

from vm_linux.procfs_source import ProcSource
from vm_linux.signals import SIG_DFL, SIG_IGN, sigbit
from vm_linux.stack import CLOCK_TICKS

RLIMIT_RSS = 5
RLIMIT_SIGPENDING = 11
MAPS_NAME_COLUMN = 73
EXIT_SIGNAL_SIGCHLD = 17
RISCV64_ISA = "rv64imafdc_zicntr_zicsr_zifencei"
RISCV64_MMU = "sv39"
_KIB_PER_PAGE = PAGE_SIZE // 1024


@attrs.frozen
class MapEntry:
    """One line of /proc/PID/maps."""

    start: int
    end: int
    prot: int
    shared: bool
    offset: int
    device: int
    inode: int
    name: str
    file_backed: bool

    @property
    def pages(self) -> int:
        return (self.end - self.start) >> PAGE_SHIFT


@attrs.frozen
class _Region:
    """A labelled guest range: the program's file pages, or a shared file mapping."""

    start: int
    end: int
    offset: int
    shared: bool
    file_backed: bool


def _file_regions(source: ProcSource) -> list[_Region]:
    regions: list[_Region] = []
    image = source.exec_image
    if image is not None:
        for seg in image.program.segments:
            lead = seg.vaddr - seg.start
            file_end = min(seg.end, seg.start + page_round_up(lead + seg.filesz)) if lead + seg.filesz else seg.start
            if file_end > seg.start:
                regions.append(_Region(seg.start, file_end, seg.offset, shared=False, file_backed=True))
    for start, end in source.shared_file_ranges:
        regions.append(_Region(start, end, 0, shared=True, file_backed=False))
    return sorted(regions, key=lambda r: r.start)


def _pieces(source: ProcSource) -> Iterable[tuple[int, int, int, _Region | None]]:
    """The mapped ranges cut at the labelled regions' edges: ``(start, end, prot, region or None)``."""
    regions = _file_regions(source)
    for start, end, prot in source.mem.mappings():
        cursor = start
        while cursor < end:
            region = next((r for r in regions if r.start <= cursor < r.end), None)
            if region is not None:
                stop = min(end, region.end)
            else:
                stop = min([end, *(r.start for r in regions if cursor < r.start)])
            yield cursor, stop, prot, region
            cursor = stop


def map_entries(source: ProcSource) -> list[MapEntry]:
    """The guest's mappings as /proc/PID/maps lists them (see the module docstring)."""
    exe_name = source.exe_guest_path() if source.exec_image is not None else ""
    device, inode = source.exe_identity() if source.exec_image is not None else (0, 0)
    merged: list[MapEntry] = []
    for start, end, prot, region in _pieces(source):
        if region is not None and region.file_backed:
            entry = MapEntry(start, end, prot, False, region.offset + (start - region.start), device, inode,
                             exe_name, True)
        else:
            entry = MapEntry(start, end, prot, region is not None and region.shared, 0, 0, 0, "", False)
        last = merged[-1] if merged else None
        if (
            last is not None and last.end == start and last.prot == prot and last.shared == entry.shared
            and last.file_backed == entry.file_backed
            and (not entry.file_backed or last.offset + (last.end - last.start) == entry.offset)
        ):
            merged[-1] = attrs.evolve(last, end=end)
        else:
            merged.append(entry)
    return [attrs.evolve(e, name=_anonymous_name(source, e)) if not e.file_backed else e for e in merged]


def _anonymous_name(source: ProcSource, entry: MapEntry) -> str:
    mem = source.mem
    if mem.brk_start is not None and entry.start <= mem.brk_current and entry.end >= mem.brk_start:
        return "[heap]"
    image = source.exec_image
    if image is not None and entry.start <= image.stack.sp <= entry.end:
        return "[stack]"
    return ""


def format_maps_line(entry: MapEntry) -> str:
    """One maps line in qemu-riscv64 7.2's format (blanks to column 73, then the name)."""
    prefix = "{:x}-{:x} {}{}{}{} {:08x} {:02x}:{:02x} {}".format(
        entry.start, entry.end,
        "r" if entry.prot & PROT_READ else "-",
        "w" if entry.prot & PROT_WRITE else "-",
        "x" if entry.prot & PROT_EXEC else "-",
        "s" if entry.shared else "p",
        entry.offset, os.major(entry.device), os.minor(entry.device), entry.inode,
    )
    return prefix + " " * abs(MAPS_NAME_COLUMN - len(prefix)) + entry.name + "\n"


def render_maps(source: ProcSource) -> bytes:
    return os.fsencode("".join(format_maps_line(e) for e in map_entries(source)))


# ---------------------------------------------------------------------- argv, environ, auxv


def _read_guest(source: ProcSource, start: int, end: int) -> bytes:
    """Guest bytes ``[start, end)``; as far as they are readable (Linux stops at the first fault)."""
    if end <= start:
        return b""
    try:
        return bytes(source.mem.read(start, end - start))
    except Exception:  # a fault part-way: return the readable prefix page by page
        out = bytearray()
        cursor = start
        while cursor < end:
            stop = min(end, (cursor & ~(PAGE_SIZE - 1)) + PAGE_SIZE)
            try:
                out += source.mem.read(cursor, stop - cursor)
            except Exception:
                break
            cursor = stop
        return bytes(out)


def argument_areas(source: ProcSource) -> tuple[int, int, int, int]:
    """``(arg_start, arg_end, env_start, env_end)`` as Linux's ``mm`` records them (0s without an image)."""
    image = source.exec_image
    if image is None:
        return (0, 0, 0, 0)
    stack = image.stack
    env_end = stack.execfn_addr
    env_start = stack.envp[0] if stack.envp else env_end
    arg_start = stack.argv[0] if stack.argv else env_start
    return (arg_start, env_start, env_start, env_end)


def render_cmdline(source: ProcSource) -> bytes:
    arg_start, arg_end, env_start, env_end = argument_areas(source)
    args = _read_guest(source, arg_start, arg_end)
    if args and args[-1] != 0:  # setproctitle: the arguments ran on into the environment area
        more = _read_guest(source, env_start, env_end)
        cut = more.find(b"\0")
        return args + (more if cut < 0 else more[:cut])
    return args


def render_environ(source: ProcSource) -> bytes:
    _arg_start, _arg_end, env_start, env_end = argument_areas(source)
    return _read_guest(source, env_start, env_end)


def render_auxv(source: ProcSource) -> bytes:
    image = source.exec_image
    if image is None:
        return b""
    return b"".join(struct.pack("<QQ", key, value) for key, value in image.stack.auxv)


# ---------------------------------------------------------------------- memory accounting


@attrs.frozen
class MemoryCounts:
    """Linux's ``mm`` counters, in pages, from the maps entries (vm backs every mapped page: rss = total)."""

    total: int
    file: int
    anon: int
    stack: int
    data: int
    exec: int
    text: int
    start_code: int
    end_code: int
    start_data: int
    end_data: int


def memory_counts(source: ProcSource, entries: Sequence[MapEntry] | None = None) -> MemoryCounts:
    entries = map_entries(source) if entries is None else entries
    total = sum(e.pages for e in entries)
    file = sum(e.pages for e in entries if e.file_backed or e.shared)
    stack = sum(e.pages for e in entries if e.name == "[stack]")
    data = sum(e.pages for e in entries if e.prot & PROT_WRITE and not e.shared and e.name != "[stack]")
    exec_pages = sum(
        e.pages for e in entries if e.prot & PROT_EXEC and not e.prot & PROT_WRITE and e.name != "[stack]"
    )
    start_code = end_code = start_data = end_data = 0
    image = source.exec_image
    if image is not None:
        segments = image.program.segments
        code = [s for s in segments if s.prot & PROT_EXEC]
        start_code = min((s.vaddr for s in code), default=0)
        end_code = max((s.vaddr + s.filesz for s in code), default=0)
        start_data = max((s.vaddr for s in segments), default=0)
        end_data = max((s.vaddr + s.filesz for s in segments), default=0)
    text = (page_round_up(end_code) - (start_code & ~(PAGE_SIZE - 1))) >> PAGE_SHIFT if end_code else 0
    return MemoryCounts(
        total=total, file=file, anon=total - file, stack=stack, data=data, exec=exec_pages,
        text=min(text, exec_pages), start_code=start_code, end_code=end_code,
        start_data=start_data, end_data=end_data,
    )


def render_statm(source: ProcSource) -> bytes:
    """``size resident shared text lib data dt`` in pages (lib and dt are always 0 since Linux 2.6)."""
    m = memory_counts(source)
    return f"{m.total} {m.total} {m.file} {m.text} 0 {m.data + m.stack} 0\n".encode()


# ---------------------------------------------------------------------- stat and status


def _signal_masks(source: ProcSource) -> tuple[int, int, int, int]:
    """``(pending, blocked, ignored, caught)`` as 64-bit sigset masks."""
    signals = source.signals
    pending = 0
    for signo in signals.pending:
        pending |= sigbit(signo)
    ignored = caught = 0
    for signo, action in signals.actions.items():
        if action.handler == SIG_IGN:
            ignored |= sigbit(signo)
        elif action.handler != SIG_DFL:
            caught |= sigbit(signo)
    return pending, signals.blocked, ignored, caught


def task_comm(source: ProcSource) -> str:
    image = source.exec_image
    if image is not None:
        return image.comm
    return os.path.basename(source.exe_guest_path())[:15]


def render_stat(source: ProcSource) -> bytes:
    """The 52 fields of /proc/PID/stat (Linux ``do_task_stat``).

    Nonzero fields: pid; comm; state ``R`` (the reader is running); ppid;
    minflt/majflt, utime/stime (``getrusage``, the CPU time of the VM running
    the guest, in clock ticks); priority 20 and nice 0 (vm has no
    ``setpriority``); num_threads 1; starttime (boot-time ticks when the
    process state was made); vsize (bytes mapped); rss (pages mapped: vm backs
    every mapped page); rsslim (``RLIMIT_RSS``); start/end code, start stack
    (the initial ``sp``); the signal masks (low 31 bits, as Linux);
    exit_signal 17; start/end data, start_brk, the argument and environment
    areas; tpgid -1 (no controlling terminal). Zero: pgrp, session, tty_nr (vm has no process groups, sessions
    or controlling terminal of its own; qemu shows 0 too), flags (no
    ``PF_RANDOMIZE``: vm does not randomise),
    child times and faults (vm has no children), itrealvalue, kstkesp/eip
    (Linux shows them only while dumping core), wchan, nswap, processor
    (vm's one hart), rt_priority, policy (``SCHED_OTHER``), block-I/O delay,
    guest times, exit_code.
    """
    usage = source.cpu_usage()
    m = memory_counts(source)
    pending, blocked, ignored, caught = _signal_masks(source)
    low = 0x7FFFFFFF
    image = source.exec_image
    start_stack = image.stack.sp if image is not None else 0
    arg_start, arg_end, env_start, env_end = argument_areas(source)
    start_brk = source.mem.brk_start or 0
    fields = [
        "R", source.ppid(), 0, 0, 0, -1, 0,
        usage.minor_faults, 0, usage.major_faults, 0,
        int(usage.user_seconds * CLOCK_TICKS), int(usage.system_seconds * CLOCK_TICKS), 0, 0,
        20, 0, 1, 0,
        source.start_boottime_ns * CLOCK_TICKS // 1_000_000_000,
        m.total * PAGE_SIZE, m.total, source.rlimit(RLIMIT_RSS)[0],
        m.start_code, m.end_code, start_stack, 0, 0,
        pending & low, blocked & low, ignored & low, caught & low,
        0, 0, 0, EXIT_SIGNAL_SIGCHLD, 0, 0, 0, 0, 0, 0,
        m.start_data, m.end_data, start_brk, arg_start, arg_end, env_start, env_end, 0,
    ]
    head = f"{source.pid} ({task_comm(source)}) "
    return (head + " ".join(str(f) for f in fields) + "\n").encode()


def _bitmap_hex(bits: Iterable[int], width: int) -> str:
    """Linux's ``%*pb``: the mask in hex, 8-digit groups separated by commas, ``width`` bits wide."""
    value = 0
    for bit in bits:
        value |= 1 << bit
    digits = max(1, (width + 3) // 4)
    text = f"{value:0{digits}x}"
    groups: list[str] = []
    while text:
        groups.insert(0, text[-8:])
        text = text[:-8]
    return ",".join(groups)


def _bitmap_list(bits: Iterable[int]) -> str:
    """Linux's ``%*pbl``: ``0-3,5`` ranges."""
    ordered = sorted(set(bits))
    parts = []
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(parts)


def fd_table_size(fds: Sequence[int]) -> int:
    """Linux's ``FDSize``: 64 slots, else 128 times a power of two holding the highest fd."""
    highest = max(fds, default=0)
    if highest < 64:
        return 64
    groups = 1
    while groups * 128 <= highest:
        groups *= 2
    return groups * 128


def render_status(source: ProcSource, *, possible_cpus: int) -> bytes:
    """/proc/PID/status in Linux 6.x's order, without the x86-only lines (``untag_mask``).

    From guest state: Name (comm), Umask, State ``R``, the pids (namespace
    lists hold the one pid; process group and session 0 as in ``stat``),
    ids and groups, FDSize (from the guest's fd table), the memory lines from
    the maps entries (VmPeak/VmHWM: the most pages mapped so far; VmRSS =
    VmSize since vm backs every mapped page; RssFile: the program's file
    pages and shared file mappings; VmLck, VmPin, VmPTE, VmSwap,
    HugetlbPages 0: vm locks, pins and swaps nothing and keeps no page
    tables), Threads 1, SigQ (pending signals / ``RLIMIT_SIGPENDING``), the
    signal masks, the capability sets, NoNewPrivs/Seccomp 0 (vm implements
    neither), speculation controls ``unknown`` (what riscv reports), the CPU
    affinity (``possible_cpus`` bits wide), one memory node, the context
    switches of ``getrusage``.
    """
    m = memory_counts(source)
    pending, blocked, ignored, caught = _signal_masks(source)
    creds = source.credentials()
    caps = source.capabilities()
    usage = source.cpu_usage()
    pid = source.pid
    cpus = source.cpus_allowed()
    peak = max(source.peak_mapped_pages, m.total)

    def kib(pages: int) -> str:
        return f"{pages * _KIB_PER_PAGE:8d} kB"

    lines = [
        ("Name", task_comm(source).replace("\\", "\\\\").replace("\n", "\\n")),
        ("Umask", f"{source.umask():04o}"),
        ("State", "R (running)"),
        ("Tgid", str(pid)), ("Ngid", "0"), ("Pid", str(pid)), ("PPid", str(source.ppid())), ("TracerPid", "0"),
        ("Uid", "\t".join(map(str, creds.uids))), ("Gid", "\t".join(map(str, creds.gids))),
        ("FDSize", str(fd_table_size(source.fd_numbers()))),
        ("Groups", " ".join(map(str, creds.groups)) + " "),  # Linux keeps a trailing blank
        ("NStgid", str(pid)), ("NSpid", str(pid)), ("NSpgid", "0"), ("NSsid", "0"), ("Kthread", "0"),
        ("VmPeak", kib(peak)), ("VmSize", kib(m.total)), ("VmLck", kib(0)), ("VmPin", kib(0)),
        ("VmHWM", kib(peak)), ("VmRSS", kib(m.total)), ("RssAnon", kib(m.anon)), ("RssFile", kib(m.file)),
        ("RssShmem", kib(0)), ("VmData", kib(m.data)), ("VmStk", kib(m.stack)), ("VmExe", kib(m.text)),
        ("VmLib", kib(m.exec - m.text)), ("VmPTE", kib(0)), ("VmSwap", kib(0)),
        ("HugetlbPages", kib(0)), ("CoreDumping", "0"), ("THP_enabled", "0"),
        ("Threads", "1"),
        ("SigQ", f"{len(source.signals.pending)}/{source.rlimit(RLIMIT_SIGPENDING)[0]}"),
        ("SigPnd", f"{pending:016x}"), ("ShdPnd", f"{0:016x}"), ("SigBlk", f"{blocked:016x}"),
        ("SigIgn", f"{ignored:016x}"), ("SigCgt", f"{caught:016x}"),
        ("CapInh", f"{caps.inheritable:016x}"), ("CapPrm", f"{caps.permitted:016x}"),
        ("CapEff", f"{caps.effective:016x}"), ("CapBnd", f"{caps.bounding:016x}"),
        ("CapAmb", f"{caps.ambient:016x}"),
        ("NoNewPrivs", "0"), ("Seccomp", "0"), ("Seccomp_filters", "0"),
        ("Speculation_Store_Bypass", "unknown"), ("SpeculationIndirectBranch", "unknown"),
        ("Cpus_allowed", _bitmap_hex(cpus, possible_cpus)), ("Cpus_allowed_list", _bitmap_list(cpus)),
        ("Mems_allowed", "1"), ("Mems_allowed_list", "0"),
        ("voluntary_ctxt_switches", str(usage.voluntary_switches)),
        ("nonvoluntary_ctxt_switches", str(usage.involuntary_switches)),
    ]
    return "".join(f"{key}:\t{value}\n" for key, value in lines).encode()


# ---------------------------------------------------------------------- system-wide files


def render_cpuinfo(cpu_count: int) -> bytes:
    """riscv's /proc/cpuinfo for ``cpu_count`` harts (see the module docstring)."""
    entries = []
    for cpu in range(cpu_count):
        entries.append(
            f"processor\t: {cpu}\n"
            f"hart\t\t: {cpu}\n"
            f"isa\t\t: {RISCV64_ISA}\n"
            f"mmu\t\t: {RISCV64_MMU}\n"
            "mvendorid\t: 0x0\n"
            "marchid\t\t: 0x0\n"
            "mimpid\t\t: 0x0\n"
            f"hart isa\t: {RISCV64_ISA}\n"
            "\n"
        )
    return "".join(entries).encode()


def render_meminfo(total_kib: int, free_kib: int, available_kib: int) -> bytes:
    """The first three lines of Linux's /proc/meminfo (``%-16s%8lu kB``); free and available capped at total."""
    rows = [("MemTotal:", total_kib), ("MemFree:", min(free_kib, total_kib)),
            ("MemAvailable:", min(available_kib, total_kib))]
    return "".join(f"{name:<16}{value:8d} kB\n" for name, value in rows).encode()


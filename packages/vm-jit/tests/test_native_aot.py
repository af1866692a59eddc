"""The AOT cache: entries survive processes, corrupt or stale ones are never used, writers never collide.

* entries round-trip, and any damaged byte makes an entry unreadable (its
  checksum), after which the file is deleted;
* processes and threads writing the same key at once leave one complete
  entry, and readers only ever see complete entries or nothing;
* a second engine over the same cache loads the first one's native code the
  moment it first translates the region's entry, or any other of its blocks
  (through an alias; a corrupt alias is deleted), with its promotion
  threshold out of reach, and computes exactly what the interpreter computes;
* an entry whose guest code changed, or whose IR no longer matches what the
  engine generates, is ignored; an unwritable cache directory only turns
  the cache off.
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import threading
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from vm_jit.native.cache import AotCache, CachedRegion, decode_entry, default_cache_dir, encode_entry
from vm_jit.native.tier import make_llvm_engine
from vm_translate.riscv.encoding import enc_b, enc_i

from .engine_harness import CODE, Guest, assert_same_runs, encode, interp_engine, run_in_chunks
from .native_harness import llvm_settings, native_code
from .test_native_tiers import COUNTER, FRONTEND, addi, jal, summing_loop

ENTRIES = st.builds(
    CachedRegion,
    name=st.text(min_size=1, max_size=20),
    block_pcs=st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=8).map(tuple),
    entries=st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=3).map(tuple),
    ir_sha256=st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
    host=st.text(max_size=40),
    obj=st.binary(min_size=1, max_size=300),
)


@settings(max_examples=100, deadline=None)
@given(entry=ENTRIES, data=st.data())
def test_entries_round_trip_and_any_damage_is_detected(entry: CachedRegion, data: st.DataObject) -> None:
    raw = encode_entry(entry)
    assert decode_entry(raw) == entry
    where = data.draw(st.integers(0, len(raw) - 1), label="where")
    flip = data.draw(st.integers(1, 255), label="flip")
    damaged = raw[:where] + bytes([raw[where] ^ flip]) + raw[where + 1 :]
    assert decode_entry(damaged) is None
    assert decode_entry(raw[: data.draw(st.integers(0, len(raw) - 1), label="cut")]) is None


def entry(n: int) -> CachedRegion:
    return CachedRegion(f"vm_r{n}", (0x1000 + n,), (0x1000 + n,), f"{n:064x}", "host", bytes([n % 256]) * (1000 + n))


def test_corrupt_file_is_discarded(tmp_path: Path) -> None:
    cache = AotCache(tmp_path, "ns")
    cache.put("k", entry(3))
    path = cache.directory / "k.region"
    assert AotCache(tmp_path, "ns").get("k") == entry(3)
    data = bytearray(path.read_bytes())
    data[-10] ^= 0x40
    path.write_bytes(bytes(data))
    fresh = AotCache(tmp_path, "ns")
    assert fresh.might_have("k")
    assert fresh.get("k") is None
    assert not path.exists() and not fresh.might_have("k")
    assert AotCache(tmp_path, "other namespace").directory != cache.directory


def _writer(directory: str, worker: int, rounds: int) -> None:
    cache = AotCache(Path(directory), "ns")
    for i in range(rounds):
        cache.put("shared", entry(worker * 1000 + i))


def _writer_process(directory: Path, worker: int, rounds: int) -> subprocess.Popen[bytes]:
    """A fresh Python process running :func:`_writer` (its source and :func:`entry`'s; tests/ is not importable there)."""
    source = "\n".join([
        "from pathlib import Path",
        "from vm_jit.native.cache import AotCache, CachedRegion",
        inspect.getsource(entry),
        inspect.getsource(_writer),
        f"_writer({str(directory)!r}, {worker}, {rounds})",
    ])
    return subprocess.Popen([sys.executable, "-c", source])


def test_concurrent_writers_and_readers_see_only_whole_entries(tmp_path: Path) -> None:
    written = {entry(w * 1000 + i) for w in range(6) for i in range(40)}
    threads = [threading.Thread(target=_writer, args=(str(tmp_path), w, 40)) for w in range(3, 6)]
    seen: list[CachedRegion | None] = []
    processes = [_writer_process(tmp_path, w, 40) for w in range(3)]
    for thread in threads:
        thread.start()
    reader = AotCache(tmp_path, "ns")
    while any(p.poll() is None for p in processes) or any(t.is_alive() for t in threads):
        seen.append(reader.get("shared"))
    for thread in threads:
        thread.join()
    assert all(p.wait() == 0 for p in processes)
    final = reader.get("shared")
    assert final in written
    assert all(item is None or item in written for item in seen)
    assert [name for name in os.listdir(reader.directory)] == ["shared.region"]  # no temporary files left


def test_second_engine_starts_hot_from_the_cache(tmp_path: Path) -> None:
    guest = summing_loop(2000)
    cache = AotCache(tmp_path, "ns")
    first = make_llvm_engine(FRONTEND, llvm_settings(native_threshold=50, aot_cache=True), aot_cache=cache)
    expected = run_in_chunks(interp_engine(), guest, [500])
    assert_same_runs(expected, run_in_chunks(first, guest, [500]))
    assert cache.stores >= 1 and first.stats["aot_loaded_regions"] == 0
    warm_cache = AotCache(tmp_path, "ns")
    second = make_llvm_engine(FRONTEND, llvm_settings(native_threshold=10**9, aot_cache=True), aot_cache=warm_cache)
    assert_same_runs(expected, run_in_chunks(second, guest, [500]))
    assert second.stats["aot_loaded_regions"] >= 1 and warm_cache.hits >= 1
    assert second.stats["native_insns"] > 15_000 and second.stats["native_compile_seconds"] == 0


#: Block offsets in :func:`branchy_loop`: the head, its two arms and the back edge.
LOOP_BLOCKS = {"H": 4, "Y": 16, "X": 24, "J": 28}


def branchy_loop(start: int, count: int = 400) -> Guest:
    """A loop of four blocks: head H (counter -= 1, test its low bit), arms Y and X, back edge J.

    The first instruction jumps to the loop block at offset ``start``; all
    the loop's bytes are the same whichever it is.
    """
    h, y, x, j = LOOP_BLOCKS.values()
    code = [
        jal(0, start),  # 0: jal x0, start
        addi(COUNTER, COUNTER, -1),  # H: counter -= 1
        enc_i(0x13, 5, 7, COUNTER, 1),  # andi t0, counter, 1
        enc_b(0x63, 0, 5, 0, x - 12),  # beq t0, x0, X
        addi(10, 10, 1),  # Y: a0 += 1
        jal(0, j - (y + 4)),  # jal x0, J
        addi(11, 11, 1),  # X: a1 += 1, then falls into J
        enc_b(0x63, 1, COUNTER, 0, h - j),  # J: bne counter, x0, H
    ]
    regs = [0] * 32
    regs[COUNTER] = count
    return Guest(code=encode(code), x=tuple(regs))


def test_a_region_loads_at_whichever_of_its_blocks_is_translated_first(tmp_path: Path) -> None:
    """A later run that enters the loop at a block other than its region's entry loads it there (an alias)."""
    cache = AotCache(tmp_path, "ns")
    first = make_llvm_engine(FRONTEND, llvm_settings(native_threshold=50, aot_cache=True), aot_cache=cache)
    cold = branchy_loop(LOOP_BLOCKS["H"])
    assert_same_runs(run_in_chunks(interp_engine(), cold, [300]), run_in_chunks(first, cold, [300]))
    (region,) = set(native_code(first).values())
    entry = region.entries[0]
    assert cache.stores == 1 and len(list(cache.directory.glob("*.alias"))) == len(region.entries) - 1 == 3
    start = next(pc for pc in region.entries if pc != entry and pc != CODE + LOOP_BLOCKS["J"]) - CODE
    warm = branchy_loop(start)
    second = make_llvm_engine(FRONTEND, llvm_settings(native_threshold=10**9, aot_cache=True), aot_cache=AotCache(tmp_path, "ns"))
    expected = run_in_chunks(interp_engine(), warm, [10**6])
    actual = run_in_chunks(second, warm, [10**6])
    assert_same_runs(expected, actual)
    assert second.stats["aot_loaded_regions"] == 1 and second.stats["native_compile_seconds"] == 0
    # loaded as the start block was translated: only the first jump and that block (run as it is translated)
    # are not native; loaded at the entry, the blocks on the way there would run in tiers 0-1 as well
    start_block = second.translation_cache.translations[CODE + start].n
    assert second.stats["native_insns"] == actual[-1].icount - 1 - start_block


def test_a_corrupt_alias_is_deleted_and_never_followed(tmp_path: Path) -> None:
    cache = AotCache(tmp_path, "ns")
    stored = CachedRegion("r", (1,), (1,), "0" * 64, "host", b"code")
    cache.put("a" * 64, stored)
    cache.put_alias("b" * 64, "a" * 64)
    assert cache.might_have("b" * 64) and cache.get("b" * 64) == stored
    (cache.directory / ("c" * 64 + ".alias")).write_bytes(b"VMAOTALIAS1\n" + b"../" * 21 + b"x")
    fresh = AotCache(tmp_path, "ns")
    assert fresh.might_have("c" * 64) and fresh.get("c" * 64) is None
    assert not (fresh.directory / ("c" * 64 + ".alias")).exists() and fresh.get("b" * 64) == stored


def test_changed_code_or_ir_is_never_loaded(tmp_path: Path) -> None:
    guest = summing_loop(500)
    cache = AotCache(tmp_path, "ns")
    first = make_llvm_engine(FRONTEND, llvm_settings(native_threshold=50, aot_cache=True), aot_cache=cache)
    run_in_chunks(first, guest, [300])
    assert cache.stores >= 1
    # the same loop with one different instruction (the multiplier's shift): new keys, nothing loaded
    import attrs

    changed = attrs.evolve(guest, code=guest.code[:4] + (0x00229313).to_bytes(4, "little") + guest.code[8:])
    other = make_llvm_engine(FRONTEND, llvm_settings(native_threshold=10**9, aot_cache=True), aot_cache=AotCache(tmp_path, "ns"))
    assert_same_runs(run_in_chunks(interp_engine(), changed, [300]), run_in_chunks(other, changed, [300]))
    assert other.stats["aot_loaded_regions"] == 0 and other.stats["native_insns"] == 0
    # an entry whose IR hash does not match what the engine generates now is ignored
    for path in cache.directory.glob("*.region"):
        stored = decode_entry(path.read_bytes())
        assert stored is not None
        path.write_bytes(encode_entry(CachedRegion(stored.name, stored.block_pcs, stored.entries, "0" * 64, stored.host, stored.obj)))
    stale = make_llvm_engine(FRONTEND, llvm_settings(native_threshold=10**9, aot_cache=True), aot_cache=AotCache(tmp_path, "ns"))
    assert_same_runs(run_in_chunks(interp_engine(), guest, [300]), run_in_chunks(stale, guest, [300]))
    assert stale.stats["aot_loaded_regions"] == 0 and stale.stats["native_insns"] == 0


def test_unwritable_cache_only_turns_the_cache_off(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    cache = AotCache(blocker, "ns")
    engine = make_llvm_engine(FRONTEND, llvm_settings(native_threshold=50, aot_cache=True), aot_cache=cache)
    guest = summing_loop(300)
    assert_same_runs(run_in_chunks(interp_engine(), guest, [100]), run_in_chunks(engine, guest, [100]))
    assert not cache.usable and cache.stores == 0 and engine.stats["native_insns"] > 0


def test_cache_directory_follows_the_environment(monkeypatch: object, tmp_path: Path) -> None:
    import pytest

    patch = pytest.MonkeyPatch()
    try:
        patch.delenv("VM_CACHE_DIR", raising=False)
        patch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
        assert default_cache_dir() == tmp_path / "xdg" / "vm" / "aot"
        patch.setenv("VM_CACHE_DIR", str(tmp_path / "override"))
        assert default_cache_dir() == tmp_path / "override"
        patch.delenv("VM_CACHE_DIR")
        patch.delenv("XDG_CACHE_HOME")
        patch.setenv("HOME", str(tmp_path / "home"))
        assert default_cache_dir() == tmp_path / "home" / ".cache" / "vm" / "aot"
    finally:
        patch.undo()

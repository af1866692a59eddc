"""A guest fork copies the vm process with its LLVM compiler thread: the child must get a working one of its own."""

from __future__ import annotations

import os

from vm_jit.native.compile_thread import CompilerThread


def test_the_compiler_thread_is_started_anew_in_a_forked_child() -> None:
    compiler = CompilerThread()
    parent_thread = compiler.thread
    pid = os.fork()
    if pid == 0:
        ok = compiler.thread is not parent_thread and compiler.thread.is_alive() and compiler._in_flight == 0
        compiler.stop()  # a stop in the child joins the child's own thread (the parent's does not exist here)
        os._exit(0 if ok and not compiler.thread.is_alive() else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert compiler.thread is parent_thread and parent_thread.is_alive()
    compiler.stop()
    assert not parent_thread.is_alive()

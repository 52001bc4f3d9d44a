"""The progress helper: a forked child killed inside tqdm's lock must not freeze the parent's bars."""

import os
import signal
import threading

import pytest

from eventvision.utils.progress import progress, tqdm


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_child_killed_while_holding_the_bar_lock_does_not_block_the_parent():
    list(progress(range(2), disable=True))          # the parent has made its lock before the fork
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: take the lock and die holding it
        tqdm.get_lock().acquire()
        os.write(write, b"x")
        signal.pause()
        os._exit(0)
    os.read(read, 1)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    bar = threading.Thread(target=lambda: list(progress(range(3), disable=True)), daemon=True)
    bar.start()
    bar.join(timeout=10)
    assert not bar.is_alive(), "the parent's progress bars wait on a lock held by a dead child"

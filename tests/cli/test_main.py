"""The CLI entry point: Ctrl-C that a library callback swallowed still stops the command (exit 130, one line)."""

import os
import subprocess
import sys
import textwrap


def test_interrupt_swallowed_by_a_callback_still_cancels_the_output(tmp_path):
    code = textwrap.dedent(f"""
        import os, signal, sys
        from eventvision.cli import main as m
        from eventvision.utils.io import atomic_path

        class Finalised:
            def __del__(self):  # what a weakref/h5py finaliser does when the signal lands inside it
                os.kill(os.getpid(), signal.SIGINT)
                for _ in range(10 ** 6):
                    pass

        def command(argv):
            with atomic_path({str(tmp_path / 'out.bin')!r}) as tmp:
                tmp.write_bytes(b'1')
                Finalised()  # the KeyboardInterrupt is raised inside __del__ and swallowed there
                tmp.write_bytes(b'12')  # the command carries on as if nothing happened
            return 0
        m._main = command
        sys.exit(m.main(['info']))
    """)
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 130, proc.stderr
    assert proc.stderr.strip().splitlines() == ["eventvision: interrupted (SIGINT); partial outputs were removed"]
    assert os.listdir(tmp_path) == []

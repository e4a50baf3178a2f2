"""The interpreter exits cleanly while a daemon thread is inside a native call."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import threading, time
    import numpy as np
    import selfsup.ops as ops

    images = np.zeros((64, 96, 96, 3), np.uint8)

    def busy():
        while True:
            ops.rotations(images, mode="all")
            ops.rgb_to_lab(images)

    threading.Thread(target=busy, daemon=True).start()
    time.sleep(0.05)  # the thread is inside a native call when the interpreter exits
    """
)


def test_exit_while_a_daemon_thread_runs_native_code():
    codes = [subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, timeout=120).returncode for _ in range(8)]
    assert codes == [0] * 8


def _default_sigint() -> None:
    """In the child before exec: SIGINT handled by default and unblocked, whatever the test
    process inherited (an ignored or blocked signal survives exec)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def test_ctrl_c_interrupts_a_long_native_call():
    import signal
    import time

    script = "import selfsup.ops as ops\nprint('started', flush=True)\nops.jigsaw_permutations(1000, 10)\nprint('finished', flush=True)\n"
    process = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "started"
    time.sleep(1.0)  # inside the greedy search: about 20 s of work
    sent = time.monotonic()
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    elapsed = time.monotonic() - sent
    assert elapsed < 5, f"the call ran on for {elapsed:.1f} s after Ctrl-C (exit {process.returncode}; stdout {out!r}; stderr {err[-500:]!r})"
    assert process.returncode != 0 and "KeyboardInterrupt" in err

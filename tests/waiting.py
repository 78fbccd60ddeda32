"""Waiting in tests: on an event (a file appears, a line is printed, a process ends), never on an idle machine's
clock. The one timeout is a safety net against a hang, long enough for a laptop or CI machine busy with other work;
when it trips, the failure names what was awaited and shows the process's last output."""
import os
import signal
import subprocess
import time

import pytest

HANG_S = 900  # not a budget: the whole Ctrl-C test of test_train.py, 3 trainings, took 83 s at load 7 on 2 cores


def _stop(proc: subprocess.Popen) -> tuple[str, str]:
    """Kill proc (its whole group when it leads one) and return what it printed."""
    try:
        os.killpg(proc.pid, signal.SIGKILL) if os.getpgid(proc.pid) == proc.pid else proc.kill()
    except ProcessLookupError:
        pass
    return proc.communicate()


def _tail(out: str | None, err: str | None) -> str:
    out, err = out or "", err or ""
    return f"stdout: ...{out[-2000:]}\nstderr: ...{err[-2000:]}"


def finish(proc: subprocess.Popen, what: str, hang_s: float = HANG_S) -> tuple[str, str]:
    """proc's (stdout, stderr) once it has ended; `what` says what its end means, for the failure message."""
    try:
        out, err = proc.communicate(timeout=hang_s)
    except subprocess.TimeoutExpired:
        pytest.fail(f"waited {hang_s:.0f} s for {what} (pid {proc.pid}), which never came: a hang, not a slow "
                    f"machine\n{_tail(*_stop(proc))}")
    return out or "", err or ""


def run_to_end(cmd: list, what: str, hang_s: float = HANG_S, **kw) -> subprocess.CompletedProcess:
    """subprocess.run(cmd, capture_output=True, text=True, **kw) that waits for the end of the process, not a clock."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    out, err = finish(proc, what, hang_s)
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def wait_for(event, what: str, proc: subprocess.Popen | None = None, poll_s: float = 0.01, hang_s: float = HANG_S):
    """Poll event() until it is true. With proc: fail at once if proc ends first, since the event can no longer come."""
    deadline = time.monotonic() + hang_s
    while not event():
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"{what} never came: pid {proc.pid} ended first (rc {proc.returncode})\n{_tail(out, err)}")
        if time.monotonic() > deadline:
            tail = f"\n{_tail(*_stop(proc))}" if proc is not None else ""
            pytest.fail(f"waited {hang_s:.0f} s for {what}, which never came: a hang, not a slow machine{tail}")
        time.sleep(poll_s)

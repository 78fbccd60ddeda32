"""The tests' waits (tests/waiting.py): an event that can no longer come fails at once, and a hang is named."""
import subprocess
import sys

import pytest

from waiting import finish, wait_for

FOREVER = [sys.executable, "-c", "import signal; print('started', flush=True); signal.pause()"]  # until killed


def test_a_process_that_ends_first_fails_the_wait_at_once(tmp_path):
    p = subprocess.Popen([sys.executable, "-c", "import sys; sys.exit('no file today')"], stderr=subprocess.PIPE,
                         text=True)
    with pytest.raises(pytest.fail.Exception, match=r"(?s)the file never came: pid \d+ ended first \(rc 1\).*"
                                                    r"no file today"):
        wait_for((tmp_path / "file").exists, "the file", proc=p)


def test_a_hang_is_named_and_its_process_killed():
    p = subprocess.Popen(FOREVER, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    assert p.stdout.readline() == "started\n"
    with pytest.raises(pytest.fail.Exception, match=r"waited 0 s for the end of a process that reads forever .*, "
                                                    r"which never came: a hang"):
        finish(p, "the end of a process that reads forever", hang_s=0.2)
    assert p.returncode == -9

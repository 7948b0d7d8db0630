"""tests/hang_watchdog.py: a test hanging on a green wait fails alone, with the
stacks of the greenthreads, and the tests after it still run."""
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]

HANGING = textwrap.dedent('''
    import eventlet
    eventlet.monkey_patch()
    import pytest
    from eventlet.event import Event


    @pytest.mark.timeout(13)
    def test_waits_for_nothing_in_its_body():
        Event().wait()


    @pytest.fixture
    def stuck_at_teardown():
        yield
        Event().wait()


    @pytest.mark.timeout(12)
    def test_waits_for_nothing_in_a_fixture(stuck_at_teardown):
        pass


    def test_after_them():
        assert sum([1, 1]) == 2
''')


def test_a_hanging_test_fails_alone_with_the_stack_of_its_wait(tmp_path):
    (tmp_path / "test_hangs.py").write_text(HANGING)
    env = dict(os.environ, PYTHONPATH=str(TESTS))
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "hang_watchdog", "-p", "no:cacheprovider",
         "--suppress-nameko-eventlet-notification", "-q", "-rA", str(tmp_path / "test_hangs.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    out = run.stdout + run.stderr
    assert run.returncode == 1, out
    assert re.search(r"\b1 failed, 2 passed, (\d+ warnings, )?1 error in", out), out
    assert "HungTest" in out and "still waiting in call 3 s after it started" in out, out
    # a teardown gets at least WATCHDOG_MARGIN_S / 2 (5 s), though its limit left it 2
    assert "still waiting in teardown 5 s after it started" in out, out
    assert "every greenthread's stack follows" in out, out
    # the traceback ends at the test's own wait, not in pytest-timeout's thread
    assert "test_hangs.py\", line 10, in test_waits_for_nothing_in_its_body" in out, out
    assert "+ Timeout +" not in out, "pytest-timeout ended the run: " + out

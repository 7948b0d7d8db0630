"""tests/hang_watchdog.py: a test hanging on a green wait fails alone, with the
stacks of the greenthreads, and the run stops after it."""
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]

PREAMBLE = textwrap.dedent('''
    import eventlet
    eventlet.monkey_patch()
    import pytest
    from eventlet.event import Event


    @pytest.fixture
    def torn_down():
        yield
        print("torn down")

''')

HANGS_IN_ITS_BODY = PREAMBLE + textwrap.dedent('''
    def test_before_it():
        assert sum([1, 1]) == 2


    @pytest.mark.timeout(13)
    def test_waits_for_nothing_in_its_body(torn_down):
        Event().wait()


    def test_after_it():
        assert sum([1, 1]) == 2
''')

HANGS_IN_A_FIXTURE = PREAMBLE + textwrap.dedent('''
    @pytest.fixture
    def stuck_at_teardown():
        yield
        Event().wait()


    @pytest.mark.timeout(12)
    def test_waits_for_nothing_in_a_fixture(stuck_at_teardown):
        pass


    def test_after_it():
        assert sum([1, 1]) == 2
''')


def run_pytest(tmp_path, source):
    """``(returncode, stdout and stderr)`` of pytest with the plugin on ``source``."""
    (tmp_path / "test_hangs.py").write_text(source)
    env = dict(os.environ, PYTHONPATH=str(TESTS))
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "hang_watchdog", "-p", "no:cacheprovider",
         "--suppress-nameko-eventlet-notification", "-q", "-rA", "-s",
         str(tmp_path / "test_hangs.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    return run.returncode, run.stdout + run.stderr


def assert_the_run_stopped_at_the_hang(returncode, out, phase):
    """What every hang shows: HungTest, the stacks, and no test run after it."""
    assert returncode == 2, out  # pytest: interrupted (session.shouldstop)
    assert "HungTest" in out, out
    assert "every greenthread's stack follows" in out, out
    assert "hung in {}: the run stops here".format(phase) in out, out
    assert "test_after_it" not in out, "the run went on after the hang: " + out
    assert "+ Timeout +" not in out, "pytest-timeout ended the run: " + out


def test_a_test_hanging_in_its_body_fails_with_the_stack_of_its_wait_and_ends_the_run(tmp_path):
    returncode, out = run_pytest(tmp_path, HANGS_IN_ITS_BODY)
    assert_the_run_stopped_at_the_hang(returncode, out, "call")
    assert re.search(r"\b1 failed, 1 passed(, \d+ warnings?)? in", out), out
    assert "still waiting in call 3 s after it started" in out, out
    assert "--- native thread" in out and "--- hub <" in out, "no threads or hub state: " + out
    # the traceback ends at the test's own wait, not in pytest-timeout's thread
    assert "test_hangs.py\", line 20, in test_waits_for_nothing_in_its_body" in out, out
    assert "torn down" in out, "the hung test's fixtures were not torn down: " + out
    assert ("test_hangs.py::test_waits_for_nothing_in_its_body hung in call: the run stops "
            "here") in out, out


def test_a_fixture_hanging_in_its_teardown_gets_five_seconds_then_ends_the_run(tmp_path):
    returncode, out = run_pytest(tmp_path, HANGS_IN_A_FIXTURE)
    assert_the_run_stopped_at_the_hang(returncode, out, "teardown")
    assert re.search(r"\b1 passed(, \d+ warnings?)?, 1 error in", out), out
    # a teardown gets at least WATCHDOG_MARGIN_S / 2 (5 s), though its limit left it 2
    assert "still waiting in teardown 5 s after it started" in out, out

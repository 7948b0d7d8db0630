"""What a process of the venv does before any code of the mesh runs.

* ``tools/billing_mesh.pth`` (``make setup`` puts it in the venv's site-packages):
  eventlet's asyncio hub as the default, and exactly eventlet's deprecation banner
  and nameko CLI's pkg_resources notice silenced, nothing else;
* ``scripts/pick-python.sh``, the Makefile's choice of interpreter: the newest of
  3.13, 3.12 and 3.11, any other version refused;
* ``mesh.hub.ensure_asyncio_hub``: starts ``nameko run`` again on the asyncio hub,
  and nothing else, ever.
"""
import os
import subprocess
import sys
import sysconfig

import pytest

import mesh.hub
from mesh.hub import ASYNCIO_HUB, HUB_VARIABLE, MESH_HUB, REEXEC_MARK, ensure_asyncio_hub

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PTH_SOURCE = os.path.join(ROOT, "tools", "billing_mesh.pth")
PICK_PYTHON = os.path.join(ROOT, "scripts", "pick-python.sh")
PURELIB = sysconfig.get_paths()["purelib"]

BANNER = "Eventlet is deprecated"
PKG_RESOURCES_NOTICE = "pkg_resources is deprecated as an API"


def pth_line():
    with open(PTH_SOURCE) as handle:
        return handle.read()


def clean_environment(**extra):
    """This process's environment without what would decide the outcome for the test."""
    env = {key: value for key, value in os.environ.items() if key not in (
        HUB_VARIABLE, REEXEC_MARK, "EVENTLET_TESTS", "PYTHONWARNINGS", "PYTHONNOUSERSITE",
        "MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    env.update(extra)
    return env


def run_python(*args, **env):
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=clean_environment(**env),
                          capture_output=True, text=True, timeout=60)


def without_site(code):
    """``python -S``: no site, so no .pth file runs; the venv's packages by hand."""
    return run_python("-S", "-c", "import sys; sys.path.append({!r})\n{}".format(PURELIB, code))


# --- tools/billing_mesh.pth ---------------------------------------------------------

def test_pth_is_one_line_that_site_executes():
    text = pth_line()
    assert text.count("\n") <= 1 and text.strip(), \
        "tools/billing_mesh.pth must stay one line (site runs each line on its own)"
    assert text.startswith("import "), \
        "site only executes .pth lines that start with `import `: {!r}".format(text[:40])


def test_make_setup_installed_the_pth_in_this_venv():
    installed = os.path.join(PURELIB, "billing_mesh.pth")
    assert os.path.isfile(installed), \
        "{} is missing: `make setup` installs tools/billing_mesh.pth there".format(installed)
    with open(installed) as handle:
        assert handle.read() == pth_line(), \
            "{} is older than tools/billing_mesh.pth: run `make setup`".format(installed)


def test_a_process_of_the_venv_prints_no_banner_and_runs_on_the_asyncio_hub():
    result = run_python("-c", "import os, eventlet, mesh.hub\n"
                              "print(os.environ['EVENTLET_HUB'], mesh.hub.hub_name())")
    assert result.returncode == 0, result.stderr
    assert BANNER not in result.stderr, "eventlet's banner is back:\n" + result.stderr
    assert result.stderr == "", "a bare `import eventlet` is not quiet:\n" + result.stderr
    assert result.stdout.split() == [MESH_HUB, ASYNCIO_HUB]


def test_a_hub_named_explicitly_is_kept():
    result = run_python("-c", "import os; print(os.environ['EVENTLET_HUB'])", EVENTLET_HUB="epolls")
    assert result.stdout.strip() == "epolls", result.stderr


def test_without_the_pth_eventlet_prints_its_banner():
    # the check above can fail: the banner is there to be filtered
    result = without_site("import eventlet")
    assert result.returncode == 0, result.stderr
    assert BANNER in result.stderr


def test_nameko_cli_prints_the_pkg_resources_notice_without_the_pth():
    # setuptools (pinned below 81: nameko's CLI imports pkg_resources) warns on import
    result = without_site("import nameko.cli.main")
    assert result.returncode == 0, result.stderr
    assert PKG_RESOURCES_NOTICE in result.stderr


def test_the_line_silences_exactly_its_two_warnings():
    code = "\n".join([
        "exec({!r})".format(pth_line()),
        "import os, warnings, eventlet, nameko.cli.main",
        "print(os.environ['EVENTLET_HUB'])",
        # the same texts from anywhere else, and other warnings, still show
        "warnings.warn('pkg_resources is deprecated as an API (from elsewhere)', UserWarning)",
        "warnings.warn('Eventlet is deprecated, says someone else', DeprecationWarning)",
        "warnings.warn('another deprecation', DeprecationWarning)",
        "warnings.warn('another notice', UserWarning)",
    ])
    result = without_site(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == MESH_HUB
    assert "Eventlet is deprecated. It is currently" not in result.stderr
    assert "nameko/cli/main.py" not in result.stderr
    for shown in ("pkg_resources is deprecated as an API (from elsewhere)",
                  "Eventlet is deprecated, says someone else",
                  "another deprecation", "another notice"):
        assert shown in result.stderr, "the .pth filters more than its two warnings: " + shown


# --- scripts/pick-python.sh: the Makefile's interpreter -------------------------------

def fake_python(folder, name, version=None):
    """An executable NAME in FOLDER that answers pick-python's question as Python
    VERSION would (``None``: one that does not run, like a pyenv shim of a version
    that is not selected)."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(str(folder), name)
    with open(path, "w") as handle:
        if version is None:
            handle.write('#!/bin/sh\necho "pyenv: $(basename "$0"): command not found" >&2\nexit 127\n')
        else:
            handle.write('#!/bin/sh\necho "{} $0"\n'.format(version))
    os.chmod(path, 0o755)
    return path


def pick(tmp_path, *args, path_dirs=(), pyenv_root=None):
    env = clean_environment(
        PATH=os.pathsep.join([str(folder) for folder in path_dirs] + [os.environ["PATH"]]),
        PYENV_ROOT=str(pyenv_root or tmp_path / "no-pyenv"))
    return subprocess.run(["bash", PICK_PYTHON, *args], env=env, capture_output=True,
                          text=True, timeout=60)


@pytest.fixture
def fakes(tmp_path):
    """A folder first on PATH that shadows every candidate name (the machine's own
    pythons must not decide these tests): each one does not run unless a test
    makes it a Python."""
    folder = tmp_path / "bin"
    for name in ("python3.13", "python3.12", "python3.11", "python3"):
        fake_python(folder, name)
    return folder


def test_pick_python_refuses_python_3_10(tmp_path):
    old = fake_python(tmp_path, "python3.10", "3.10.13")
    result = pick(tmp_path, old)
    assert result.returncode == 1
    assert result.stdout == ""
    assert "Python 3.10.13" in result.stderr and "3.11, 3.12 or 3.13" in result.stderr


def test_pick_python_refuses_3_14_and_what_does_not_run(tmp_path):
    assert pick(tmp_path, fake_python(tmp_path, "python3.14", "3.14.0")).returncode == 1
    result = pick(tmp_path, fake_python(tmp_path, "broken"))
    assert result.returncode == 1 and "does not run" in result.stderr


@pytest.mark.parametrize("version", ["3.11.7", "3.12.1", "3.13.0"])
def test_pick_python_takes_a_supported_python_given(tmp_path, version):
    given = fake_python(tmp_path, "python", version)
    result = pick(tmp_path, given)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [version, given]


def test_pick_python_takes_the_newest_on_path(tmp_path, fakes):
    for name, version in (("python3.13", "3.13.1"), ("python3.12", "3.12.4"),
                          ("python3.11", "3.11.9")):
        fake_python(fakes, name, version)
    assert pick(tmp_path, path_dirs=[fakes]).stdout.split()[0] == "3.13.1"


def test_pick_python_skips_what_does_not_run(tmp_path, fakes):
    fake_python(fakes, "python3.12", "3.12.4")
    fake_python(fakes, "python3.11", "3.11.9")
    assert pick(tmp_path, path_dirs=[fakes]).stdout.split()[0] == "3.12.4"


def test_pick_python_falls_back_to_pyenv_for_a_shim_that_does_not_run(tmp_path, fakes):
    pyenv = tmp_path / "pyenv"
    for version in ("3.13.0", "3.13.2", "3.13.2t"):
        fake_python(pyenv / "versions" / version / "bin", "python3.13", version)
    result = pick(tmp_path, "python3.13", path_dirs=[fakes], pyenv_root=pyenv)
    assert result.stdout.split() == ["3.13.2", str(pyenv / "versions" / "3.13.2" / "bin" / "python3.13")]


def test_pick_python_says_what_it_found_when_nothing_fits(tmp_path, fakes):
    fake_python(fakes, "python3", "3.10.13")
    result = pick(tmp_path, path_dirs=[fakes])
    assert result.returncode == 1
    assert "no Python 3.11, 3.12 or 3.13 found" in result.stderr
    assert "python3 (3.10.13)" in result.stderr and "PYTHON=" in result.stderr


def make_interpreter(tmp_path, python):
    return subprocess.run(
        ["make", "-s", "--no-print-directory", "interpreter", "PYTHON=" + python,
         "VENV=" + str(tmp_path / "venv")],
        cwd=ROOT, env=clean_environment(), capture_output=True, text=True, timeout=60)


def test_the_makefile_refuses_python_3_10_with_a_message(tmp_path):
    result = make_interpreter(tmp_path, fake_python(tmp_path, "python3.10", "3.10.13"))
    assert result.returncode != 0
    assert "Python 3.10.13" in result.stderr and "3.11, 3.12 or 3.13" in result.stderr
    assert not (tmp_path / "venv").exists()


def test_the_makefile_says_which_python_it_uses(tmp_path):
    given = fake_python(tmp_path, "python3.12", "3.12.4")
    result = make_interpreter(tmp_path, given)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "billing-mesh: using Python 3.12.4 ({})".format(given)


# --- mesh.hub.ensure_asyncio_hub --------------------------------------------------

class FakeExecv:
    def __init__(self):
        self.calls = []

    def __call__(self, executable, argv, env):
        self.calls.append((executable, argv, env))


@pytest.fixture
def other_hub(monkeypatch):
    """As if this process ran on eventlet's default (epolls) hub."""
    monkeypatch.setattr(mesh.hub, "on_asyncio_hub", lambda: False)


NAMEKO_RUN = ["/venv/bin/nameko", "run", "--config", "config.yaml", "services.customers"]


def test_nameko_run_on_another_hub_starts_again_on_asyncio(other_hub, capsys):
    execv, environ = FakeExecv(), {"PATH": "/usr/bin"}
    assert ensure_asyncio_hub(argv=NAMEKO_RUN, environ=environ, execv=execv) is True
    [(executable, argv, env)] = execv.calls
    assert executable == sys.executable
    assert argv == [sys.executable] + NAMEKO_RUN
    assert env == {"PATH": "/usr/bin", HUB_VARIABLE: MESH_HUB, REEXEC_MARK: "1"}
    assert environ == {"PATH": "/usr/bin"}, "the caller's environment was changed"
    assert "asyncio hub" in capsys.readouterr().err


@pytest.mark.parametrize("hub", ["asyncio", MESH_HUB, "epolls", "poll", "selects"])
def test_a_hub_set_in_the_environment_is_never_overridden(other_hub, hub):
    execv = FakeExecv()
    assert ensure_asyncio_hub(argv=NAMEKO_RUN, environ={HUB_VARIABLE: hub}, execv=execv) is False
    assert execv.calls == []


def test_the_re_executed_process_never_re_executes_again(other_hub):
    execv = FakeExecv()
    assert ensure_asyncio_hub(argv=NAMEKO_RUN, environ={REEXEC_MARK: "1"}, execv=execv) is False
    assert execv.calls == []


@pytest.mark.parametrize("argv", [
    ["/venv/bin/nameko", "shell", "--config", "config.yaml"],
    ["/venv/bin/nameko", "test", "tests/unit"],
    ["/venv/bin/nameko"],
    ["/venv/bin/pytest", "run"],
    ["-c"],
    ["/venv/bin/python", "-m", "tools.run"],
    [],
])
def test_nothing_but_nameko_run_is_re_executed(other_hub, argv):
    execv = FakeExecv()
    assert ensure_asyncio_hub(argv=argv, environ={}, execv=execv) is False
    assert execv.calls == []


def test_nameko_run_already_on_the_asyncio_hub_goes_on(monkeypatch):
    monkeypatch.setattr(mesh.hub, "on_asyncio_hub", lambda: True)
    execv = FakeExecv()
    assert ensure_asyncio_hub(argv=NAMEKO_RUN, environ={}, execv=execv) is False
    assert execv.calls == []

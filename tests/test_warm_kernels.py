"""Warm kernels (tooling/nnbook/warm_kernels.py): a forked kernel is the process a fresh one would be.

The test run starts its kernels this way (conftest.py starts the server these tests
use too); they compare a forked kernel with a fresh interpreter's, and check the
ways back to a fresh one.
"""

import asyncio
import importlib.util
import os
import shlex
import signal
import subprocess
import sys
import textwrap
import time
import types

import execnet
import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from nnbook import warm_kernels
from nnbook.execute import AsyncIsolatedKernelManager

pytestmark = [pytest.mark.skipif(not warm_kernels.available(), reason="kernels fork on Linux only"),
              pytest.mark.xdist_group("warm")]

# what a kernel can tell about the process it runs in (everything but its pid)
PORTRAIT = """\
import os, sys, json, __main__
import matplotlib, pandas as pd
print(json.dumps({
    "cwd": os.getcwd(), "path": sys.path, "argv0": os.path.basename(sys.argv[0]),
    "executable": sys.executable, "tmp": __import__("tempfile").gettempdir(),
    "inductor_cache": os.environ.get("TORCHINDUCTOR_CACHE_DIR"),
    "own_session": os.getsid(0) == os.getpid() == os.getpgid(0),
    "marker": os.environ.get("NNBOOK_TEST_MARKER"), "bytecode": sys.dont_write_bytecode,
    "main": [__main__.__name__, hasattr(__main__, "__file__")],
    "mp_main": sys.modules.get("__mp_main__") in (None, __main__) or
               not getattr(sys.modules["__mp_main__"], "__file__", "").endswith("warm_kernels.py"),
    "backend": matplotlib.rcParams["backend"], "columns": pd.get_option("display.max_columns"),
    "server_module": any(getattr(m, "__file__", None) and m.__file__.endswith("warm_kernels.py")
                         for m in list(sys.modules.values())),
    "parent_handle": bool(int(os.environ.get("JPY_PARENT_PID", 0))),
}))
"""


@pytest.fixture(autouse=True)
def _not_counted(monkeypatch):
    """The kernels refused here on purpose stay out of the test run's summary line."""
    monkeypatch.delenv("NNBOOK_WARM_LOG", raising=False)


@pytest.fixture(scope="module")
def server():
    """The test run's server (conftest.py), or one of this module's own."""
    path = warm_kernels.server_address()
    if path:
        yield path
        return
    process, path = warm_kernels.start_server()
    yield path
    warm_kernels.stop_server(process, path)


def _run(cells, folder, env=None, expect_error=False):
    """Run code cells in a new kernel in ``folder``; return (outputs per cell, kernel pid)."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    client = NotebookClient(nb, timeout=60, kernel_name="python3",
                            kernel_manager_class=AsyncIsolatedKernelManager,
                            resources={"metadata": {"path": str(folder)}})
    pid = {}

    async def run():
        async with client.async_setup_kernel(env=env or dict(os.environ)):
            pid["kernel"] = client.km.provisioner.pid
            pid["forked"] = isinstance(client.km.provisioner.process, warm_kernels.ForkedKernel)
            for index, cell in enumerate(nb.cells):
                try:
                    await client.async_execute_cell(cell, index)
                except CellExecutionError:
                    if not expect_error:
                        raise
    asyncio.run(run())
    texts = ["".join(o.get("text", "") for o in c.outputs) +
             "".join(o.get("ename", "") for o in c.outputs) for c in nb.cells]
    return texts, pid


def _portrait(folder, monkeypatch, address):
    monkeypatch.setenv(warm_kernels.ENV, address)
    monkeypatch.setenv("NNBOOK_TEST_MARKER", "this kernel's own value")
    monkeypatch.setenv("TMPDIR", str(folder))       # not the server's temporary directory
    texts, pid = _run([PORTRAIT], folder)
    return texts[0], pid


def test_a_forked_kernel_is_what_a_fresh_one_would_be(server, tmp_path, monkeypatch):
    fresh, fresh_pid = _portrait(tmp_path, monkeypatch, "off")
    warm, warm_pid = _portrait(tmp_path, monkeypatch, server)
    assert not fresh_pid["forked"] and warm_pid["forked"]
    assert warm == fresh
    assert '"own_session": true' in warm and str(tmp_path) in warm
    assert '"backend": "module://matplotlib_inline.backend_inline"' in warm
    assert '"columns": 20' in warm and '"server_module": false' in warm
    assert f'"tmp": "{tmp_path}"' in warm


def test_the_kernel_really_is_a_fork_of_the_server(server, tmp_path, monkeypatch):
    monkeypatch.setenv(warm_kernels.ENV, server)
    texts, _ = _run(["import os, sys; print(os.getppid() != os.getpid(), 'torch' in sys.modules)",
                     "import os; print(os.getppid() == %d)" % os.getpid(),
                     "import gc, sys; print('torch._dynamo' in sys.modules, gc.get_freeze_count() > 0)"],
                    tmp_path)
    # torch was there before any import, and so was what the first optimizer imports;
    # the server's objects are frozen for the garbage collector (no copy-on-write scans)
    assert texts == ["True True\n", "False\n", "True True\n"]


def test_the_same_python_spelled_another_way_forks(light_server, monkeypatch):
    """A kernel spec may name the interpreter as ``<venv>/bin/../bin/python``: the same file."""
    folder, name = os.path.split(sys.executable)
    spelled = os.path.join(folder, "..", os.path.basename(folder), name)
    read, write = os.pipe()
    process = _fork(light_server[1], "import sys; print(sys.executable)", monkeypatch,
                    python=spelled, stdout=write)
    os.close(write)
    assert isinstance(process, warm_kernels.ForkedKernel) and process.wait(30) == 0
    fresh = subprocess.run([spelled, "-c", "import sys; print(sys.executable)"],
                           capture_output=True, text=True, check=True).stdout
    with os.fdopen(read) as f:
        assert f.read() == fresh                       # as a fresh interpreter reports it


def test_a_variable_read_at_import_time_gets_a_fresh_interpreter(server, tmp_path,
                                                                 monkeypatch):
    monkeypatch.setenv(warm_kernels.ENV, server)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    texts, pid = _run(["import os; print(os.environ['OMP_NUM_THREADS'])"], tmp_path, env=env)
    assert texts[0].strip() == "1" and not pid["forked"]


def test_another_python_or_interpreter_options_are_refused(server, monkeypatch):
    monkeypatch.setenv(warm_kernels.ENV, server)
    env = dict(os.environ, JPY_PARENT_PID=str(os.getpid()))
    for cmd in (["/usr/bin/python3", "-m", "ipykernel_launcher"],
                [sys.executable, "-X", "dev", "-m", "ipykernel_launcher"]):
        assert warm_kernels.fork_kernel(cmd, env, os.getcwd()) is None


def test_without_a_server_kernels_start_fresh_and_at_once(tmp_path, monkeypatch):
    import socket

    ended = str(tmp_path / "server.sock")               # the socket of a server that has ended
    socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).bind(ended)
    cmd = [sys.executable, "-m", "ipykernel_launcher"]
    for address in (ended, str(tmp_path / "no-such-folder" / "server.sock")):
        monkeypatch.setenv(warm_kernels.ENV, address)
        start = time.monotonic()
        assert warm_kernels.fork_kernel(cmd, dict(os.environ), str(tmp_path)) is None
        assert time.monotonic() - start < 1


def test_an_interrupt_reaches_a_forked_kernel(server, tmp_path, monkeypatch):
    monkeypatch.setenv(warm_kernels.ENV, server)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import time; time.sleep(60)")])
    client = NotebookClient(nb, timeout=1, kernel_name="python3", interrupt_on_timeout=True,
                            allow_errors=True, kernel_manager_class=AsyncIsolatedKernelManager,
                            resources={"metadata": {"path": str(tmp_path)}})
    start = time.monotonic()
    client.execute()
    assert time.monotonic() - start < 30
    assert nb.cells[0].outputs[-1]["ename"] == "KeyboardInterrupt"


def test_a_killed_kernel_takes_its_processes_along_and_reports_its_exit(server, tmp_path,
                                                                        monkeypatch):
    monkeypatch.setenv(warm_kernels.ENV, server)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import subprocess; child = subprocess.Popen(['sleep', '300']); print(child.pid)")])
    client = NotebookClient(nb, timeout=30, kernel_name="python3",
                            kernel_manager_class=AsyncIsolatedKernelManager,
                            resources={"metadata": {"path": str(tmp_path)}})
    seen = {}

    async def run():
        async with client.async_setup_kernel():
            await client.async_execute_cell(nb.cells[0], 0)
            process = client.km.provisioner.process
            seen["child"] = int(nb.cells[0].outputs[0]["text"])
            await client.km.provisioner.kill()
            seen["code"] = process.wait(10)
    asyncio.run(run())
    assert seen["code"] == -signal.SIGKILL
    for _ in range(100):
        gone = subprocess.run(["ps", "-o", "stat=", "-p", str(seen["child"])],
                              capture_output=True, text=True).stdout.strip() in ("", "Z")
        if gone:
            break
        time.sleep(0.05)
    assert gone


def test_serving_starts_a_server_for_its_block_and_stops_it(monkeypatch):
    """What ``make grade`` does (with a server that imports nothing, to be quick); the
    kernel it forks ends itself with exit code 3."""
    monkeypatch.delenv(warm_kernels.ENV, raising=False)
    with warm_kernels.serving(libraries=()) as path:
        assert os.environ[warm_kernels.ENV] == path
        env = dict(os.environ, JPY_PARENT_PID=str(os.getpid()))
        process = warm_kernels.fork_kernel([sys.executable, "-c", "raise SystemExit(3)"], env,
                                           os.getcwd())
        assert isinstance(process, warm_kernels.ForkedKernel)
        assert process.wait(30) == 3
    assert warm_kernels.ENV not in os.environ and not os.path.exists(path)


def test_serving_reuses_a_running_server_and_can_be_turned_off(server, monkeypatch):
    monkeypatch.setenv(warm_kernels.ENV, server)
    with warm_kernels.serving() as path:
        assert path == server
    assert os.environ[warm_kernels.ENV] == server
    still = warm_kernels.fork_kernel([sys.executable, "-c", "pass"], dict(os.environ), os.getcwd())
    assert still is not None and still.wait(30) == 0          # the server was not stopped
    monkeypatch.setenv(warm_kernels.ENV, "off")
    with warm_kernels.serving() as path:
        assert path == "off" and warm_kernels.server_address() is None


def test_turned_off_starts_kernels_fresh_inside_and_restores_after(server, monkeypatch):
    monkeypatch.setenv(warm_kernels.ENV, server)
    with warm_kernels.turned_off():
        assert warm_kernels.server_address() is None
        assert warm_kernels.fork_kernel([sys.executable, "-c", "pass"], dict(os.environ),
                                        os.getcwd()) is None
    assert warm_kernels.server_address() == server


def test_the_graders_fresh_kernels_option_turns_them_off(monkeypatch, tmp_path):
    from nnbook import grade

    seen = {}
    monkeypatch.setattr(grade, "grade_class", lambda *a, **kw: seen.update(kw))
    grade.main([str(tmp_path), "--out", str(tmp_path / "out"), "--fresh-kernels"])
    assert seen["warm"] is False
    grade.main([str(tmp_path), "--out", str(tmp_path / "out")])
    assert seen["warm"] is True


@pytest.fixture(scope="module")
def light_server():
    """A server of this test's own that imports only numpy (quick to start)."""
    process, path = warm_kernels.start_server(libraries=("numpy",))
    yield process, path
    warm_kernels.stop_server(process, path)


def _fork(path, code, monkeypatch, python=sys.executable, **streams):
    monkeypatch.setenv(warm_kernels.ENV, path)
    env = dict(os.environ, JPY_PARENT_PID=str(os.getpid()))
    return warm_kernels.fork_kernel([python, "-c", code], env, os.getcwd(), **streams)


def _gone(pid, seconds=10):
    for _ in range(int(seconds / 0.05)):
        stat = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True,
                              text=True).stdout.strip()
        if stat in ("", "Z"):
            return True
        time.sleep(0.05)
    return False


def test_each_kernel_draws_its_own_numpy_seed(light_server, monkeypatch):
    draws = []
    for _ in range(2):
        read, write = os.pipe()
        process = _fork(light_server[1], "import numpy; print(numpy.random.randint(10**9))",
                        monkeypatch, stdout=write)
        os.close(write)
        assert process.wait(30) == 0
        with os.fdopen(read) as f:
            draws.append(f.read())
    assert draws[0] != draws[1]


def test_a_kernel_whose_client_goes_away_is_killed(light_server, monkeypatch):
    process = _fork(light_server[1], "import time; time.sleep(300)", monkeypatch)
    assert not _gone(process.pid, seconds=0.5)
    process._sock.close()                        # the client process ended
    assert _gone(process.pid)


def test_refused_requests_leave_no_open_files_in_the_server(light_server, monkeypatch):
    folder = f"/proc/{light_server[0].pid}/fd"
    assert _fork(light_server[1], "pass", monkeypatch).wait(30) == 0      # server ready
    time.sleep(0.2)
    before = len(os.listdir(folder))
    for _ in range(3):
        monkeypatch.setenv("OMP_NUM_THREADS", "7")
        assert _fork(light_server[1], "pass", monkeypatch) is None
    for _ in range(100):                         # the server closes each connection right
        if len(os.listdir(folder)) == before:    # after its answer
            break
        time.sleep(0.02)
    assert len(os.listdir(folder)) == before


def test_the_server_ends_with_the_process_that_started_it(tmp_path):
    starter = subprocess.Popen(
        [sys.executable, "-c", "import time\nfrom nnbook import warm_kernels\n"
         "process, path = warm_kernels.start_server(libraries=())\n"
         "print(process.pid, flush=True)\ntime.sleep(300)"],
        stdout=subprocess.PIPE, text=True)
    server_pid = int(starter.stdout.readline())
    assert not _gone(server_pid, seconds=0.5)
    starter.kill()
    starter.wait()
    assert _gone(server_pid)


def _niceness_of_fork(path, monkeypatch, value):
    """The (process, autogroup) niceness a fork reports, forked with NNBOOK_NICE=value."""
    if value is None:
        monkeypatch.delenv(warm_kernels.NICE_ENV, raising=False)
    else:
        monkeypatch.setenv(warm_kernels.NICE_ENV, value)
    code = ("import os; group = open('/proc/self/autogroup').read().split()[-1];"
            "print(os.getpriority(os.PRIO_PROCESS, 0), group)")
    read, write = os.pipe()
    process = _fork(path, code, monkeypatch, stdout=write)
    os.close(write)
    assert process.wait(30) == 0
    with os.fdopen(read) as f:
        return tuple(int(word) for word in f.read().split())


@pytest.mark.skipif(not os.path.exists("/proc/self/autogroup"),
                    reason="this Linux schedules without autogroups")
def test_a_fork_takes_the_niceness_it_is_given_for_its_own_session(light_server, monkeypatch):
    """NNBOOK_NICE lowers a forked process's priority: its own and its session's scheduling
    group's (each fork starts a session, so its own niceness alone would not count)."""
    assert _niceness_of_fork(light_server[1], monkeypatch, "10") == (10, 10)
    # otherwise: the server's niceness (it is this process's child), and a new session's 0
    unchanged = (os.getpriority(os.PRIO_PROCESS, 0), 0)
    for ignored in (None, "0", "25", "high"):
        assert _niceness_of_fork(light_server[1], monkeypatch, ignored) == unchanged


@pytest.mark.skipif(not os.path.exists("/proc/self/autogroup"),
                    reason="this Linux schedules without autogroups")
def test_a_fork_waits_its_turn_to_change_its_groups_niceness():
    """Without admin rights Linux refuses a second change of a group's niceness within
    0.1 s (EAGAIN): the fork tries again instead of staying at normal priority."""
    code = textwrap.dedent("""
        import os, warm_kernels
        real_write, refusals = os.write, [BlockingIOError(11, "try again")] * 2
        def write(fd, data):
            if refusals:
                raise refusals.pop()
            return real_write(fd, data)
        os.write = write
        warm_kernels._take_niceness("7")
        print(len(refusals), open("/proc/self/autogroup").read().split()[-1])
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          start_new_session=True,       # its own group, not this test run's
                          env=dict(os.environ, PYTHONPATH=os.path.dirname(warm_kernels.__file__)),
                          timeout=60)
    assert (done.returncode, done.stdout.split(), done.stderr) == (0, ["0", "7"], "")


def test_the_test_run_puts_all_but_its_longest_unit_in_the_background(monkeypatch):
    """``make test`` (conftest.py): this test is not chapter 7's, so the worker running it,
    and the kernels it forks, have niceness 10, their scheduling groups too."""
    if os.environ.get("NNBOOK_FORKED_WORKERS") != "1" or not os.environ.get("PYTEST_XDIST_WORKER"):
        pytest.skip("only a worker of an xdist run with a warm server is a fork of it")
    assert os.environ[warm_kernels.NICE_ENV] == "10"
    with open("/proc/self/autogroup") as group:       # (a `nice -n 15 make test` stays at 15)
        assert int(group.read().split()[-1]) == 10 and os.getpriority(os.PRIO_PROCESS, 0) >= 10
    process_nice, group_nice = _niceness_of_fork(os.environ[warm_kernels.ENV], monkeypatch, "10")
    assert group_nice == 10 and process_nice >= 10


def test_only_the_longest_units_kernels_start_in_the_foreground(root, monkeypatch):
    """The test run's hook (conftest.py) that sets NNBOOK_NICE before each test: 0 for
    the nbval cells and the student copy of the first unit of SLOWEST_FIRST, 10 for all else."""
    spec = importlib.util.spec_from_file_location("root_conftest", root / "conftest.py")
    run_setup = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run_setup)
    chapters = root / "chapters"
    first = next(chapters.glob(f"{run_setup.SLOWEST_FIRST[0]}*.ipynb"))
    other = next(p for p in chapters.glob("*.ipynb") if p != first)
    items = {"nbval, first unit": (first, None), "student copy, first unit": (root, first),
             "nbval, other chapter": (other, None), "student copy, other": (root, other),
             "unit test": (root / "tests" / "test_helpers.py", None)}
    seen = {}
    monkeypatch.setenv(warm_kernels.NICE_ENV, "10")
    for name, (path, chapter) in items.items():
        item = types.SimpleNamespace(path=path, cls=types.SimpleNamespace(chapter=chapter))
        run_setup.pytest_runtest_setup(item)
        seen[name] = os.environ[warm_kernels.NICE_ENV]
    assert seen == {"nbval, first unit": "0", "student copy, first unit": "0",
                    "nbval, other chapter": "10", "student copy, other": "10", "unit test": "10"}


def test_the_python_command_runs_python_as_a_fork(light_server, monkeypatch):
    """What the test run's xdist workers are started with: ``python -u -c code`` with the
    caller's streams, folder and exit code, forked when a server runs, fresh otherwise."""
    code = ("import os, sys; print(os.getcwd(), 'numpy' in sys.modules, sys.stdin.readline().strip());"
            "sys.exit(3)")
    runs, here = {}, os.path.dirname(__file__)
    for name, address in (("forked", light_server[1]), ("fresh", "off")):
        monkeypatch.setenv(warm_kernels.ENV, address)
        runs[name] = subprocess.run([*warm_kernels.python_command(), "-u", "-c", code],
                                    input="a line\n", capture_output=True, text=True,
                                    cwd=here, timeout=60)
    assert (runs["forked"].returncode, runs["forked"].stdout) == (3, f"{here} True a line\n")
    assert (runs["fresh"].returncode, runs["fresh"].stdout) == (3, f"{here} False a line\n")


def test_every_plain_local_worker_spec_is_started_as_a_fork():
    """``-n 3`` and ``--tx 3*popen`` (and options after ``//``) start forked workers; specs
    that name their own Python, or another gateway, are left alone."""
    from xdist.workermanage import parse_tx_spec_config

    python = " ".join(shlex.quote(part) for part in warm_kernels.python_command())
    forked = f"popen//python={python}"
    specs = ["popen", "3*popen", "popen//id=a", "2*popen//id=b", "popen//python=python3.12",
             "ssh=host//chdir=x", "socket=1.2.3.4:8888"]
    assert warm_kernels.forked_worker_specs(specs) == [
        forked, f"3*{forked}", f"{forked}//id=a", f"2*{forked}//id=b", *specs[4:]]
    # ... and xdist reads them back as one forked worker per count
    config = types.SimpleNamespace(
        getvalue=lambda name: warm_kernels.forked_worker_specs(["popen", "2*popen"]))
    workers = [execnet.XSpec(spec) for spec in parse_tx_spec_config(config)]
    assert len(workers) == 3
    assert all(w.popen and w.python == python for w in workers)


def test_the_test_runs_workers_are_forks_of_the_warm_server():
    """``make test``'s workers start with the libraries imported (conftest.py) and can
    fork their kernels from the same server."""
    if os.environ.get("NNBOOK_FORKED_WORKERS") != "1" or not os.environ.get("PYTEST_XDIST_WORKER"):
        pytest.skip("only a worker of an xdist run with a warm server is a fork of it")
    with open(f"/proc/{os.getppid()}/cmdline", "rb") as f:
        parent = f.read().split(b"\0")
    assert parent[1].endswith(b"warm_kernels.py") and b"--python" not in parent
    assert os.environ.get(warm_kernels.ENV, "off") != "off"    # its kernels fork too


def test_the_python_command_passes_signals_on_and_ends_as_its_fork_did(light_server,
                                                                       monkeypatch):
    """Ctrl-C (or a parent's SIGTERM) reaches the fork, which has a session of its own, and
    a fork ended by a signal ends the command by the same signal."""
    monkeypatch.setenv(warm_kernels.ENV, light_server[1])
    waits = subprocess.Popen(
        [*warm_kernels.python_command(), "-u", "-c",
         "import time\ntry:\n    print('ready', flush=True); time.sleep(60)\n"
         "except KeyboardInterrupt:\n    raise SystemExit(7)"], stdout=subprocess.PIPE, text=True)
    assert waits.stdout.readline() == "ready\n"
    waits.send_signal(signal.SIGINT)
    assert waits.wait(30) == 7
    killed = subprocess.run([*warm_kernels.python_command(), "-c",
                             "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"], timeout=30)
    assert killed.returncode == -signal.SIGKILL

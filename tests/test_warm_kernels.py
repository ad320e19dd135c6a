"""Warm kernels (tooling/nnbook/warm_kernels.py): a forked kernel is the process a fresh one would be.

The test run starts its kernels this way (the pytest plugin, tooling/nnbook/pytest_plugin.py,
starts the server these tests use too); they compare a forked kernel with a fresh interpreter's, and check the
ways back to a fresh one.
"""

import asyncio
import importlib.util
import json
import os
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
    "hash_randomization": sys.flags.hash_randomization,
}))
import torch
print(json.dumps({"torch_threads": [torch.get_num_threads(), torch.get_num_interop_threads()],
                  "seeded_afresh": torch.initial_seed() != SERVER_SEED}))
"""


@pytest.fixture(autouse=True)
def _not_counted(monkeypatch):
    """The kernels refused here on purpose stay out of the test run's summary line."""
    monkeypatch.delenv("NNBOOK_WARM_LOG", raising=False)


@pytest.fixture(scope="module")
def server():
    """The test run's server (the pytest plugin), or one of this module's own."""
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


def _portrait(folder, monkeypatch, address, server_seed=-1):
    monkeypatch.setenv(warm_kernels.ENV, address)
    monkeypatch.setenv("NNBOOK_TEST_MARKER", "this kernel's own value")
    monkeypatch.setenv("TMPDIR", str(folder))       # not the server's temporary directory
    texts, pid = _run([PORTRAIT.replace("SERVER_SEED", str(server_seed))], folder)
    return texts[0], pid


def test_a_forked_kernel_is_what_a_fresh_one_would_be(server, tmp_path, monkeypatch):
    """Everything a notebook can see, torch's thread counts and seed included: a fork's
    torch seed is not the one the server drew when it imported torch (nor another fork's:
    test_each_kernel_draws_its_own_torch_and_python_seeds)."""
    read, write = os.pipe()
    monkeypatch.setenv(warm_kernels.ENV, server)
    seed = warm_kernels.fork_kernel([sys.executable, "-c", "import os, sys, torch; "
                                     "print(torch.initial_seed())"], dict(os.environ),
                                    os.getcwd(), stdout=write)
    os.close(write)
    assert seed.wait(60) == 0
    with os.fdopen(read) as f:
        first_fork = int(f.read())
    fresh, fresh_pid = _portrait(tmp_path, monkeypatch, "off", first_fork)
    warm, warm_pid = _portrait(tmp_path, monkeypatch, server, first_fork)
    assert not fresh_pid["forked"] and warm_pid["forked"]
    assert warm == fresh
    assert '"own_session": true' in warm and str(tmp_path) in warm
    assert '"backend": "module://matplotlib_inline.backend_inline"' in warm
    assert '"columns": 20' in warm and '"server_module": false' in warm
    assert '"seeded_afresh": true' in warm and '"torch_threads": [' in warm
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
    env = dict(os.environ, OMP_NUM_THREADS="13")     # not the server's value (the test run's is 1)
    texts, pid = _run(["import os; print(os.environ['OMP_NUM_THREADS'])"], tmp_path, env=env)
    assert texts[0].strip() == "13" and not pid["forked"]


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
        assert time.monotonic() - start < 5       # a server that never answers would cost 10 s


def test_an_interrupt_reaches_a_forked_kernel(server, tmp_path, monkeypatch):
    monkeypatch.setenv(warm_kernels.ENV, server)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import time; time.sleep(60)")])
    client = NotebookClient(nb, timeout=1, kernel_name="python3", interrupt_on_timeout=True,
                            allow_errors=True, kernel_manager_class=AsyncIsolatedKernelManager,
                            resources={"metadata": {"path": str(tmp_path)}})
    start = time.monotonic()
    client.execute()
    assert time.monotonic() - start < 45       # well under the cell's 60 s: it was interrupted
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
         "print(process.pid, path, flush=True)\ntime.sleep(300)"],
        stdout=subprocess.PIPE, text=True)
    server_pid, path = starter.stdout.readline().split()
    assert not _gone(int(server_pid), seconds=0.5)
    starter.kill()
    starter.wait()
    assert _gone(int(server_pid))
    # and it removed its temporary folder (nothing else would)
    for _ in range(100):
        if not os.path.exists(os.path.dirname(path)):
            break
        time.sleep(0.05)
    assert not os.path.exists(os.path.dirname(path))


# --------------------------------------------------------------------------
# A kernel is no way out: the attacks of a submission that means harm
# --------------------------------------------------------------------------

# Run in a forked kernel: find the server's socket the ways a notebook can (its parent's
# command line, the environment, the system's list of Unix sockets) and ask it for a
# process of its own, outside the kernel's process group and limits.
ASK_FOR_A_KERNEL = """
import json, os, socket, sys
paths = set(open(f"/proc/{os.getppid()}/cmdline").read().split("\\0"))
paths |= {line.split()[-1] for line in open("/proc/net/unix").read().splitlines()[1:]
          if line.split()[-1].endswith("server.sock")}
answers = []
for path in sorted(p for p in paths if p.endswith("server.sock")):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError:
        continue
    request = json.dumps({"cmd": [sys.executable, "-c", "import time; time.sleep(60)"],
                          "env": dict(os.environ), "cwd": "/"}).encode()
    null = os.open(os.devnull, os.O_RDWR)
    try:
        socket.send_fds(sock, [request + b"\\n"], [null, null, null])
    except OSError:          # refused at once: the answer is waiting
        pass
    sock.settimeout(20)
    answers.append(sock.recv(4096).decode().strip())
    if DOUBLE_FORK:
        break
print(json.dumps(answers))
"""


def _attack(path, monkeypatch, double_fork=False):
    """What the server answered a kernel (or its setsid'd, orphaned grandchild) that asked
    for a kernel of its own."""
    code = ASK_FOR_A_KERNEL.replace("DOUBLE_FORK", str(double_fork))
    if double_fork:        # the asker leaves the kernel's session and is orphaned first
        code = ("import os, sys, time\nif os.fork():\n    os.wait(); time.sleep(3); sys.exit(0)\n"
                "os.setsid()\nif os.fork():\n    os._exit(0)\ntime.sleep(0.5)\n") + code
    read, write = os.pipe()
    process = _fork(path, code, monkeypatch, stdout=write)
    os.close(write)
    assert process.wait(60) == 0
    with os.fdopen(read) as f:
        return f.read()


@pytest.mark.parametrize("double_fork", [False, True], ids=["kernel", "orphaned-grandchild"])
def test_a_kernel_cannot_ask_the_server_for_a_kernel(light_server, monkeypatch, double_fork):
    answers = _attack(light_server[1], monkeypatch, double_fork)
    assert '"pid"' not in answers.replace("\\", "")      # no process was forked for it
    assert "cannot ask for a kernel" in answers           # the server saw it and said why


def test_limits_are_set_in_the_fork_before_its_code_runs(light_server, monkeypatch):
    monkeypatch.setenv(warm_kernels.LIMITS_ENV, warm_kernels.limits_text(
        {"AS": 3000 * 2**20, "FSIZE": 5 * 2**20}))
    read, write = os.pipe()
    process = _fork(light_server[1], "import resource, os; print(resource.getrlimit("
                    "resource.RLIMIT_AS)[0] // 2**20, resource.getrlimit(resource.RLIMIT_FSIZE)"
                    "[0] // 2**20, os.environ.get('NNBOOK_KERNEL_LIMITS'))", monkeypatch,
                    stdout=write)
    os.close(write)
    assert process.wait(30) == 0
    with os.fdopen(read) as f:
        assert f.read().split() == ["3000", "5", "None"]


def test_a_bad_limit_is_refused_with_its_name(light_server, monkeypatch):
    monkeypatch.setenv(warm_kernels.LIMITS_ENV, "STACK=1")
    assert _fork(light_server[1], "pass", monkeypatch) is None


def test_the_server_refuses_to_fork_with_a_second_thread(tmp_path, monkeypatch, capfd):
    """A server with a second thread (as a library that starts one on import would leave
    it) says so and forks nothing."""
    path = str(tmp_path / "server.sock")
    server = subprocess.Popen([sys.executable, "-c",
                               "import threading, time\n"
                               "threading.Thread(target=time.sleep, args=(600,), daemon=True).start()\n"
                               "from nnbook import warm_kernels\n"
                               f"warm_kernels.serve({path!r}, libraries=())"])
    try:
        assert _fork(path, "pass", monkeypatch) is None
        assert "threads, and fork() copies only one of them" in capfd.readouterr().err
    finally:
        server.kill()
        server.wait()


def test_each_kernel_draws_its_own_torch_and_python_seeds(server, monkeypatch):
    draws = []
    for _ in range(2):
        read, write = os.pipe()
        process = _fork(server, "import random, torch; print(torch.initial_seed(), "
                        "random.random())", monkeypatch, stdout=write)
        os.close(write)
        assert process.wait(60) == 0
        with os.fdopen(read) as f:
            draws.append(f.read().split())
    assert draws[0][0] != draws[1][0] and draws[0][1] != draws[1][1]


def test_forks_share_the_servers_hash_seed_as_documented(light_server, monkeypatch):
    """The one documented difference (besides gc's frozen objects): a string hash seed is
    fixed when an interpreter starts, so forks share the server's."""
    hashes = []
    for _ in range(2):
        read, write = os.pipe()
        process = _fork(light_server[1], "print(hash('nnbook'))", monkeypatch, stdout=write)
        os.close(write)
        assert process.wait(30) == 0
        with os.fdopen(read) as f:
            hashes.append(f.read())
    fresh = [subprocess.run([sys.executable, "-c", "print(hash('nnbook'))"], capture_output=True,
                            text=True).stdout for _ in range(2)]
    assert hashes[0] == hashes[1] and fresh[0] != fresh[1]


def test_a_kernel_cannot_write_into_another_kernels_cache_copy(light_server, monkeypatch,
                                                                tmp_path):
    """Kernel B gets its cache copy as a private folder; kernel A, which knows its path (as a
    submission finds it: /tmp, B's environment), writes a pickle there and into the seed;
    B never sees either. The seed file changed after the grader recorded its digest is left
    out of later copies."""
    seed, target = tmp_path / "seed", tmp_path / "b-cache"
    (seed / "ab").mkdir(parents=True)
    (seed / "ab" / "fit.pkl").write_bytes(b"a cached fit")
    (seed / "ab" / "other.pkl").write_bytes(b"another fit")
    target.mkdir()
    spec = {"seed": str(seed), "target": str(target), "files": warm_kernels.manifest(seed)}
    monkeypatch.setenv(warm_kernels.PRIVATE_CACHE_ENV, json.dumps(spec))
    monkeypatch.setenv("NNBOOK_CACHE_DIR", str(target))
    go_r, go_w = os.pipe()
    out_r, out_w = os.pipe()
    victim = _fork(light_server[1], "import os, sys\nsys.stdin.readline()\nprint(sorted("
                   "str(p.relative_to(os.environ['NNBOOK_CACHE_DIR'])) for p in __import__("
                   "'pathlib').Path(os.environ['NNBOOK_CACHE_DIR']).rglob('*.pkl')), "
                   "os.environ['NNBOOK_CACHE_DIR'])", monkeypatch, stdin=go_r, stdout=out_w)
    os.close(go_r)
    os.close(out_w)
    monkeypatch.delenv(warm_kernels.PRIVATE_CACHE_ENV)
    time.sleep(1)                                     # the victim has mounted its copy
    attacker = _fork(light_server[1], f"import os\nfor folder in ({str(target)!r}, "
                     f"{str(seed / 'ab')!r}):\n    os.makedirs(folder, exist_ok=True)\n"
                     "    open(os.path.join(folder, 'poison.pkl'), 'wb').write(b'x')\n"
                     f"open({str(seed / 'ab' / 'other.pkl')!r}, 'wb').write(b'changed')",
                     monkeypatch)
    assert attacker.wait(30) == 0
    assert (target / "poison.pkl").exists()            # it wrote where the path leads...
    os.write(go_w, b"go\n")
    os.close(go_w)
    assert victim.wait(30) == 0
    with os.fdopen(out_r) as f:
        seen = f.read()
    assert seen.startswith("['ab/fit.pkl', 'ab/other.pkl']"), seen    # ...which B never sees
    # a later kernel's copy leaves out the seed file changed since the digests were taken
    monkeypatch.setenv(warm_kernels.PRIVATE_CACHE_ENV, json.dumps(spec))
    read, write = os.pipe()
    later = _fork(light_server[1], "import os; print(sorted(os.listdir(os.path.join("
                  "os.environ['NNBOOK_CACHE_DIR'], 'ab'))))", monkeypatch, stdout=write)
    os.close(write)
    assert later.wait(30) == 0
    with os.fdopen(read) as f:
        assert f.read().strip() == "['fit.pkl']"

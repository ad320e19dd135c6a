"""Jupyter kernels that start warm: forked from a process that has imported the libraries.

A chapter's kernel spends 3-5 s importing torch, scikit-learn, matplotlib and
seaborn before it computes anything. A test run starts some 35 kernels
(nbval, student copies, the grader's planted class) and ``make grade`` one per
submission, so imports, not fits, would set their time. Here one *server*
process imports the libraries once; each kernel is a ``fork()`` of it, which
then becomes exactly the process ``python -m ipykernel_launcher -f ...`` (or
``python -c <code> ...``) would have been: its own session and process group,
working folder, environment, ``sys.path``, ``sys.argv`` and standard streams,
with nothing of the notebook's own code or data inherited. The notebook still
runs every one of its cells, imports included, in a fresh namespace, and its
random generators (Python's, NumPy's, torch's) are seeded afresh, as a new
interpreter seeds them.

**Kernels cannot ask for kernels.** The server is a *child subreaper*: every
process a kernel starts stays its descendant, even once orphaned. It refuses a
request from any of its descendants (``SO_PEERCRED`` gives the caller's pid), so
a notebook that finds the socket cannot get a process outside its process group
or without its limits. Resource limits asked for (:data:`LIMITS_ENV`) are set in
the forked child before any of its code runs; the child closes the server's
sockets. The server refuses to fork while it has more than one thread (a fork
copies only the calling thread: locks held by the others would stay locked).
The idle thread pools OpenBLAS starts when imported are the exception: they
reset themselves in a fork (``pthread_atfork``).

The server freezes its objects for the garbage collector (``gc.freeze()``)
before it forks: a kernel's collections then never walk the libraries' millions
of objects, so the memory pages the kernels share with the server stay shared
instead of being copied into each kernel (a kernel's start costs 0.1 s of CPU
instead of 0.45 s; reference counting still copies the pages it writes to). A
notebook could see it only through the garbage collector's own functions
(``gc.get_objects()`` and ``gc.get_referrers()`` leave out the frozen objects,
``gc.get_freeze_count()`` is not 0) and in reference cycles among the libraries'
import-time objects, which are never collected. Forks also share the server's
string-hash seed (fixed when an interpreter starts): a set of strings iterates in the
same order in every forked kernel, and in a different one in each fresh interpreter.
No stored output may depend on that order: ``make execute-check`` (fresh interpreters)
would then differ from the stored outputs.

    with warm_kernels.serving():          # starts a server unless one is running
        ...                               # kernel managers below fork from it

What the kernel managers of ``execute_notebooks`` do: when ``NNBOOK_WARM_KERNELS``
names a running server's socket, their kernels are forked from it
(:class:`WarmProvisioner`); otherwise, or for a command or environment the
server cannot reproduce (another Python, interpreter options, a different
value of a variable read at import time such as ``OMP_NUM_THREADS``), they start
the usual way. ``NNBOOK_WARM_KERNELS=off`` turns the server off.

Linux only (``fork`` after importing torch is unsafe on macOS; Windows has no
``fork``): elsewhere :func:`serving` starts nothing and kernels start the usual way.
``make execute`` and ``make execute-check`` always start fresh interpreters, as
JupyterLab does: the stored outputs come from there, and strict nbval's run
on warm kernels must reproduce them exactly.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from jupyter_client.provisioning import LocalProvisioner

ENV = "NNBOOK_WARM_KERNELS"
"""Environment variable: the running server's socket path, or ``off``."""

LIBRARIES = (
    "numpy", "pandas", "scipy.optimize", "scipy.stats", "joblib", "threadpoolctl",
    "sklearn.neural_network", "sklearn.model_selection", "sklearn.preprocessing",
    "sklearn.pipeline", "sklearn.metrics", "sklearn.datasets", "sklearn.linear_model",
    "sklearn.dummy", "sklearn.inspection", "sklearn.compose",
    "matplotlib", "matplotlib.pyplot", "matplotlib.colors", "seaborn", "networkx",
    "torch", "torch.nn", "torch.optim", "torch.utils.data", "torch.nn.functional",
    "torch._dynamo",                    # imported by the first optimizer a kernel builds (1 s)
    "IPython", "IPython.display",
    "ipykernel.debugger",               # debugpy, which every kernel imports as it starts (0.35 s)
)
"""What the server imports: the libraries the chapters import (and what they import on first
use, like the ``torch._dynamo`` that ``torch.optim.Adam(...)`` pulls in) and the kernel's
debugger. Never the book's own modules (the kernel imports those from its own ``sys.path``)
nor ipykernel's application (``ipykernel.kernelapp``, whose settings read the environment,
e.g. ``JPY_PARENT_PID``, when it is imported)."""

LIMITS_ENV = "NNBOOK_KERNEL_LIMITS"
"""Environment variable of a kernel request: resource limits (``AS=bytes,FSIZE=bytes``) that
the forked kernel takes before any of its code runs (the grader's memory and file limits)."""

READ_AT_IMPORT = ("PYTHON", "OMP_", "GOMP_", "OPENBLAS_", "MKL_", "KMP_", "GOTO_", "VECLIB_",
                  "BLIS_", "NUMEXPR_", "NUMPY_", "NPY_", "SCIPY_", "SKLEARN_", "PANDAS_",
                  "TORCH_", "PYTORCH_", "CUDA_", "MPLCONFIGDIR", "MATPLOTLIBRC", "LD_", "MALLOC_",
                  "IPYTHON", "PYDEVD_", "DEBUGPY_", "LANG", "LC_", "TZ", "HOME", "XDG_")
"""Prefixes of environment variables that a library (or the interpreter) reads once, when
it starts or is imported: a kernel whose value differs from the server's starts the usual way.
``PYTHONPATH`` and ``PYTHONDONTWRITEBYTECODE`` are the exceptions: the forked kernel
rebuilds ``sys.path`` and sets ``sys.dont_write_bytecode`` from its own values."""

PRIVATE_CACHE_ENV = "NNBOOK_PRIVATE_CACHE"
"""Environment variable of a kernel request: JSON ``{"seed": folder, "target": folder,
"files": {relative path: sha256}}``. The forked kernel gets ``target`` as a folder no
other process can write (:func:`_private_cache`), filled with the seed's files whose
content still has the digest given (a file changed since is left out: a cache miss)."""

INLINE = "module://matplotlib_inline.backend_inline"
STARTUP_SECONDS = 60
"""How long a client waits for the server's answer (it may still be importing)."""
BIND_SECONDS = 10
"""How long a client waits for a starting server's socket to appear (it binds first thing)."""


_FROM_SURROUNDINGS = ("TORCHINDUCTOR_CACHE_DIR",)
"""Variables an import sets from the process's surroundings (torch._dynamo: a folder under
the temporary directory, named after the user): not passed on to kernels, whose own
surroundings may differ; torch computes it again when it needs it."""


def _import_sensitive(env: dict) -> dict:
    return {k: v for k, v in env.items()
            if k.startswith(READ_AT_IMPORT) and k not in ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE")}


@contextlib.contextmanager
def _quiet_stderr():
    """Send file descriptor 2 to /dev/null for the block."""
    sys.stderr.flush()
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def available() -> bool:
    """Whether kernels can be forked on this system."""
    return sys.platform.startswith("linux") and hasattr(os, "fork")


def server_address() -> str | None:
    """The socket of the running server this process should use, or None."""
    path = os.environ.get(ENV, "")
    if not path or path == "off" or not available():
        return None
    return path


# --------------------------------------------------------------------------
# Starting and stopping a server
# --------------------------------------------------------------------------

def start_server(folder: str | None = None, libraries=LIBRARIES) -> tuple[subprocess.Popen, str]:
    """Start a server in the background; return its process and socket path.

    The server listens at once, then imports ``libraries`` (a few seconds for
    :data:`LIBRARIES`); requests made meanwhile are answered after the imports."""
    folder = folder or tempfile.mkdtemp(prefix="nnbook-warm-")
    path = os.path.join(folder, "server.sock")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", ENV, "MPLBACKEND")}
    process = subprocess.Popen([sys.executable, os.path.abspath(__file__), path, *libraries],
                               env=env, cwd=folder, stdin=subprocess.DEVNULL,
                               start_new_session=True)
    return process, path


def stop_server(process: subprocess.Popen, path: str) -> None:
    """Stop a server; it kills the kernels still running from it."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    with contextlib.suppress(OSError):
        os.unlink(path)
    with contextlib.suppress(OSError):
        os.rmdir(os.path.dirname(path))


@contextlib.contextmanager
def serving(libraries=LIBRARIES):
    """Run a server for the ``with`` block unless one runs already, or it is off or unavailable.

    Sets :data:`ENV` for this process and the processes it starts."""
    if os.environ.get(ENV) or not available():
        yield os.environ.get(ENV)
        return
    process, path = start_server(libraries=libraries)
    os.environ[ENV] = path
    try:
        yield path
    finally:
        if os.environ.get(ENV) == path:
            del os.environ[ENV]
        stop_server(process, path)


@contextlib.contextmanager
def turned_off():
    """Start every kernel of the ``with`` block (and of the processes it starts) fresh."""
    saved = os.environ.get(ENV)
    os.environ[ENV] = "off"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = saved


# --------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------

def _send(sock, message: dict) -> None:
    sock.sendall(json.dumps(message).encode() + b"\n")


def _receive(sock) -> dict | None:
    """One message: a JSON line (read a byte at a time: the next message stays queued)."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(1)
        if not chunk:
            return None
        data += chunk
    return json.loads(data)


def serve(path: str | None = None, libraries=None) -> None:
    """The server's main loop: import the libraries, then fork a kernel per request.

    Each request is one connection: a JSON line (command, folder, environment)
    with the client's standard streams attached (``SCM_RIGHTS``). The server
    answers with the kernel's pid once the kernel has its own session, keeps the
    connection, and sends the exit code when the kernel ends. A client that goes
    away takes its kernel along (the server kills the kernel's process group),
    and the server ends when the process that started it does."""
    import gc
    import importlib
    import selectors

    path = path or sys.argv[1]
    libraries = sys.argv[2:] if libraries is None else libraries
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))    # clean up, even while importing
    try:
        _end_with_parent()
        _prctl(PR_SET_CHILD_SUBREAPER, 1)     # orphans of kernels stay our descendants
        _serve(path, libraries)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
        if os.path.basename(os.path.dirname(path)).startswith("nnbook-warm-"):
            with contextlib.suppress(OSError):  # the folder start_server made for it
                os.rmdir(os.path.dirname(path))


def _serve(path: str, libraries) -> None:
    import gc
    import importlib
    import selectors

    # listen first: clients that come during the imports wait in the queue
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    temporary = f"{path}.{os.getpid()}"
    listener.bind(temporary)
    listener.listen(64)
    os.replace(temporary, path)               # clients see no socket or a listening one
    before = _import_sensitive(dict(os.environ))
    for name in libraries:
        # debugpy prints a note about frozen modules when imported: a kernel prints it to the
        # log of the program that started the kernel, not to a notebook, so drop it here
        with contextlib.suppress(Exception), (_quiet_stderr() if name == "ipykernel.debugger"
                                              else contextlib.nullcontext()):
            importlib.import_module(name)     # a library that fails is imported by the kernel
    base_path = sys.path[1:]                  # sys.path[0] is this file's folder
    # the imported objects live as long as the kernels: keep them out of the garbage
    # collector's scans, which would otherwise copy every page they touch into each kernel
    gc.collect()
    gc.freeze()
    native_threads = _os_threads()            # BLAS pools the imports started
    # a library may set a variable when imported (scikit-learn: KMP_*); a client that has
    # imported it too passes it on, and the kernel gets it back (_become_kernel)
    sensitive = (before, _import_sensitive(dict(os.environ)))
    set_by_imports = {k: v for k, v in os.environ.items()
                      if k not in _STARTED_WITH and k not in _FROM_SURROUNDINGS}

    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, "accept")
    selector.register(wake_r, selectors.EVENT_READ, "reap")
    children: dict[int, socket.socket] = {}

    def forget(pid):
        conn = children.pop(pid, None)
        if conn is not None:
            with contextlib.suppress(Exception):
                selector.unregister(conn)
            conn.close()
        return conn

    def reap():
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            conn = children.get(pid)
            if conn is not None:
                with contextlib.suppress(OSError):
                    _send(conn, {"exit": os.waitstatus_to_exitcode(status)})
            forget(pid)

    try:
        while True:
            for key, _ in selector.select():
                if key.data == "reap":
                    with contextlib.suppress(BlockingIOError):
                        os.read(wake_r, 4096)
                    reap()
                elif key.data == "accept":
                    try:
                        conn, _ = listener.accept()
                    except OSError:                 # e.g. out of file descriptors: keep serving
                        continue
                    try:
                        _refuse_descendants(conn)
                        _refuse_threads(native_threads)
                        pid = _fork_kernel(conn, base_path, sensitive, set_by_imports,
                                           [listener, selector, wake_r, wake_w,
                                            *children.values()], children)
                        selector.register(conn, selectors.EVENT_READ, pid)
                    except Exception as error:      # a bad request: answer it, keep serving
                        with contextlib.suppress(OSError):
                            _send(conn, {"error": f"{type(error).__name__}: {error}"})
                        conn.close()
                else:                               # a client spoke or went away
                    pid = key.data
                    with contextlib.suppress(OSError):
                        os.killpg(pid, signal.SIGKILL)
                    forget(pid)
            reap()
    finally:
        for pid in list(children):
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            os.unlink(path)


_STARTED_WITH = set(os.environ)
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER = 1, 4, 36


def _prctl(option: int, value: int) -> None:
    import ctypes

    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)


def _parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def _refuse_descendants(conn) -> None:
    """PermissionError if the process at the other end of ``conn`` descends from this server
    (a kernel, or anything a kernel started: as a subreaper the server adopts orphans)."""
    import struct

    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid = struct.unpack("3i", creds)[0]
    me = os.getpid()
    for _ in range(4096):
        if pid == me:
            raise PermissionError("a kernel (or a process it started) cannot ask for a kernel")
        if pid <= 1:
            return
        try:
            pid = _parent_of(pid)
        except (OSError, ValueError, IndexError):   # gone: nothing to fork for
            raise PermissionError("the asking process has ended") from None
    raise PermissionError("cannot trace the asking process's ancestry")


def _os_threads() -> int:
    """The operating system's threads of this process (native library threads included)."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 1


def _refuse_threads(native_after_imports: int) -> None:
    """RuntimeError if this process has a Python thread besides the main one, or more native
    threads than the libraries' imports left (OpenBLAS's idle pools, which reset themselves
    in a fork through ``pthread_atfork``)."""
    import threading

    python, native = threading.active_count(), _os_threads()
    if python > 1 or native > native_after_imports:
        raise RuntimeError(
            f"the warm server runs {max(python, native - native_after_imports + 1)} threads, "
            "and fork() copies only one of them (a lock another holds would stay locked in "
            "the kernel): refusing to fork. A library in warm_kernels.LIBRARIES started a "
            "thread; take it out of the list")


def manifest(folder: str | Path) -> dict:
    """{relative path: sha256} of every file under ``folder`` (for :data:`PRIVATE_CACHE_ENV`)."""
    import hashlib

    folder = Path(folder)
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _private_cache(spec: dict) -> None:
    """In the forked child: mount a private ``tmpfs`` at ``spec["target"]`` and fill it.

    The child enters a user and mount namespace of its own (Linux, unprivileged), so the
    folder it sees at ``target`` exists in no other process's view of the files: another
    kernel that writes to the same path writes to the empty folder beneath. The child is
    made non-dumpable, so that no other process of the user can reach its files through
    ``/proc/<pid>/root`` either. The seed's files are copied only if they still have the
    digest the grader recorded before any kernel ran (a kernel may have written into the
    seed)."""
    import ctypes
    import hashlib

    libc = ctypes.CDLL(None, use_errno=True)
    uid, gid = os.getuid(), os.getgid()
    clone_newuser, clone_newns = 0x10000000, 0x00020000
    if libc.unshare(clone_newuser | clone_newns) != 0:
        raise OSError(ctypes.get_errno(), "unshare: " + os.strerror(ctypes.get_errno()))
    for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"),
                       ("gid_map", f"{gid} {gid} 1")):
        with open(f"/proc/self/{name}", "w") as f:
            f.write(text)
    target = os.fsencode(spec["target"])
    os.makedirs(target, exist_ok=True)
    ms_nosuid, ms_nodev = 2, 4
    if libc.mount(b"tmpfs", target, b"tmpfs", ms_nosuid | ms_nodev, b"mode=0700") != 0:
        raise OSError(ctypes.get_errno(), "mount: " + os.strerror(ctypes.get_errno()))
    _prctl(PR_SET_DUMPABLE, 0)
    seed = Path(spec["seed"])
    for rel, digest in spec.get("files", {}).items():
        source = seed / rel
        if ".." in Path(rel).parts or source.is_symlink():
            continue
        try:
            data = source.read_bytes()
        except OSError:
            continue
        if hashlib.sha256(data).hexdigest() == digest:
            copy = Path(spec["target"]) / rel
            copy.parent.mkdir(parents=True, exist_ok=True)
            copy.write_bytes(data)


def limits_text(limits: dict) -> str:
    """:data:`LIMITS_ENV`'s value for ``{"AS": bytes, "FSIZE": bytes}`` (0: no limit)."""
    return ",".join(f"{name}={int(value)}" for name, value in limits.items() if value)


def _take_limits(text: str) -> None:
    """Set the resource limits of :data:`LIMITS_ENV` (in the forked child, before its code)."""
    import resource

    for item in filter(None, (text or "").split(",")):
        name, _, value = item.partition("=")
        if name not in ("AS", "FSIZE", "CPU", "NPROC", "NOFILE"):
            raise ValueError(f"unknown resource limit {name!r} in {LIMITS_ENV}")
        limit = int(value)
        resource.setrlimit(getattr(resource, f"RLIMIT_{name}"), (limit, limit))


def _end_with_parent() -> None:
    """Ask Linux to end this process (SIGTERM) when the process that started it ends."""
    import ctypes

    parent = os.getppid()
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:                # the parent ended before the call
        sys.exit(0)


def _fork_kernel(conn, base_path: list[str], sensitive: tuple, set_by_imports: dict,
                 close_in_child: list, children: dict) -> int:
    """Read one request from ``conn``, fork the kernel, and return its pid (in the server)."""
    fds = []
    try:
        conn.settimeout(30)
        raw, fds, _, _ = socket.recv_fds(conn, 1 << 20, 3)
        while not raw.endswith(b"\n"):
            chunk = conn.recv(1 << 20)
            if not chunk:
                raise ValueError("incomplete request")
            raw += chunk
        request = json.loads(raw)
        conn.settimeout(None)
        cmd, env, cwd = request["cmd"], request["env"], request["cwd"]
        if len(fds) != 3:
            raise ValueError("expected three standard streams")
        same_python = os.path.isabs(cmd[0]) and (os.path.normpath(cmd[0])
                                                 == os.path.normpath(sys.executable))
        if not same_python or len(cmd) < 3 or cmd[1] not in ("-m", "-c"):
            raise ValueError(f"cannot reproduce {cmd[:2]}: only '{sys.executable} -m/-c' forks")
        before, after = sensitive
        asked = _import_sensitive(env)
        differ = [k for k in sorted({*asked, *before, *after})
                  if asked.get(k) not in (before.get(k), after.get(k))]
        if differ:
            raise ValueError(f"variables read at import time differ: {differ}")
        env = {**set_by_imports, **env}           # what the libraries set, as after an import
        env.pop(ENV, None)                        # kernels its notebook starts start fresh;
        env.pop("NNBOOK_WARM_LOG", None)          # ipykernel's poller ends the kernel when
        env["JPY_PARENT_PID"] = str(os.getpid())  # the server ends
        limits = env.pop(LIMITS_ENV, "")
        private = json.loads(env.pop(PRIVATE_CACHE_ENV, "") or "null")
        for item in filter(None, limits.split(",")):
            if item.partition("=")[0] not in ("AS", "FSIZE", "CPU", "NPROC", "NOFILE") or \
                    not item.partition("=")[2].isdigit():
                raise ValueError(f"bad resource limit {item!r} in {LIMITS_ENV}")
        ready_r, ready_w = os.pipe()
        pid = os.fork()
        if pid == 0:                              # the kernel
            code = 1
            try:
                os.close(ready_r)
                os.setsid()
                _take_limits(limits)              # before any of the kernel's code
                if private:
                    try:
                        _private_cache(private)
                    except Exception as error:    # no namespaces here: no cache, not a shared one
                        env["NNBOOK_CACHE_DIR"] = "off"
                        print(f"warm_kernels: no private result cache ({error}); the cache "
                              "is off for this kernel", file=sys.stderr)
                os.close(ready_w)                 # tells the server: own session now
                for item in close_in_child:
                    with contextlib.suppress(Exception):
                        item.close() if hasattr(item, "close") else os.close(item)
                conn.close()
                code = _become_kernel(cmd, env, cwd, fds, base_path)   # never raises
            except BaseException:                 # in the set-up before it
                import traceback
                traceback.print_exc()
            finally:
                with contextlib.suppress(Exception):
                    sys.stdout.flush()
                    sys.stderr.flush()
                os._exit(code)
        children[pid] = conn                      # tracked before the answer can fail
        os.close(ready_w)
        os.read(ready_r, 1)                       # returns when the child closed its end
        os.close(ready_r)
    finally:
        for fd in fds:
            os.close(fd)
    try:
        _send(conn, {"pid": pid})
    except OSError:                               # the client is gone: so is its kernel
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)
        raise
    return pid


def _become_kernel(cmd, env, cwd, fds, base_path) -> int:
    """In the forked child: turn into the process ``cmd`` would start, then run it."""
    import atexit
    import runpy
    import threading
    import types

    signal.set_wakeup_fd(-1)
    for number in (signal.SIGCHLD, signal.SIGTERM):
        signal.signal(number, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    sys.stdin = open(0, closefd=False)           # noqa: SIM115 (the process's own streams)
    sys.stdout = open(1, "w", closefd=False, buffering=1)  # noqa: SIM115
    sys.stderr = open(2, "w", closefd=False, buffering=1)  # noqa: SIM115
    sys.__stdin__, sys.__stdout__, sys.__stderr__ = sys.stdin, sys.stdout, sys.stderr
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    sys.dont_write_bytecode = bool(env.get("PYTHONDONTWRITEBYTECODE"))
    extra = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    first = os.getcwd() if cmd[1] == "-m" else ""
    sys.path[:] = [first, *extra, *base_path]
    _as_if_imported_here(kernel="ipykernel" in " ".join(cmd[2:3]))
    # a new __main__, as the interpreter makes (multiprocessing's alias of it too)
    main = types.ModuleType("__main__")
    main.__dict__.update(__builtins__=__builtins__)
    sys.modules["__main__"] = sys.modules["__mp_main__"] = main
    code = 0
    try:
        if cmd[1] == "-m":                        # what `python -m module args` runs
            sys.argv = ["-m", *cmd[3:]]
            runpy._run_module_as_main(cmd[2], alter_argv=True)
        else:                                     # `python -c code args`
            sys.argv = ["-c", *cmd[3:]]
            exec(compile(cmd[2], "<string>", "exec"), main.__dict__)
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    except BaseException:
        import traceback
        traceback.print_exc()
        code = 1
    with contextlib.suppress(Exception):
        threading._shutdown()                     # as the interpreter does on exit
    atexit._run_exitfuncs()
    return code


def _as_if_imported_here(kernel: bool) -> None:
    """Redo what the preloaded libraries decided, when imported, from their surroundings.

    * matplotlib reads ``MPLBACKEND`` when imported; ipykernel sets it to the inline
      backend, before any import, when it is unset.
    * numpy seeds its legacy global generator from the operating system when imported.
    * pandas shows at most 20 columns of a wide table inside a Jupyter kernel (and
      fits the table to the terminal elsewhere), decided when imported.
    * torch._dynamo's import makes :mod:`tempfile` look up the temporary directory
      (``TMPDIR``, ...), which it then keeps: forget it, so the kernel looks up its own.
    * Python's :mod:`random` and torch seed their generators from the operating system
      when imported (``torch.initial_seed()`` differs between fresh interpreters): seed
      them again, so that no two kernels share a random stream.

    One difference remains: the preloaded modules are in ``sys.modules`` before the
    notebook imports them (``"torch" in sys.modules`` is true at once; a module can be
    imported only once per process). Nothing the book's helpers do depends on it: the
    notebooks import torch first, and ``make execute-check`` (fresh kernels) and strict
    nbval (forked ones) reproduce the same stored outputs.
    """
    tempfile.tempdir = None                  # torch._dynamo's import asked for the server's
    if "random" in sys.modules:
        sys.modules["random"].seed()
    if "torch" in sys.modules:               # a non-deterministic seed, as at torch's import
        sys.modules["torch"].seed()
    backend = os.environ.get("MPLBACKEND") or (INLINE if kernel else None)
    if backend and "matplotlib" in sys.modules:
        sys.modules["matplotlib"].rcParams["backend"] = backend
    if "numpy" in sys.modules:               # numpy seeds its global generator when imported
        sys.modules["numpy"].random.seed()
    if kernel and "pandas" in sys.modules:
        from pandas._config import config as pandas_config
        key = "display.max_columns"
        option = pandas_config._registered_options[key]
        pandas_config._registered_options[key] = option._replace(defval=20)
        sys.modules["pandas"].set_option(key, 20)


# --------------------------------------------------------------------------
# The client side: a kernel provisioner for jupyter_client
# --------------------------------------------------------------------------

def _connect(path: str) -> socket.socket | None:
    """Connect to the server, waiting while it imports; None if it is not there.

    The server listens first thing, before importing: a missing socket means "just
    started" (wait, at most :data:`BIND_SECONDS`) and a socket nobody answers means the
    server has ended (give up at once)."""
    deadline = time.monotonic() + BIND_SECONDS
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(path)
            return sock
        except FileNotFoundError:
            sock.close()
            if time.monotonic() > deadline or not os.path.isdir(os.path.dirname(path)):
                return None
            time.sleep(0.05)
        except OSError:
            sock.close()
            return None


def _fileno(stream, default: int) -> int:
    if stream is None or stream == subprocess.PIPE:
        return default
    if stream == subprocess.DEVNULL:
        return -1
    return stream if isinstance(stream, int) else stream.fileno()


class ForkedKernel:
    """The part of :class:`subprocess.Popen` that jupyter_client uses, for a forked kernel."""

    stdin = stdout = stderr = None

    def __init__(self, pid: int, sock: socket.socket):
        self.pid, self._sock, self.returncode = pid, sock, None

    def poll(self) -> int | None:
        if self.returncode is None:
            if not select.select([self._sock], [], [], 0)[0]:
                return None
            try:                              # a message is sent whole: read all of it
                message = _receive(self._sock)
            except (OSError, ValueError):
                message = None
            # no message: the server is gone; the kernel, orphaned, ends itself (ipykernel's
            # parent poller) within a second
            self.returncode = message["exit"] if message else -signal.SIGKILL
            self._sock.close()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise subprocess.TimeoutExpired(str(self.pid), timeout)
            select.select([self._sock], [], [], left)   # until the server says it ended
        return self.returncode

    def send_signal(self, number: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, number)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


def fork_kernel(cmd: list[str], env: dict, cwd: str, stdin=None, stdout=None,
                stderr=None) -> ForkedKernel | None:
    """Ask the running server for a kernel; None when there is none or it cannot help."""
    path = server_address()
    sock = _connect(path) if path else None
    if sock is None:
        return None
    opened = []
    try:
        fds = []
        for stream, default in ((stdin, -1), (stdout, 1), (stderr, 2)):
            fd = _fileno(stream, default)
            if fd == -1:
                fd = os.open(os.devnull, os.O_RDWR)
                opened.append(fd)
            fds.append(fd)
        request = json.dumps({"cmd": list(cmd), "env": dict(env), "cwd": str(cwd)}).encode()
        sock.settimeout(STARTUP_SECONDS)        # a server still importing answers within this
        socket.send_fds(sock, [request + b"\n"], fds)
        answer = _receive(sock)
        sock.settimeout(None)
    except OSError:
        answer = None
    finally:
        for fd in opened:
            os.close(fd)
    if not answer or "pid" not in answer:
        sock.close()
        why = (answer or {}).get("error", "the server did not answer")
        print(f"warm_kernels: {why}; starting a fresh interpreter instead", file=sys.stderr)
        _log(f"fresh {why}")
        return None
    _log("forked")
    return ForkedKernel(answer["pid"], sock)


def _log(line: str) -> None:
    """Append to the file ``NNBOOK_WARM_LOG`` names, if any (the test run's summary counts)."""
    log = os.environ.get("NNBOOK_WARM_LOG")
    if log:
        with open(log, "a") as f:               # one short line: appends do not interleave
            f.write(line.replace("\n", " ") + "\n")


class WarmProvisioner(LocalProvisioner):
    """Launches the kernel as a fork of the warm server; falls back to a normal launch."""

    async def launch_kernel(self, cmd: list[str], **kwargs):
        env = dict(kwargs.get("env") or os.environ)
        env.setdefault("JPY_PARENT_PID", str(os.getpid()))
        process = fork_kernel(cmd, env, kwargs.get("cwd") or os.getcwd(),
                              kwargs.get("stdin"), kwargs.get("stdout"), kwargs.get("stderr"))
        if process is None:
            return await super().launch_kernel(cmd, **kwargs)
        self.process, self.pid, self.pgid = process, process.pid, process.pid
        self.cwd = kwargs.get("cwd", Path.cwd())
        return self.connection_info


if __name__ == "__main__":
    serve()

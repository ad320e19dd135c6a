"""Re-execute chapter notebooks, each in a fresh kernel started in its own folder.

    python -m nnbook.execute chapters/*.ipynb          # rewrite in place
    python -m nnbook.execute --check chapters/*.ipynb  # compare, write nothing

Maintainers run the first form (``make execute``) after a deliberate change, so
that the stored outputs are refreshed. No timing metadata is recorded, so a
second run changes nothing but the durations that ``tests/nbval-sanitize.cfg``
hides. ``--check`` proves that: it executes in memory and reports every output
that would change once those durations are sanitized (``make execute-check``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import nbformat
from jupyter_client.manager import AsyncKernelManager, KernelManager
from jupyter_core.paths import jupyter_runtime_dir
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from traitlets import HasTraits, default

from nnbook import ROOT, book, warm_kernels

SANITIZE_FILE = ROOT / "tests" / "nbval-sanitize.cfg"


class _PrivateSockets(HasTraits):
    """Talk to the kernel over IPC sockets in a private temporary folder.

    Over TCP, kernels started at the same moment by parallel processes (nbval
    under pytest-xdist, or ``make execute``) can be handed the same free port
    and then receive each other's messages (jupyter_client issue 487). Socket
    files with a unique name cannot collide.
    """

    @default("transport")
    def _default_transport(self):
        return "ipc"

    @default("ip")
    def _default_ip(self):
        folder = jupyter_runtime_dir()     # jupyter_client deletes the socket files at shutdown
        os.makedirs(folder, exist_ok=True)
        return os.path.join(folder, f"kernel-{uuid.uuid4()}-ipc")

    async def _async_pre_start_kernel(self, **kw):
        """Fork the kernel from the warm server when one runs (``warm_kernels``)."""
        if self.provisioner is None and warm_kernels.server_address():
            self.kernel_id = self.kernel_id or kw.pop("kernel_id", str(uuid.uuid4()))
            self.provisioner = warm_kernels.WarmProvisioner(
                kernel_id=self.kernel_id, kernel_spec=self.kernel_spec, parent=self)
        return await super()._async_pre_start_kernel(**kw)


class IsolatedKernelManager(_PrivateSockets, KernelManager):
    """A KernelManager whose kernel cannot cross wires with another one (used by nbval)."""


class AsyncIsolatedKernelManager(_PrivateSockets, AsyncKernelManager):
    """The same, for nbclient."""


def sanitizers(path: Path = SANITIZE_FILE) -> list[tuple[re.Pattern, str]]:
    """The (regex, replacement) pairs of an nbval sanitize file."""
    lines = [ln.strip() for ln in path.read_text().splitlines()]
    pairs = []
    for a, b in zip(lines, lines[1:]):
        if a.startswith("regex: ") and b.startswith("replace: "):
            pairs.append((re.compile(a[len("regex: "):]), b[len("replace: "):]))
    return pairs


def sanitize(text: str, pairs=None) -> str:
    """Apply the sanitize file's replacements to ``text``, as nbval does."""
    for regex, replacement in pairs if pairs is not None else sanitizers():
        text = regex.sub(replacement, text)
    return text


def coalesce_streams(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Merge consecutive stdout (or stderr) chunks of a cell into one output.

    How a kernel splits a cell's printing into chunks depends on timing; the
    merged text does not. nbval merges them the same way before comparing.
    """
    for cell in nb.cells:
        merged = []
        for out in cell.get("outputs", []):
            if (merged and out.output_type == "stream" and merged[-1].output_type == "stream"
                    and merged[-1].name == out.name):
                merged[-1].text += out.text
            else:
                merged.append(out)
        if cell.cell_type == "code":
            cell.outputs = merged
    return nb


def execute(path: Path, timeout: int = 900) -> nbformat.NotebookNode:
    """Run a notebook top to bottom in a fresh ``python3`` kernel in its folder."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                            kernel_manager_class=AsyncIsolatedKernelManager,
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    return coalesce_streams(nb)


def differences(old: nbformat.NotebookNode, new: nbformat.NotebookNode) -> list[str]:
    """Cells whose sanitized outputs (or execution counts) differ."""
    pairs = sanitizers()
    old, new = coalesce_streams(old), coalesce_streams(new)
    found = []
    for k, (a, b) in enumerate(zip(old.cells, new.cells)):
        if a.cell_type != "code":
            continue
        ja = sanitize(json.dumps(a.get("outputs", []), sort_keys=True), pairs)
        jb = sanitize(json.dumps(b.get("outputs", []), sort_keys=True), pairs)
        if ja != jb or a.get("execution_count") != b.get("execution_count"):
            found.append(f"cell {k}: outputs differ")
    return found


def run_one(name: str, check: bool) -> tuple[str, list[str], float]:
    path = Path(name).resolve()
    start = time.perf_counter()
    stored = nbformat.read(path, as_version=4)
    try:
        fresh = execute(path)
    except CellExecutionError as error:
        return name, [f"execution failed: {str(error).strip().splitlines()[-1]}"], 0.0
    diffs = differences(stored, fresh)
    if not check:                  # as nbformat.write, but an interrupted run leaves the old file
        text = nbformat.writes(fresh)
        book.write_atomically(path, (text if text.endswith("\n") else text + "\n").encode())
    return name, diffs, time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+")
    parser.add_argument("--check", action="store_true",
                        help="execute in memory and fail if outputs would change")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    failed = False
    # the stored outputs come from fresh interpreters, as in JupyterLab, never warm kernels
    with warm_kernels.turned_off(), ProcessPoolExecutor(args.jobs) as pool:
        for name, diffs, seconds in pool.map(run_one, args.notebooks,
                                             [args.check] * len(args.notebooks)):
            verdict = "unchanged" if not diffs else f"{len(diffs)} cells changed"
            print(f"{name}: {verdict} ({seconds:.0f} s)")
            for d in diffs:
                print(f"    {d}")
            failed |= bool(diffs) and (args.check or diffs[0].startswith("execution failed"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

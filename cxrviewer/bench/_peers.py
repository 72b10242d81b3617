"""Throwaway archives other than Orthanc on loopback ports: dcmtk's ``dcmqrscp`` and pynetdicom's ``qrscp``.

For the PACS tests and ``bench pacs``: each starts from a temporary configuration and storage on
a free port, knows one C-MOVE destination given at start, is loaded with dcmtk's ``storescu``
(not our code under test) and is stopped (or ``kill -9``-ed) by its owner. Nothing here is used
by the viewer itself.

dcmtk's tools are named by path: pynetdicom installs scripts called ``getscu`` and ``storescu``
too, and they come first in a virtual environment's PATH.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from cxrviewer.bench._orthanc import free_port

DCMQRSCP_AET = "DCMQRSCP"
#: dcmtk storescu's option proposing each transfer syntax ("" = its default, uncompressed)
_STORESCU_PROPOSE = {
    "1.2.840.10008.1.2.1": "", "1.2.840.10008.1.2": "", "1.2.840.10008.1.2.2": "",
    "1.2.840.10008.1.2.4.90": "-xv", "1.2.840.10008.1.2.4.91": "-xw", "1.2.840.10008.1.2.4.70": "-xs",
    "1.2.840.10008.1.2.4.80": "-xt", "1.2.840.10008.1.2.4.81": "-xu", "1.2.840.10008.1.2.5": "-xr",
    "1.2.840.10008.1.2.4.50": "-xy", "1.2.840.10008.1.2.4.51": "-xx", "1.2.840.10008.1.2.1.99": "-xd",
}
QRSCP_AET = "QRSCP"


def dcmtk_tool(name: str) -> str | None:
    """Path of dcmtk's ``name`` (its ``--version`` names dcmtk), skipping pynetdicom's scripts."""
    cands = [os.path.join(d, name) for d in ("/usr/bin", "/usr/local/bin")]
    cands += [os.path.join(d, name) for d in os.environ.get("PATH", "").split(os.pathsep) if d]
    for c in dict.fromkeys(cands):
        if not os.access(c, os.X_OK):
            continue
        with open(c, "rb") as f:
            if f.read(2) == b"#!":  # a Python entry-point script, not dcmtk's binary
                continue
        try:
            out = subprocess.run([c, "--version"], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if "dcmtk" in (out.stdout + out.stderr).lower():
            return c
    return None


def qrscp_available() -> str | None:
    """Why pynetdicom's qrscp cannot run here (SQLAlchemy missing), or ``None`` when it can."""
    try:
        import sqlalchemy  # noqa: F401
    except ImportError:
        return "SQLAlchemy is not installed (pip install sqlalchemy): pynetdicom's qrscp needs it"
    return None


def wait_port(port: int, deadline: float, proc: subprocess.Popen | None = None) -> bool:
    """True once 127.0.0.1:``port`` accepts a connection; False at the deadline or when ``proc`` exits."""
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
        time.sleep(0.05)
    return False


@dataclass
class Peer:
    """A running archive; :meth:`stop` (or the context manager) ends it and removes its files."""

    kind: str
    port: int
    aet: str
    workdir: Path
    proc: subprocess.Popen
    move_aet: str
    move_port: int
    log_path: Path
    cmd: list[str]

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """``kill -9`` of the archive and every process it forked (the 'archive dies mid-transfer' case)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)

    def stop(self) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        self.kill()  # forked children too, whatever the parent did
        shutil.rmtree(self.workdir, ignore_errors=True)

    def restart(self, timeout: float = 60.0) -> None:
        """Start the archive again on the same port and storage (after :meth:`kill`)."""
        self.kill()
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.cmd, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir,
                                         start_new_session=True)
        if not wait_port(self.port, time.monotonic() + timeout, self.proc):
            raise RuntimeError(f"{self.kind} did not restart on port {self.port}: {self.log_tail()}")

    def log_tail(self, n: int = 2000) -> str:
        return self.log_path.read_text(errors="replace")[-n:] if self.log_path.exists() else ""

    def load(self, files, calling_ae: str = "LOADER") -> None:
        """Store ``files`` with dcmtk's storescu, each in the transfer syntax it has on disk.

        dcmtk's storescu proposes uncompressed syntaxes unless told which compressed one to
        propose, so the files go in groups by syntax with the matching ``--propose-…`` option.
        """
        from pydicom import dcmread

        exe = dcmtk_tool("storescu")
        if exe is None:
            raise FileNotFoundError("dcmtk's storescu is not installed (Debian package 'dcmtk')")
        groups: dict[str, list[str]] = {}
        for f in map(str, files):
            ts = str(dcmread(f, stop_before_pixels=True).file_meta.TransferSyntaxUID)
            opt = _STORESCU_PROPOSE.get(ts)
            if opt is None:
                raise ValueError(f"{f}: dcmtk's storescu cannot propose transfer syntax {ts}")
            groups.setdefault(opt, []).append(f)
        for opt, group in groups.items():
            cmd = [exe, "-aet", calling_ae, "-aec", self.aet, *([opt] if opt else []), "127.0.0.1", str(self.port),
                   *group]
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
            if r.returncode != 0:
                raise RuntimeError(f"storescu into {self.kind} failed (rc {r.returncode}): {r.stderr[-800:]}")

    def __enter__(self) -> Peer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _start(kind: str, cmd: list[str], port: int, aet: str, work: Path, move_aet: str, move_port: int,
           timeout: float) -> Peer:
    log_path = work / f"{kind}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=work, start_new_session=True)
    peer = Peer(kind, port, aet, work, proc, move_aet, move_port, log_path, cmd)
    if not wait_port(port, time.monotonic() + timeout, proc):
        tail = peer.log_tail()
        peer.stop()
        raise RuntimeError(f"{kind} did not start on port {port}: {tail}")
    return peer


def start_dcmqrscp(move_aet: str = "CXRMOVE", move_port: int | None = None, timeout: float = 30.0,
                   extra_args: tuple[str, ...] = ("+xv", "-xv")) -> Peer:
    """dcmtk's dcmqrscp in its forking mode (one child per association), one AE ``DCMQRSCP``.

    ``extra_args`` default: accept JPEG 2000 lossless (``+xv``, else it takes uncompressed data
    only) and propose it on C-MOVE sub-associations (``-xv``), as a site storing compressed
    images sets it up. It never decompresses: what it holds goes out as it is or not at all.

    ``move_aet`` at ``127.0.0.1:move_port`` is its only C-MOVE destination; any calling AE may
    query, retrieve and store.
    """
    exe = dcmtk_tool("dcmqrscp")
    if exe is None:
        raise FileNotFoundError("dcmtk's dcmqrscp is not installed (Debian package 'dcmtk')")
    work = Path(tempfile.mkdtemp(prefix="cxr-dcmqrscp-"))
    (work / "db").mkdir()
    port, move_port = free_port(), move_port or free_port()
    cfg = f"""NetworkTCPPort  = {port}
MaxPDUSize      = 65536
MaxAssociations = 16

HostTable BEGIN
viewer = ({move_aet}, 127.0.0.1, {move_port})
HostTable END

VendorTable BEGIN
VendorTable END

AETable BEGIN
{DCMQRSCP_AET}  {work / 'db'}  RW  (200, 1024mb)  ANY
AETable END
"""
    (work / "dcmqrscp.cfg").write_text(cfg)
    cmd = [exe, "--fork", "-c", str(work / "dcmqrscp.cfg"), *extra_args, str(port)]
    return _start("dcmqrscp", cmd, port, DCMQRSCP_AET, work, move_aet, move_port, timeout)


def start_qrscp(move_aet: str = "CXRMOVE", move_port: int | None = None, timeout: float = 60.0) -> Peer:
    """pynetdicom's qrscp (``python -m pynetdicom qrscp``, SQLite through SQLAlchemy), AE ``QRSCP``."""
    why = qrscp_available()
    if why:
        raise FileNotFoundError(why)
    work = Path(tempfile.mkdtemp(prefix="cxr-qrscp-"))
    port, move_port = free_port(), move_port or free_port()
    cfg = f"""[DEFAULT]
    ae_title: {QRSCP_AET}
    port: {port}
    max_pdu: 0
    acse_timeout: 30
    dimse_timeout: 30
    network_timeout: 30
    bind_address: 127.0.0.1
    instance_location: {work / 'instances'}
    database_location: {work / 'instances.sqlite'}
    log_identifier: False

[{move_aet}]
    address: 127.0.0.1
    port: {move_port}
"""
    (work / "qrscp.ini").write_text(cfg)
    cmd = [sys.executable, "-m", "pynetdicom", "qrscp", "-c", str(work / "qrscp.ini"), "-ll", "info"]
    return _start("qrscp", cmd, port, QRSCP_AET, work, move_aet, move_port, timeout)

"""A throwaway Orthanc on loopback ports, for the PACS tests and ``bench pacs``.

Starts the Debian ``Orthanc`` binary (with the ``orthanc-dicomweb`` plugin when installed)
with a temporary JSON configuration and storage, waits until both its DICOM and HTTP ports
answer, and stops it. Nothing here is used by the viewer itself.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ORTHANC_AET = "ORTHANC"
#: where Debian and other distributions put Orthanc's DICOMweb plugin
PLUGIN_GLOBS = (
    "/usr/share/orthanc/plugins/libOrthancDicomWeb.so",
    "/usr/lib/orthanc/libOrthancDicomWeb.so*",
    "/usr/local/share/orthanc/plugins/libOrthancDicomWeb.so",
)


def orthanc_binary() -> str | None:
    """Path of the Orthanc executable, or ``None`` when it is not installed."""
    return shutil.which("Orthanc") or next((p for p in ("/usr/sbin/Orthanc", "/usr/bin/Orthanc") if os.path.exists(p)), None)


def dicomweb_plugin() -> str | None:
    """Path of the DICOMweb plugin, or ``None``."""
    for pattern in PLUGIN_GLOBS:
        hits = sorted(glob.glob(pattern))
        if hits:
            return hits[0]
    return None


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class OrthancServer:
    """A running Orthanc; :meth:`stop` (or the context manager) ends it and removes its files."""

    dicom_port: int
    http_port: int
    workdir: Path
    proc: subprocess.Popen
    aet: str = ORTHANC_AET
    user: str = ""
    password: str = ""
    dicomweb: bool = False
    log_path: Path = field(default_factory=Path)

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb_url(self) -> str:
        return f"{self.http_url}/dicom-web"

    def rest(self, path: str, data: bytes | None = None, method: str | None = None, timeout: float = 30):
        """Call Orthanc's REST API (loopback) and return the decoded JSON (or raw bytes)."""
        req = urllib.request.Request(self.http_url + path, data=data, method=method)
        if self.user:
            import base64

            tok = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
            req.add_header("Authorization", f"Basic {tok}")
        with urllib.request.urlopen(req, timeout=timeout) as r:  # noqa: S310 (loopback only)
            body = r.read()
        try:
            return json.loads(body)
        except ValueError:
            return body

    def upload(self, path: str | os.PathLike) -> dict:
        """Store one DICOM file through the REST API (not through our code under test)."""
        return self.rest("/instances", data=Path(path).read_bytes(), method="POST")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: the 'PACS dies mid-transfer' case."""
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> OrthancServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _wait_port(port: int, deadline: float) -> bool:
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
        time.sleep(0.1)
    return False


def start_orthanc(*, modalities: dict[str, tuple[str, str, int]] | None = None, user: str = "", password: str = "",
                  dicomweb: bool = True, timeout: float = 60.0, check_called_aet: bool = True) -> OrthancServer:
    """Start Orthanc on free loopback ports with a temporary configuration and storage.

    Parameters
    ----------
    modalities
        ``{name: (AET, host, port)}`` Orthanc may send to (C-MOVE destinations).
    user, password
        When given, HTTP basic authentication is required (to test credentials).
    dicomweb
        Load the DICOMweb plugin when it is installed.
    check_called_aet
        Reject associations addressed to another AE title (to test a wrong AE title).

    Raises
    ------
    FileNotFoundError
        Orthanc is not installed.
    RuntimeError
        It did not come up within ``timeout`` (its log is quoted).
    """
    exe = orthanc_binary()
    if not exe:
        raise FileNotFoundError("Orthanc is not installed (Debian package 'orthanc')")
    work = Path(tempfile.mkdtemp(prefix="cxr-orthanc-"))
    dicom_port, http_port = free_port(), free_port()
    while http_port == dicom_port:
        http_port = free_port()
    plugin = dicomweb_plugin() if dicomweb else None
    cfg = {
        "Name": "cxrviewer-test",
        "StorageDirectory": str(work / "db"),
        "IndexDirectory": str(work / "db"),
        "DicomAet": ORTHANC_AET,
        "DicomPort": dicom_port,
        "HttpPort": http_port,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": bool(user),
        "RegisteredUsers": {user: password} if user else {},
        "DicomCheckCalledAet": check_called_aet,
        "DicomAlwaysAllowEcho": True,
        "DicomAlwaysAllowStore": True,
        "DicomAlwaysAllowFind": True,
        "DicomAlwaysAllowGet": True,
        "DicomAlwaysAllowMove": True,
        "DicomModalities": {k: list(v) for k, v in (modalities or {}).items()},
        "DicomScuTimeout": 10,
        "DicomAssociationCloseDelay": 0,
        "StableAge": 1,
        "SaveJobs": False,
        "HttpTimeout": 20,
        "Plugins": [plugin] if plugin else [],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False, "Host": "127.0.0.1", "Ssl": False},
    }
    (work / "orthanc.json").write_text(json.dumps(cfg, indent=1))
    log_path = work / "orthanc.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([exe, "--no-jobs", str(work / "orthanc.json")], stdout=log, stderr=subprocess.STDOUT,
                                cwd=work, start_new_session=True)
    srv = OrthancServer(dicom_port, http_port, work, proc, user=user, password=password, dicomweb=bool(plugin),
                        log_path=log_path)
    deadline = time.monotonic() + timeout
    ok = _wait_port(http_port, deadline) and _wait_port(dicom_port, deadline)
    while ok and time.monotonic() < deadline:  # the HTTP port opens a little before the REST API answers
        try:
            srv.rest("/system", timeout=2)
            break
        except OSError:
            time.sleep(0.1)
    if not ok or not srv.alive():
        tail = log_path.read_text(errors="replace")[-2000:] if log_path.exists() else ""
        srv.stop()
        raise RuntimeError(f"Orthanc did not start on ports {dicom_port}/{http_port}: {tail}")
    return srv


def synthetic_study(folder: str | os.PathLike, n: int, rows: int = 512, cols: int = 512, patient_id: str = "BENCH001",
                    seed: int = 0) -> tuple[str, list[Path]]:
    """Write ``n`` CR instances of one study and series (uint16 chest-like pixels) into ``folder``.

    Returns the Study Instance UID and the files.
    """
    import numpy as np
    from pydicom.uid import generate_uid

    from cxrviewer.core.synthetic import chest_like, make_dataset, write_dataset

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    study, series = generate_uid(), generate_uid()
    base = chest_like(rows, cols, seed=seed)
    files = []
    for i in range(n):
        px = np.roll(base, i, axis=1)  # distinct pixels per instance
        ds = make_dataset(px, patient_id=patient_id, patient_name=f"Bench^{patient_id}", study_uid=study,
                          series_uid=series, instance_number=i + 1)
        files.append(Path(write_dataset(ds, folder / f"{i + 1:04d}.dcm")))
    return study, files

"""C-GET retrieval speed: our retrieve of one 50-instance study from a local Orthanc vs dcmtk's getscu.

Starts Orthanc on free loopback ports (Debian ``orthanc``), uploads one synthetic CR study
(``--instances`` × ``--rows``×``--cols`` uint16, explicit VR little endian) through its REST API,
then alternates, ``--repeats`` times each, our :func:`cxrviewer.net.api.retrieve` (C-FIND of the
instance list, then C-GET, one fsync'd atomic file per instance) into an empty store and dcmtk's
``getscu`` (C-GET of the study into an empty folder, no fsync) on the same study in the same run.
``images_per_s`` and ``getscu_images_per_s`` are medians over the repeats; ``ratio`` = ours / getscu.
pynetdicom ships its own ``getscu`` script, which often comes first in PATH: this uses dcmtk's.

Then (unless ``--no-dcmqrscp``) the same study is loaded into dcmtk's ``dcmqrscp`` (forking mode)
and, alternating in the same run, our C-GET vs dcmtk's ``getscu`` and our C-MOVE (our storage SCP)
vs dcmtk's ``movescu`` (its own storage SCP) retrieve it: the ``dcmqrscp`` section, with
``get_ratio`` and ``move_ratio`` = ours / dcmtk.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--instances", type=int, default=50, help="instances in the study (default 50)")
    p.add_argument("--rows", type=int, default=1024, help="image rows (default 1024)")
    p.add_argument("--cols", type=int, default=1024, help="image columns (default 1024)")
    p.add_argument("--repeats", type=int, default=3, help="timed retrieves of each tool (default 3)")
    p.add_argument("--getscu", default=None, help="path of dcmtk's getscu (default: found, skipping pynetdicom's)")
    p.add_argument("--no-dcmqrscp", action="store_true", help="skip the dcmqrscp part (our get/move vs getscu/movescu)")
    p.add_argument("--dcmqrscp-syntax", choices=("uncompressed", "j2k"), default="uncompressed",
                   help="how dcmqrscp holds the study: as generated, or JPEG 2000 lossless (encoded first; the "
                        "dcmtk tools then get +xv to accept it)")


def dcmtk_getscu(explicit: str | None = None) -> str | None:
    """dcmtk's getscu (its ``--version`` names dcmtk), not pynetdicom's script of the same name;
    ``explicit`` (``--getscu``) when given and executable."""
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    from cxrviewer.bench._peers import dcmtk_tool

    return dcmtk_tool("getscu")


def _time_ours(node, study: str, n: int) -> float:
    from cxrviewer.net import api
    from cxrviewer.net.store import LocalStore

    d = Path(tempfile.mkdtemp(prefix="bench-pacs-ours-"))
    try:
        t0 = time.perf_counter()
        res = api.retrieve(node, study, LocalStore(d))
        dt = time.perf_counter() - t0
        if res.fetched != n or res.failed:
            raise RuntimeError(f"our retrieve fetched {res.fetched} of {n} (failed {res.failed})")
        return dt
    finally:
        shutil.rmtree(d, ignore_errors=True)


def _time_getscu(exe: str, port: int, study: str, n: int, aec: str = "ORTHANC", extra: tuple[str, ...] = ()) -> float:
    d = Path(tempfile.mkdtemp(prefix="bench-pacs-getscu-"))
    try:
        cmd = [exe, *extra, "-aec", aec, "-S", "-k", "QueryRetrieveLevel=STUDY",
               "-k", f"StudyInstanceUID={study}", "-od", str(d), "127.0.0.1", str(port)]
        if "-aet" not in extra:
            cmd[1:1] = ["-aet", "GETSCU"]
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        dt = time.perf_counter() - t0
        got = len([p for p in d.iterdir() if p.is_file()])
        if r.returncode != 0 or got != n:
            raise RuntimeError(f"getscu fetched {got} of {n} (rc {r.returncode}): {r.stderr[-500:]}")
        return dt
    finally:
        shutil.rmtree(d, ignore_errors=True)


def run(args: argparse.Namespace) -> dict:
    from cxrviewer.bench._orthanc import orthanc_binary, start_orthanc, synthetic_study
    from cxrviewer.net.nodes import DimseNode

    if not orthanc_binary():
        return {"skipped": "Orthanc is not installed (Debian package 'orthanc')"}
    exe = dcmtk_getscu(args.getscu)
    src = Path(tempfile.mkdtemp(prefix="bench-pacs-src-"))
    try:
        study, files = synthetic_study(src, args.instances, args.rows, args.cols)
        size = sum(f.stat().st_size for f in files)
        with start_orthanc(dicomweb=False) as srv:
            for f in files:
                srv.upload(f)
            node = DimseNode("bench", "127.0.0.1", srv.dicom_port, srv.aet, calling_ae="CXRBENCH", timeout=60)
            _time_ours(node, study, args.instances)  # warm-up: Orthanc's caches, imports
            ours, theirs = [], []
            for _ in range(max(1, args.repeats)):
                ours.append(_time_ours(node, study, args.instances))
                if exe:
                    theirs.append(_time_getscu(exe, srv.dicom_port, study, args.instances))
            version = srv.rest("/system").get("Version")
        dq = None if args.no_dcmqrscp else _bench_dcmqrscp(args, study, files)
    finally:
        shutil.rmtree(src, ignore_errors=True)
    n = args.instances
    ips = n / statistics.median(ours)
    gips = n / statistics.median(theirs) if theirs else None
    return {
        "instances": n,
        "image_size": [args.rows, args.cols],
        "study_mb": round(size / 1e6, 1),
        "images_per_s": round(ips, 1),
        "getscu_images_per_s": round(gips, 1) if gips else None,
        "ratio": round(ips / gips, 3) if gips else None,
        "seconds_ours": [round(t, 3) for t in ours],
        "seconds_getscu": [round(t, 3) for t in theirs],
        "mb_per_s": round(size / 1e6 / statistics.median(ours), 1),
        "ours_includes": "C-FIND of the instance list + C-GET + fsync'd atomic write per instance",
        "getscu": exe or "dcmtk getscu not found (Debian package 'dcmtk')",
        "orthanc_version": version,
        "dcmqrscp": dq,
        "cpu_count": os.cpu_count(),
        "loadavg_1min": round(os.getloadavg()[0], 2),
    }


def _bench_dcmqrscp(args: argparse.Namespace, study: str, files: list[Path]) -> dict:
    """Our C-GET and C-MOVE vs dcmtk's getscu and movescu on one study held by dcmqrscp."""
    from cxrviewer.bench._peers import dcmtk_tool, start_dcmqrscp
    from cxrviewer.net.nodes import DimseNode

    getscu, movescu = dcmtk_tool("getscu"), dcmtk_tool("movescu")
    if not getscu or not movescu or not dcmtk_tool("dcmqrscp"):
        return {"skipped": "dcmtk (dcmqrscp, getscu, movescu) is not installed (Debian package 'dcmtk')"}
    n = len(files)
    accept: tuple[str, ...] = ()
    if args.dcmqrscp_syntax == "j2k":
        files, accept = _j2k_copies(files), ("+xv",)
    mb = round(sum(f.stat().st_size for f in files) / 1e6, 1)
    with start_dcmqrscp(move_aet="CXRMOVE") as peer:
        peer.load(files)
        get_node = DimseNode("bench", "127.0.0.1", peer.port, peer.aet, calling_ae="CXRMOVE", timeout=60)
        move_node = DimseNode("bench", "127.0.0.1", peer.port, peer.aet, calling_ae="CXRMOVE", retrieve="move",
                              store_port=peer.move_port, store_bind="127.0.0.1", timeout=60)
        _time_ours(get_node, study, n)  # warm-up
        t = {"ours_get": [], "getscu": [], "ours_move": [], "movescu": []}
        for _ in range(max(1, args.repeats)):
            t["ours_get"].append(_time_ours(get_node, study, n))
            t["getscu"].append(_time_getscu(getscu, peer.port, study, n, aec=peer.aet, extra=accept))
            t["ours_move"].append(_time_ours(move_node, study, n))
            t["movescu"].append(_time_getscu(movescu, peer.port, study, n, aec=peer.aet,
                                             extra=(*accept, "-aet", "CXRMOVE", "-aem", "CXRMOVE", "+P",
                                                    str(peer.move_port))))
    if accept:
        shutil.rmtree(files[0].parent, ignore_errors=True)
    rate = {k: n / statistics.median(v) for k, v in t.items()}
    return {
        "instances": n,
        "syntax": args.dcmqrscp_syntax,
        "study_mb": mb,
        "ours_get_images_per_s": round(rate["ours_get"], 1),
        "getscu_images_per_s": round(rate["getscu"], 1),
        "get_ratio": round(rate["ours_get"] / rate["getscu"], 3),
        "ours_move_images_per_s": round(rate["ours_move"], 1),
        "movescu_images_per_s": round(rate["movescu"], 1),
        "move_ratio": round(rate["ours_move"] / rate["movescu"], 3),
        "seconds": {k: [round(x, 3) for x in v] for k, v in t.items()},
        "tools": {"getscu": getscu, "movescu": movescu, "dcmqrscp": dcmtk_tool("dcmqrscp")},
        "mode": "dcmqrscp --fork +xv -xv; dcmtk tools write without fsync, ours fsyncs each file",
    }


def _j2k_copies(files: list[Path]) -> list[Path]:
    """JPEG 2000 lossless copies of ``files`` (pylibjpeg-openjpeg), in a temporary folder the caller removes."""
    from pydicom import dcmread
    from pydicom.uid import JPEG2000Lossless

    d = Path(tempfile.mkdtemp(prefix="bench-pacs-j2k-"))
    out = []
    for f in files:
        ds = dcmread(f)
        ds.compress(JPEG2000Lossless)
        ds.save_as(d / f.name, enforce_file_format=True)
        out.append(d / f.name)
    return out

"""Issue 16, the local archive engine: `cxrviewer infer` streams, resumes after kill -9 to
exactly one row per image, runs decode workers (a dead one is replaced, its block retried),
writes error rows, parquet with CAM summaries."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from cxrviewer.cli import main

N = 16


@pytest.fixture(scope="module")
def archive(tmp_path_factory, rg1_unci) -> Path:
    """N small CR chest DICOMs made from RG1 (each with its own pixels) and one corrupt file."""
    from cxrviewer.bench.archive import build_archive

    d = tmp_path_factory.mktemp("archive") / "a"
    build_archive(d, N, [rg1_unci], size=256)
    (d / "zz_corrupt.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00UI" + b"\xff" * 40)
    return d


@pytest.fixture(scope="module")
def small(archive, tmp_path_factory) -> Path:
    """Five of the archive's images and the corrupt file (hard links: same pixels, other
    paths), for the tests that need no mid-run kill."""
    d = tmp_path_factory.mktemp("small") / "s"
    d.mkdir()
    for name in [f"img{i:06d}.dcm" for i in range(5)] + ["zz_corrupt.dcm"]:
        os.link(archive / name, d / name)
    return d


def _by_key(reference: dict[str, dict]) -> dict[str, float]:
    return {r["content_key"]: float(r["probability_abnormal"]) for r in reference.values() if r["content_key"]}


def _read(out: Path) -> list[dict]:
    with open(out, newline="") as fh:
        return list(csv.DictReader(fh))


def _infer(archive, out, resnet_dir, *extra) -> int:
    return main(["infer", str(archive), "--out", str(out), "--model", str(resnet_dir), *extra])


@pytest.fixture(scope="module")
def reference(archive, resnet_dir, tmp_path_factory) -> dict[str, dict]:
    """An uninterrupted run with 2 decode workers."""
    out = tmp_path_factory.mktemp("ref") / "ref.csv"
    assert _infer(archive, out, resnet_dir, "--workers", "2", "--batch-size", "4") == 0
    rows = _read(out)
    return {r["path"]: r for r in rows}


def _same(rows: list[dict], reference: dict[str, dict]) -> None:
    """Exactly one row per image, the same rows as the reference, probabilities to 1e-6."""
    paths = [r["path"] for r in rows]
    assert len(paths) == len(set(paths)) == len(reference) == N + 1
    for r in rows:
        ref = reference[r["path"]]
        for c in ("sop_instance_uid", "label", "status", "reason", "content_key", "model"):
            assert r[c] == ref[c], (c, r["path"])
        if ref["probability_abnormal"]:
            assert abs(float(r["probability_abnormal"]) - float(ref["probability_abnormal"])) <= 1e-6


def test_reference_rows(reference, archive):
    """Every image scored once, the corrupt file is an error row with the reason."""
    bad = reference[str(archive / "zz_corrupt.dcm")]
    assert bad["status"] == "error" and bad["reason"] and bad["probability_abnormal"] == ""
    good = [r for p, r in reference.items() if not p.endswith("zz_corrupt.dcm")]
    assert len(good) == N and all(r["status"] == "ok" and r["content_key"].startswith("c:") for r in good)
    assert len({r["content_key"] for r in good}) == N  # every file its own pixels
    probs = [float(r["probability_abnormal"]) for r in good]
    assert all(0 <= p <= 1 for p in probs) and max(probs) - min(probs) > 1e-6


def test_kill9_then_resume_is_exact(archive, resnet_dir, reference, tmp_path, capsys):
    """A real `cxrviewer infer` (1 worker) killed with SIGKILL mid-run, then run again with
    the same --out: the done images are not redone, the result equals the uninterrupted
    2-worker run (so 1 worker == 2 workers too)."""
    out = tmp_path / "res.csv"
    cmd = [sys.executable, "-m", "cxrviewer", "infer", str(archive), "--out", str(out),
           "--model", str(resnet_dir), "--workers", "1", "--batch-size", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if out.exists() and out.read_bytes().count(b"\n") >= 7:  # header + >= 6 rows
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    partial = _read(out)
    assert 6 <= len(partial) < N + 1
    # a torn last line, as a power cut mid-write leaves: dropped and redone
    with open(out, "a") as fh:
        fh.write(str(archive / "img000023.dcm") + ",1.2.3,0.5")
    scored_before = sum(r["status"] == "ok" for r in partial)

    capsys.readouterr()
    assert _infer(archive, out, resnet_dir, "--workers", "1", "--batch-size", "3") == 0
    # the images the killed run scored are skipped, not redone
    assert f"this run: {N - scored_before} of {N} images" in capsys.readouterr().err
    _same(_read(out), reference)

    # a third run has nothing to do and changes nothing
    text = out.read_text()
    assert _infer(archive, out, resnet_dir, "--workers", "0") == 0
    assert out.read_text() == text


def test_resume_skips_done_files_without_decoding(archive, resnet_dir, reference, tmp_path, capsys):
    out = tmp_path / "res.csv"
    ref_rows = sorted(reference.values(), key=lambda r: r["path"])
    # the first 10 rows as a previous run left them
    from cxrviewer.ml.archive import ALL_COLUMNS, _csv_text

    out.write_text(_csv_text(ref_rows[:10], ALL_COLUMNS, header=True))
    assert _infer(archive, out, resnet_dir, "--workers", "0") == 0
    err = capsys.readouterr().err
    assert f"this run: {N - 10} of {N} images" in err and "10 already done" in err
    _same(_read(out), reference)


def test_dead_worker_is_replaced_and_its_block_retried(small, resnet_dir, reference, tmp_path, monkeypatch, capsys):
    """The decode worker exits (as on a decoder segfault) on img000002: once -> the block is
    retried in a new worker and every image scored; always -> only that file is an error row."""
    from cxrviewer.ml.archive_local import CRASH_ENV, CRASH_ONCE_ENV

    probs = _by_key(reference)
    monkeypatch.setenv(CRASH_ENV, "img000002")
    monkeypatch.setenv(CRASH_ONCE_ENV, str(tmp_path / "crashed-once"))
    out = tmp_path / "once.csv"
    assert _infer(small, out, resnet_dir, "--workers", "1", "--batch-size", "3") == 0
    assert (tmp_path / "crashed-once").exists()
    assert "1 restarted" in capsys.readouterr().err
    rows = _read(out)
    assert len(rows) == 6 and sum(r["status"] == "ok" for r in rows) == 5
    for r in rows:
        if r["status"] == "ok":
            assert abs(float(r["probability_abnormal"]) - probs[r["content_key"]]) <= 1e-6

    monkeypatch.delenv(CRASH_ONCE_ENV)
    out = tmp_path / "always.csv"
    assert _infer(small, out, resnet_dir, "--workers", "1", "--batch-size", "3") == 0
    rows = {r["path"]: r for r in _read(out)}
    assert len(rows) == 6
    bad = rows.pop(str(small / "img000002.dcm"))
    assert bad["status"] == "error" and "died" in bad["reason"]
    # its block-mates were still scored (the block is retried file by file)
    assert sum(r["status"] == "ok" for r in rows.values()) == 4


def test_a_hanging_decoder_costs_one_error_row(small, resnet_dir, reference, tmp_path, monkeypatch, capsys):
    """The decode worker blocks forever (as a hung decoder) on img000001: after the per-file
    deadline the worker is killed and replaced, that file is one error row saying it timed
    out, and every other file (its block-mates before and after it included) is scored."""
    from cxrviewer.ml.archive_local import HANG_ENV

    probs = _by_key(reference)
    monkeypatch.setenv(HANG_ENV, "img000001")
    out = tmp_path / "hang.csv"
    # batch 3: img000001 sits mid-block (img000000 before it, img000002 after it)
    assert _infer(small, out, resnet_dir, "--workers", "1", "--batch-size", "3", "--decode-timeout", "3") == 0
    err = capsys.readouterr().err
    assert "1 timed out" in err and "1 restarted" in err
    rows = {r["path"]: r for r in _read(out)}
    assert len(rows) == 6
    bad = rows.pop(str(small / "img000001.dcm"))
    assert bad["status"] == "error" and "timed out after 3 s" in bad["reason"]
    assert rows.pop(str(small / "zz_corrupt.dcm"))["status"] == "error"
    assert all(r["status"] == "ok" for r in rows.values())
    for r in rows.values():
        assert abs(float(r["probability_abnormal"]) - probs[r["content_key"]]) <= 1e-6


def test_decode_timeout_must_not_be_negative(small, resnet_dir, tmp_path, capsys):
    assert _infer(small, tmp_path / "r.csv", resnet_dir, "--decode-timeout", "-1") == 2
    assert "--decode-timeout" in capsys.readouterr().err.strip().splitlines()[-1]


def test_parquet_with_cam_summaries(small, resnet_dir, reference, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow (the parquet extra) is not installed")
    from cxrviewer.ml.archive import CAM_COLUMN, CAM_SUMMARY, COLUMNS

    probs = _by_key(reference)
    out = tmp_path / "res.parquet"
    assert _infer(small, out, resnet_dir, "--workers", "0", "--cam-summary", "--batch-size", "4") == 0
    assert not Path(str(out) + ".parts").exists()
    table = pq.read_table(out)
    assert table.column_names[: len(COLUMNS)] == COLUMNS and table.column_names[-1] == CAM_COLUMN
    rows = table.to_pylist()
    assert len(rows) == 6 and sum(r["status"] == "ok" for r in rows) == 5
    for r in rows:
        if r["status"] == "error":
            assert r["probability_abnormal"] is None and r[CAM_COLUMN] is None and r["reason"]
            continue
        assert abs(r["probability_abnormal"] - probs[r["content_key"]]) <= 1e-6
        cam = r[CAM_COLUMN]
        assert len(cam) == CAM_SUMMARY**2 and all(0.0 <= v <= 1.0 for v in cam)
        assert max(cam) - min(cam) > 0.05  # a map, not a constant
    # a rerun with an interrupted part left behind: nothing redone, same table
    Path(str(out) + ".parts").mkdir()
    (Path(str(out) + ".parts") / "part-x.tmp").write_bytes(b"PAR1 torn")
    assert _infer(small, out, resnet_dir, "--workers", "0", "--cam-summary") == 0
    assert pq.read_table(out).to_pylist() == rows
    assert not Path(str(out) + ".parts").exists()


def test_parquet_merge_is_streamed_and_equals_the_row_by_row_rule(tmp_path):
    """merge_parquet (an external merge sort: runs sorted by path and write position, then
    merged) gives exactly final_rows of every row: the last row of a path wins in write order (a resumed run's parts may carry a
    smaller pid), paths outside keep go, sorted by path; several runs and one run alike, and
    an earlier output without CAM summaries merges with parts that have them."""
    pq = pytest.importorskip("pyarrow.parquet", reason="pyarrow (the parquet extra) is not installed")
    from cxrviewer.ml.archive import CAM_COLUMN, ParquetSink, final_rows, merge_parquet

    rng = np.random.default_rng(0)
    out = tmp_path / "r.parquet"
    old = ParquetSink(tmp_path / "old.parquet")  # the earlier output: no CAM column
    first = [{"path": f"/a/{i:03d}.dcm", "status": "ok", "probability_abnormal": 0.1, "file_size": 1,
              "mtime_ns": 1, "model": "m"} for i in rng.permutation(40)]
    pq.write_table(old._table(first), out)
    sink = ParquetSink(out, cam_summary=True)
    every = [dict(r, **{CAM_COLUMN: None}) for r in first]
    parts = sink.parts
    for k, pid in enumerate((99999, 100000, 5)):  # later runs, by time: pid order misleads
        rows = [{"path": f"/a/{i:03d}.dcm", "status": "ok", "probability_abnormal": round(0.2 + k / 10, 3),
                 "file_size": 2, "mtime_ns": k, "model": "m", CAM_COLUMN: [float(k)] * 4}
                for i in rng.choice(60, size=25, replace=False)]
        pq.write_table(sink._table(rows), parts / f"part-{pid}-{1000 + k}-{k:06d}.parquet")
        every += rows
    keep = {f"/a/{i:03d}.dcm" for i in range(55)}
    want = final_rows(every, keep)
    for run_rows in (7, 10_000):  # many runs merged / one run written straight
        n = merge_parquet(sink.files(), tmp_path / f"m{run_rows}.parquet", sink._schema(), keep, run_rows=run_rows)
        got = pq.read_table(tmp_path / f"m{run_rows}.parquet").to_pylist()
        assert n == len(want) == len(got)
        assert [(r["path"], r["probability_abnormal"], r[CAM_COLUMN]) for r in got] == \
               [(r["path"], r["probability_abnormal"], r.get(CAM_COLUMN)) for r in want]
    rows = sink.finalize(keep)
    assert len(rows) == len(want) and [r["path"] for r in rows] == [r["path"] for r in want]
    assert not parts.exists()


def test_cam_summary_needs_parquet(archive, resnet_dir, tmp_path, capsys):
    assert _infer(archive, tmp_path / "x.csv", resnet_dir, "--cam-summary") == 2
    assert "--cam-summary needs a .parquet output" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()


def test_progress_line_only_on_a_terminal(capsys):
    from types import SimpleNamespace

    from cxrviewer.cli.infer import Progress

    st = SimpleNamespace(images_per_s=10.0, skipped=3)
    Progress(enabled=False)(5, 10, st)
    assert capsys.readouterr().err == ""
    p = Progress(enabled=True, interval=0.0)
    p(5, 10, st)
    err = capsys.readouterr().err
    assert "5/10" in err and "10.0 images/s" in err and "ETA 0 s" in err and "3 already done" in err


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="Linux only: affinity")
def test_default_workers_are_the_cores():
    from cxrviewer.ml.archive_local import default_workers

    assert default_workers() == len(os.sched_getaffinity(0))


def test_decode_pool_talks_over_pipes_not_sockets(archive, monkeypatch):
    """Nothing opens a socket: the pool's pipes are OS pipes (a duplex Pipe is a socketpair)."""
    import socket

    from cxrviewer.ml.archive_local import LocalPool
    from cxrviewer.ml.preprocess import PreprocessSpec

    def refuse(*a, **kw):
        raise OSError("sockets refused in this test")

    monkeypatch.setattr(socket, "socketpair", refuse)
    monkeypatch.setattr(socket, "socket", refuse)
    paths = [str(archive / "img000000.dcm"), str(archive / "zz_corrupt.dcm")]
    got = [p for block in LocalPool(1, PreprocessSpec(), {"name": "x"}).imap([paths]) for p in block]
    assert [(p.path, p.status) for p in got] == [(paths[0], "ok"), (paths[1], "error")]
    assert got[0].u8.shape == (224, 224) and got[0].key.startswith("c:") and got[1].reason


def test_ctrl_c_keeps_the_rows_and_says_how_to_resume(archive, resnet_dir, tmp_path):
    """SIGINT (Ctrl+C) mid-run: exit 130, one line saying the rows are kept, a valid CSV."""
    out = tmp_path / "res.csv"
    cmd = [sys.executable, "-m", "cxrviewer", "infer", str(archive), "--out", str(out),
           "--model", str(resnet_dir), "--workers", "1", "--batch-size", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if out.exists() and out.read_bytes().count(b"\n") >= 4:
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the run finished before Ctrl+C"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "run the same command again to resume" in err
    assert "Traceback" not in err
    rows = _read(out)
    assert 3 <= len(rows) < N + 1 and all(r["status"] in ("ok", "error") for r in rows)


def test_json_resumes_from_its_journal(archive, resnet_dir, reference, tmp_path, capsys):
    """A JSON run keeps a CSV journal while running; a rerun after a kill continues it and
    writes the document with every image once, then removes the journal."""
    import json

    from cxrviewer.ml.archive import JsonSink

    out = tmp_path / "res.json"
    ref_rows = sorted(reference.values(), key=lambda r: r["path"])
    sink = JsonSink(out)
    sink.append(ref_rows[:5])
    sink.close()  # killed here: no finalize, no JSON yet
    assert not out.exists() and (tmp_path / "res.json.partial.csv").exists()
    assert _infer(archive, out, resnet_dir, "--workers", "0") == 0
    assert "5 already done" in capsys.readouterr().err
    doc = json.loads(out.read_text())
    assert doc["model"] == "test-resnet" and len(doc["results"]) == N
    assert [e["path"] for e in doc["errors"]] == [str(archive / "zz_corrupt.dcm")]
    for r in doc["results"]:
        assert abs(r["probability_abnormal"] - float(reference[r["path"]]["probability_abnormal"])) <= 1e-6
    assert not (tmp_path / "res.json.partial.csv").exists()


def test_outputs_inside_path_are_not_images(small, resnet_dir, tmp_path):
    """--out and --cam-dir inside the scanned folder: a rerun neither scores its overlays nor
    lists its own results (or parquet parts) as unreadable files."""
    d = tmp_path / "d"
    d.mkdir()
    for f in small.iterdir():
        os.link(f, d / f.name)
    for out in (d / "res.csv", d / "res.parquet"):
        if out.suffix == ".parquet":
            pytest.importorskip("pyarrow", reason="pyarrow (the parquet extra) is not installed")
        for _ in range(2):
            assert _infer(d, out, resnet_dir, "--workers", "0", "--cam-dir", str(d / "cams")) == 0
        assert len(list((d / "cams").glob("*.png"))) == 5
        if out.suffix == ".csv":
            rows = _read(out)
            assert sorted(Path(r["path"]).name for r in rows) == sorted(f.name for f in small.iterdir())

"""The reader-feedback store: calls survive a restart, a rename, a re-encoded copy, a writer
killed with SIGKILL mid-stream and a full disk (simulated and real), and other processes read
while one writes."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import DeflatedExplicitVRLittleEndian, generate_uid

from cxrviewer.feedback import FeedbackError, FeedbackStore, ModelOutput, image_key, load_keyed

REPO = Path(__file__).resolve().parents[2]


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")


def test_latest_call_wins_readers_separate_history_kept(tmp_path):
    with FeedbackStore(tmp_path / "fb.sqlite") as s:
        s.record("i:a", "alice", "normal")
        s.record("i:a", "bob", "abnormal", note="left base")
        s.record("i:a", "alice", "Abnormal")  # alice changes her mind
        assert s.latest("i:a", "alice").label == "abnormal"
        assert s.latest("i:a", "bob").label == "abnormal" and s.latest("i:a", "bob").note == "left base"
        assert [c.label for c in s.history("i:a", "alice")] == ["normal", "abnormal"]
        assert s.withdraw("i:a", "alice").withdrawn
        assert s.latest("i:a", "alice") is None
        assert [c.reader for c in s.calls_for("i:a")] == ["bob"]  # bob's call untouched
        assert s.withdraw("i:a", "alice") is None  # nothing left to withdraw
        s.record("i:a", "alice", "normal")  # a call after a withdrawal is current again
        assert {c.reader: c.label for c in s.current()} == {"alice": "normal", "bob": "abnormal"}
        assert s.count_rows() == 5  # nothing was ever deleted
        for bad in ("maybe", ""):
            with pytest.raises(FeedbackError, match="neither normal nor abnormal"):
                s.record("i:a", "alice", bad)
        with pytest.raises(FeedbackError, match="reader's name is empty"):
            s.record("i:a", " ", "normal")
        assert s.count_rows() == 5


def test_findings_against_the_model_output(tmp_path):
    out = ModelOutput("xrv", "1", probability=0.8, label="abnormal", threshold=0.5,
                      findings={"Effusion": 0.8, "Atelectasis": 0.2, "Mass": 0.1}, flagged=("Effusion",))
    with FeedbackStore(tmp_path / "fb.sqlite") as s:
        c = s.record("i:b", "alice", "abnormal", model=out,
                     findings={"Effusion": "disagree", "Atelectasis": "disagree", "Mass": "added"})
        # disagreeing with a flagged finding: absent; with an unflagged one: present
        assert c.finding_present() == {"Effusion": 0, "Atelectasis": 1, "Mass": 1}
        again = s.latest("i:b", "alice")
        assert again.model == out and again.findings == c.findings
        with pytest.raises(FeedbackError, match="not one of the model's findings"):
            s.record("i:b", "alice", "abnormal", model=out, findings={"Nodule": "added"})
        with pytest.raises(FeedbackError, match="needs the model's output"):
            s.record("i:c", "alice", "abnormal", findings={"Effusion": "agree"})


def test_restart_rename_and_reencoded_copy_keep_the_call(tmp_path, rg1_uncr, rg1_j2kr):
    a = tmp_path / "a.dcm"
    shutil.copy(rg1_uncr, a)
    key, img = load_keyed(a)
    db = tmp_path / "fb.sqlite"
    with FeedbackStore(db) as s:
        s.record(key, "alice", "abnormal", path=str(a), patient_id=img.header.patient_id)
    # another process (a restart) finds it by the pixels of a renamed file
    b = tmp_path / "renamed.dcm"
    a.rename(b)
    code = textwrap.dedent(f"""
        from cxrviewer.feedback import FeedbackStore, load_keyed
        key, _ = load_keyed({str(b)!r})
        with FeedbackStore({str(db)!r}) as s:
            print(s.latest(key, "alice").label)
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(), timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "abnormal"
    # a re-wrapped copy: Deflated Explicit VR Little Endian, new SOP Instance UID, same pixels
    ds = pydicom.dcmread(b)
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    c = tmp_path / "copy_deflated.dcm"
    ds.save_as(c, implicit_vr=False, little_endian=True)
    assert pydicom.dcmread(c).file_meta.TransferSyntaxUID == DeflatedExplicitVRLittleEndian
    assert load_keyed(c)[0] == key
    # the same pixels in lossless JPEG 2000 (pydicom-data's RG1 pair) are the same image too
    assert load_keyed(rg1_j2kr)[0] == key
    # a change of pixels is another image
    ds = pydicom.dcmread(b)
    arr = ds.pixel_array.copy()
    arr[0, 0] ^= 1
    ds.PixelData = arr.tobytes()
    d = tmp_path / "changed.dcm"
    ds.save_as(d)
    assert load_keyed(d)[0] != key
    # the frame is part of the key
    assert image_key(img, 1) != image_key(img, 0) == key


_WRITER = """
import sys
from cxrviewer.feedback import FeedbackStore
s = FeedbackStore(sys.argv[1])
i = 0
while True:
    c = s.record(f"i:{i % 50}", f"reader{i % 3}", "abnormal" if i % 2 else "normal", note="x" * 2000)
    print(c.id, flush=True)
    i += 1
"""


def test_kill9_mid_stream_loses_no_committed_call(tmp_path):
    db = tmp_path / "fb.sqlite"
    FeedbackStore(db).close()
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(db)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env())
    committed = []
    try:
        for line in proc.stdout:  # each line is printed after its commit returned
            committed.append(int(line))
            if len(committed) >= 300:
                break
        proc.send_signal(signal.SIGKILL)  # while it is writing the next ones
    finally:
        proc.kill()
        proc.wait(timeout=30)
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert len(committed) >= 300, "the writer stopped before the kill"
    with FeedbackStore(db) as s:
        assert s.integrity() == "ok"
        ids = {r[0] for r in s._query("SELECT id FROM calls")}
        assert set(committed) <= ids
        s.record("i:after", "alice", "normal")  # still writable after recovery
        assert s.integrity() == "ok"


def _fill_store(s: FeedbackStore, n: int) -> list[int]:
    return [s.record(f"i:{i}", "alice", "normal", note="n" * 1000).id for i in range(n)]


def test_full_database_refuses_the_call_and_keeps_the_rest(tmp_path):
    """A full disk simulated with ``PRAGMA max_page_count`` (SQLite then fails with
    SQLITE_FULL exactly as on a full disk; the real-disk test below needs root)."""
    db = tmp_path / "fb.sqlite"
    with FeedbackStore(db) as s:
        ids = _fill_store(s, 20)
        s._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = s._db.execute("PRAGMA page_count").fetchone()[0]
        s._db.execute(f"PRAGMA max_page_count={pages}")
        with pytest.raises(FeedbackError, match="disk full"):
            for i in range(200):
                s.record(f"i:full{i}", "alice", "abnormal", note="f" * 4000)
        assert s.integrity() == "ok"
        s._db.execute(f"PRAGMA max_page_count={pages * 100}")
        s.record("i:later", "alice", "abnormal")
    with FeedbackStore(db) as s:
        assert s.integrity() == "ok"
        got = {r[0] for r in s._query("SELECT id FROM calls")}
        assert set(ids) <= got and s.latest("i:later", "alice").label == "abnormal"


def _mount_tmpfs(where: Path, size: str) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    where.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                       capture_output=True, text=True)
    return r.returncode == 0


def test_real_full_disk_on_a_tiny_tmpfs(tmp_path):
    mnt = tmp_path / "tiny"
    if not _mount_tmpfs(mnt, "1m"):
        pytest.skip("mounting a 1 MiB tmpfs needs root (CAP_SYS_ADMIN); the max_page_count test covers SQLITE_FULL")
    try:
        db = mnt / "fb.sqlite"
        with FeedbackStore(db) as s:
            ids = _fill_store(s, 20)
            filler = mnt / "filler"
            fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
            try:  # take every free block
                while os.write(fd, b"\0" * 4096) > 0:
                    pass
            except OSError:
                pass
            finally:
                os.close(fd)
            with pytest.raises(FeedbackError, match="disk full"):
                for i in range(500):
                    s.record(f"i:full{i}", "alice", "abnormal", note="f" * 4000)
            assert s.integrity() == "ok"
            filler.unlink()
            s.record("i:later", "alice", "abnormal")
        with FeedbackStore(db) as s:
            assert s.integrity() == "ok"
            got = {r[0] for r in s._query("SELECT id FROM calls")}
            assert set(ids) <= got and s.latest("i:later", "alice") is not None
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


_READER = """
import sys
from cxrviewer.feedback import FeedbackStore
s = FeedbackStore(sys.argv[1])
print("ready", flush=True)
last = 0
reads = 0
while True:
    n = s.count_rows()
    assert n >= last, (n, last)  # each read sees a committed prefix, never less
    calls = s.current()
    assert all(c.label in ("normal", "abnormal") for c in calls)
    last = n
    reads += 1
    if n >= int(sys.argv[2]):
        break
print(reads, last, flush=True)
"""


def test_concurrent_readers_while_a_process_writes(tmp_path):
    db = tmp_path / "fb.sqlite"
    FeedbackStore(db).close()
    total = 200
    readers = [subprocess.Popen([sys.executable, "-c", _READER, str(db), str(total)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=_env()) for _ in range(2)]
    try:
        for p in readers:  # every reader has the database open before the first write
            assert p.stdout.readline().strip() == "ready"
        with FeedbackStore(db) as s:
            for i in range(total):
                s.record(f"i:{i % 40}", f"r{i % 4}", "normal" if i % 3 else "abnormal")
        outs = [p.communicate(timeout=120) for p in readers]
    finally:
        for p in readers:
            p.kill()
    for p, (out, err) in zip(readers, outs, strict=True):
        assert p.returncode == 0, err
        reads, last = map(int, out.split())
        assert last == total and reads >= 1
    with FeedbackStore(db) as s:
        # 200 writes over 40 images x 4 readers: (i % 40, i % 4) gives 40 distinct pairs
        assert len(s.current()) == 40


def test_wal_mode_and_private_file(tmp_path):
    db = tmp_path / "fb.sqlite"
    FeedbackStore(db).close()
    con = sqlite3.connect(db)
    try:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        con.close()
    assert (db.stat().st_mode & 0o777) == 0o600


def test_not_a_database_is_one_clear_error(tmp_path):
    bad = tmp_path / "fb.sqlite"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(FeedbackError, match="not a usable feedback database") as e:
        FeedbackStore(bad)
    assert str(bad) in str(e.value)
    assert bad.read_bytes() == b"this is not sqlite" * 100  # never rewritten


def test_worklist_page_in_one_query_and_newer_schema_refused(tmp_path):
    db = tmp_path / "fb.sqlite"
    with FeedbackStore(db) as s:
        for i in range(1200):  # more keys than one statement may bind
            s.record(f"i:{i}", "alice", "normal" if i % 2 else "abnormal")
        s.record("i:7", "bob", "abnormal")
        s.withdraw("i:8", "alice")
        page = s.calls_for_many([f"i:{i}" for i in range(1200)] + ["i:none"])
        assert len(page) == 1199 and "i:8" not in page and "i:none" not in page
        assert [(c.reader, c.label) for c in page["i:7"]] == [("alice", "normal"), ("bob", "abnormal")]
        assert s.calls_for("i:7") == page["i:7"]
        s._db.execute("UPDATE meta SET value = '99' WHERE key = 'schema'")
    with pytest.raises(FeedbackError, match="newer cxrviewer"):
        FeedbackStore(db)


def test_calls_by_path_is_a_hint_for_rows_not_hashed_yet(tmp_path):
    with FeedbackStore(tmp_path / "fb.sqlite") as s:
        s.record("i:x", "alice", "abnormal", path=str(tmp_path / "a.dcm"))
        s.record("i:x", "bob", "normal", path=str(tmp_path / "b.dcm"))  # the same image seen renamed
        s.record("i:y", "alice", "normal", path=str(tmp_path / "c.dcm"))
        s.withdraw("i:y", "alice")
        hint = s.calls_by_path([str(tmp_path / n) for n in ("a.dcm", "b.dcm", "c.dcm", "none.dcm")])
        assert set(hint) == {str(tmp_path / "a.dcm"), str(tmp_path / "b.dcm")}
        # both paths name the same image, so both rows show both readers' calls
        assert [c.reader for c in hint[str(tmp_path / "a.dcm")]] == ["alice", "bob"]

"""Crashes are caught and logged without PHI: the rotating log after opening files with known
patient data holds none of it; unhandled exceptions in the main thread and workers reach one
handler."""

from __future__ import annotations

import logging
import sys
import threading

import pytest

from cxrviewer import logsetup
from cxrviewer.core import phi
from cxrviewer.core.dicom_io import load_image
from cxrviewer.core.study_index import scan
from cxrviewer.core.synthetic import chest_like, make_dataset, write_dataset

NAME = "Smithfield^Joanna^Q"
PID = "MRN-7734521"
BIRTH = "19580214"
ACCESSION = "ACC99812"


@pytest.fixture()
def logfile(tmp_path):
    phi.clear()
    path = logsetup.setup_logging(logging.DEBUG, log_file=tmp_path / "log" / "cxrviewer.log", stderr_level=None)
    yield path
    logsetup.teardown_logging()
    phi.clear()


def _log_text(path) -> str:
    for h in logging.getLogger().handlers:
        h.flush()
    return path.read_text(encoding="utf-8")


def test_log_after_loading_a_file_with_phi_has_none(tmp_path, logfile):
    folder = tmp_path / "SMITHFIELD_JOANNA"  # folder names carry PHI in real exports
    folder.mkdir()
    p = write_dataset(make_dataset(chest_like(16, 16), patient_name=NAME, patient_id=PID,
                                   extra={"PatientBirthDate": BIRTH, "AccessionNumber": ACCESSION}),
                      folder / f"{PID}.dcm")
    result = scan(folder, workers=0)
    img = load_image(p)
    log = logging.getLogger("cxrviewer.test")
    h = img.header
    log.info("opened %s for patient %s (%s), born %s, accession %s", p, h.patient_name, h.patient_id,
             h.patient_birth_date, h.accession_number)
    log.warning("study list: %r", result.to_dict()["patients"])
    log.info("names in other orders: Joanna Smithfield / SMITHFIELD, JOANNA / born 1958-02-14")
    try:
        raise ValueError(f"cannot export {p} for {h.patient_name}")
    except ValueError:
        log.exception("export failed")
    text = _log_text(logfile)
    assert "[PHI]" in text and "export failed" in text and "Traceback" in text
    low = text.lower()
    for secret in ("smithfield", "joanna", PID.lower(), BIRTH, "1958-02-14", ACCESSION.lower()):
        assert secret not in low, f"{secret!r} leaked into the log:\n{text}"
    # what is not PHI survives: the pipeline words and the file's suffix
    assert "opened" in text and ".dcm" in text


def test_short_names_do_not_eat_words(logfile):
    phi.register("Li^Al")
    logging.getLogger("cxrviewer.test").info("Limit reached for Alpha; Li was here; AL too")
    text = _log_text(logfile)
    assert "Limit reached for Alpha" in text
    assert "Li was here" not in text and "[PHI] was here; [PHI] too" in text


def test_log_rotates(tmp_path, monkeypatch):
    monkeypatch.setattr(logsetup, "MAX_BYTES", 2000)
    path = logsetup.setup_logging(logging.INFO, log_file=tmp_path / "r.log", stderr_level=None)
    try:
        for k in range(200):
            logging.getLogger("cxrviewer.rot").info("line %d %s", k, "x" * 40)
        assert path.exists() and (tmp_path / "r.log.1").exists()
        assert not (tmp_path / f"r.log.{logsetup.BACKUPS + 1}").exists()
        assert path.stat().st_size <= 2000 + 200
    finally:
        root = logging.getLogger()
        for h in list(root.handlers):
            if getattr(h, "_cxrviewer", False):
                root.removeHandler(h)
                h.close()
        logging.captureWarnings(False)


def test_default_log_dir_is_the_user_log_dir():
    from cxrviewer.paths import user_log_dir

    assert logsetup.log_path().parent == user_log_dir()


def test_unhandled_exceptions_main_and_thread_reach_callback_scrubbed(logfile):
    phi.register(NAME, PID)
    got = []
    uninstall = logsetup.install_excepthooks(lambda short, details: got.append((short, details)))
    try:
        try:
            raise RuntimeError(f"boom while showing {PID}")
        except RuntimeError:
            sys.excepthook(*sys.exc_info())

        def worker():
            raise KeyError("no series for Smithfield^Joanna^Q")

        t = threading.Thread(target=worker, name="scan-worker")
        t.start()
        t.join()
    finally:
        uninstall()
    assert len(got) == 2
    (s1, d1), (s2, d2) = got
    assert "main thread" in s1 and "RuntimeError" in s1 and "Traceback" in d1
    assert "scan-worker" in s2 and "KeyError" in s2
    for text in (s1, d1, s2, d2, _log_text(logfile)):
        assert PID.lower() not in text.lower() and "smithfield" not in text.lower()
    assert "unhandled exception" in _log_text(logfile)
    assert sys.excepthook is not None and threading.excepthook is not None


def test_failing_callback_is_logged_not_raised(logfile):
    def bad(short, details):
        raise OSError("no display")

    uninstall = logsetup.install_excepthooks(bad)
    try:
        try:
            raise ValueError("x")
        except ValueError:
            sys.excepthook(*sys.exc_info())
    finally:
        uninstall()
    assert "crash callback failed" in _log_text(logfile)


def test_uninstall_restores_previous_hooks():
    before = (sys.excepthook, threading.excepthook)
    uninstall = logsetup.install_excepthooks(None)
    assert sys.excepthook is not before[0]
    uninstall()
    assert (sys.excepthook, threading.excepthook) == before

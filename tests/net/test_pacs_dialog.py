"""File → Query/Retrieve… and Send to PACS… in the real main window, against a real Orthanc."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

pytest.importorskip("pytestqt", reason="pytest-qt is needed for the Qt tests")

from PySide6 import QtCore  # noqa: E402

from cxrviewer.net.nodes import DimseNode, NodeBook  # noqa: E402
from cxrviewer.net.store import LocalStore  # noqa: E402

RG1_STUDY = "1.3.6.1.4.1.5962.1.2.9.20040826185059.5457"


@pytest.fixture()
def window(qtbot):
    from cxrviewer.ui.app import create_window

    w = create_window()
    qtbot.addWidget(w)
    w.resize(1100, 750)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.shutdown()
    w.close()


@pytest.fixture()
def book_path(tmp_path, orthanc):
    book = NodeBook(path=tmp_path / "pacs_nodes.json")
    book.put(DimseNode("orthanc", "127.0.0.1", orthanc.dicom_port, orthanc.aet, calling_ae="CXRGUI", timeout=20))
    book.put(DimseNode("wrong-ae", "127.0.0.1", orthanc.dicom_port, "NOTTHERE", timeout=20))
    book.save()
    return book.path


def test_query_retrieve_dialog_opens_the_study_in_the_browser(qtbot, window, orthanc, book_path, rg1_unci, tmp_path):
    orthanc.upload(rg1_unci)
    window.pacs.book_path = book_path
    window.pacs.act_qr.trigger()
    dlg = window.pacs.qr
    assert dlg.isVisible()
    dlg.store = LocalStore(tmp_path / "store")
    dlg.picker.combo.setCurrentText("orthanc")

    qtbot.mouseClick(dlg.test_button, QtCore.Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "connection OK" in dlg.status.text(), timeout=20000)

    dlg.patient_name.setText("Compressed*")
    dlg.date_from.setText("20040101")
    dlg.date_to.setText("20041231")
    dlg.modality.setCurrentText("CR")
    qtbot.mouseClick(dlg.search_button, QtCore.Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dlg.table.rowCount() >= 1 and dlg.retrieve_button.isEnabled(), timeout=20000)
    assert dlg.selected_study_uids() == [RG1_STUDY]
    assert dlg.table.item(0, 1).text() == "9RG1"

    with qtbot.waitSignals([dlg.studyRetrieved, window.scanFinished], timeout=60000, order="strict"):
        qtbot.mouseClick(dlg.retrieve_button, QtCore.Qt.MouseButton.LeftButton)
    files = dlg.store.files(RG1_STUDY)
    assert files and dlg.store.partial_files() == []
    assert window.browser.count_images() == len(files)
    assert "retrieved" in dlg.status.text()
    qtbot.waitUntil(lambda: window.current_image is not None, timeout=20000)
    assert Path(window.current_image.path).parent == dlg.store.study_dir(RG1_STUDY)

    # a node with the wrong AE title: the reason, in red, naming the node
    dlg.picker.combo.setCurrentText("wrong-ae")
    qtbot.mouseClick(dlg.test_button, QtCore.Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "rejected" in dlg.status.text(), timeout=20000)
    assert dlg.status.text().startswith("wrong-ae (NOTTHERE@127.0.0.1:")
    assert "d9534f" in dlg.status.styleSheet()
    assert dlg.test_button.isEnabled()


def test_node_editor_saves_a_private_file(qtbot, window, tmp_path):
    from cxrviewer.ui.pacs.pacs_nodes import NodeEditor

    book = NodeBook(path=tmp_path / "nodes.json")
    ed = NodeEditor(book, window)
    qtbot.addWidget(ed)
    ed.new("dicomweb")
    ed.name.setText("cloud")
    ed.url.setText("https://pacs.example/dicom-web")
    ed.user.setText("reader")
    ed.password.setText("s3cr3t-pw")
    ed.accept()
    assert ed.result() == ed.DialogCode.Accepted
    p = tmp_path / "nodes.json"
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o600
    n = NodeBook.load(p).get("cloud")
    assert n.password == "s3cr3t-pw" and n.verify_tls is True
    # a bad AE title is refused with the reason and nothing is saved
    ed2 = NodeEditor(NodeBook.load(p), window)
    qtbot.addWidget(ed2)
    ed2.new("dimse")
    ed2.name.setText("bad")
    ed2.host.setText("pacs")
    ed2.called_ae.setText("WAY_TOO_LONG_AE_TITLE")
    ed2.accept()
    assert "called AE title" in ed2.error.text() and ed2.isVisible() or ed2.result() != ed2.DialogCode.Accepted
    assert "bad" not in NodeBook.load(p).nodes


def test_settings_file_is_private(tmp_path):
    from cxrviewer.ui.common.settings import Settings

    s = Settings(str(tmp_path / "settings.ini"))
    s.add_recent(str(tmp_path))
    assert stat.S_IMODE(os.stat(tmp_path / "settings.ini").st_mode) == 0o600


def test_send_dialog_sends_the_image_on_screen(qtbot, window, fresh_orthanc, tmp_path, rg1_unci):
    book = NodeBook(path=tmp_path / "pacs_nodes.json")
    book.put(DimseNode("fresh", "127.0.0.1", fresh_orthanc.dicom_port, fresh_orthanc.aet, timeout=20))
    book.save()
    with qtbot.waitSignals([window.scanFinished, window.imageLoaded], timeout=20000, order="none"):
        window.open_path(str(rg1_unci))
    window.pacs.book_path = book.path
    window.pacs.act_send.trigger()
    dlg = window.pacs.send_dialog
    dlg.scope.setCurrentIndex(dlg.scope.findData("image"))
    for cb in dlg.checks.values():
        cb.setChecked(False)
    assert dlg.files() == [str(rg1_unci)]
    with qtbot.waitSignal(dlg.sent, timeout=30000) as sig:
        qtbot.mouseClick(dlg.send_button, QtCore.Qt.MouseButton.LeftButton)
    assert sig.args[0].sent == 1 and not sig.args[0].failed
    assert fresh_orthanc.rest("/statistics")["CountInstances"] == 1
    # the view as an SC and the reading as a GSPS, built at send time by the DICOM-object layer
    if getattr(window, "dicom", None) is None:
        pytest.skip("this checkout has no DICOM-object layer (window.dicom)")
    dlg.scope.setCurrentIndex(dlg.scope.findData("none"))
    dlg.checks["sc-view"].setChecked(True)
    dlg.checks["gsps"].setChecked(True)
    with qtbot.waitSignal(dlg.sent, timeout=60000) as sig:
        qtbot.mouseClick(dlg.send_button, QtCore.Qt.MouseButton.LeftButton)
    assert sig.args[0].sent == 2 and not sig.args[0].failed, sig.args[0].failed
    assert dlg._tmp is None  # the temporary objects are gone
    series = fresh_orthanc.rest("/series?expand")
    assert sorted(s["MainDicomTags"].get("Modality") for s in series) == ["CR", "OT", "PR"]


def test_cancel_in_the_dialog_leaves_complete_files_only(qtbot, window, fresh_orthanc, tmp_path):
    from cxrviewer.bench._orthanc import synthetic_study

    study, files = synthetic_study(tmp_path / "src", 30, 512, 512, patient_id="CANCEL1")
    for f in files:
        fresh_orthanc.upload(f)
    book = NodeBook(path=tmp_path / "pacs_nodes.json")
    book.put(DimseNode("fresh", "127.0.0.1", fresh_orthanc.dicom_port, fresh_orthanc.aet, timeout=20))
    book.save()
    window.pacs.book_path = book.path
    dlg = window.pacs.open_query()
    dlg.store = LocalStore(tmp_path / "store")
    job = dlg.retrieve(study)
    assert job is not None and dlg.cancel_button.isVisible()
    qtbot.waitUntil(lambda: dlg.progress.value() >= 2, timeout=30000)
    qtbot.mouseClick(dlg.cancel_button, QtCore.Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "cancelled after" in dlg.status.text(), timeout=30000)
    have = dlg.store.files(study)
    assert 2 <= len(have) < 30 and dlg.store.partial_files() == []
    assert dlg.search_button.isEnabled() and not dlg.cancel_button.isVisible()
    # Retrieve again: only the rest comes, and the study opens with all 30 images
    with qtbot.waitSignals([dlg.studyRetrieved, window.scanFinished], timeout=60000, order="strict"):
        dlg.retrieve(study)
    assert len(dlg.store.files(study)) == 30 and f"{30 - len(have)} retrieved, {len(have)} already here" in dlg.status.text()
    assert window.browser.count_images() == 30


def test_dialog_over_dicomweb(qtbot, window, orthanc, web_node, rg1_unci, tmp_path):
    orthanc.upload(rg1_unci)
    book = NodeBook(path=tmp_path / "pacs_nodes.json")
    book.put(web_node)
    book.save()
    window.pacs.book_path = book.path
    dlg = window.pacs.open_query()
    dlg.store = LocalStore(tmp_path / "store")
    dlg.picker.reload("test-web")
    dlg.patient_id.setText("9RG1")
    qtbot.mouseClick(dlg.search_button, QtCore.Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dlg.table.rowCount() == 1 and dlg.retrieve_button.isEnabled(), timeout=20000)
    with qtbot.waitSignals([dlg.studyRetrieved, window.scanFinished], timeout=60000, order="strict"):
        qtbot.mouseClick(dlg.retrieve_button, QtCore.Qt.MouseButton.LeftButton)
    assert dlg.store.files(RG1_STUDY) and window.browser.count_images() == len(dlg.store.files(RG1_STUDY))
    assert web_node.password not in dlg.status.text()


def test_dialog_says_what_it_did_about_a_quirky_archive(qtbot, window, fresh_peer_factory, peer_studies, tmp_path):
    """pynetdicom's qrscp ignores the modality filter and answers per instance: the dialog lists the
    one US study and says so; the mixed study (J2K + uncompressed) is retrieved whole."""
    peer = fresh_peer_factory("qrscp")
    peer.load(peer_studies.files["mixed"] + peer_studies.files["uncompressed_ct"])
    book = NodeBook(path=tmp_path / "pacs_nodes.json")
    book.put(DimseNode("qr", "127.0.0.1", peer.port, peer.aet, calling_ae="CXRGUI", timeout=20))
    book.save()
    window.pacs.book_path = book.path
    window.pacs.act_qr.trigger()
    dlg = window.pacs.qr
    dlg.store = LocalStore(tmp_path / "store")
    dlg.picker.combo.setCurrentText("qr")
    for field in (dlg.patient_name, dlg.date_from, dlg.date_to):
        field.setText("")
    dlg.modality.setCurrentText("US")
    qtbot.mouseClick(dlg.search_button, QtCore.Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "found on" in dlg.status.text(), timeout=20000)
    assert dlg.selected_study_uids() == [peer_studies.uids["mixed"]] and dlg.table.rowCount() == 1
    assert "ignored the modality filter 'US'" in dlg.status.text()
    with qtbot.waitSignal(dlg.studyRetrieved, timeout=60000):
        qtbot.mouseClick(dlg.retrieve_button, QtCore.Qt.MouseButton.LeftButton)
    assert dlg.status.text().startswith("5 retrieved") and len(dlg.store.files(peer_studies.uids["mixed"])) == 5

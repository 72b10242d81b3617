"""DIMSE with pynetdicom: C-ECHO, study-level C-FIND, C-GET / C-MOVE into the local store, C-STORE.

Every function opens one association for the call and releases it before returning; nothing
listens except the short-lived storage SCP of a C-MOVE. Failures raise
:class:`~cxrviewer.net.common.NetError` naming the node and the reason: node down (connection
refused / timed out), wrong AE title (association rejected with the node's reason), no answer in
time vs the archive closed the connection, transfer cut mid-study, DIMSE statuses worded
(:mod:`cxrviewer.net.status`). The retrieve itself lives in :mod:`cxrviewer.net.dimse_retrieve`,
what we propose and accept in :mod:`cxrviewer.net.contexts`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterable

from cxrviewer.net.common import (
    STUDY_FIELDS,
    Cancelled,
    CancelToken,
    FindResult,
    NetError,
    Progress,
    RetrieveResult,
    SendResult,
    StudyQuery,
    date_match,
    dedupe_studies,
    modality_match,
    study_row,
)
from cxrviewer.net.files import dicom_files, read_for_send
from cxrviewer.net.nodes import DimseNode
from cxrviewer.net.status import store_status
from cxrviewer.net.store import LocalStore

log = logging.getLogger(__name__)

VERIFICATION = "1.2.840.10008.1.1"
FIND_STUDY_ROOT = "1.2.840.10008.5.1.4.1.2.2.1"
MOVE_STUDY_ROOT = "1.2.840.10008.5.1.4.1.2.2.2"
GET_STUDY_ROOT = "1.2.840.10008.5.1.4.1.2.2.3"

#: the Q/R and verification contexts: uncompressed only (commands and identifiers are small)
QR_SYNTAXES = ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2")

_STATUS_PENDING = (0xFF00, 0xFF01)


# ---------------------------------------------------------------- association
class _TcpErrorCapture(logging.Handler):
    """pynetdicom reports why a TCP connect failed only in its log; keep that line for the message."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.lines: list[str] = []
        self.thread_ids: set[int] = set()

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if msg.startswith("TCP Initialisation Error") or msg.startswith("ACSE timeout"):
            self.lines.append(msg)


@contextlib.contextmanager
def _capture_pynetdicom():
    lg = logging.getLogger("pynetdicom")
    h = _TcpErrorCapture()
    old = lg.level
    if lg.getEffectiveLevel() > logging.ERROR:
        lg.setLevel(logging.ERROR)
    lg.addHandler(h)
    try:
        yield h
    finally:
        lg.removeHandler(h)
        lg.setLevel(old)


_PATCHED = False


def _close_failed_sockets() -> None:
    """Close the socket of a failed TCP connect (pynetdicom 3.0 leaks it).

    ``AssociationSocket._shutdown_socket`` calls ``shutdown()`` first, which raises ENOTCONN on
    a socket that never connected, so its ``close()`` is skipped and the descriptor stays open
    until garbage collection (a ResourceWarning). Wrap it so ``close()`` always runs.
    """
    global _PATCHED
    if _PATCHED:
        return
    from pynetdicom.transport import AssociationSocket

    orig = AssociationSocket._shutdown_socket

    def _shutdown_socket(self) -> None:
        sock = self.socket
        try:
            orig(self)
        finally:
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.close()

    AssociationSocket._shutdown_socket = _shutdown_socket
    _PATCHED = True


def _make_ae(node: DimseNode):
    from pynetdicom import AE

    _close_failed_sockets()

    ae = AE(ae_title=node.calling_ae)
    t = float(node.timeout)
    ae.acse_timeout = t
    ae.dimse_timeout = t
    ae.network_timeout = t
    ae.connection_timeout = min(t, 10.0)
    ae.maximum_pdu_size = 0  # unlimited: fewer, larger PDUs (the peer still caps its own)
    return ae


def _connect_reason(node: DimseNode, lines: list[str]) -> str:
    text = " ".join(lines)
    if "refused" in text.lower():
        return (f"connection refused at {node.host}:{node.port} "
                "(the node is down, or the host/port is wrong)")
    if "timed out" in text.lower() or "timeout" in text.lower():
        if "ACSE" in text:
            return f"no answer to the association request within {node.timeout:g} s (timeout)"
        return f"no answer from {node.host}:{node.port} (connection timed out)"
    if "Name or service not known" in text or "nodename nor servname" in text or "getaddrinfo" in text:
        return f"unknown host {node.host!r}"
    detail = text.replace("TCP Initialisation Error:", "").strip()
    return f"cannot connect to {node.host}:{node.port}" + (f" ({detail})" if detail else "")


def associate(node: DimseNode, contexts: Iterable[tuple[str, tuple[str, ...]]], *, roles: Iterable[str] = (),
              handlers: list | None = None):
    """Open an association or raise :class:`NetError` with the node's reason.

    ``contexts`` are (abstract syntax, transfer syntaxes); ``roles`` are storage classes for
    which we also act as SCP (C-GET delivers on the same association).
    """
    from pynetdicom import build_role, evt

    ae = _make_ae(node)
    watch = _Watch()
    handlers = list(handlers or []) + [(evt.EVT_DATA_RECV, watch.received)]
    for abstract, syntaxes in contexts:
        ae.add_requested_context(abstract, list(syntaxes))
    ext = [build_role(uid, scu_role=False, scp_role=True) for uid in roles]
    who = node.describe()
    # pynetdicom 3.0 can lose the node's A-ASSOCIATE-RJ in a race (see _rejection_left_in_queue);
    # it is then read from the queue. A bare abort with no reason gets one more attempt.
    rejection = None
    for attempt in (1, 2):
        with _capture_pynetdicom() as cap:
            try:
                assoc = ae.associate(node.host, node.port, ae_title=node.called_ae, ext_neg=ext or None,
                                     evt_handlers=handlers)
            except (OSError, ValueError) as e:
                raise NetError(who, f"cannot connect: {e}") from None
        if not assoc.is_established and not assoc.is_rejected:
            rejection = _rejection_left_in_queue(assoc)
        if assoc.is_established or assoc.is_rejected or rejection is not None or cap.lines or attempt == 2:
            break
        time.sleep(0.2)
    if assoc.is_established:
        assoc.cxr_watch = watch
        return assoc
    if assoc.is_rejected or rejection is not None:
        rsp = rejection if rejection is not None else getattr(assoc.acceptor, "primitive", None)
        reason = getattr(rsp, "reason_str", "") or "no reason given"
        source = getattr(rsp, "source_str", "")
        hint = ""
        if "called ae" in reason.lower():
            hint = f": check the node's AE title (we called {node.called_ae!r})"
        elif "calling ae" in reason.lower():
            hint = f": the node does not know our AE title {node.calling_ae!r}"
        raise NetError(who, f"association rejected by {source or 'the node'}: {reason}{hint}")
    if cap.lines:
        raise NetError(who, _connect_reason(node, cap.lines))
    raise NetError(who, "association aborted by the node (it accepted none of our requests, or closed the connection)")


class _Watch:
    """When the association last received data: tells a peer that closed the connection from a timeout.

    pynetdicom aborts the association itself on a DIMSE timeout, so ``is_aborted`` is true in both
    cases; the time since the last data says which it was.
    """

    def __init__(self) -> None:
        self.last_rx = time.monotonic()

    def received(self, event) -> None:
        self.last_rx = time.monotonic()


def _rejection_left_in_queue(assoc):
    """The node's A-ASSOCIATE-RJ when pynetdicom lost the race to read it, else None.

    pynetdicom 3.0's requestor checks ``socket._is_connected`` after sending its request; when
    the node answers with a rejection and closes the connection before that check (often, with
    debug logging on), it aborts as "failed to connect" and the rejection stays unread in the
    DUL's queue. The node's reason (a wrong AE title, say) is there; read it.
    """
    from pynetdicom.pdu_primitives import A_ASSOCIATE

    q = getattr(getattr(assoc, "dul", None), "to_user_queue", None)
    for prim in list(getattr(q, "queue", ())):
        if isinstance(prim, A_ASSOCIATE) and prim.result in (0x01, 0x02):
            return prim
    return None


@contextlib.contextmanager
def _association(node: DimseNode, contexts, **kw):
    assoc = associate(node, contexts, **kw)
    try:
        yield assoc
    finally:
        if assoc.is_established:
            with contextlib.suppress(Exception):
                assoc.release()


def _status(ds) -> int | None:
    return int(ds.Status) if ds is not None and "Status" in ds else None


def lost_reason(node: DimseNode, assoc) -> str:
    """Why a DIMSE exchange got no answer: the peer closed the connection, or it said nothing in time."""
    watch = getattr(assoc, "cxr_watch", None)
    idle = time.monotonic() - watch.last_rx if watch is not None else float(node.timeout)
    if idle >= 0.9 * float(node.timeout):
        return f"no answer within {node.timeout:g} s (timeout; the archive is hung or busy)"
    # we abort only on a timeout (above) or a cancel (reported apart): the other side closed it
    return "the archive closed the connection (it stopped, crashed or dropped us)"


def _lost(node: DimseNode, assoc, what: str) -> NetError:
    return NetError(node.describe(), f"{what}: {lost_reason(node, assoc)}")


# ---------------------------------------------------------------------- echo
def echo(node: DimseNode) -> dict:
    """C-ECHO. Returns ``{"ok": True, "ms": round trip}``."""
    t0 = time.perf_counter()
    with _association(node, [(VERIFICATION, QR_SYNTAXES)]) as assoc:
        st = assoc.send_c_echo()
        code = _status(st)
        if code is None:
            raise _lost(node, assoc, "C-ECHO got no answer")
        if code != 0:
            raise NetError(node.describe(), f"C-ECHO failed with status 0x{code:04X}")
    return {"ok": True, "ms": round((time.perf_counter() - t0) * 1000, 1)}


# ---------------------------------------------------------------------- find
def _study_identifier(q: StudyQuery):
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    for _key, kw in STUDY_FIELDS:
        setattr(ds, kw, "")
    ds.PatientName = q.patient_name
    ds.PatientID = q.patient_id
    ds.StudyDate = q.study_date
    ds.ModalitiesInStudy = q.modality
    ds.AccessionNumber = q.accession
    ds.StudyInstanceUID = q.study_uid
    return ds


def _find(node: DimseNode, assoc, ident, what: str) -> list:
    out = []
    for st, rsp in assoc.send_c_find(ident, FIND_STUDY_ROOT):
        code = _status(st)
        if code is None:
            raise _lost(node, assoc, what)
        if code in _STATUS_PENDING:
            if rsp is not None:
                out.append(rsp)
        elif code != 0:
            from cxrviewer.net.status import find_status

            raise NetError(node.describe(), f"{what} failed with status {find_status(code)}")
    return out


def find(node: DimseNode, q: StudyQuery) -> FindResult:
    """Study-level C-FIND (Study Root). One dict per study (keys: :data:`STUDY_FIELDS`).

    Survives archives' quirks, and says so in ``notes``: answers given per series or instance
    are merged by Study Instance UID; a modality filter the archive ignored (a study answered
    without the modality in ModalitiesInStudy) is applied here, through the series level when
    the archive does not return ModalitiesInStudy; so is a study date range.
    """
    with _association(node, [(FIND_STUDY_ROOT, QR_SYNTAXES)]) as assoc:
        raw = [study_row(lambda kw, r=r: r.get(kw)) for r in _find(node, assoc, _study_identifier(q), "C-FIND")]
        rows, merged = dedupe_studies(raw)
        notes = []
        if merged:
            notes.append(f"the archive answered {len(raw)} rows for {len(rows)} studies (one per series or instance): "
                         "merged by Study Instance UID")
        if q.modality:
            asked = 0
            for r in rows:
                if not r["modalities"] and r["study_uid"]:
                    r["modalities"] = _series_modalities(node, assoc, r["study_uid"])
                    asked += 1
            keep = [r for r in rows if modality_match(q.modality, r["modalities"])]
            if len(keep) < len(rows):
                how = "at the series level" if asked else "through Modalities in Study"
                notes.append(f"the archive ignored the modality filter {q.modality!r}: {len(rows) - len(keep)} "
                             f"of {len(rows)} studies without it removed here (checked {how})")
            rows = keep
    if q.study_date:
        keep = [r for r in rows if date_match(r["study_date"], q.study_date)]
        if len(keep) < len(rows):
            notes.append(f"the archive ignored the study date range {q.study_date!r}: {len(rows) - len(keep)} "
                         "studies outside it removed here")
        rows = keep
    rows.sort(key=lambda r: (r["study_date"], r["study_time"]), reverse=True)
    return FindResult(rows[: q.limit] if q.limit else rows, notes)


def _series_modalities(node: DimseNode, assoc, study_uid: str) -> list[str]:
    """The modalities of a study's series (series-level C-FIND), for archives without ModalitiesInStudy."""
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.QueryRetrieveLevel = "SERIES"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = ""
    ds.Modality = ""
    found = _find(node, assoc, ds, "C-FIND (series modality)")
    return list(dict.fromkeys(str(r.Modality) for r in found if r.get("Modality")))


def list_instances(node: DimseNode, assoc, study_uid: str) -> dict[str, str]:
    """``{SOPInstanceUID: SeriesInstanceUID}`` of a study (series then image level, PS3.4 C.4.1.3.1)."""
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.QueryRetrieveLevel = "SERIES"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = ""
    series = [str(r.SeriesInstanceUID) for r in _find(node, assoc, ds, "C-FIND (series)") if "SeriesInstanceUID" in r]
    out: dict[str, str] = {}
    for se in series:
        ds = Dataset()
        ds.QueryRetrieveLevel = "IMAGE"
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = se
        ds.SOPInstanceUID = ""
        for r in _find(node, assoc, ds, "C-FIND (images)"):
            if "SOPInstanceUID" in r:
                out[str(r.SOPInstanceUID)] = se
    return out


# ------------------------------------------------------------------ retrieve
def retrieve(node: DimseNode, study_uid: str, store: LocalStore, progress: Progress | None = None,
             cancel: CancelToken | None = None) -> RetrieveResult:
    """Fetch the instances of ``study_uid`` that ``store`` lacks (see :mod:`cxrviewer.net.dimse_retrieve`)."""
    from cxrviewer.net.dimse_retrieve import retrieve as _retrieve

    return _retrieve(node, study_uid, store, progress, cancel)


# ---------------------------------------------------------------------- send
def send(node: DimseNode, paths: Iterable[str | os.PathLike], progress: Progress | None = None,
         cancel: CancelToken | None = None) -> SendResult:
    """C-STORE each file (folders are walked). Files the node refuses are listed with the status."""
    t0 = time.perf_counter()
    res = SendResult()
    items = []
    for p in dicom_files(paths):
        ds, why = read_for_send(p)
        if ds is None:
            res.failed.append((str(p), why))
        else:
            items.append((p, ds))
    contexts: dict[tuple[str, tuple[str, ...]], None] = {}
    for _p, ds in items:
        cls, ts = str(ds.SOPClassUID), str(ds.file_meta.TransferSyntaxUID)
        contexts[(cls, (ts,) if ts not in QR_SYNTAXES else QR_SYNTAXES)] = None
    if len(contexts) > 128:
        raise NetError(node.describe(), f"{len(contexts)} SOP class/transfer syntax pairs: more than one association "
                       "can carry (128); send fewer kinds of objects at once")
    if items:
        with _association(node, list(contexts)) as assoc:
            for i, (p, ds) in enumerate(items, 1):
                if cancel is not None and cancel.cancelled:
                    raise Cancelled(node.describe(), f"send cancelled after {res.sent} of {len(items)} files")
                try:
                    st = assoc.send_c_store(ds)
                except (ValueError, AttributeError) as e:
                    res.failed.append((str(p), f"cannot send: {e}"))
                    continue
                code = _status(st)
                if code is None:
                    raise _lost(node, assoc, f"C-STORE cut after {res.sent} of {len(items)} files")
                if code == 0 or 0xB000 <= code <= 0xBFFF:
                    res.sent += 1
                    res.sop_instance_uids.append(str(ds.SOPInstanceUID))
                else:
                    res.failed.append((str(p), f"refused by the node with status {store_status(code)}"))
                if progress is not None:
                    progress(i, len(items))
    res.seconds = round(time.perf_counter() - t0, 3)
    return res

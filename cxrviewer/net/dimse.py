"""DIMSE with pynetdicom: C-ECHO, study-level C-FIND, C-GET / C-MOVE into the local store, C-STORE.

Every function opens one association for the call and releases it before returning; nothing
listens except the short-lived storage SCP of a C-MOVE. Failures raise
:class:`~cxrviewer.net.common.NetError` naming the node and the reason: node down (connection
refused / timed out), wrong AE title (association rejected with the node's reason), timeout,
transfer cut mid-study.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterable

from cxrviewer.net.common import (
    STUDY_FIELDS,
    Cancelled,
    CancelToken,
    NetError,
    Progress,
    RetrieveResult,
    SendResult,
    StudyQuery,
    study_row,
)
from cxrviewer.net.contexts import UNCOMPRESSED, get_roles, get_storage_contexts, scp_contexts
from cxrviewer.net.files import dicom_files, read_for_send
from cxrviewer.net.nodes import DimseNode
from cxrviewer.net.store import LocalStore, StoreError

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
    from pynetdicom import build_role

    ae = _make_ae(node)
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
                                     evt_handlers=handlers or [])
            except (OSError, ValueError) as e:
                raise NetError(who, f"cannot connect: {e}") from None
        if not assoc.is_established and not assoc.is_rejected:
            rejection = _rejection_left_in_queue(assoc)
        if assoc.is_established or assoc.is_rejected or rejection is not None or cap.lines or attempt == 2:
            break
        time.sleep(0.2)
    if assoc.is_established:
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


def _lost(node: DimseNode, assoc, what: str) -> NetError:
    if assoc.is_aborted:
        why = "the connection was lost (association aborted)"
    elif not assoc.is_established:
        why = "the node closed the association"
    else:
        why = f"no response within {node.timeout:g} s (timeout)"
    return NetError(node.describe(), f"{what}: {why}")


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
            raise NetError(node.describe(), f"{what} failed with status 0x{code:04X}")
    return out


def find(node: DimseNode, q: StudyQuery) -> list[dict]:
    """Study-level C-FIND (Study Root). Returns one dict per study (keys: :data:`STUDY_FIELDS`)."""
    with _association(node, [(FIND_STUDY_ROOT, QR_SYNTAXES)]) as assoc:
        rows = [study_row(lambda kw, r=r: r.get(kw)) for r in _find(node, assoc, _study_identifier(q), "C-FIND")]
    rows.sort(key=lambda r: (r["study_date"], r["study_time"]), reverse=True)
    return rows[: q.limit] if q.limit else rows


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
class _Receiver:
    """The C-STORE handler: writes each instance atomically into the store as it arrives."""

    def __init__(self, store: LocalStore, study_uid: str, expected: int, progress: Progress | None,
                 cancel: CancelToken | None) -> None:
        self.store, self.study_uid = store, study_uid
        self.expected, self.progress, self.cancel = expected, progress, cancel
        self.written: list[str] = []
        self.errors: list[str] = []
        self.lock = threading.Lock()
        self.remote: dict[str, str] | None = None  # the listing, when one was made
        self.listed = False
        self.node_failed = 0

    def __call__(self, event) -> int:
        if self.cancel is not None and self.cancel.cancelled:
            return 0xA700  # refused; the requestor aborts right after
        sop = str(event.request.AffectedSOPInstanceUID)
        try:
            self.store.write(self.study_uid, sop, event.encoded_dataset(include_meta=True))
        except (StoreError, OSError) as e:
            with self.lock:
                self.errors.append(f"{sop}: {e}")
            return 0xA700
        with self.lock:
            self.written.append(sop)
            n = len(self.written)
        if self.progress is not None:
            self.progress(n, self.expected)
        return 0x0000


def _run_retrieve(node: DimseNode, assoc, responses, rx: _Receiver, cancel: CancelToken | None, what: str) -> int:
    """Drain one C-GET/C-MOVE; returns the failed sub-operation count the node reported."""
    failed = 0
    for st, _ident in responses:
        code = _status(st)
        if code is None:
            raise _lost(node, assoc, f"{what} cut after {len(rx.written)} of {rx.expected or '?'} instances")
        if cancel is not None and cancel.cancelled:
            assoc.abort()
            raise Cancelled(node.describe(), f"cancelled after {len(rx.written)} of {rx.expected} instances "
                                             "(those are complete; retrieve again to fetch the rest)")
        counts = [int(getattr(st, f"Number{k}Suboperations", 0) or 0) for k in ("OfRemaining", "OfCompleted",
                                                                                 "OfFailed", "OfWarning")]
        if code in _STATUS_PENDING:
            if not rx.listed and sum(counts):
                rx.expected = max(rx.expected, sum(counts))  # the node's own count (no listing was done)
            continue
        failed = counts[2]
        if code == 0xFE00:
            raise Cancelled(node.describe(), f"{what} cancelled by the node")
        if code not in (0x0000, 0xB000):
            extra = f" ({rx.errors[0]})" if rx.errors else ""
            raise NetError(node.describe(), f"{what} failed with status 0x{code:04X}{extra}")
    return failed


def _identifiers(study_uid: str, remote: dict[str, str], missing: set[str]):
    """Study level when everything is missing, else image level per series with the missing UIDs."""
    from pydicom.dataset import Dataset

    if not remote or missing == set(remote):
        ds = Dataset()
        ds.QueryRetrieveLevel = "STUDY"
        ds.StudyInstanceUID = study_uid
        return [ds]
    by_series: dict[str, list[str]] = {}
    for sop in sorted(missing):
        by_series.setdefault(remote[sop], []).append(sop)
    out = []
    for se, sops in by_series.items():
        ds = Dataset()
        ds.QueryRetrieveLevel = "IMAGE"
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = se
        ds.SOPInstanceUID = sops  # list of UIDs matching (PS3.4 C.2.2.2.2)
        out.append(ds)
    return out


def retrieve(node: DimseNode, study_uid: str, store: LocalStore, progress: Progress | None = None,
             cancel: CancelToken | None = None) -> RetrieveResult:
    """Fetch the instances of ``study_uid`` that ``store`` lacks (C-GET, or C-MOVE if the node says so).

    When the store has nothing of the study, the whole study is asked for at once (the node's
    sub-operation counts give the progress total); otherwise the instances are listed (C-FIND at
    series then image level) and only the missing ones are asked for.
    """
    from cxrviewer.net.store import check_uid

    study_uid = check_uid(study_uid, "Study Instance UID")
    t0 = time.perf_counter()
    res = RetrieveResult(study_uid, str(store.study_dir(study_uid)))
    present = store.present(study_uid)
    rx = _Receiver(store, study_uid, 0, progress, cancel)
    if node.retrieve == "move":
        _retrieve_move(node, study_uid, present, rx)
    else:
        _retrieve_get(node, study_uid, present, rx)
    now = store.present(study_uid)
    res.fetched = len(set(rx.written))
    if rx.remote is not None:
        res.total = len(rx.remote)
        res.already_present = len(present & set(rx.remote))
        res.failed = len(set(rx.remote) - now)
    else:
        res.total = res.fetched + rx.node_failed
        res.failed = rx.node_failed
        if res.total == 0:
            raise NetError(node.describe(), f"study {study_uid} not found on the node (nothing to retrieve)")
    res.warnings.extend(rx.errors)
    res.seconds = round(time.perf_counter() - t0, 3)
    return res


def _plan(node: DimseNode, assoc, study_uid: str, present: set[str], rx: _Receiver):
    """The identifiers to retrieve with: listing only when part of the study is already here."""
    if present:
        rx.remote = list_instances(node, assoc, study_uid)
        rx.listed = True
        if not rx.remote:
            raise NetError(node.describe(), f"study {study_uid} not found on the node")
        missing = set(rx.remote) - present
        rx.expected = len(missing)
        if rx.progress is not None:
            rx.progress(0, len(missing))
        return _identifiers(study_uid, rx.remote, missing) if missing else []
    # Nothing here yet: one study-level C-FIND gives the total for the progress bar (the C-GET
    # responses' counts arrive only after the first instance) and says early if it is unknown.
    rows = _find(node, assoc, _study_identifier(StudyQuery(study_uid=study_uid)), "C-FIND (study)")
    if not rows:
        raise NetError(node.describe(), f"study {study_uid} not found on the node")
    with contextlib.suppress(TypeError, ValueError, AttributeError):
        rx.expected = int(rows[0].NumberOfStudyRelatedInstances or 0)
    if rx.progress is not None:
        rx.progress(0, rx.expected)
    return _identifiers(study_uid, {}, set())


def _retrieve_get(node: DimseNode, study_uid: str, present: set[str], rx: _Receiver) -> None:
    from pynetdicom import evt

    storage = get_storage_contexts()
    contexts = [(FIND_STUDY_ROOT, QR_SYNTAXES), (GET_STUDY_ROOT, QR_SYNTAXES), *storage]
    roles = get_roles(storage)
    with _association(node, contexts, roles=roles, handlers=[(evt.EVT_C_STORE, rx)]) as assoc:
        if not any(cx.abstract_syntax == GET_STUDY_ROOT for cx in assoc.accepted_contexts):
            raise NetError(node.describe(), "the node does not offer C-GET (Study Root); set the node to retrieve with C-MOVE")
        for ident in _plan(node, assoc, study_uid, present, rx):
            rx.node_failed += _run_retrieve(node, assoc, assoc.send_c_get(ident, GET_STUDY_ROOT), rx, rx.cancel, "C-GET")


def _retrieve_move(node: DimseNode, study_uid: str, present: set[str], rx: _Receiver) -> None:
    from pynetdicom import AE, evt

    scp = AE(ae_title=node.calling_ae)
    for c, syntaxes in scp_contexts():
        scp.add_supported_context(c, list(syntaxes))
    scp.maximum_pdu_size = 0
    try:
        server = scp.start_server((node.store_bind, node.store_port), block=False, evt_handlers=[(evt.EVT_C_STORE, rx)])
    except OSError as e:
        raise NetError(node.describe(), f"cannot listen on port {node.store_port} for C-MOVE ({e.strerror or e})") from None
    try:
        with _association(node, [(FIND_STUDY_ROOT, QR_SYNTAXES), (MOVE_STUDY_ROOT, QR_SYNTAXES)]) as assoc:
            for ident in _plan(node, assoc, study_uid, present, rx):
                rsp = assoc.send_c_move(ident, node.calling_ae, MOVE_STUDY_ROOT)
                try:
                    rx.node_failed += _run_retrieve(node, assoc, rsp, rx, rx.cancel, "C-MOVE")
                except NetError as e:
                    if "0xA801" in str(e):
                        raise NetError(node.describe(), f"C-MOVE refused: the node does not know our AE title "
                                       f"{node.calling_ae!r} as a destination (add it with port {node.store_port})") from None
                    raise
    finally:
        server.shutdown()


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
                    res.failed.append((str(p), f"refused by the node with status 0x{code:04X}"))
                if progress is not None:
                    progress(i, len(items))
    res.seconds = round(time.perf_counter() - t0, 3)
    return res

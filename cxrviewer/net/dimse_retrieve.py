"""C-GET / C-MOVE of a study into the local store, surviving archives' quirks.

One retrieve is a series of *passes*; each opens one association and asks for what the store
still lacks:

1. The first pass asks for the whole study (or, when part of it is here already, for the missing
   instances: a list of SOP Instance UIDs per series, the series itself when all of it is
   missing), with every transfer syntax we decode (:mod:`cxrviewer.net.contexts`).
2. When instances are still missing, the study is listed (C-FIND, series then image level) and
   each further pass offers **one syntax family** only (uncompressed, JPEG 2000, JPEG, JPEG-LS,
   RLE): an archive that picks one context per SOP class whatever the instance's syntax (dcmtk's
   ``dcmqrscp`` does, for C-GET and C-MOVE alike) then sends, in some pass, each instance as it
   stores it. Passes stop when nothing is missing or every family was offered.
3. An archive that cannot take a list of UIDs (pynetdicom's ``qrscp`` answers 0xC413) is asked
   one instance at a time.

Instances are written byte for byte as received (the file meta is built around the data set's
encoded bytes; pixel data is never decoded or re-encoded). Each instance that is still missing at
the end gets a reason in :attr:`RetrieveResult.failures`.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field

from cxrviewer.net.common import (
    Cancelled,
    CancelToken,
    NetError,
    Progress,
    RetrieveResult,
    StudyQuery,
)
from cxrviewer.net.contexts import (
    J2K,
    JPEG,
    JPEG_LS,
    RLE,
    UNCOMPRESSED,
    all_storage_classes,
    get_roles,
    get_storage_contexts,
    scp_contexts,
)
from cxrviewer.net.dimse import (
    FIND_STUDY_ROOT,
    GET_STUDY_ROOT,
    MOVE_STUDY_ROOT,
    QR_SYNTAXES,
    _association,
    _find,
    _lost,
    _status,
    _study_identifier,
    list_instances,
)
from cxrviewer.net.nodes import DimseNode
from cxrviewer.net.status import retrieve_status
from cxrviewer.net.store import LocalStore, StoreError, check_uid

#: the families offered alone in the passes after the first, most common first
RETRY_FAMILIES = (("uncompressed", UNCOMPRESSED), ("JPEG 2000", J2K), ("JPEG", JPEG), ("JPEG-LS", JPEG_LS),
                  ("RLE", RLE))
_PENDING = (0xFF00, 0xFF01)
_DONE = (0x0000, 0xB000)


class _Receiver:
    """The C-STORE handler: writes each instance atomically into the store as it arrives."""

    def __init__(self, store: LocalStore, study_uid: str, progress: Progress | None,
                 cancel: CancelToken | None) -> None:
        self.store, self.study_uid = store, study_uid
        self.expected, self.progress, self.cancel = 0, progress, cancel
        self.written: list[str] = []
        self.errors: dict[str, str] = {}  # SOP Instance UID -> why we could not store it
        self.lock = threading.Lock()
        self.connections = 0  # associations the archive opened to our C-MOVE SCP

    def connected(self, event) -> None:
        with self.lock:
            self.connections += 1

    def __call__(self, event) -> int:
        if self.cancel is not None and self.cancel.cancelled:
            return 0xA700  # refused; the requestor aborts right after
        sop = str(event.request.AffectedSOPInstanceUID)
        try:
            # include_meta: preamble + file meta (the context's transfer syntax) + the data set's
            # bytes exactly as received; nothing is decoded
            self.store.write(self.study_uid, sop, event.encoded_dataset(include_meta=True))
        except (StoreError, OSError) as e:
            with self.lock:
                self.errors[sop] = f"could not be stored here: {e}"
            return 0xA700
        with self.lock:
            self.written.append(sop)
            n = len(set(self.written))
        if self.progress is not None:
            self.progress(n, max(self.expected, n))
        return 0x0000


@dataclass
class _Outcome:
    """The final response of one C-GET/C-MOVE."""

    code: int
    completed: int = 0
    failed: int = 0
    failed_uids: list[str] = field(default_factory=list)


@dataclass
class _State:
    node: DimseNode
    study_uid: str
    rx: _Receiver
    present: set[str]
    remote: dict[str, str] | None = None  # SOP Instance UID -> Series Instance UID, once listed
    reasons: dict[str, str] = field(default_factory=dict)  # why an instance did not come (latest)
    notes: list[str] = field(default_factory=list)  # what happened on the way, for the warnings
    syntax_failed: bool = False  # sub-operations failed: offer the syntax families one by one
    incomplete: bool = False  # some request did not fully succeed: the study is listed for the totals
    no_list: bool = False  # the archive cannot take a list of UIDs
    tried: list[str] = field(default_factory=list)  # syntax families offered alone, in order

    def have(self) -> set[str]:
        return self.store_present() | set(self.rx.written)

    def store_present(self) -> set[str]:
        return self.rx.store.present(self.study_uid)

    def missing(self) -> set[str]:
        return set(self.remote or {}) - self.have()


def _drain(st: _State, assoc, responses, what: str) -> _Outcome:
    """Read one C-GET/C-MOVE to its final response."""
    rx = st.rx
    for ds, ident in responses:
        code = _status(ds)
        if code is None:
            raise _lost(st.node, assoc, f"{what} cut after {len(set(rx.written))} of {rx.expected or '?'} instances "
                                        "(those are complete; retrieve again to fetch the rest)")
        if rx.cancel is not None and rx.cancel.cancelled:
            assoc.abort()
            raise Cancelled(st.node.describe(), f"cancelled after {len(set(rx.written))} of {rx.expected} instances "
                                                "(those are complete; retrieve again to fetch the rest)")
        counts = [int(getattr(ds, f"Number{k}Suboperations", 0) or 0) for k in ("OfRemaining", "OfCompleted",
                                                                                 "OfFailed", "OfWarning")]
        if code in _PENDING:
            if st.remote is None and sum(counts):
                rx.expected = max(rx.expected, sum(counts))  # the node's own count (no listing was done)
            continue
        if code == 0xFE00:
            raise Cancelled(st.node.describe(), f"{what} cancelled by the node")
        failed_uids = []
        if ident is not None and "FailedSOPInstanceUIDList" in ident:
            v = ident.FailedSOPInstanceUIDList
            failed_uids = [str(u) for u in (v if isinstance(v, (list, tuple)) or hasattr(v, "__iter__")
                                            and not isinstance(v, str) else [v]) if u]
        return _Outcome(code, counts[1], counts[2], failed_uids)
    raise _lost(st.node, assoc, f"{what} ended without a final status")


def _ident(level: str, study_uid: str, series: str = "", sops: list[str] | None = None):
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.QueryRetrieveLevel = level
    ds.StudyInstanceUID = study_uid
    if level in ("SERIES", "IMAGE"):
        ds.SeriesInstanceUID = series
    if level == "IMAGE":
        ds.SOPInstanceUID = sops[0] if sops and len(sops) == 1 else list(sops or [])  # a list: PS3.4 C.2.2.2.2
    return ds


def _requests(st: _State) -> list[tuple[object, list[str]]]:
    """(identifier, the UIDs it asks for) for what is missing; the study at once when nothing is here."""
    if st.remote is None:
        return [(_ident("STUDY", st.study_uid), [])]
    missing = st.missing()
    if missing == set(st.remote):
        return [(_ident("STUDY", st.study_uid), sorted(missing))]
    by_series: dict[str, list[str]] = {}
    for sop in sorted(missing):
        by_series.setdefault(st.remote[sop], []).append(sop)
    out = []
    for se, sops in by_series.items():
        if set(sops) == {s for s, x in st.remote.items() if x == se}:
            out.append((_ident("SERIES", st.study_uid, se), sops))
        elif st.no_list or len(sops) == 1:
            out += [(_ident("IMAGE", st.study_uid, se, [s]), [s]) for s in sops]
        else:
            out.append((_ident("IMAGE", st.study_uid, se, sops), sops))
    return out


def _ask(st: _State, assoc, send, ident, uids: list[str], what: str, family: str) -> None:
    """One C-GET/C-MOVE; falls back to one instance at a time when a list of UIDs was refused."""
    before = set(st.rx.written)
    out = _drain(st, assoc, send(ident), what)
    got = set(st.rx.written) - before
    if out.code in _DONE and not out.failed:
        return
    st.incomplete = True
    worded = retrieve_status(out.code)
    level = str(ident.QueryRetrieveLevel)
    is_list = level == "IMAGE" and len(uids) > 1
    if out.code == 0xA801 and not is_list:
        raise NetError(st.node.describe(), _move_destination_message(st))
    # pynetdicom's qrscp answers a list it cannot query with 0xA801 (its handler's failure lands where
    # the destination goes): a refused list is asked again one by one before anything is concluded
    if is_list and not got and out.code not in (*_DONE, 0xA702):  # 0xA702: sub-operations failed, not the list
        # e.g. pynetdicom's qrscp: 0xC413 for a multi-valued SOP Instance UID. Ask one by one.
        st.no_list = True
        st.notes.append(f"the archive refused a list of instance UIDs ({worded}): asked one instance at a time")
        for sop in uids:
            _ask(st, assoc, send, _ident("IMAGE", st.study_uid, str(ident.SeriesInstanceUID), [sop]), [sop], what,
                 family)
        return
    if what == "C-MOVE" and not st.rx.connections and not got and out.code in (*_DONE, 0xA702):
        # nothing reached our storage SCP: a destination problem, not a syntax one
        raise NetError(st.node.describe(), f"C-MOVE failed with status {retrieve_status(out.code, False)}; "
                                           f"the archive never connected to our "
                                           f"storage SCP (port {st.node.store_port}): check its move destination entry "
                                           f"for {st.node.calling_ae!r} (host and port) and that the port is reachable")
    if out.code in _DONE or out.code == 0xA702:
        # sub-operations failed: most often no accepted context in the instance's syntax; a pass
        # offering one syntax family at a time follows, unless every failure was ours (disk)
        failed = out.failed_uids or [u for u in uids if u not in got]
        ours = [u for u in failed if u in st.rx.errors] if failed else list(st.rx.errors)
        if len(ours) < max(len(failed), out.failed, 1):
            st.syntax_failed = True
        if out.code not in _DONE:
            st.notes.append(f"{what} {worded}")
        why = "the archive could not send it (its sub-operation failed: no transfer syntax we accepted for it"
        why += f", {worded})" if out.code not in _DONE else ")"
    elif level != "IMAGE":
        hint = ""
        if what == "C-MOVE" and not st.rx.connections:
            hint = (f"; the archive never connected to our storage SCP (port {st.node.store_port}): check that it "
                    f"has {st.node.calling_ae!r} as a move destination with this host and port")
        raise NetError(st.node.describe(), f"{what} failed with status {worded}{hint}")
    else:
        why = f"the archive refused it ({worded})"
    for sop in out.failed_uids or [u for u in uids if u not in got]:
        st.reasons[sop] = st.rx.errors.get(sop, why)


def _move_destination_message(st: _State) -> str:
    node = st.node
    if st.rx.connections:
        return (f"C-MOVE refused with status 0xA801 although the archive did connect to our storage SCP "
                f"(port {node.store_port}): it could not complete the transfer to {node.calling_ae!r}")
    return (f"C-MOVE refused with status 0xA801 (move destination unknown): the archive does not know our AE "
            f"title {node.calling_ae!r} as a move destination, or could not reach it (add {node.calling_ae!r} "
            f"with this host and port {node.store_port} to the archive)")


# ------------------------------------------------------------------- passes
def _get_contexts(family: tuple[str, ...] | None) -> list[tuple[str, tuple[str, ...]]]:
    if family is None:
        return get_storage_contexts()
    return [(c, family) for c in all_storage_classes()[:126]]


def _plan(st: _State, assoc) -> list:
    """List the study when needed (part of it is here, or a pass left instances missing)."""
    if st.remote is None and (st.present or st.syntax_failed):
        st.remote = list_instances(st.node, assoc, st.study_uid)
        if not st.remote:
            raise NetError(st.node.describe(), f"study {st.study_uid} not found on the node")
        st.rx.expected = len(st.missing())
        if st.rx.progress is not None:
            st.rx.progress(0, st.rx.expected)
        return _requests(st) if st.missing() else []
    if st.remote is None:
        # Nothing here yet: one study-level C-FIND gives the total for the progress bar (the
        # C-GET responses' counts arrive only after the first instance) and says early if unknown.
        rows = _find(st.node, assoc, _study_identifier(StudyQuery(study_uid=st.study_uid)), "C-FIND (study)")
        if not rows:
            raise NetError(st.node.describe(), f"study {st.study_uid} not found on the node")
        with contextlib.suppress(TypeError, ValueError, AttributeError):
            st.rx.expected = int(rows[0].NumberOfStudyRelatedInstances or 0)
        if st.rx.progress is not None:
            st.rx.progress(0, st.rx.expected)
    return _requests(st)


def _get_pass(st: _State, family: tuple[str, ...] | None, family_name: str) -> None:
    from pynetdicom import evt

    storage = _get_contexts(family)
    contexts = [(FIND_STUDY_ROOT, QR_SYNTAXES), (GET_STUDY_ROOT, QR_SYNTAXES), *storage]
    with _association(st.node, contexts, roles=get_roles(storage), handlers=[(evt.EVT_C_STORE, st.rx)]) as assoc:
        if not any(cx.abstract_syntax == GET_STUDY_ROOT for cx in assoc.accepted_contexts):
            raise NetError(st.node.describe(), "the node does not offer C-GET (Study Root); set the node to retrieve "
                                               "with C-MOVE")
        for ident, uids in _plan(st, assoc):
            _ask(st, assoc, lambda i, a=assoc: a.send_c_get(i, GET_STUDY_ROOT), ident, uids, "C-GET", family_name)


def _move_pass(st: _State, family: tuple[str, ...] | None, family_name: str) -> None:
    from pynetdicom import AE, evt

    node = st.node
    scp = AE(ae_title=node.calling_ae)
    for c, syntaxes in scp_contexts():
        scp.add_supported_context(c, list(family or syntaxes))
    scp.maximum_pdu_size = 0
    try:
        server = scp.start_server((node.store_bind, node.store_port), block=False,
                                  evt_handlers=[(evt.EVT_C_STORE, st.rx), (evt.EVT_CONN_OPEN, st.rx.connected)])
    except OSError as e:
        raise NetError(node.describe(), f"cannot listen on port {node.store_port} for C-MOVE ({e.strerror or e})") from None
    try:
        with _association(node, [(FIND_STUDY_ROOT, QR_SYNTAXES), (MOVE_STUDY_ROOT, QR_SYNTAXES)]) as assoc:
            for ident, uids in _plan(st, assoc):
                _ask(st, assoc, lambda i, a=assoc: a.send_c_move(i, node.calling_ae, MOVE_STUDY_ROOT), ident, uids,
                     "C-MOVE", family_name)
    finally:
        server.shutdown()


# ------------------------------------------------------------------ retrieve
def retrieve(node: DimseNode, study_uid: str, store: LocalStore, progress: Progress | None = None,
             cancel: CancelToken | None = None) -> RetrieveResult:
    """Fetch the instances of ``study_uid`` that ``store`` lacks (C-GET, or C-MOVE if the node says so).

    Raises
    ------
    NetError
        Connection refused/closed/timed out, association rejected, study unknown, C-MOVE
        destination unknown (0xA801). Instances the archive would not send are *not* an
        error here: they are counted in ``failed`` with their reasons in ``failures``.
    """
    study_uid = check_uid(study_uid, "Study Instance UID")
    t0 = time.perf_counter()
    res = RetrieveResult(study_uid, str(store.study_dir(study_uid)))
    present = store.present(study_uid)
    st = _State(node, study_uid, _Receiver(store, study_uid, progress, cancel), present)
    def run(fam, name):
        if name:
            st.tried.append(name)
        (_move_pass if node.retrieve == "move" else _get_pass)(st, fam, name)

    run(None, "")
    done_first = set(st.rx.written)
    if st.remote is None and st.syntax_failed:
        run(UNCOMPRESSED, "uncompressed")  # lists the study, then asks for what is missing
    if st.remote is None and st.incomplete:
        with _association(node, [(FIND_STUDY_ROOT, QR_SYNTAXES)]) as assoc:
            st.remote = list_instances(node, assoc, study_uid)
    for name, fam in RETRY_FAMILIES:
        if not st.syntax_failed or st.remote is None or not st.missing():
            break
        if name not in st.tried:
            run(fam, name)
    now = store.present(study_uid)
    res.fetched = len(set(st.rx.written))
    if st.remote is not None:
        res.total = len(st.remote)
        res.already_present = len(present & set(st.remote))
        missing = sorted(set(st.remote) - now)
        res.failed = len(missing)
        for sop in missing:
            why = st.reasons.get(sop) or st.rx.errors.get(sop) or "the archive listed it but did not send it"
            if st.tried and sop not in st.rx.errors:
                why += f"; offered every syntax we decode, then each family alone ({', '.join(st.tried)})"
            res.failures.append({"sop_instance_uid": sop, "reason": why})
    else:
        res.total = res.fetched
        if res.total == 0:
            raise NetError(node.describe(), f"study {study_uid} not found on the node (nothing to retrieve)")
    if set(st.rx.written) - done_first:
        res.warnings.append("some instances came only when offered one transfer syntax family at a time "
                            "(the archive picks one syntax per SOP class)")
    res.warnings.extend(dict.fromkeys(st.notes))
    res.seconds = round(time.perf_counter() - t0, 3)
    return res

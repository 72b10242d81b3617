"""DICOMweb with dicomweb-client: QIDO-RS search, WADO-RS retrieve, STOW-RS store.

Credentials live on the ``requests`` session (basic auth or an ``Authorization: Bearer``
header), never in the URL or the per-request headers dicomweb-client logs. TLS certificates
are verified unless the node turns it off.
"""

from __future__ import annotations

import io
import logging
import os
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
from cxrviewer.net.nodes import WebNode
from cxrviewer.net.store import LocalStore, StoreError, check_uid

log = logging.getLogger(__name__)
#: instances per STOW-RS request (one multipart body each)
STOW_BATCH = 8


def _client(node: WebNode):
    import requests
    from dicomweb_client.api import DICOMwebClient

    s = requests.Session()
    s.verify = node.ca_bundle or bool(node.verify_tls)
    if node.username:
        s.auth = (node.username, node.password)
    elif node.token:
        s.headers["Authorization"] = f"Bearer {node.token}"
    # Proxies and .netrc from the environment could add credentials we never show; the node
    # says everything we send.
    s.trust_env = False
    c = DICOMwebClient(url=node.url.rstrip("/"), session=s, timeout=float(node.timeout))
    c.set_http_retry_params(retry=False)
    return c


def _reason(node: WebNode, e: BaseException) -> NetError:
    """Turn a requests/dicomweb-client exception into a message naming the node and the reason."""
    import requests

    who = node.describe()
    if isinstance(e, requests.exceptions.SSLError):
        return NetError(who, "TLS certificate verification failed (the server's certificate is not trusted; "
                             "give the site CA file, or turn verification off only for a test server)")
    if isinstance(e, requests.exceptions.ConnectTimeout):
        return NetError(who, f"no answer within {node.timeout:g} s (connection timed out)")
    if isinstance(e, requests.exceptions.ReadTimeout):
        return NetError(who, f"no response within {node.timeout:g} s (timeout)")
    if isinstance(e, requests.exceptions.ConnectionError):
        text = str(e)
        if "refused" in text.lower():
            return NetError(who, "connection refused (the server is down, or the URL's host/port is wrong)")
        if "Name or service not known" in text or "Failed to resolve" in text:
            return NetError(who, "unknown host in the URL")
        return NetError(who, "the connection failed or was cut (server down or network error)")
    if isinstance(e, requests.exceptions.HTTPError):
        code = e.response.status_code if e.response is not None else 0
        if code == 401:
            return NetError(who, "HTTP 401: authentication required or wrong user/password/token")
        if code == 403:
            return NetError(who, "HTTP 403: this user may not do that")
        if code == 404:
            return NetError(who, "HTTP 404: not found (is the URL the DICOMweb root, e.g. …/dicom-web?)")
        return NetError(who, f"HTTP {code}: {e.response.reason if e.response is not None else e}")
    return NetError(who, f"{type(e).__name__}: {e}")


def _wrap(node: WebNode, fn, *a, **kw):
    import requests

    try:
        return fn(*a, **kw)
    except requests.exceptions.RequestException as e:
        raise _reason(node, e) from None


def _get(js: dict, kw: str):
    from pydicom.datadict import tag_for_keyword

    tag = tag_for_keyword(kw)
    if tag is None:
        return None
    el = js.get(f"{tag:08X}")
    if not el:
        return None
    vals = el.get("Value")
    if not vals:
        return ""
    if el.get("vr") == "PN":
        v = vals[0]
        return v.get("Alphabetic", "") if isinstance(v, dict) else str(v)
    return vals if kw == "ModalitiesInStudy" else vals[0]


def _qido_studies(node: WebNode, c, params: dict) -> list[dict]:
    """QIDO-RS ``GET {root}/studies?…`` on the client's session.

    Wildcards (``*``, ``?``) go into the query unencoded: Orthanc 1.10's DICOMweb plugin does
    not percent-decode the query, so ``%2A`` would match nothing, while servers that do decode
    read the raw characters the same way. For the same reason the person-name separator ``^``
    (which urllib3 always encodes) is sent as the one-character wildcard ``?``.
    """
    from urllib.parse import quote

    import requests

    parts = []
    for k, v in params.items():
        for item in v if isinstance(v, (list, tuple)) else [v]:
            text = str(item).replace("^", "?") if k == "PatientName" else str(item)
            parts.append(f"{k}={quote(text, safe='*?,-')}")
    url = f"{node.url.rstrip('/')}/studies" + ("?" + "&".join(parts) if parts else "")
    s = c._session
    try:
        r = s.get(url, headers={"Accept": "application/dicom+json"}, timeout=float(node.timeout))
        if r.status_code == 204:
            return []
        r.raise_for_status()
        return r.json() if r.content else []
    except requests.exceptions.RequestException as e:
        raise _reason(node, e) from None
    except ValueError:
        raise NetError(node.describe(), "the QIDO-RS answer is not JSON (is the URL the DICOMweb root?)") from None


def echo(node: WebNode) -> dict:
    """A QIDO-RS search for one study: proves the URL, the credentials and TLS."""
    t0 = time.perf_counter()
    _qido_studies(node, _client(node), {"limit": 1})
    return {"ok": True, "ms": round((time.perf_counter() - t0) * 1000, 1)}


def find(node: WebNode, q: StudyQuery) -> list[dict]:
    """QIDO-RS study search with the same filters and result rows as the DIMSE C-FIND."""
    filters = {"PatientName": q.patient_name, "PatientID": q.patient_id, "StudyDate": q.study_date,
               "ModalitiesInStudy": q.modality, "AccessionNumber": q.accession, "StudyInstanceUID": q.study_uid}
    params: dict = {k: v for k, v in filters.items() if v}
    params["includefield"] = [kw for _k, kw in STUDY_FIELDS]
    if q.limit:
        params["limit"] = q.limit
    res = _qido_studies(node, _client(node), params)
    rows = [study_row(lambda kw, js=js: _get(js, kw)) for js in res]
    rows.sort(key=lambda r: (r["study_date"], r["study_time"]), reverse=True)
    return rows


def list_instances(node: WebNode, c, study_uid: str) -> dict[str, str]:
    res = _wrap(node, c.search_for_instances, study_instance_uid=study_uid,
                fields=["SeriesInstanceUID", "SOPInstanceUID"])
    out = {}
    for js in res:
        sop, se = _get(js, "SOPInstanceUID"), _get(js, "SeriesInstanceUID")
        if sop and se:
            out[str(sop)] = str(se)
    return out


def _encode(ds) -> bytes:
    from pydicom.filewriter import dcmwrite

    buf = io.BytesIO()
    dcmwrite(buf, ds, enforce_file_format=True)
    return buf.getvalue()


def retrieve(node: WebNode, study_uid: str, store: LocalStore, progress: Progress | None = None,
             cancel: CancelToken | None = None) -> RetrieveResult:
    """WADO-RS, one request per missing instance, in its stored transfer syntax (``transfer-syntax=*``)."""
    study_uid = check_uid(study_uid, "Study Instance UID")
    t0 = time.perf_counter()
    res = RetrieveResult(study_uid, str(store.study_dir(study_uid)))
    c = _client(node)
    remote = list_instances(node, c, study_uid)
    if not remote:
        raise NetError(node.describe(), f"study {study_uid} not found on the server")
    present = store.present(study_uid)
    missing = sorted(set(remote) - present)
    res.total, res.already_present = len(remote), len(present & set(remote))
    if progress is not None:
        progress(0, len(missing))
    for i, sop in enumerate(missing, 1):
        if cancel is not None and cancel.cancelled:
            raise Cancelled(node.describe(), f"cancelled after {res.fetched} of {len(missing)} instances "
                                             "(those are complete; retrieve again to fetch the rest)")
        try:
            ds = _wrap(node, c.retrieve_instance, study_uid, remote[sop], sop,
                       media_types=(("application/dicom", "*"),))
        except NetError as e:
            raise NetError(node.describe(), f"WADO-RS cut after {res.fetched} of {len(missing)} instances: "
                                            f"{e.reason.split(': ', 1)[-1]}") from None
        try:
            store.write(study_uid, sop, _encode(ds))
        except (StoreError, ValueError) as e:
            res.warnings.append(f"{sop}: {e}")
            continue
        res.fetched += 1
        if progress is not None:
            progress(i, len(missing))
    res.failed = len(set(remote) - store.present(study_uid))
    res.seconds = round(time.perf_counter() - t0, 3)
    return res


def send(node: WebNode, paths: Iterable[str | os.PathLike], progress: Progress | None = None,
         cancel: CancelToken | None = None) -> SendResult:
    """STOW-RS in batches of :data:`STOW_BATCH`; instances the server refuses are listed."""
    from cxrviewer.net.files import dicom_files, read_for_send

    t0 = time.perf_counter()
    res = SendResult()
    items = []
    for p in dicom_files(paths):
        ds, why = read_for_send(p)
        if ds is None:
            res.failed.append((str(p), why))
        else:
            items.append((p, ds))
    c = _client(node)
    for start in range(0, len(items), STOW_BATCH):
        if cancel is not None and cancel.cancelled:
            raise Cancelled(node.describe(), f"send cancelled after {res.sent} of {len(items)} files")
        batch = items[start: start + STOW_BATCH]
        reply = _wrap(node, c.store_instances, [ds for _p, ds in batch])
        failed = {str(r.ReferencedSOPInstanceUID): int(getattr(r, "FailureReason", 0) or 0)
                  for r in (reply.get("FailedSOPSequence") or []) if "ReferencedSOPInstanceUID" in r}
        for p, ds in batch:
            uid = str(ds.SOPInstanceUID)
            if uid in failed:
                res.failed.append((str(p), f"refused by the server (failure reason 0x{failed[uid]:04X})"))
            else:
                res.sent += 1
                res.sop_instance_uids.append(uid)
        if progress is not None:
            progress(min(start + STOW_BATCH, len(items)), len(items))
    res.seconds = round(time.perf_counter() - t0, 3)
    return res

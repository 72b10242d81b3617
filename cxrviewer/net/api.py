"""One entry point per operation, whatever the node's kind (DIMSE or DICOMweb).

The CLI and the Query/Retrieve dialog call these; each opens its connection(s) for the call
only, because the user asked (echo, find, retrieve, send).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable

from cxrviewer.net.common import (
    CancelToken,
    FindResult,
    Progress,
    RetrieveResult,
    SendResult,
    StudyQuery,
)
from cxrviewer.net.nodes import DimseNode, Node
from cxrviewer.net.store import LocalStore

log = logging.getLogger(__name__)


def _impl(node: Node):
    if isinstance(node, DimseNode):
        from cxrviewer.net import dimse

        return dimse
    from cxrviewer.net import web

    return web


def echo(node: Node) -> dict:
    """C-ECHO, or a one-study QIDO-RS search for a DICOMweb node. ``{"ok": True, "ms": …}``."""
    log.info("echo %s", node.describe())
    return _impl(node).echo(node)


def find(node: Node, query: StudyQuery) -> FindResult:
    """Study-level C-FIND or QIDO-RS; rows keyed as :data:`cxrviewer.net.common.STUDY_FIELDS`."""
    from cxrviewer.core import phi

    # Query values and the answers are patient identifiers: registered so the log filter scrubs
    # them from every record (urllib3 logs QIDO query strings at debug level).
    phi.register(query.patient_name.replace("*", " ").replace("?", " "), query.patient_id, query.accession)
    log.info("find on %s", node.describe())
    rows = _impl(node).find(node, query)
    if not isinstance(rows, FindResult):
        rows = FindResult(rows)
    for note in rows.notes:
        log.info("find on %s: %s", node.describe(), note)
    for r in rows:
        phi.register(r["patient_name"], r["patient_id"], r["birth_date"], r["accession"])
    return rows


def retrieve(node: Node, study_uid: str, store: LocalStore | None = None, progress: Progress | None = None,
             cancel: CancelToken | None = None) -> RetrieveResult:
    """Fetch what the local store lacks of a study (C-GET/C-MOVE or WADO-RS)."""
    store = store or LocalStore()
    log.info("retrieve study %s from %s into %s", study_uid, node.describe(), store.root)
    res = _impl(node).retrieve(node, study_uid, store, progress, cancel)
    log.info("retrieved %d, already present %d, failed %d in %.2f s", res.fetched, res.already_present,
             res.failed, res.seconds)
    return res


def send(node: Node, paths: Iterable[str | os.PathLike], progress: Progress | None = None,
         cancel: CancelToken | None = None) -> SendResult:
    """C-STORE or STOW-RS of files (folders are walked)."""
    paths = list(paths)
    log.info("send %d path(s) to %s", len(paths), node.describe())
    return _impl(node).send(node, paths, progress, cancel)

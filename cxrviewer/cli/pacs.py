"""``cxrviewer pacs echo|find|get|send|nodes``: talk to a PACS (DIMSE) or a DICOMweb server.

A node is given as ``--host H --port P --called-ae AE [--calling-ae AE]`` (DIMSE), ``--url URL``
(DICOMweb) or ``--node NAME`` (from the node list the viewer's *Query/Retrieve* dialog edits).
Exit 0 on success; 2 with one line naming the node and the reason on failure. Passwords and
tokens are never taken on the command line (other users can read it in ``ps``): name the
environment variable that holds them.
"""

from __future__ import annotations

import argparse
import os
import sys

PASSWORD_ENV = "CXRVIEWER_PACS_PASSWORD"
TOKEN_ENV = "CXRVIEWER_PACS_TOKEN"


def _node_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("node (one of --node, --host/--port/--called-ae, --url)")
    g.add_argument("--node", metavar="NAME", help="a node saved in the settings (cxrviewer pacs nodes list)")
    g.add_argument("--host", help="DIMSE: host name or address of the PACS")
    g.add_argument("--port", type=int, help="DIMSE: its port")
    g.add_argument("--called-ae", metavar="AE", help="DIMSE: its AE title")
    g.add_argument("--calling-ae", metavar="AE", help="DIMSE: our AE title (default: the settings' own AE title, else CXRVIEWER)")
    g.add_argument("--move", action="store_true", help="DIMSE: retrieve with C-MOVE to our own storage SCP instead of C-GET")
    g.add_argument("--store-port", type=int, default=None, help="DIMSE: port our storage SCP listens on for C-MOVE (default 11112)")
    g.add_argument("--url", metavar="DICOMWEB_BASE_URL", help="DICOMweb root, e.g. https://pacs.example/dicom-web")
    g.add_argument("--user", default="", help=f"DICOMweb: HTTP basic user (password from ${PASSWORD_ENV} or --password-env)")
    g.add_argument("--password-env", metavar="VAR", default=PASSWORD_ENV, help="environment variable holding the password")
    g.add_argument("--token-env", metavar="VAR", default=TOKEN_ENV, help="environment variable holding a bearer token")
    g.add_argument("--insecure", action="store_true", help="DICOMweb: do not verify TLS certificates (test servers only)")
    g.add_argument("--ca-bundle", metavar="FILE", default="", help="DICOMweb: verify TLS against this CA file")
    g.add_argument("--timeout", type=float, default=None, help="seconds to wait for a connection or a response (default 30)")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")


def add_parser(sub) -> None:
    p = sub.add_parser("pacs", help="echo, query, retrieve from and send to a PACS or DICOMweb server")
    psub = p.add_subparsers(dest="pacs_command", metavar="ACTION", required=True)

    e = psub.add_parser("echo", help="test the connection (C-ECHO, or a QIDO-RS search for DICOMweb)")
    _node_args(e)
    e.set_defaults(func=run_echo)

    f = psub.add_parser("find", help="study-level query (C-FIND or QIDO-RS); * and ? are wildcards")
    _node_args(f)
    f.add_argument("--patient-id", default="", metavar="ID")
    f.add_argument("--patient-name", default="", metavar="PAT", help="e.g. 'DOE*'")
    f.add_argument("--study-date", default="", metavar="RANGE", help="YYYYMMDD or YYYYMMDD-YYYYMMDD (either end may be open)")
    f.add_argument("--modality", default="", metavar="M", help="e.g. CR, DX")
    f.add_argument("--accession", default="", metavar="ACC")
    f.add_argument("--study-uid", default="", metavar="UID")
    f.add_argument("--limit", type=int, default=0, help="at most this many studies")
    f.set_defaults(func=run_find)

    g = psub.add_parser("get", help="retrieve a study (only the instances not yet in --out)")
    _node_args(g)
    g.add_argument("study_uid", metavar="STUDY_UID")
    g.add_argument("--out", metavar="DIR", default=None,
                   help="store folder (files go to DIR/STUDY_UID/SOP_UID.dcm; default: the viewer's local store)")
    g.set_defaults(func=run_get)

    s = psub.add_parser("send", help="send DICOM files or folders (C-STORE or STOW-RS)")
    _node_args(s)
    s.add_argument("paths", nargs="+", metavar="FILE_OR_DIR")
    s.set_defaults(func=run_send)

    n = psub.add_parser("nodes", help="list, add or remove the saved nodes")
    nsub = n.add_subparsers(dest="nodes_command", metavar="NODES_ACTION", required=True)
    nl = nsub.add_parser("list", help="the saved nodes (no credentials shown)")
    nl.add_argument("--json", action="store_true")
    nl.set_defaults(func=run_nodes_list)
    na = nsub.add_parser("add", help="save a node (replaces one of the same name); credentials from the environment")
    na.add_argument("name")
    _node_args(na)
    na.set_defaults(func=run_nodes_add)
    nr = nsub.add_parser("remove", help="forget a node")
    nr.add_argument("name")
    nr.set_defaults(func=run_nodes_remove)
    nx = nsub.add_parser("local-ae", help="set our own AE title")
    nx.add_argument("ae")
    nx.set_defaults(func=run_local_ae)


# ------------------------------------------------------------------ helpers
def _book():
    from cxrviewer.net.nodes import NodeBook

    return NodeBook.load()


def _node_from_args(args: argparse.Namespace, name: str | None = None):
    """The node the flags describe (raises NodeError with the reason)."""
    from dataclasses import replace

    from cxrviewer.net.nodes import DimseNode, NodeError, WebNode

    given = [x for x in ("node", "host", "url") if getattr(args, x, None)]
    if len(given) != 1:
        raise NodeError(None, "give exactly one of --node NAME, --host/--port/--called-ae, or --url")
    book = _book()
    if args.node:
        node = book.with_local_ae(book.get(args.node))
        if args.timeout:
            node = replace(node, timeout=args.timeout)
        if isinstance(node, DimseNode) and args.calling_ae:
            node = replace(node, calling_ae=args.calling_ae)
        return node
    timeout = args.timeout or 30.0
    if args.host:
        if not args.port or not args.called_ae:
            raise NodeError(None, "--host needs --port and --called-ae")
        return DimseNode(name or "", args.host, args.port, args.called_ae,
                         calling_ae=args.calling_ae or book.local_ae, retrieve="move" if args.move else "get",
                         store_port=args.store_port or 11112, timeout=timeout)
    password = token = ""
    if args.user:
        # an unset variable is an error, never an empty password sent silently
        if args.password_env not in os.environ:
            raise NodeError(None, f"--user {args.user!r} needs the password in ${args.password_env}, which is not set "
                                  f"(name another variable with --password-env)")
        password = os.environ[args.password_env]
    elif args.token_env != TOKEN_ENV and args.token_env not in os.environ:
        raise NodeError(None, f"--token-env names ${args.token_env}, which is not set")
    else:
        token = os.environ.get(args.token_env, "")
    return WebNode(name or "", args.url, username=args.user, password=password, token=token,
                   verify_tls=not args.insecure, ca_bundle=args.ca_bundle, timeout=timeout)


def _run(args: argparse.Namespace, op):
    """Build the node, run ``op(node)``; map our errors to one line and exit 2."""
    from cxrviewer.cli._common import fail
    from cxrviewer.core.errors import CxrError

    try:
        node = _node_from_args(args)
    except CxrError as e:
        return None, fail(str(e))
    try:
        return node, op(node)
    except ValueError as e:  # bad query values (date range)
        return node, fail(f"{node.describe()}: {e}")
    except CxrError as e:
        return node, fail(str(e) if str(e).startswith(node.describe()) else f"{node.describe()}: {e}")


def _emit(args, obj: dict, text: str) -> None:
    from cxrviewer.cli._common import print_json

    if args.json:
        print_json(obj)
    else:
        print(text)


# ------------------------------------------------------------------ actions
def run_echo(args: argparse.Namespace) -> int:
    from cxrviewer.net import api

    node, out = _run(args, api.echo)
    if not isinstance(out, dict):
        return out
    _emit(args, {"node": node.describe(), **out}, f"{node.describe()}: OK ({out['ms']} ms)")
    return 0


def run_find(args: argparse.Namespace) -> int:
    from cxrviewer.net import api
    from cxrviewer.net.common import StudyQuery

    def op(node):
        q = StudyQuery(patient_id=args.patient_id, patient_name=args.patient_name, study_date=args.study_date,
                       modality=args.modality, accession=args.accession, study_uid=args.study_uid, limit=args.limit)
        return api.find(node, q)

    node, rows = _run(args, op)
    if not isinstance(rows, list):
        return rows
    lines = [f"{r['study_date']} {r['patient_name']} [{r['patient_id']}] {'/'.join(r['modalities'])} "
             f"{r['description']} ({r['n_instances']} images) {r['study_uid']}" for r in rows]
    notes = list(getattr(rows, "notes", []))
    _emit(args, {"node": node.describe(), "count": len(rows), "studies": list(rows), "notes": notes},
          "\n".join(lines + [f"{len(rows)} studies"] + [f"note: {n}" for n in notes]))
    return 0


def run_get(args: argparse.Namespace) -> int:
    from cxrviewer.cli._common import TtyProgress, fail
    from cxrviewer.net import api
    from cxrviewer.net.store import LocalStore

    store = LocalStore(args.out) if args.out else LocalStore()
    node, res = _run(args, lambda n: api.retrieve(n, args.study_uid, store, progress=TtyProgress("retrieving")))
    if isinstance(res, int):
        return res
    _emit(args, {"node": node.describe(), **res.to_dict()},
          "\n".join([f"{res.fetched} retrieved, {res.already_present} already there, {res.failed} failed → {res.folder}"]
                    + [f"note: {w}" for w in res.warnings]))
    if res.failed:
        first = res.failures[0] if res.failures else None
        why = f"; first: {first['sop_instance_uid']}: {first['reason']}" if first else \
            (f" ({res.warnings[0]})" if res.warnings else "")
        return fail(f"{node.describe()}: {res.failed} of {res.total} instances not retrieved{why}")
    return 0


def run_send(args: argparse.Namespace) -> int:
    from cxrviewer.cli._common import TtyProgress, fail
    from cxrviewer.net import api

    missing = [p for p in args.paths if not os.path.exists(p)]
    if missing:
        return fail(f"{missing[0]}: no such file or folder")
    node, res = _run(args, lambda n: api.send(n, args.paths, progress=TtyProgress("sending")))
    if isinstance(res, int):
        return res
    _emit(args, {"node": node.describe(), **res.to_dict()}, f"{res.sent} sent, {len(res.failed)} failed")
    if res.failed:
        p, why = res.failed[0]
        return fail(f"{node.describe()}: {len(res.failed)} file(s) not sent; first: {p}: {why}")
    if not res.sent:
        return fail(f"{node.describe()}: nothing to send")
    return 0


def run_nodes_list(args: argparse.Namespace) -> int:
    from cxrviewer.cli._common import fail, print_json
    from cxrviewer.core.errors import CxrError

    try:
        book = _book()
    except CxrError as e:
        return fail(str(e))
    rows = []
    for n in book.nodes.values():
        d = {"name": n.name, "kind": n.kind, "address": n.describe()}
        if n.kind == "dicomweb":
            d["auth"] = "basic" if n.username else ("bearer" if n.token else "none")
            d["verify_tls"] = n.verify_tls
        else:
            d["calling_ae"] = n.calling_ae
            d["retrieve"] = n.retrieve
        rows.append(d)
    if args.json:
        print_json({"local_ae": book.local_ae, "nodes": rows, "file": str(book.path)})
    else:
        print(f"our AE title: {book.local_ae}  ({book.path})")
        for d in rows:
            print(f"  {d['name']}: {d['address']} [{d['kind']}]")
    return 0


def run_nodes_add(args: argparse.Namespace) -> int:
    from cxrviewer.cli._common import fail
    from cxrviewer.core.errors import CxrError

    try:
        book = _book()
        if args.node:
            return fail("nodes add takes --host/--port/--called-ae or --url, not --node")
        book.put(_node_from_args(args, name=args.name))
        path = book.save()
    except CxrError as e:
        return fail(str(e))
    print(f"saved node {args.name!r} in {path}", file=sys.stderr)
    return 0


def run_nodes_remove(args: argparse.Namespace) -> int:
    from cxrviewer.cli._common import fail
    from cxrviewer.core.errors import CxrError

    try:
        book = _book()
        book.get(args.name)
        book.remove(args.name)
        book.save()
    except CxrError as e:
        return fail(str(e))
    return 0


def run_local_ae(args: argparse.Namespace) -> int:
    from cxrviewer.cli._common import fail
    from cxrviewer.core.errors import CxrError
    from cxrviewer.net.nodes import check_ae_title

    try:
        book = _book()
        book.local_ae = check_ae_title(args.ae, "our own AE title")
        book.save()
    except CxrError as e:
        return fail(str(e))
    return 0

"""Remote nodes (PACS over DIMSE, DICOMweb servers) and the file that keeps them.

The nodes live in ``pacs_nodes.json`` in the user data dir, beside the viewer's settings, so
that the CLI (no Qt) and the viewer read the same list. The file holds credentials, so it is
written atomically with mode 0600 (readable by the user only). Credentials never appear in
``repr``/``str`` of a node, in :func:`describe`, or in any log line.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from urllib.parse import urlsplit

from cxrviewer.core.errors import CxrError

#: our own AE title when the user has not set one
DEFAULT_LOCAL_AE = "CXRVIEWER"
NODES_FILE = "pacs_nodes.json"
_AE_RE = re.compile(r"^[\x20-\x7e]{1,16}$")


class NodeError(CxrError):
    """A node description that cannot be used (bad AE title, port, URL)."""


def check_ae_title(ae: str, what: str = "AE title") -> str:
    """Return ``ae`` stripped, or raise :class:`NodeError` (PS3.5: 1-16 printable chars, no backslash)."""
    ae = (ae or "").strip()
    if not ae or not _AE_RE.match(ae) or "\\" in ae:
        raise NodeError(None, f"{what} {ae!r} is not valid (1-16 printable ASCII characters, no backslash)")
    return ae


@dataclass(frozen=True)
class DimseNode:
    """A DICOM node reached over DIMSE (C-ECHO, C-FIND, C-GET/C-MOVE, C-STORE).

    Parameters
    ----------
    name
        The user's name for it (``--node NAME``).
    host, port, called_ae
        Where it listens and its AE title.
    calling_ae
        Our AE title for this node (the PACS may only know us under it).
    retrieve
        ``"get"`` (C-GET on the same association, no inbound port) or ``"move"`` (C-MOVE to our
        own storage SCP, for PACS that do not offer C-GET).
    store_port
        The port our storage SCP listens on during a C-MOVE (the PACS must know it).
    timeout
        Seconds to wait for the connection, the association and each response.
    """

    name: str
    host: str
    port: int
    called_ae: str
    calling_ae: str = DEFAULT_LOCAL_AE
    retrieve: str = "get"
    store_port: int = 11112
    store_bind: str = "0.0.0.0"
    timeout: float = 30.0
    kind: str = field(default="dimse", init=False)

    def __post_init__(self) -> None:
        check_ae_title(self.called_ae, f"node {self.name!r}: called AE title")
        check_ae_title(self.calling_ae, f"node {self.name!r}: calling AE title")
        if not self.host:
            raise NodeError(None, f"node {self.name!r}: no host")
        for what, p in (("port", self.port), ("storage SCP port", self.store_port)):
            if not isinstance(p, int) or not 0 < p < 65536:
                raise NodeError(None, f"node {self.name!r}: {what} {p!r} is not 1-65535")
        if self.retrieve not in ("get", "move"):
            raise NodeError(None, f"node {self.name!r}: retrieve must be 'get' or 'move', not {self.retrieve!r}")

    def describe(self) -> str:
        label = f"{self.called_ae}@{self.host}:{self.port}"
        return label if self.name in ("", label) else f"{self.name} ({label})"


@dataclass(frozen=True)
class WebNode:
    """A DICOMweb server (QIDO-RS, WADO-RS, STOW-RS).

    ``username``/``password`` (HTTP basic) or ``token`` (bearer) are optional; neither shows in
    ``repr``. TLS certificates are verified unless ``verify_tls`` is False; ``ca_bundle`` names a
    site CA file to verify against instead of the system store.
    """

    name: str
    url: str
    username: str = ""
    password: str = field(default="", repr=False)
    token: str = field(default="", repr=False)
    verify_tls: bool = True
    ca_bundle: str = ""
    timeout: float = 30.0
    kind: str = field(default="dicomweb", init=False)

    def __post_init__(self) -> None:
        parts = urlsplit(self.url or "")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise NodeError(None, f"node {self.name!r}: {_safe_url(self.url)!r} is not an http(s) URL")
        if parts.username or parts.password:
            # A password in the URL would end up in every request log line.
            raise NodeError(None, f"node {self.name!r}: put credentials in the user/password fields, not in the URL")
        if self.password and self.token:
            raise NodeError(None, f"node {self.name!r}: give a password or a bearer token, not both")

    def describe(self) -> str:
        return self.url if self.name in ("", self.url) else f"{self.name} ({self.url})"


Node = DimseNode | WebNode


def _safe_url(url: str) -> str:
    """``url`` with any ``user:password@`` removed (for messages)."""
    try:
        p = urlsplit(url or "")
    except ValueError:
        return "<unparseable URL>"
    if p.username or p.password:
        netloc = p.hostname or ""
        if p.port:
            netloc += f":{p.port}"
        p = p._replace(netloc=netloc)
    return p.geturl()


def describe(node: Node) -> str:
    """How messages name a node: its name and address, never its credentials."""
    return node.describe()


def node_to_dict(node: Node) -> dict:
    d = asdict(node)
    return d


def node_from_dict(d: dict) -> Node:
    """Build a node from its stored dict (unknown keys are ignored, so old files still load)."""
    kind = d.get("kind", "dimse")
    cls = WebNode if kind == "dicomweb" else DimseNode
    names = {f.name for f in fields(cls) if f.init}
    kw = {k: v for k, v in d.items() if k in names}
    for k in ("port", "store_port"):
        if k in kw:
            with contextlib.suppress(TypeError, ValueError):
                kw[k] = int(kw[k])
    if "timeout" in kw:
        with contextlib.suppress(TypeError, ValueError):
            kw["timeout"] = float(kw["timeout"])
    return cls(**kw)


def nodes_path() -> Path:
    from cxrviewer.paths import user_data_dir

    return user_data_dir() / NODES_FILE


@dataclass
class NodeBook:
    """The user's nodes and our own AE title, loaded from and saved to :func:`nodes_path`."""

    nodes: dict[str, Node] = field(default_factory=dict)
    local_ae: str = DEFAULT_LOCAL_AE
    path: Path | None = None

    @classmethod
    def load(cls, path: str | os.PathLike | None = None) -> NodeBook:
        """Read the file; a missing file is an empty book. A broken one raises :class:`NodeError`."""
        p = Path(path) if path is not None else nodes_path()
        if not p.exists():
            return cls(path=p)
        try:
            raw = json.loads(p.read_text(encoding="utf-8"))
            nodes = {}
            for d in raw.get("nodes", []):
                n = node_from_dict(d)
                nodes[n.name] = n
            local = check_ae_title(raw.get("local_ae", DEFAULT_LOCAL_AE), "our own AE title")
        except (OSError, ValueError, TypeError, AttributeError) as e:
            raise NodeError(p, f"cannot read the PACS node list: {e}") from None
        return cls(nodes=nodes, local_ae=local, path=p)

    def save(self) -> Path:
        """Write atomically with mode 0600 (the file holds passwords and tokens)."""
        from cxrviewer.atomic import write_text

        p = self.path or nodes_path()
        p.parent.mkdir(parents=True, exist_ok=True)
        # atomic_path gives the new file the mode the old one had: create it 0600 first so the
        # credentials are never readable by others, not even for the instant of the rename.
        if not p.exists():
            os.close(os.open(p, os.O_WRONLY | os.O_CREAT, 0o600))
        os.chmod(p, 0o600)
        data = {"local_ae": self.local_ae, "nodes": [node_to_dict(n) for n in self.nodes.values()]}
        write_text(p, json.dumps(data, indent=2) + "\n")
        os.chmod(p, 0o600)
        self.path = p
        return p

    def get(self, name: str) -> Node:
        try:
            return self.nodes[name]
        except KeyError:
            known = ", ".join(sorted(self.nodes)) or "none are configured"
            raise NodeError(None, f"no PACS node named {name!r} (known: {known})") from None

    def put(self, node: Node) -> None:
        self.nodes[node.name] = node

    def remove(self, name: str) -> None:
        self.nodes.pop(name, None)

    def with_local_ae(self, node: Node) -> Node:
        """A DIMSE node still carrying the default calling AE takes the book's own AE title."""
        if isinstance(node, DimseNode) and node.calling_ae == DEFAULT_LOCAL_AE and self.local_ae != DEFAULT_LOCAL_AE:
            return replace(node, calling_ae=self.local_ae)
        return node

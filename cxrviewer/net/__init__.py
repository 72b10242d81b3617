"""PACS and DICOMweb, Qt-free: remote nodes, echo, query, retrieve and send.

Nothing here opens a socket at import time or on its own: every connection starts from an
explicit call (:func:`cxrviewer.net.api.echo`, ``find``, ``retrieve``, ``send``) made because the
user asked. DIMSE goes through pynetdicom, DICOMweb through dicomweb-client; both are imported
lazily, so ``import cxrviewer.net`` stays cheap.

Modules
-------
nodes
    Remote node descriptions (DIMSE, DICOMweb) and the 0600 file that keeps them.
store
    The local store that retrieved instances land in, one atomic file per instance.
dimse, web
    The two transports. ``api`` dispatches on the node's kind.
"""

"""PACS from the viewer: query/retrieve, send, the node editor."""

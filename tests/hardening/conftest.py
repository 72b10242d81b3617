"""Fixtures shared by the hardening tests."""

from __future__ import annotations

import socket

import pytest


@pytest.fixture()
def no_network(monkeypatch):
    """Make every socket creation and name lookup fail; returns the list of attempts."""
    calls: list[str] = []

    def refuse(name):
        def f(*a, **kw):
            calls.append(name)
            raise OSError(f"network disabled in this test ({name})")

        return f

    class NoSocket(socket.socket):
        def __init__(self, *a, **kw):
            calls.append("socket.socket")
            raise OSError("network disabled in this test (socket.socket)")

    monkeypatch.setattr(socket, "socket", NoSocket)
    for name in ("create_connection", "getaddrinfo", "gethostbyname", "socketpair"):
        monkeypatch.setattr(socket, name, refuse(name))
    return calls

"""``cxrviewer pacs …`` against a real Orthanc: JSON on stdout, exit 0; exit 2 with one line naming the node."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

RG1_STUDY = "1.3.6.1.4.1.5962.1.2.9.20040826185059.5457"


def _cli(*args, env_extra=None, data_dir=None):
    env = dict(os.environ)
    if data_dir is not None:
        env["CXRVIEWER_DATA_DIR"] = str(data_dir)
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "cxrviewer", "pacs", *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=120)


def test_cli_echo_send_find_get_through_a_saved_node(orthanc, rg1_unci, tmp_path):
    dimse = ["--host", "127.0.0.1", "--port", orthanc.dicom_port, "--called-ae", "ORTHANC"]
    r = _cli("echo", *dimse, "--json", data_dir=tmp_path / "d")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["ok"] is True
    r = _cli("nodes", "add", "main", *dimse, "--calling-ae", "CXRCLI", data_dir=tmp_path / "d")
    assert r.returncode == 0, r.stderr
    r = _cli("send", rg1_unci, "--node", "main", "--json", data_dir=tmp_path / "d")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["sent"] == 1
    r = _cli("find", "--node", "main", "--patient-name", "Compressed*", "--study-date", "20040826", "--modality", "CR",
             "--json", data_dir=tmp_path / "d")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["node"] == f"main (ORTHANC@127.0.0.1:{orthanc.dicom_port})"
    assert RG1_STUDY in [s["study_uid"] for s in out["studies"]]
    r = _cli("get", RG1_STUDY, "--node", "main", "--out", tmp_path / "out", "--json", data_dir=tmp_path / "d")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got["fetched"] >= 1 and got["failed"] == 0
    assert len(list((tmp_path / "out" / RG1_STUDY).glob("*.dcm"))) == got["total"]
    r = _cli("get", RG1_STUDY, "--node", "main", "--out", tmp_path / "out", "--json", data_dir=tmp_path / "d")
    assert json.loads(r.stdout)["fetched"] == 0  # everything is already there


def test_cli_dicomweb_with_password_from_the_environment(orthanc, web_node, rg1_unci, tmp_path):
    base = ["--url", web_node.url, "--user", web_node.username]
    r = _cli("send", rg1_unci, *base, "--json", env_extra={"CXRVIEWER_PACS_PASSWORD": web_node.password})
    assert r.returncode == 0, r.stderr
    r = _cli("find", *base, "--patient-id", "9RG1", "--json", env_extra={"CXRVIEWER_PACS_PASSWORD": web_node.password})
    assert r.returncode == 0 and json.loads(r.stdout)["studies"][0]["study_uid"] == RG1_STUDY
    r = _cli("find", *base, "--json", env_extra={"CXRVIEWER_PACS_PASSWORD": "Bad-Pw-81"})
    assert r.returncode == 2 and r.stdout == ""
    line = r.stderr.strip()
    assert "\n" not in line and web_node.url in line and "401" in line and "Bad-Pw-81" not in line


@pytest.mark.parametrize("case", ["down", "wrong-ae", "bad-args", "unknown-node"])
def test_cli_failures_are_one_line_naming_the_node(orthanc, tmp_path, case):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    args = {
        "down": ["echo", "--host", "127.0.0.1", "--port", dead, "--called-ae", "PACS"],
        "wrong-ae": ["echo", "--host", "127.0.0.1", "--port", orthanc.dicom_port, "--called-ae", "WRONGAE"],
        "bad-args": ["echo", "--host", "127.0.0.1", "--called-ae", "PACS"],
        "unknown-node": ["echo", "--node", "nowhere"],
    }[case]
    r = _cli(*args, "--json", data_dir=tmp_path)
    assert r.returncode == 2 and r.stdout == ""
    line = r.stderr.strip()
    assert line.startswith("cxrviewer: error: ") and "\n" not in line
    expect = {"down": f"PACS@127.0.0.1:{dead}: connection refused", "wrong-ae": "WRONGAE@127.0.0.1",
              "bad-args": "--host needs --port", "unknown-node": "no PACS node named 'nowhere'"}[case]
    assert expect in line


@pytest.mark.parametrize("var", ["CXR_TEST_UNSET_PW_81", None])
def test_cli_unset_password_variable_is_an_error(tmp_path, var):
    """Never an empty password sent silently: exit 2, one line naming the variable."""
    env = {k: v for k, v in os.environ.items() if k not in ("CXRVIEWER_PACS_PASSWORD", "CXR_TEST_UNSET_PW_81")}
    args = ["pacs", "find", "--url", "http://127.0.0.1:9/dicom-web", "--user", "reader", "--json"]
    args += ["--password-env", var] if var else []
    env["CXRVIEWER_DATA_DIR"] = str(tmp_path)
    r = subprocess.run([sys.executable, "-m", "cxrviewer", *args], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 2 and r.stdout == ""
    line = r.stderr.strip()
    assert "\n" not in line and f"${var or 'CXRVIEWER_PACS_PASSWORD'}" in line and "not set" in line


def test_cli_find_notes_and_get_failures_in_json(peer, peer_studies, tmp_path):
    dimse = ["--host", "127.0.0.1", "--port", peer.port, "--called-ae", peer.aet, "--calling-ae", "CXRMOVE"]
    r = _cli("find", *dimse, "--modality", "CT", "--json", data_dir=tmp_path / "d")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert {s["study_uid"] for s in out["studies"]} == {peer_studies.uids["uncompressed_ct"], peer_studies.uids["mixed"]}
    assert isinstance(out["notes"], list)
    if peer.kind == "qrscp":
        assert any("ignored the modality filter" in n for n in out["notes"])
    r = _cli("get", peer_studies.uids["mixed"], *dimse, "--move", "--store-port", peer.move_port, "--out",
             tmp_path / "out", "--json", data_dir=tmp_path / "d")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert (got["fetched"], got["failed"], got["failures"]) == (5, 0, [])

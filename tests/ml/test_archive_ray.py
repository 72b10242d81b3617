"""``cxrviewer infer --engine ray``: the same rows as the local engine, resume, and Ray kept
out of every other code path (the cluster extra).

One private local Ray (2 CPUs, a 200 MB object store, no dashboard) serves the whole module:
starting one costs 3-10 s on this machine, and the engine reuses a Ray that is already up.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cxrviewer import paths

N_FILES = 20


def _demo_model() -> Path:
    d = paths.resource("models") / "cxr-resnet50-demo"
    if not (d / "card.json").is_file():
        pytest.skip(f"the bundled demo model is absent ({d})")
    return d


@pytest.fixture(scope="module")
def archive(tmp_path_factory, rg1_unci) -> Path:
    """``N_FILES`` small CR DICOMs (the RG1 radiograph, rolled by one row more per file so
    each has its own pixels and content key) and one file that is not DICOM."""
    import cv2

    from cxrviewer.core.dicom_io import load_image
    from cxrviewer.core.synthetic import make_dataset, write_dataset

    d = tmp_path_factory.mktemp("archive")
    base = cv2.resize(np.asarray(load_image(rg1_unci).stored), (192, 192),
                      interpolation=cv2.INTER_AREA)
    for i in range(N_FILES):
        ds = make_dataset(np.roll(base, 3 * i, axis=0), patient_id=f"ARC{i:03d}",
                          extra={"BodyPartExamined": "CHEST", "ViewPosition": "PA"})
        write_dataset(ds, d / f"img{i:03d}.dcm")
    (d / "broken.dcm").write_bytes(b"DICM" + b"\x00" * 50)
    return d


def _rows(path: Path) -> dict[str, dict[str, str]]:
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len({r["path"] for r in rows}) == len(rows), "duplicate rows"
    return {r["path"]: r for r in rows}


# --------------------------------------------------------------------------- without Ray


def _run_py(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


def test_local_infer_never_imports_ray(archive, tmp_path):
    """The default engine runs without the cluster extra: not even a transitive import."""
    out = tmp_path / "local.csv"
    r = _run_py(
        "import sys\n"
        "from cxrviewer.cli import main\n"
        "import cxrviewer.cli.infer, cxrviewer.ml.archive, cxrviewer.ml.archive_local\n"
        f"rc = main(['infer', {str(archive)!r}, '--out', {str(out)!r}, '--model', "
        f"{str(_demo_model())!r}, '--workers', '1'])\n"
        "print('RAY-LOADED' if any(m == 'ray' or m.startswith('ray.') for m in sys.modules) else 'NO-RAY')\n"
        "sys.exit(rc)\n"
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().splitlines()[-1] == "NO-RAY"
    assert len(_rows(out)) == N_FILES + 1


def test_engine_ray_without_ray_names_the_extra(archive, tmp_path):
    """Where Ray is not installed (here: made unimportable), one line says what to install."""
    out = tmp_path / "o.csv"
    r = _run_py(
        "import sys\n"
        "sys.modules['ray'] = None  # as if the cluster extra were not installed\n"
        "from cxrviewer.cli import main\n"
        f"sys.exit(main(['infer', {str(archive)!r}, '--out', {str(out)!r}, '--engine', 'ray']))\n"
    )
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'cxrviewer[cluster]'" in lines[0], r.stderr
    assert not out.exists()


def test_address_without_engine_ray_is_refused(archive, tmp_path, capsys):
    from cxrviewer.cli import main

    rc = main(["infer", str(archive), "--out", str(tmp_path / "o.csv"), "--address", "auto"])
    assert rc == 2
    assert "--address needs --engine ray" in capsys.readouterr().err


def test_scorer_refuses_a_model_with_other_weights():
    """An actor whose node holds other weights at the model's path scores nothing (the actor
    class itself needs no Ray: it runs here in-process)."""
    from cxrviewer.ml.archive_ray import Scorer

    with pytest.raises(RuntimeError, match="every node must see the same model folder"):
        Scorer(str(_demo_model()), "onnxruntime", "cpu", "0" * 64, {}, frozenset())


# --------------------------------------------------------------------------- with Ray


@pytest.fixture(scope="module")
def ray_up():
    """The engine's own private local Ray, once for the module (the engine reuses it)."""
    from cxrviewer.ml.extras import ray_available

    if not ray_available():  # not importorskip: the engine must be the first to import ray
        pytest.skip("Ray (the cluster extra) is not installed: pip install 'cxrviewer[cluster]'")
    from cxrviewer.ml.archive_local import CRASH_ENV, HANG_ENV
    from cxrviewer.ml.archive_ray import session

    # Ray's workers inherit the environment at its start: a file named *crashme* then kills
    # the process decoding it, one named *hangme* blocks it forever (the local engine's test
    # hooks), in test_a_crashing_file_... and test_a_hanging_file_...
    hooks = {CRASH_ENV: "crashme", HANG_ENV: "hangme"}
    old = {k: os.environ.get(k) for k in hooks}
    os.environ.update(hooks)
    try:
        # small on purpose: the machine is shared, and the engine's blocks are a few MB
        with session(None, num_cpus=2, object_store_mb=200) as ray:
            yield ray
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_local_ray_listens_on_loopback_only(ray_up):
    """The private Ray's servers (GCS, raylet, workers, this driver's core worker) accept
    connections on loopback only."""
    import psutil

    @ray_up.remote(num_cpus=0)
    def pid() -> int:
        return os.getpid()

    assert ray_up.get(pid.remote()) != os.getpid()  # a worker process exists and answered
    me = psutil.Process()
    listening = []
    for proc in [me, *me.children(recursive=True)]:
        try:
            conns = proc.net_connections(kind="inet")
        except psutil.Error:
            continue
        listening += [(proc.name(), c.laddr.ip) for c in conns if c.status == psutil.CONN_LISTEN]
    names = {n for n, _ in listening}
    assert any("raylet" in n for n in names) and any("gcs" in n for n in names), listening
    loopback = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}
    assert [x for x in listening if x[1] not in loopback] == [], listening


def test_ray_rows_equal_local_rows(ray_up, archive, tmp_path, capsys):
    from cxrviewer.cli import main

    model = str(_demo_model())
    local, viaray = tmp_path / "local.csv", tmp_path / "ray.csv"
    # --score-all: probabilities for every image, whatever the gate says of these small
    # synthetic files (its status and reason are compared too)
    assert main(["infer", str(archive), "--out", str(local), "--model", model,
                 "--workers", "1", "--batch-size", "4", "--score-all"]) == 0
    assert main(["infer", str(archive), "--out", str(viaray), "--model", model,
                 "--engine", "ray", "--batch-size", "4", "--score-all"]) == 0
    err = capsys.readouterr().err
    assert "images/s, Ray" in err
    a, b = _rows(local), _rows(viaray)
    assert a.keys() == b.keys() and len(a) == N_FILES + 1
    scored = 0
    for k in a:
        pa, pb = a[k].pop("probability_abnormal"), b[k].pop("probability_abnormal")
        assert a[k] == b[k], k  # status, reason, label, keys, sizes: all equal
        if pa != "":
            scored += 1
            assert abs(float(pa) - float(pb)) <= 1e-6 + 1e-12, k
        else:
            assert pb == ""
    assert scored == N_FILES
    assert a[str(archive / "broken.dcm")]["status"] == "error"


def test_ray_resumes_a_local_run_and_reuses_copies(ray_up, archive, tmp_path):
    """Rows already in --out are skipped before anything is submitted; a copy of a done file
    (new path, same pixels) reuses its row without inference; the result has one row per
    image."""
    from cxrviewer.ml.archive import open_sink
    from cxrviewer.ml.archive_local import run_archive
    from cxrviewer.ml.archive_ray import run_archive_ray
    from cxrviewer.ml.inference import Engine

    engine = Engine.load(_demo_model())
    files = sorted(str(p) for p in archive.glob("img*.dcm"))
    out = tmp_path / "r.csv"
    sink = open_sink(out)
    run_archive(engine, files[:8], sink, workers=0, batch_size=4, score_all=True)
    sink.close()
    before = _rows(out)
    copy = tmp_path / "copy_of_0.dcm"
    shutil.copy(files[0], copy)  # a new mtime: decoded, then matched by content key

    sink = open_sink(out)
    todo = [*files, str(copy)]
    seen: list[dict] = []
    st = run_archive_ray(engine, todo, sink, batch_size=4, score_all=True, on_rows=seen.extend)
    # decoding ran in Ray tasks, never fused into the inference actors' processes
    assert len(seen) == N_FILES - 8 + 1
    assert all(r["_prepare_pid"] != r["_score_pid"] for r in seen)
    final = sink.finalize(set(todo))
    assert (st.total, st.skipped, st.reused, st.scored) == (N_FILES + 1, 8, 1, N_FILES - 8)
    rows = {r["path"]: r for r in final}
    assert sorted(rows) == sorted(todo)
    for p in files[:8]:  # untouched: the first run's rows, byte for byte
        assert {k: str(v) for k, v in rows[p].items()} == before[p]
    assert before[files[0]]["probability_abnormal"] != ""
    assert rows[str(copy)]["probability_abnormal"] == before[files[0]]["probability_abnormal"]
    assert rows[str(copy)]["content_key"] == before[files[0]]["content_key"]

    # and once more: nothing left to do, nothing submitted
    sink = open_sink(out)
    st = run_archive_ray(engine, todo, sink, batch_size=4)
    assert (st.skipped, st.scored) == (N_FILES + 1, 0)
    assert len(sink.finalize(set(todo))) == N_FILES + 1


def test_bench_measurer_reports_images_per_s_ray(ray_up, archive, tmp_path):
    from cxrviewer.bench.archive_ray import measure

    paths_ = sorted(str(p) for p in archive.glob("img*.dcm"))[:8]

    class Ctx:  # what bench archive hands a measurer (cxrviewer.bench.archive.ArchiveContext)
        pass

    ctx = Ctx()
    ctx.archive, ctx.paths, ctx.model_dir, ctx.tmp, ctx.batch_size = (
        archive, paths_, _demo_model(), tmp_path, 4)
    res = measure(ctx)
    json.dumps(res)
    assert res["images_per_s_ray"] > 0
    assert res["ray_rows_exact"] is True


def test_a_crashing_file_becomes_one_error_row(ray_up, archive, tmp_path):
    """A file that kills the process decoding it (each time) ends as one ``error`` row; the
    files that shared its block are scored (Ray retries the task once, then the block's
    files go again one per task), and the run ends instead of retrying forever."""
    from cxrviewer.ml.archive import open_sink
    from cxrviewer.ml.archive_ray import run_archive_ray
    from cxrviewer.ml.inference import Engine

    d = tmp_path / "crash"
    d.mkdir()
    files = sorted(archive.glob("img*.dcm"))[:3]
    for f in files:
        shutil.copy(f, d / f.name)
    shutil.copy(files[0], d / "crashme.dcm")  # a valid file: only the hook makes it crash
    todo = sorted(str(p) for p in d.iterdir())
    sink = open_sink(tmp_path / "c.csv")
    st = run_archive_ray(Engine.load(_demo_model()), todo, sink, batch_size=4, score_all=True)
    rows = {r["path"]: r for r in sink.finalize(set(todo))}
    assert sorted(rows) == todo
    bad = rows.pop(str(d / "crashme.dcm"))
    assert bad["status"] == "error" and "died" in bad["reason"]
    assert all(r["status"] != "error" and r["probability_abnormal"] != "" for r in rows.values())
    assert (st.errors, st.scored) == (1, 3)


def test_a_hanging_file_becomes_one_timed_out_error_row(ray_up, archive, tmp_path):
    """A file whose decoder hangs: past the per-file deadline the task's process ends (Ray
    replaces it), the retried block makes that file one error row saying it timed out, and
    the files that shared its block are scored."""
    from cxrviewer.ml.archive import open_sink
    from cxrviewer.ml.archive_ray import run_archive_ray
    from cxrviewer.ml.inference import Engine

    d = tmp_path / "hang"
    d.mkdir()
    files = sorted(archive.glob("img*.dcm"))[:3]
    for f in files:
        shutil.copy(f, d / f.name)
    shutil.copy(files[0], d / "hangme.dcm")  # a valid file: only the hook makes it hang
    todo = sorted(str(p) for p in d.iterdir())
    sink = open_sink(tmp_path / "h.csv")
    st = run_archive_ray(Engine.load(_demo_model()), todo, sink, batch_size=4, score_all=True,
                         decode_timeout=3)
    rows = {r["path"]: r for r in sink.finalize(set(todo))}
    assert sorted(rows) == todo
    bad = rows.pop(str(d / "hangme.dcm"))
    assert bad["status"] == "error" and "timed out after 3 s" in bad["reason"]
    assert all(r["status"] != "error" and r["probability_abnormal"] != "" for r in rows.values())
    assert (st.errors, st.scored, st.timeouts) == (1, 3, 1)


def test_a_failing_task_is_an_error_not_unreadable_files(ray_up):
    """Only a dead process may cost a block its rows (then redone file by file); any other
    exception in a Ray task (a bug, a broken node) stops the run with its own one-line
    message instead of marking the block's files unreadable."""
    import logging

    from cxrviewer.core.errors import CxrError
    from cxrviewer.ml.archive_ray import _DROPPED_BLOCK_LOGGER, _DroppedBlocks

    dropped = _DroppedBlocks(ray_up)
    with dropped.installed():
        crash = ray_up.exceptions.WorkerCrashedError()
        logging.getLogger(_DROPPED_BLOCK_LOGGER).error("dropped", exc_info=crash)
    dropped.check()  # a crashed decoder: its files go again alone, no error
    try:
        raise ValueError("bad pixels\nsecond line")
    except ValueError as inner:
        try:
            raise RuntimeError("wrapper") from inner
        except RuntimeError as outer:
            with dropped.installed():
                logging.getLogger(_DROPPED_BLOCK_LOGGER).error("dropped", exc_info=outer)
    with pytest.raises(CxrError, match=r"^a Ray task failed: ValueError: bad pixels$"):
        dropped.check()


def test_ray_wrapped_errors_read_as_one_line():
    """What the driver gets from a failed actor is a wrapper whose text holds the remote
    traceback (with colour codes): the message names the error that was raised."""
    from cxrviewer.ml.archive_ray import _root_message

    wrapped = RuntimeError(
        "The actor died because of an error raised in its creation task, "
        "\x1b[36mray::MapWorker(MapBatches(Scorer)).__init__()\x1b[39m (pid=1)\n"
        '  File "archive_ray.py", line 230, in __init__\n'
        "RuntimeError: /m: this node's model has weights sha256 8b25…, the driver's 0000…: "
        "every node must see the same model folder"
    )
    outer = Exception("")
    outer.__cause__ = wrapped
    assert _root_message(outer) == (
        "RuntimeError: /m: this node's model has weights sha256 8b25…, the driver's 0000…: "
        "every node must see the same model folder"
    )


def test_ray_multi_finding_rows_equal_local_rows(ray_up, archive, tmp_path, capsys):
    """A multi-finding model through Ray: the same p_<finding> and findings columns as locally."""
    pytest.importorskip("torch")
    import torch

    from cxrviewer.cli import main
    from cxrviewer.ml import xrv
    from cxrviewer.ml.arch import resnet50
    from cxrviewer.ml.onnx_model import write_model_onnx
    from cxrviewer.ml.registry import save_model_dir

    torch.manual_seed(1)
    net = resnet50.build_net(18, 1)
    with torch.no_grad():
        net.fc.weight.mul_(0.02)
    card = xrv.make_card(xrv.DEFAULT_WEIGHTS, "ray-xrv", tmp_path / "w.pt", "0" * 64)
    card["preprocessing"]["size"] = 64
    d = save_model_dir(net, tmp_path / "ray-xrv", card, dtype="float32")
    write_model_onnx(d, net)
    local, viaray = tmp_path / "local.csv", tmp_path / "ray.csv"
    assert main(["infer", str(archive), "--out", str(local), "--model", str(d), "--workers", "0",
                 "--batch-size", "4", "--score-all"]) == 0
    assert main(["infer", str(archive), "--out", str(viaray), "--model", str(d), "--engine", "ray",
                 "--batch-size", "4", "--score-all"]) == 0
    capsys.readouterr()
    a, b = _rows(local), _rows(viaray)
    assert a.keys() == b.keys()
    some = next(iter(r for r in a.values() if r["status"] != "error"))
    cols = [c for c in some if c.startswith("p_")]
    assert len(cols) == 18 and "findings" in some
    for k in a:
        for c in cols:
            if a[k][c] == "":
                assert b[k][c] == ""
            else:
                assert abs(float(a[k][c]) - float(b[k][c])) <= 1e-6, (k, c)
        assert a[k]["findings"] == b[k]["findings"] and a[k]["label"] == b[k]["label"]

"""Turn a folder (or a file, or a DICOMDIR) into Patient -> Study -> Series -> Instance.

Headers only (``stop_before_pixels=True``): hundreds of times faster than decoding pixels on
radiographs (``cxrviewer bench scan``). Parsing is CPU-bound, so very large folders on machines
with cores to spare are read by a small *process* pool (a thread pool cannot beat the GIL);
see :data:`PARALLEL_MIN_FILES` for the measurements. Results arrive in chunks, so the caller sees the
first studies long before the last file is read (``on_instances``). Cancellation is
cooperative and checked between chunks.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from cxrviewer.core import dicom_warnings, phi
from cxrviewer.core.dicom_io import (
    DICOMDIR_REASON,
    IMAGE_SUFFIXES,
    image_pixel_module,
    is_dicomdir,
    read_dataset,
)
from cxrviewer.core.errors import CxrError
from cxrviewer.core.file_list import DICOMDIR_NAMES, collect_paths, iter_files  # noqa: F401 - iter_files re-exported
from cxrviewer.core.orientation import laterality
from cxrviewer.core.pixel_data import truncation_reason
from cxrviewer.core.types import (
    FileError,
    InstanceInfo,
    ObjectInfo,
    PatientInfo,
    ScanResult,
    SeriesInfo,
    StudyInfo,
)

ProgressFn = Callable[[int, int], None]  # (files_done, files_total)
CancelFn = Callable[[], bool]

#: Folders smaller than this are read in-process (a pool's start-up would cost more).
#: Measured on 2 shared cores (``cxrviewer bench scan/memory``): reading a header costs
#: ~0.9-1.3 ms in-process; a 2-process spawn pool took 2.3 s vs 1.5 s for 1,000 files and
#: 12.6-17 s vs 10-13 s for 10,000, because spawning re-imports pydicom per worker and the
#: parent still unpickles every record. So the pool is used only for big folders on
#: machines with at least :data:`PARALLEL_MIN_CPUS` cores.
PARALLEL_MIN_FILES = 5000
PARALLEL_MIN_CPUS = 4
#: Files per pool task (and per progress report).
CHUNK = 64
#: Files read before anything else, so the first study is shown at once.
FIRST_CHUNK = 8
#: Least time between two ``on_instances`` snapshots.
EMIT_INTERVAL_S = 0.25

_log = logging.getLogger(__name__)



@dataclass
class _Record:
    """What one header read yields (picklable, crosses process boundaries)."""

    path: str
    error: str | None = None
    instance: InstanceInfo | None = None
    obj: ObjectInfo | None = None  # an SR or presentation state (listed, not an error)
    #: a DICOMDIR found among the files: an index, neither an image nor an error
    dicomdir: bool = False
    warnings: tuple[str, ...] = ()
    patient_id: str = ""
    #: Issuer of Patient ID: two IDs from different issuers are different patients (priors)
    issuer_of_patient_id: str = ""
    patient_name: str = ""
    patient_birth_date: str = ""
    patient_sex: str = ""
    study_uid: str = ""
    study_date: str = ""
    study_time: str = ""
    study_description: str = ""
    accession_number: str = ""
    series_uid: str = ""
    series_number: str = ""
    series_description: str = ""


def read_record(path: str) -> _Record:
    """Read one file's header into a record; never raises.

    pydicom's warnings about the file go to the record (and the log), not to stderr.
    """
    with dicom_warnings.collect(path) as notes:
        rec = _read_record(path)
    if notes:
        rec.warnings = tuple(notes)
    return rec


def _read_record(path: str) -> _Record:
    try:
        suffix = Path(path).suffix.lower()
        if suffix in IMAGE_SUFFIXES:
            return _image_record(path)
        if Path(path).name.upper() in DICOMDIR_NAMES:
            return _Record(path, error=DICOMDIR_REASON, dicomdir=True)
        ds = read_dataset(path, stop_before_pixels=True)
        if is_dicomdir(ds):
            # recognised by its Media Storage SOP Class, whatever its name (DICOMDIR-bigEnd...)
            return _Record(path, error=DICOMDIR_REASON, dicomdir=True)
        return _dicom_record(path, ds)
    except CxrError as e:
        return _Record(path, error=e.reason)
    except Exception as e:  # noqa: BLE001 - a bad file never takes down the scan
        return _Record(path, error=f"{type(e).__name__}: {e}")


def _s(v) -> str:
    return "" if v is None else str(v).strip().replace("\x00", "")


def _int(v) -> int | None:
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def _value_getter(ds) -> Callable[[str], object]:
    """``ds.get`` by keyword, but looked up by tag: pydicom's keyword ``__getattr__`` path
    costs ~40% more, and a scan makes ~30 lookups per file."""
    from pydicom.datadict import tag_for_keyword

    def get(keyword: str):
        tag = _TAGS.get(keyword)
        if tag is None:
            tag = _TAGS[keyword] = tag_for_keyword(keyword)
        elem = ds.get(tag)
        return None if elem is None else elem.value

    return get


_TAGS: dict[str, int | None] = {}


def _dicom_record(path: str, ds) -> _Record:
    g = _value_getter(ds)
    # known to the log scrubber now: pydicom's notes on this file are logged when read_record
    # returns, before the builder registers the record (done again there for pool workers)
    phi.register(_s(g("PatientName")), _s(g("PatientID")), _s(g("PatientBirthDate")), _s(g("AccessionNumber")))
    sop_class = _s(g("SOPClassUID"))
    # pixel data was not read (stop_before_pixels): image-ness is judged by the Image Pixel
    # module's Rows/Columns. SR, PDF, KO, PR have none.
    if g("Rows") is None or g("Columns") is None:
        if not sop_class and "PixelData" not in ds:
            return _Record(path, error="corrupt or truncated DICOM: no SOP Class UID and no image "
                                       "attributes (the file ends early or its header is damaged)")
        kind = object_kind(sop_class)
        if kind is not None:
            return _object_record(path, ds, g, kind, sop_class)
        what = _sop_class_name(sop_class)
        return _Record(path, error=f"no Pixel Data (7FE0,0010): not an image ({what})")
    # the loader's own header checks, so a listed image is not refused later for a reason
    # the header already gave (raises DicomReadError: read_record makes it the entry's error)
    image_pixel_module(ds, path)
    try:
        ts = str(ds.file_meta.TransferSyntaxUID)
    except AttributeError:
        ts = "1.2.840.10008.1.2"
    short = truncation_reason(path, ds, getattr(ds, "_cxr_header_end", None), ts)
    if short:
        return _Record(path, error=short)
    inst = InstanceInfo(
        path=path,
        kind="dicom",
        sop_instance_uid=_s(g("SOPInstanceUID")),
        instance_number=_int(g("InstanceNumber")),
        acquisition_time=_s(g("AcquisitionTime")) or _s(g("ContentTime")),
        rows=_int(g("Rows")),
        columns=_int(g("Columns")),
        number_of_frames=_int(g("NumberOfFrames")) or 1,
        modality=_s(g("Modality")),
        view_position=_s(g("ViewPosition")),
        photometric_interpretation=_s(g("PhotometricInterpretation")),
        transfer_syntax=ts,
        image_comments=_s(g("ImageComments")),
        # the view of a prior comparison is matched on these (cxrviewer.core.priors)
        laterality=laterality(_s(g("ImageLaterality")), _s(g("Laterality"))),
        body_part=_s(g("BodyPartExamined")).upper(),
    )
    study_uid = _s(g("StudyInstanceUID")) or f"(no study UID) {os.path.dirname(path)}"
    series_uid = _s(g("SeriesInstanceUID")) or f"(no series UID) {study_uid}"
    return _Record(
        path=path,
        instance=inst,
        patient_id=_s(g("PatientID")),
        issuer_of_patient_id=_s(g("IssuerOfPatientID")),
        patient_name=_s(g("PatientName")),
        patient_birth_date=_s(g("PatientBirthDate")),
        patient_sex=_s(g("PatientSex")),
        study_uid=study_uid,
        study_date=_s(g("StudyDate")),
        study_time=_s(g("StudyTime")),
        study_description=_s(g("StudyDescription")),
        accession_number=_s(g("AccessionNumber")),
        series_uid=series_uid,
        series_number=_s(g("SeriesNumber")),
        series_description=_s(g("SeriesDescription")),
    )


#: SOP Class UID prefixes of the non-image objects the viewer reads (PS3.4 B.5).
_SR_PREFIX = "1.2.840.10008.5.1.4.1.1.88."
_PR_PREFIX = "1.2.840.10008.5.1.4.1.1.11."


def object_kind(sop_class: str) -> str | None:
    """``"sr"`` for structured reports, ``"pr"`` for presentation states, else ``None``."""
    if sop_class.startswith(_SR_PREFIX):
        return "sr"
    if sop_class.startswith(_PR_PREFIX):
        return "pr"
    return None


def _object_record(path: str, ds, g, kind: str, sop_class: str) -> _Record:
    refs: list[str] = []
    if kind == "pr":
        for series in ds.get("ReferencedSeriesSequence") or []:
            refs += [_s(r.get("ReferencedSOPInstanceUID")) for r in series.get("ReferencedImageSequence") or []]
    else:
        for study in ds.get("CurrentRequestedProcedureEvidenceSequence") or []:
            for series in study.get("ReferencedSeriesSequence") or []:
                refs += [_s(r.get("ReferencedSOPInstanceUID")) for r in series.get("ReferencedSOPSequence") or []]
    study_uid = _s(g("StudyInstanceUID")) or f"(no study UID) {os.path.dirname(path)}"
    obj = ObjectInfo(
        path=path, kind=kind, sop_class_uid=sop_class, sop_instance_uid=_s(g("SOPInstanceUID")),
        series_instance_uid=_s(g("SeriesInstanceUID")), series_number=_s(g("SeriesNumber")),
        series_description=_s(g("SeriesDescription")) or _s(g("ContentLabel")), modality=_s(g("Modality")),
        content_date=_s(g("ContentDate")) or _s(g("PresentationCreationDate")),
        content_time=_s(g("ContentTime")) or _s(g("PresentationCreationTime")),
        referenced_sop_instance_uids=[r for r in refs if r],
    )
    return _Record(
        path=path, obj=obj, patient_id=_s(g("PatientID")), patient_name=_s(g("PatientName")),
        patient_birth_date=_s(g("PatientBirthDate")), patient_sex=_s(g("PatientSex")), study_uid=study_uid,
        study_date=_s(g("StudyDate")), study_time=_s(g("StudyTime")), study_description=_s(g("StudyDescription")),
        accession_number=_s(g("AccessionNumber")),
    )


def _sop_class_name(uid: str) -> str:
    if not uid:
        return "no SOP Class UID"
    try:
        from pydicom.uid import UID

        return UID(uid).name
    except Exception:  # noqa: BLE001
        return uid


def _image_record(path: str) -> _Record:
    from PIL import Image, UnidentifiedImageError

    try:
        if os.path.getsize(path) == 0:
            return _Record(path, error="empty file (0 bytes)")
        with Image.open(path) as im:  # header only: Pillow decodes lazily
            w, h = im.size
            mode = im.mode
    except PermissionError as e:
        return _Record(path, error=f"permission denied: {e.strerror or e}")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        return _Record(path, error=f"not a readable PNG/JPEG image: {e}")
    folder = os.path.dirname(path)
    inst = InstanceInfo(
        path=path,
        kind="image",
        rows=h,
        columns=w,
        photometric_interpretation="RGB" if mode in ("RGB", "RGBA") else "MONOCHROME2",
    )
    return _Record(
        path=path,
        instance=inst,
        patient_id="",
        patient_name="(image files)",
        study_uid=f"folder:{folder}",
        study_description=os.path.basename(folder) or folder,
        # One series per folder (a folder of PNGs is one set of images, listed by file name;
        # one series per file gave two tree rows per image and hid the names).
        series_uid=f"folder:{folder}",
        series_description=os.path.basename(folder) or folder,
    )


def _read_chunk(paths: list[str]) -> list[_Record]:
    return [read_record(p) for p in paths]


def _chunks(seq: list[str], n: int) -> Iterable[list[str]]:
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


class _Builder:
    """Groups records into the Patient/Study/Series tree as they arrive."""

    def __init__(self) -> None:
        self.patients: dict[str, PatientInfo] = {}
        self.studies: dict[str, StudyInfo] = {}
        self.series: dict[tuple[str, str], SeriesInfo] = {}
        self.errors: list[FileError] = []
        self.seen_sop: set[str] = set()

    def add(self, r: _Record) -> None:
        if r.dicomdir:
            return  # an index of files the walk finds anyway
        if r.obj is not None:
            phi.register(r.patient_name, r.patient_id, r.patient_birth_date, r.accession_number)
            if r.warnings:
                r.obj.warnings = list(r.warnings)
            self._study(r).objects.append(r.obj)
            return
        if r.error is not None or r.instance is None:
            self.errors.append(FileError(r.path, r.error or "unreadable", r.warnings))
            return
        if r.warnings:
            r.instance.warnings = list(r.warnings)
        if r.instance.kind == "dicom":
            # in the parent process: records read by pool workers are registered here too
            phi.register(r.patient_name, r.patient_id, r.patient_birth_date, r.accession_number)
        st = self._study(r)
        skey = (r.study_uid, r.series_uid)
        se = self.series.get(skey)
        if se is None:
            se = self.series[skey] = SeriesInfo(
                r.series_uid, r.series_number, r.series_description, r.instance.modality
            )
            st.series.append(se)
        se.instances.append(r.instance)

    def _study(self, r: _Record) -> StudyInfo:
        """The record's study (and patient), created on first sight."""
        pkey = r.patient_id or f"(no ID) {r.patient_name}"
        p = self.patients.get(pkey)
        if p is None:
            p = self.patients[pkey] = PatientInfo(
                r.patient_id, r.patient_name, r.patient_birth_date, r.patient_sex
            )
        st = self.studies.get(r.study_uid)
        if st is None:
            st = self.studies[r.study_uid] = StudyInfo(
                r.study_uid, r.study_date, r.study_time, r.study_description, r.accession_number,
                issuer_of_patient_id=r.issuer_of_patient_id,
            )
            p.studies.append(st)
        return st

    def result(self, files_seen: int, cancelled: bool) -> ScanResult:
        """A sorted snapshot: new containers, so the caller may keep it (e.g. on the GUI
        thread) while this builder goes on adding to its own. InstanceInfo objects are
        shared; they are never modified after creation."""
        patients = []
        for p in self.patients.values():
            studies = []
            for st in p.studies:
                series = [
                    SeriesInfo(se.series_instance_uid, se.series_number, se.series_description,
                               se.modality, sorted(se.instances, key=_instance_key))
                    for se in st.series
                ]
                series.sort(key=lambda s: (_int(s.series_number) or 0, s.series_description, s.series_instance_uid))
                objects = sorted(st.objects, key=lambda o: (o.content_date, o.content_time, o.path))
                studies.append(StudyInfo(st.study_instance_uid, st.study_date, st.study_time,
                                         st.study_description, st.accession_number, series, objects,
                                         st.issuer_of_patient_id))
            studies.sort(key=lambda s: (s.study_date, s.study_time, s.study_instance_uid))
            patients.append(PatientInfo(p.patient_id, p.patient_name, p.patient_birth_date,
                                        p.patient_sex, studies))
        patients.sort(key=lambda p: (p.patient_name, p.patient_id))
        return ScanResult(patients, list(self.errors), files_seen, cancelled)


def _instance_key(i: InstanceInfo):
    return (i.instance_number is None, i.instance_number or 0, i.acquisition_time, i.path)


def default_workers(n_files: int) -> int:
    """Header-reading processes for a folder of ``n_files`` (0 = in-process)."""
    cpus = os.cpu_count() or 1
    if n_files < PARALLEL_MIN_FILES or cpus < PARALLEL_MIN_CPUS:
        return 0
    return min(4, cpus - 1)  # leave a core to the GUI thread


def scan(
    path: str | os.PathLike,
    *,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
    on_instances: Callable[[ScanResult], None] | None = None,
    workers: int | None = None,
) -> ScanResult:
    """Index ``path`` (folder, file or DICOMDIR), headers only.

    Parameters
    ----------
    progress
        Called with ``(files_done, files_total)`` after each chunk.
    cancel
        Polled between chunks; returning True stops the scan (the result says ``cancelled``).
    on_instances
        Called with a partial :class:`ScanResult` snapshot after the first few files, then
        at most every :data:`EMIT_INTERVAL_S` seconds, and once more with the final result,
        so a browser can show the first studies while the rest is read. Each snapshot is
        the caller's to keep.
    workers
        Processes for header parsing; default :func:`default_workers` (in-process unless
        the folder is big and the machine has cores to spare).

    Raises
    ------
    ScanPathError
        When ``path`` does not exist or cannot be read at all.
    """
    dir_errors: list[FileError] = []
    paths = collect_paths(path, dir_errors)
    total = len(paths)
    b = _Builder()
    b.errors.extend(dir_errors)
    done = 0
    cancelled = False
    last_emit = [0.0]
    if workers is None:
        workers = default_workers(total)

    def handle(records: list[_Record]) -> None:
        nonlocal done
        for r in records:
            b.add(r)
        done += len(records)
        if progress is not None:
            progress(done, total)
        # Snapshots cost O(files); sending one per chunk to a browser would be quadratic on
        # a 10,000-file folder. The first results go out at once, then at most 4 a second.
        now = time.monotonic()
        if on_instances is not None and (last_emit[0] == 0.0 or now - last_emit[0] >= EMIT_INTERVAL_S):
            last_emit[0] = now
            on_instances(b.result(done, False))

    def stopped() -> bool:
        return cancel is not None and bool(cancel())

    # Small first chunk: the first study reaches the caller after a handful of reads,
    # without waiting for a pool to start.
    head, rest = paths[:FIRST_CHUNK], paths[FIRST_CHUNK:]
    pending = list(_chunks(rest, CHUNK))
    if head:
        if stopped():
            cancelled = True
        else:
            handle(_read_chunk(head))
    if not cancelled and workers > 1 and pending:
        pending, cancelled = _run_pool(pending, workers, handle, stopped)
    for chunk in pending if not cancelled else []:
        # In-process reads: small folders, and whatever a broken pool left over.
        if stopped():
            cancelled = True
            break
        handle(_read_chunk(chunk))
    result = b.result(done, cancelled)
    if on_instances is not None:
        on_instances(result)
    return result


def _run_pool(pending, workers, handle, stopped) -> tuple[list[list[str]], bool]:
    """Read chunks in a spawn process pool; returns (chunks not read, cancelled).

    A pool that cannot start or dies (a frozen app without ``freeze_support``, an
    interpreter reading its script from stdin, a worker killed by the OS) must not lose the
    scan: the chunks it did not deliver are returned for the caller to read in-process.
    """
    import multiprocessing as mp
    from concurrent.futures.process import BrokenProcessPool

    ctx = mp.get_context("spawn")  # never fork a process that may hold Qt/torch threads
    delivered = 0
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as ex:
            futures = [ex.submit(_read_chunk, c) for c in pending]
            try:
                for f in futures:
                    if stopped():
                        return [], True
                    records = f.result()
                    delivered += 1
                    handle(records)
            finally:
                for f in futures[delivered:]:
                    f.cancel()
    except (BrokenProcessPool, OSError, RuntimeError) as e:
        _log.warning("header-reading pool failed (%s); reading the rest in-process", type(e).__name__)
    return pending[delivered:], False

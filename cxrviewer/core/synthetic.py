"""Synthetic DICOM datasets built with pydicom, for tests, benchmarks and the fuzzer.

Real files are better witnesses than mocks, but no public file exercises every branch of the
display pipeline (SIGMOID, VOI LUT Sequence, padding, signed 12-bit...). These builders write
real, standard-conformant Part 10 files with exactly the attributes a test needs, so the
reader under test is the same code that opens a hospital's files.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

#: SOP classes used by the builders.
CR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.1"
DX_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.1.1"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"

EXPLICIT_VR_LE = "1.2.840.10008.1.2.1"


def make_dataset(
    pixels: np.ndarray | None,
    *,
    photometric: str | None = None,
    bits_stored: int | None = None,
    signed: bool | None = None,
    sop_class: str = CR_IMAGE_STORAGE,
    transfer_syntax: str = EXPLICIT_VR_LE,
    frames: int | None = None,
    patient_id: str = "SYN001",
    patient_name: str = "Synthetic^Patient",
    study_uid: str | None = None,
    series_uid: str | None = None,
    instance_number: int | None = 1,
    extra: Mapping[str, Any] | None = None,
):
    """A pydicom ``FileDataset`` holding ``pixels`` (uncompressed) and a minimal header.

    Parameters
    ----------
    pixels
        ``(rows, cols)``, ``(rows, cols, 3)``, ``(frames, rows, cols)`` or ``None`` (no Pixel
        Data, e.g. a structured report). dtype decides Bits Allocated (8/16/32) and, unless
        ``signed`` is given, Pixel Representation.
    bits_stored
        Defaults to Bits Allocated. Values above it in ``pixels`` are written as they are,
        which is how a test puts garbage in the unused high bits.
    extra
        Further attributes by keyword (``{"WindowCenter": 40}``), applied last.
    """
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import UID, generate_uid

    meta = FileMetaDataset()
    sop_uid = generate_uid()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = UID(transfer_syntax)
    meta.ImplementationClassUID = UID("1.2.826.0.1.3680043.8.498.1")
    ds = FileDataset(None, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.StudyDate = "20240101"
    ds.StudyTime = "120000"
    ds.Modality = "CR" if sop_class != SECONDARY_CAPTURE else "OT"
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    if instance_number is not None:
        ds.InstanceNumber = instance_number
    if pixels is not None:
        arr = np.asarray(pixels)
        spp = 3 if (arr.ndim == 3 and arr.shape[-1] == 3 and frames is None) else 1
        if arr.ndim == 3 and spp == 1:
            frames = arr.shape[0]
        bits_alloc = arr.dtype.itemsize * 8
        ds.Rows = int(arr.shape[-3] if spp == 3 else arr.shape[-2])
        ds.Columns = int(arr.shape[-2] if spp == 3 else arr.shape[-1])
        ds.SamplesPerPixel = spp
        ds.PhotometricInterpretation = photometric or ("RGB" if spp == 3 else "MONOCHROME2")
        if spp == 3:
            ds.PlanarConfiguration = 0
        ds.BitsAllocated = bits_alloc
        ds.BitsStored = bits_stored or bits_alloc
        ds.HighBit = ds.BitsStored - 1
        ds.PixelRepresentation = int(arr.dtype.kind == "i" if signed is None else signed)
        if frames is not None and frames > 1:
            ds.NumberOfFrames = frames
        little = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
        data = np.ascontiguousarray(little).tobytes()
        if len(data) % 2:
            data += b"\0"
        ds.PixelData = data
    if extra:
        from pydicom import config

        # Tests pass deliberately invalid values ("nan" as a DS); write them without
        # pydicom's validation warnings.
        with config.disable_value_validation():
            for k, v in extra.items():
                setattr(ds, k, v)
    return ds


def write_dataset(ds, path: str | os.PathLike, *, preamble: bool = True) -> str:
    """Write ``ds`` as a Part 10 file (or, ``preamble=False``, without preamble/meta)."""
    p = os.fspath(path)
    if preamble:
        ds.save_as(p, enforce_file_format=True)
    else:
        # A "raw" dataset: no 128-byte preamble, no 'DICM', no group 0002 (old ACR-NEMA style
        # exports), implicit VR little endian, the default in that case.
        import pydicom

        pydicom.dcmwrite(p, pydicom.Dataset(ds), implicit_vr=True, little_endian=True)
    return p


def chest_like(rows: int = 64, cols: int = 48, bits: int = 12, seed: int = 0) -> np.ndarray:
    """A smooth uint16 image with a dark border and a bright 'mediastinum' (deterministic)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:rows, 0:cols].astype(np.float32)
    body = np.exp(-(((x - cols / 2) / (cols / 3)) ** 2 + ((y - rows / 2) / (rows / 2.5)) ** 2))
    spine = np.exp(-(((x - cols / 2) / (cols / 12)) ** 2))
    img = 0.15 + 0.55 * body + 0.3 * spine + 0.02 * rng.standard_normal((rows, cols)).astype(np.float32)
    top = 2**bits - 1
    return np.clip(img * top, 0, top).astype(np.uint16)


def write_study_image(folder: str | os.PathLike, name: str, *, patient_id: str, study_uid: str,
                      date: str | None, time: str | None = "090000", view: str = "PA",
                      laterality: str | None = None, patient_name: str = "Same^Name",
                      issuer: str | None = None, body_part: str | None = "CHEST", instance: int = 1,
                      pixels: np.ndarray | None = None) -> str:
    """Write one small chest CR of a given patient, study, date and view (prior-comparison
    tests and demos); ``None`` leaves an attribute out of the header. Returns the path."""
    px = chest_like(64, 48, seed=instance) if pixels is None else pixels
    ds = make_dataset(px, patient_id=patient_id, patient_name=patient_name, study_uid=study_uid,
                      series_uid=f"{study_uid}.1", instance_number=instance)
    for kw, v in (("StudyDate", date), ("StudyTime", time)):
        if v is None:
            delattr(ds, kw)
        else:
            setattr(ds, kw, v)
    ds.ViewPosition = view
    for kw, v in (("ImageLaterality", laterality), ("IssuerOfPatientID", issuer), ("BodyPartExamined", body_part)):
        if v is not None:
            setattr(ds, kw, v)
    os.makedirs(folder, exist_ok=True)
    return write_dataset(ds, os.path.join(os.fspath(folder), name))


def write_any_transfer_syntax(ds, path: str | os.PathLike) -> str:
    """Write ``ds`` with whatever Transfer Syntax UID its File Meta names, known or not.

    pydicom refuses to write a syntax it does not know (JPEG XL in pydicom 3.0, a made-up
    UID), which is exactly what a test of "unsupported transfer syntax" needs: the meta
    carries the UID, the body is written explicit VR little endian (as every compressed
    syntax is), the Pixel Data as given.
    """
    import pydicom
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset as _write_body
    from pydicom.filewriter import write_file_meta_info

    buf = DicomBytesIO()
    buf.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(buf, ds.file_meta, enforce_standard=True)
    buf.is_little_endian = True
    buf.is_implicit_VR = False
    _write_body(buf, pydicom.Dataset(ds))
    p = os.fspath(path)
    with open(p, "wb") as fh:
        fh.write(buf.getvalue())
    return p


def add_functional_groups(ds, shared: Mapping[str, Mapping[str, Any]],
                          per_frame: list[Mapping[str, Mapping[str, Any]]]):
    """Give ``ds`` the Multi-frame Functional Groups of an enhanced object (PS3.3 C.7.6.16).

    ``shared`` and each item of ``per_frame`` map a macro's sequence keyword to its
    attributes, e.g. ``{"PixelValueTransformationSequence": {"RescaleSlope": 1,
    "RescaleIntercept": -1024, "RescaleType": "HU"}}``. Returns ``ds``.
    """
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    def group(macros: Mapping[str, Mapping[str, Any]]) -> Dataset:
        g = Dataset()
        for seq_kw, attrs in macros.items():
            item = Dataset()
            for k, v in attrs.items():
                setattr(item, k, v)
            setattr(g, seq_kw, Sequence([item]))
        return g

    ds.SharedFunctionalGroupsSequence = Sequence([group(shared)])
    ds.PerFrameFunctionalGroupsSequence = Sequence([group(m) for m in per_frame])
    return ds

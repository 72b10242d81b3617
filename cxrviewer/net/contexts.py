"""Which SOP classes and transfer syntaxes we propose (C-GET) and accept (C-MOVE storage SCP).

An archive sends each instance in a syntax negotiated for its presentation context and, like
dcmtk's ``dcmqrscp``, often cannot transcode: a JPEG 2000 image offered only an uncompressed
context fails with 0xA702 (PS3.4 C.4.3.3.1). So we offer every syntax pydicom decodes here.

- **C-MOVE** (we accept): every storage class pynetdicom knows (170, and the retired ones of its default list), each with every syntax.
  The sender proposes, we take its first choice among them: the instance arrives as it is stored.
- **C-GET** (we propose, at most 128 contexts with the Q/R ones, PS3.8 9.3.2.2): the acceptor
  picks *one* syntax per context, from its own preference, and then must send every instance of
  that class in it. For the classes a chest workstation meets most (CR, DX, US, SC), one context
  per syntax family (JPEG 2000, JPEG, JPEG-LS, RLE, uncompressed), so an archive holding a mix can
  send each as stored; the next classes in line (CT, MR, NM, MG, XA, SR, GSPS, KOS...) get two
  (compressed, uncompressed), and the rest of the list one context with all syntaxes, compressed
  first (an archive that takes the proposer's order then sends compressed images as they are).
"""

from __future__ import annotations

#: uncompressed (and deflated) syntaxes: explicit VR little endian first
UNCOMPRESSED = (
    "1.2.840.10008.1.2.1",  # Explicit VR Little Endian
    "1.2.840.10008.1.2",  # Implicit VR Little Endian
    "1.2.840.10008.1.2.1.99",  # Deflated Explicit VR Little Endian
    "1.2.840.10008.1.2.2",  # Explicit VR Big Endian (retired, still sent by old modalities)
)
J2K = (
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 lossless
    "1.2.840.10008.1.2.4.91",  # JPEG 2000 (lossy or lossless)
    "1.2.840.10008.1.2.4.201",  # HTJ2K lossless
    "1.2.840.10008.1.2.4.202",  # HTJ2K lossless RPCL
    "1.2.840.10008.1.2.4.203",  # HTJ2K
)
JPEG = (
    "1.2.840.10008.1.2.4.70",  # JPEG lossless SV1
    "1.2.840.10008.1.2.4.57",  # JPEG lossless
    "1.2.840.10008.1.2.4.50",  # JPEG baseline
    "1.2.840.10008.1.2.4.51",  # JPEG extended
)
JPEG_LS = (
    "1.2.840.10008.1.2.4.80",  # JPEG-LS lossless
    "1.2.840.10008.1.2.4.81",  # JPEG-LS near-lossless
)
RLE = ("1.2.840.10008.1.2.5",)
#: every compressed syntax pydicom (with pylibjpeg/openjpeg/libjpeg/pyjpegls/pillow) decodes
COMPRESSED = J2K + JPEG + JPEG_LS + RLE
ALL_SYNTAXES = COMPRESSED + UNCOMPRESSED
#: the families a priority class gets a context each for, on C-GET
FAMILIES = (J2K, JPEG, JPEG_LS, RLE, UNCOMPRESSED)

#: the classes that get one context per syntax family on C-GET (chest reading, and the US the
#: issue's archives held)
PRIORITY_CLASSES = (
    "1.2.840.10008.5.1.4.1.1.1",  # CR
    "1.2.840.10008.5.1.4.1.1.1.1",  # DX for presentation
    "1.2.840.10008.5.1.4.1.1.1.1.1",  # DX for processing
    "1.2.840.10008.5.1.4.1.1.6.1",  # US
    "1.2.840.10008.5.1.4.1.1.3.1",  # US multi-frame
    "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture
)
#: next in line for a C-GET context (one each): other images and the non-image objects a reading uses
PREFERRED_CLASSES = (
    "1.2.840.10008.5.1.4.1.1.2",  # CT
    "1.2.840.10008.5.1.4.1.1.2.1",  # Enhanced CT
    "1.2.840.10008.5.1.4.1.1.4",  # MR
    "1.2.840.10008.5.1.4.1.1.4.1",  # Enhanced MR
    "1.2.840.10008.5.1.4.1.1.20",  # NM
    "1.2.840.10008.5.1.4.1.1.128",  # PET
    "1.2.840.10008.5.1.4.1.1.1.2",  # MG for presentation
    "1.2.840.10008.5.1.4.1.1.1.2.1",  # MG for processing
    "1.2.840.10008.5.1.4.1.1.12.1",  # XA
    "1.2.840.10008.5.1.4.1.1.12.2",  # XRF
    "1.2.840.10008.5.1.4.1.1.7.1",  # SC multi-frame single bit
    "1.2.840.10008.5.1.4.1.1.7.2",  # SC multi-frame grayscale byte
    "1.2.840.10008.5.1.4.1.1.7.3",  # SC multi-frame grayscale word
    "1.2.840.10008.5.1.4.1.1.7.4",  # SC multi-frame true colour
    "1.2.840.10008.5.1.4.1.1.88.11",  # Basic Text SR
    "1.2.840.10008.5.1.4.1.1.88.22",  # Enhanced SR
    "1.2.840.10008.5.1.4.1.1.88.33",  # Comprehensive SR
    "1.2.840.10008.5.1.4.1.1.88.34",  # Comprehensive 3D SR
    "1.2.840.10008.5.1.4.1.1.88.59",  # Key Object Selection
    "1.2.840.10008.5.1.4.1.1.11.1",  # Grayscale Softcopy Presentation State
    "1.2.840.10008.5.1.4.1.1.104.1",  # Encapsulated PDF
    "1.2.840.10008.5.1.4.1.1.66.4",  # Segmentation
)
#: contexts one association may carry (PS3.8: presentation context IDs are odd numbers 1..255)
MAX_CONTEXTS = 128


def all_storage_classes() -> list[str]:
    """Every storage SOP class pynetdicom knows, ours first then pynetdicom's order."""
    from pynetdicom.presentation import AllStoragePresentationContexts, StoragePresentationContexts

    out = dict.fromkeys(PRIORITY_CLASSES + PREFERRED_CLASSES)
    for cx in list(StoragePresentationContexts) + list(AllStoragePresentationContexts):
        out.setdefault(str(cx.abstract_syntax))
    return list(out)


def get_storage_contexts(room: int = MAX_CONTEXTS - 2) -> list[tuple[str, tuple[str, ...]]]:
    """The storage contexts a C-GET proposes (``room`` of them: the rest of 128 is for Q/R)."""
    out: list[tuple[str, tuple[str, ...]]] = [(c, fam) for c in PRIORITY_CLASSES for fam in FAMILIES]
    out += [(c, fam) for c in PREFERRED_CLASSES for fam in (COMPRESSED, UNCOMPRESSED)]
    for c in all_storage_classes():
        if len(out) >= room:
            break
        if c not in PRIORITY_CLASSES and c not in PREFERRED_CLASSES:
            out.append((c, ALL_SYNTAXES))
    return out


def get_roles(contexts: list[tuple[str, tuple[str, ...]]]) -> list[str]:
    """The classes we take the SCP role for on a C-GET association (each once)."""
    return list(dict.fromkeys(c for c, _ in contexts))


def scp_contexts() -> list[tuple[str, tuple[str, ...]]]:
    """What our C-MOVE storage SCP accepts: every class, every syntax."""
    return [(c, ALL_SYNTAXES) for c in all_storage_classes()]

"""What we propose on C-GET and accept on C-MOVE: every syntax we decode, within 128 contexts."""

from __future__ import annotations

from cxrviewer.net import contexts as cx


def test_every_proposed_syntax_is_one_pydicom_decodes_here():
    from pydicom.pixels.decoders.base import get_decoder

    for ts in cx.COMPRESSED:
        assert get_decoder(ts).is_available, ts


def test_c_get_contexts_fit_128_and_give_priority_classes_every_family():
    storage = cx.get_storage_contexts()
    assert len(storage) + 2 == cx.MAX_CONTEXTS  # + C-FIND and C-GET
    for cls in cx.PRIORITY_CLASSES:
        assert [ts for c, ts in storage if c == cls] == list(cx.FAMILIES)
    for cls in cx.PREFERRED_CLASSES:
        assert [ts for c, ts in storage if c == cls] == [cx.COMPRESSED, cx.UNCOMPRESSED]
    roles = cx.get_roles(storage)
    assert len(roles) == len(set(roles)) == len({c for c, _ in storage})
    for us in ("1.2.840.10008.5.1.4.1.1.6.1", "1.2.840.10008.5.1.4.1.1.3.1", "1.2.840.10008.5.1.4.1.1.20",
               "1.2.840.10008.5.1.4.1.1.4.1", "1.2.840.10008.5.1.4.1.1.2.1"):  # US, US MF, NM, enhanced MR/CT
        assert us in roles


def test_move_scp_accepts_every_storage_class_in_every_syntax():
    from pynetdicom.presentation import AllStoragePresentationContexts

    scp = cx.scp_contexts()
    classes = {c for c, _ in scp}
    # pynetdicom's full list, plus the retired classes its default list still has (old US, NM...)
    assert classes >= {str(c.abstract_syntax) for c in AllStoragePresentationContexts}
    assert "1.2.840.10008.5.1.4.1.1.6" in classes  # retired US Image Storage, still sent by old archives
    assert all(ts == cx.ALL_SYNTAXES for _, ts in scp)

"""What a DIMSE status code means, in words a site's administrator can act on (PS3.4 C.4, B.2, PS3.7 C).

Each function returns ``"0xA702: <meaning>[; <likely fix>]"``. The fix is only what the code
itself implies: 0xA801 is "move destination unknown", and is worded as such only for it.
"""

from __future__ import annotations

#: (low, high, meaning, fix) for the retrieve (C-GET/C-MOVE) statuses, PS3.4 C.4.2.1.5 / C.4.3.1.4
_RETRIEVE = (
    (0xA701, 0xA701, "the archive is out of resources: it could not count the matches", "try again later"),
    (0xA702, 0xA702, "the archive could not perform the sub-operations (it could not send the instances)",
     "usually the archive could not send them in a transfer syntax we accept (it holds them compressed "
     "and does not decompress), or it ran out of resources"),
    (0xA700, 0xA7FF, "the archive is out of resources", "try again later"),
    (0xA801, 0xA801, "the archive does not know the move destination",
     "add our AE title to the archive's move destinations, with our host and storage port"),
    (0xA900, 0xA9FF, "the archive says our identifier does not match the information model",
     "the archive cannot take this query level or these keys"),
    (0xAA00, 0xAAFF, "the archive refused the request (not authorized)", "ask the archive's administrator"),
    (0xC000, 0xCFFF, "the archive was unable to process the request",
     "its log says why; often a key or a list of UIDs it cannot take"),
    (0xFE00, 0xFE00, "sub-operations were cancelled", ""),
    (0xB000, 0xB000, "sub-operations completed with one or more failures", ""),
    (0x0122, 0x0122, "the archive does not support this SOP class", "use C-MOVE or another retrieve model"),
    (0x0124, 0x0124, "the archive refused: not authorized", "ask the archive's administrator"),
)

#: C-STORE statuses (PS3.4 B.2.3), as our store answers or an archive answers us
_STORE = (
    (0xA700, 0xA7FF, "the receiver is out of resources (disk full?)", "free space on the receiving side"),
    (0xA900, 0xA9FF, "the receiver says the data set does not match the SOP class", "check the file"),
    (0xC000, 0xCFFF, "the receiver cannot understand the data set", "check the file"),
    (0x0122, 0x0122, "the receiver does not support this SOP class", "ask its administrator to accept it"),
    (0x0124, 0x0124, "the receiver refused: not authorized", "ask its administrator"),
    (0xB000, 0xBFFF, "stored with a warning (coercion of data elements or elements discarded)", ""),
)

#: C-FIND statuses (PS3.4 C.4.1.1.4)
_FIND = (
    (0xA700, 0xA7FF, "the archive is out of resources", "try again later"),
    (0xA900, 0xA9FF, "the archive says our identifier does not match the information model",
     "the archive cannot take this query"),
    (0xC000, 0xCFFF, "the archive was unable to process the query", "its log says why; try fewer keys"),
    (0x0122, 0x0122, "the archive does not support Study Root C-FIND", ""),
)


def _explain(code: int, table, with_fix: bool = True) -> str:
    for lo, hi, meaning, fix in table:
        if lo <= code <= hi:
            return f"0x{code:04X}: {meaning}" + (f" ({fix})" if fix and with_fix else "")
    return f"0x{code:04X}: an unexpected status"


def retrieve_status(code: int, with_fix: bool = True) -> str:
    """Meaning (and, unless ``with_fix`` is false because the caller knows better, likely fix) of a
    C-GET/C-MOVE final status."""
    return _explain(code, _RETRIEVE, with_fix)


def store_status(code: int) -> str:
    """Meaning of a C-STORE status."""
    return _explain(code, _STORE)


def find_status(code: int) -> str:
    """Meaning of a C-FIND status."""
    return _explain(code, _FIND)

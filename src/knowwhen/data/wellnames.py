"""Well names of multi-well plates: A1 = A01 = a01, row letters A-AF and columns 1-48 (up to 1536 wells)."""
from __future__ import annotations

import re

from ..errors import DataError

MAX_ROWS, MAX_COLUMNS = 32, 48  # a 1536-well plate, the largest there is
_WELL = re.compile(r"^\s*([A-Za-z]{1,2})\s*0*(\d{1,2})\s*$")


def well_position(well: str) -> tuple[int, int] | None:
    """(row, column) from 0 of a well name like "B07" or "b7"; None when it is not one."""
    m = _WELL.match(str(well))
    if not m:
        return None
    letters = m.group(1).upper()
    row = (ord(letters[0]) - 65) if len(letters) == 1 else 26 * (ord(letters[0]) - 64) + ord(letters[1]) - 65
    return row, int(m.group(2)) - 1


def canonical_well(name: str, where: str) -> str:
    """"B07" for "B7", "b07" or " B007 "; a DataError for a name that is no well of a 1536-well plate."""
    pos = well_position(name)
    if pos is None or pos[0] >= MAX_ROWS or not 0 <= pos[1] < MAX_COLUMNS:
        raise DataError(f"{where}: {str(name)!r} is not a well of a 96-, 384- or 1536-well plate; name wells by row "
                        "letter(s) A-AF and column 1-48, e.g. B07.")
    return f"{row_letters(pos[0])}{pos[1] + 1:02d}"


def row_letters(row: int) -> str:
    """"A" for row 0, "Z" for 25, "AA" for 26 (1536-well plates have rows A-AF)."""
    return chr(65 + row) if row < 26 else chr(64 + row // 26) + chr(65 + row % 26)

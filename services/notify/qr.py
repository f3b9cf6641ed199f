"""QR codes of check-in codes, for the confirmations notify sends (segno: pure Python, ISO/IEC
18004). The email's HTML part shows a PNG; the text (the email's plain part and the in-app
inbox entry) a drawing in block characters, each character two modules high."""

import segno

BORDER = 2  # modules of quiet zone: scanners need a light margin around the symbol


def _symbol(code: str):
    return segno.make(code, error="m", micro=False)


def png_data_uri(code: str, scale: int = 5) -> str:
    """The QR code as a `data:image/png;base64,...` URI for an `<img>`."""
    return _symbol(code).png_data_uri(scale=scale, border=BORDER)


def text_art(code: str) -> str:
    """The QR code in lines of `█▀▄ ` (dark on light), two rows of modules per line."""
    matrix = [list(row) for row in _symbol(code).matrix]
    width = len(matrix[0]) + 2 * BORDER
    rows = [[0] * width for _ in range(BORDER)]
    rows += [[0] * BORDER + row + [0] * BORDER for row in matrix]
    rows += [[0] * width for _ in range(BORDER + (len(rows) + BORDER) % 2)]
    glyphs = {(1, 1): "█", (1, 0): "▀", (0, 1): "▄", (0, 0): " "}
    return "\n".join(
        "".join(glyphs[(top, bottom)] for top, bottom in zip(rows[i], rows[i + 1], strict=True))
        for i in range(0, len(rows), 2)
    )

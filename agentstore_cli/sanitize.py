"""Make untrusted text safe to print on a terminal.

Payloads hold whatever an LLM, a tool or a web page produced. Printed raw, an ESC
sequence could recolour, move the cursor, set the window title or rewrite earlier lines;
a CR could overwrite a line with a forged one; bidi overrides could reorder what is shown.
`clean()` replaces every such character with a visible escape (`\\x1b`, `\\r`, `\\u202e`),
so the text is shown, never interpreted. Rich markup is a separate matter: the renderers
build `rich.text.Text` objects, which never parse markup.
"""

from __future__ import annotations

import re

__all__ = ["clean", "clean_json"]


def _escape(code: int) -> str:
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


_NAMED = {0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"}
# C0 controls, DEL, C1 controls (0x9b alone is a CSI on some terminals), the bidi
# controls used by "Trojan Source" tricks, the Unicode line/paragraph separators, and the
# invisible characters that hide text from a reader: zero-width space, the byte-order mark,
# the deprecated format characters and the tag characters (which can smuggle a whole
# invisible message into a line).
_UNSAFE = [
    *range(0x00, 0x20),
    0x7F,
    *range(0x80, 0xA0),
    0x061C,
    0x200B,
    0x200E,
    0x200F,
    0x2028,
    0x2029,
    *range(0x202A, 0x202F),
    *range(0x2066, 0x2070),
    0xFEFF,
    *range(0xE0000, 0xE0080),
]
_TABLE: dict[int, str] = {code: _NAMED.get(code, _escape(code)) for code in _UNSAFE}
_TABLE_KEEP_NEWLINES = {**_TABLE, 0x0A: "\n"}


def clean(text: str, *, keep_newlines: bool = False) -> str:
    """Return `text` with terminal control characters replaced by visible escapes.

    With `keep_newlines`, line feeds are kept (multi-line views); everything else that
    could move the cursor or change the terminal is escaped.
    """
    if text.isascii() and text.isprintable():
        return text  # the common case: nothing to do
    return text.translate(_TABLE_KEEP_NEWLINES if keep_newlines else _TABLE)


# The same characters as `_UNSAFE` above 0x7e, as they look in UTF-8. JSON escapes only
# C0 controls; these would reach a terminal raw when JSON output is not piped anywhere.
_UNSAFE_UTF8 = re.compile(
    rb"\x7f|\xc2[\x80-\x9f]|\xd8\x9c|\xe2\x80[\x8b\x8e\x8f\xa8-\xae]|\xe2\x81[\xa6-\xaf]"
    rb"|\xef\xbb\xbf|\xf3\xa0[\x80\x81][\x80-\xbf]"
)


def _json_escape(match: re.Match[bytes]) -> bytes:
    code = ord(match.group().decode())
    if code <= 0xFFFF:
        return b"\\u%04x" % code
    # Outside the BMP, JSON spells a character as its UTF-16 surrogate pair.
    code -= 0x10000
    return b"\\u%04x\\u%04x" % (0xD800 + (code >> 10), 0xDC00 + (code & 0x3FF))


def clean_json(data: bytes) -> bytes:
    """Escape DEL, C1 controls and bidi overrides in JSON text as `\\uXXXX`.

    The result is equivalent JSON (it decodes to the same values), safe to print.
    """
    return _UNSAFE_UTF8.sub(_json_escape, data)

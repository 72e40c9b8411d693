"""Make untrusted text safe to print on a terminal.

Payloads hold whatever an LLM, a tool or a web page produced. Printed raw, an ESC
sequence could recolour, move the cursor, set the window title or rewrite earlier lines;
a CR could overwrite a line with a forged one; bidi overrides could reorder what is shown.
`clean()` replaces every such character with a visible escape (`\\x1b`, `\\r`, `\\u202e`),
so the text is shown, never interpreted. Rich markup is a separate matter: the renderers
build `rich.text.Text` objects, which never parse markup.
"""

from __future__ import annotations

__all__ = ["clean"]


def _escape(code: int) -> str:
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}"


_NAMED = {0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"}
# C0 controls, DEL, C1 controls (0x9b alone is a CSI on some terminals), the bidi
# controls used by "Trojan Source" tricks, and the Unicode line/paragraph separators.
_UNSAFE = [
    *range(0x00, 0x20),
    0x7F,
    *range(0x80, 0xA0),
    0x061C,
    0x200E,
    0x200F,
    0x2028,
    0x2029,
    *range(0x202A, 0x202F),
    *range(0x2066, 0x206A),
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

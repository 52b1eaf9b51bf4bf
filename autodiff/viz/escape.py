"""User text made safe for DOT: the two escapers every label and tooltip goes through.

`html_text` escapes text for inside an HTML-like label (which `look` builds, marked `Html`);
`quoted` makes a DOT double-quoted string (which `emit` writes for every other attribute). No
label, however strange (control characters, lone surrogates, `]]`, `\\N`), can break the DOT
text or inject markup.
"""

from __future__ import annotations

import functools
import re

# Every control character but newline, and the two non-characters U+FFFE and U+FFFF, which XML
# (and so Graphviz's HTML-like labels and SVG output) does not allow.
_UNDRAWABLE = re.compile("[\x00-\x09\x0b-\x1f\x7f\ufffe\uffff]")


def _printable(text: str) -> str:
    # Characters that cannot be drawn are shown as visible escapes (\x07, \ufffe). Lone
    # surrogates cannot be encoded as UTF-8, which is what the DOT file is: escapes as well.
    text = str(text).encode("utf-8", "backslashreplace").decode("utf-8")
    if _UNDRAWABLE.search(text):
        text = _UNDRAWABLE.sub(_escape, text)
    return text


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def html_text(text: str) -> str:
    """Text for inside an HTML-like label: `& < > " ]` become entities, newlines become <BR/>."""
    # Graphviz expands \N, \G, ... even inside HTML-like labels, and reads \\ as one backslash.
    text = _printable(text).replace("\\", "\\\\")
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    # Graphviz's HTML lexer takes text ending in "]" for the end of a CDATA section and fails
    # (a label "]" or "x]]"): a character reference draws the same bracket.
    text = text.replace('"', "&quot;").replace("]", "&#93;")
    return '<BR ALIGN="CENTER"/>'.join(text.split("\n"))


@functools.lru_cache(maxsize=4096)  # attribute values repeat: colours, shapes
def quoted(text: str) -> str:
    """A DOT double-quoted string (for tooltips): backslashes, quotes and newlines are escaped.

    A backslash goes through two readings: the DOT parser turns `\\\\` into `\\`, then Graphviz's
    escape expansion (`\\N` = node name, `\\n` = newline) turns `\\\\` into one backslash. So each
    literal backslash is written as four, and `\\N`, `\\G` in user text are never expanded.
    Graphviz also decodes entities such as `&lt;` in plain strings, so `&` becomes `&amp;`.
    """
    text = _printable(text).replace("\\", "\\\\\\\\").replace('"', '\\"').replace("\n", "\\n")
    text = text.replace("&", "&amp;")
    return f'"{text}"'


class Html(str):
    """An HTML-like label body, written as <...>; every user string in it is already escaped."""

"""Text normalisation applied before any model reads instruction data.

Why this exists: in CaR's expert-revised Alpaca data (the IQS training set) the *original*
text-davinci-003 responses were stored with JSON escapes left in the text -- literal ``\\n``
(about a third of them), ``\\uXXXX`` (about a tenth) and ``\\"`` -- while the expert-revised
responses almost never contain them. A scorer trained on the raw strings reaches ~90% pairwise
accuracy by spotting backslashes instead of judging the answer. The same escapes also turn up in
user data imported from double-encoded JSON/CSV. So every string is decoded and its whitespace
collapsed, on BOTH sides, both when training and when scoring:

* ``\\uXXXX`` escapes are decoded, a high+low surrogate escape pair becoming one code point;
* ``\\n``, ``\\r``, ``\\t`` become whitespace, ``\\"`` and ``\\'`` the bare quote, ``\\\\`` one
  backslash;
* unpaired surrogates (escaped or real) become U+FFFD, so the result is always encodable
  (pandas 3 / Arrow raises UnicodeEncodeError on them);
* typographic punctuation that only appears through the decoded escapes in the original side
  (curly quotes, dashes, bullets, ellipsis, non-breaking space) is folded to ASCII, so the
  decoded escapes cannot become a cue of their own;
* every run of whitespace (including the newlines just decoded) becomes one space. The
  uncased WordPiece tokenizer of MiniLM ignores newlines anyway, so nothing it could use is lost.

The function is pure and total: any ``str`` in, a clean ``str`` out. It is meant for model input
only; stored records keep their original text.
"""

from __future__ import annotations

import re

__all__ = ["normalize_text"]

# One alternation so that each backslash is consumed once, left to right: "\\\\n" is an escaped
# backslash followed by "n", not a newline.
_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}(?:\\u[0-9a-fA-F]{4})*|[ntr\"'\\/])")
_SIMPLE = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "'": "'", "\\": "\\", "/": "/"}
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_PUNCT_FOLD = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u2032": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u2033": '"',
        "\u2010": "-",
        "\u2011": "-",
        "\u2013": "-",
        "\u2014": "-",
        "\u2012": "-",
        "\u2212": "-",
        "\u2022": "-",
        "\u00b7": "-",
        "\u2026": "...",
        "\u00a0": " ",
        "\u200b": "",
        "\ufeff": "",
    }
)


def _decode_unicode_run(run: str) -> str:
    """Decode consecutive ``\\uXXXX`` escapes as UTF-16 so surrogate pairs join up."""
    units = bytes.fromhex("".join(run[i + 2 : i + 6] for i in range(0, len(run), 6)))
    # surrogatepass keeps unpaired halves as lone surrogates instead of raising; they are
    # replaced afterwards with everything else that is not encodable.
    return units.decode("utf-16-be", "surrogatepass")


def _decode_escape(match: re.Match[str]) -> str:
    body = match.group(1)
    if body[0] == "u":
        return _decode_unicode_run("\\" + body)
    return _SIMPLE[body]


def _fix_surrogates(text: str) -> str:
    """Join real surrogate pairs into code points and replace unpaired halves with U+FFFD."""
    if not _LONE_SURROGATE.search(text):
        return text
    joined = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return _LONE_SURROGATE.sub("\ufffd", joined)


def normalize_text(s: str) -> str:
    """Decode JSON-style escapes, fold typographic punctuation and collapse whitespace."""
    if not s:
        return ""
    decoded = _ESCAPE.sub(_decode_escape, s) if "\\" in s else s
    decoded = _fix_surrogates(decoded).translate(_PUNCT_FOLD)
    return " ".join(decoded.split())

"""What counts as white space in a text a person sends: the characters JSON Schema's (ECMA-262)
`\\s` matches, so that the OpenAPI schema's `pattern` and the server agree on which texts are
blank. Python's str.strip() also removes \\x1c-\\x1f, which the schema treats as text."""

from __future__ import annotations

WHITESPACE = (
    "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
    "\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
)
# A text with something besides white space (unanchored, as JSON Schema applies a pattern).
NON_BLANK_PATTERN = r"[^\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]"


def stripped(text: str) -> str:
    """The text without white space at its ends."""
    return text.strip(WHITESPACE)


def has_text(text: str | None) -> bool:
    """Whether the text holds something besides white space."""
    return bool(stripped(text or ""))

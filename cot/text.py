"""What text cot accepts in names and other fields people read: no control or direction characters.

Control characters (a tab, an escape sequence, a bell) in a name corrupt exports and
terminals and hide in lists; Unicode direction overrides (U+202A-U+202E, U+2066-U+2069)
make a name read differently from what it is. Multi-line fields keep line breaks and tabs.
One rule for the API (``cot.api.serializers``) and the cockpit (``cot.cockpit.mixins``).
"""

from __future__ import annotations

import unicodedata

DIRECTION_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
LINE_BREAKS = frozenset("\n\r\t")


def text_problem(value: str, *, multi_line: bool = False) -> str | None:
    """Why ``value`` is not acceptable text, or ``None`` when it is."""
    allowed = LINE_BREAKS if multi_line else frozenset()
    for char in value:
        if char in allowed:
            continue
        if unicodedata.category(char) == "Cc":
            return "Control characters are not allowed" + (" (line breaks and tabs are)." if multi_line else ".")
        if char in DIRECTION_CONTROLS:
            return "Text direction overrides (U+202A-U+202E, U+2066-U+2069) are not allowed."
    return None

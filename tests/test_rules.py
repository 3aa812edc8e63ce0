"""The character classes acsd/rules.py writes out mean what they say."""

from __future__ import annotations

import re
import sys

from acsd.rules import CONTROL, SPACE, WHITESPACE, class_of


def test_space_is_what_str_strip_removes_besides_control_characters():
    derived = class_of(
        [
            code
            for code in range(sys.maxunicode + 1)
            if chr(code).isspace() and not re.match(f"[{CONTROL}]", chr(code))
        ]
    )
    assert derived == SPACE


def test_whitespace_is_everything_str_strip_removes():
    derived = class_of([code for code in range(sys.maxunicode + 1) if chr(code).isspace()])
    assert derived == WHITESPACE


def test_class_of_writes_runs_as_ranges():
    assert class_of([0x20, 0xA0, 0x2000, 0x2001, 0x2002]) == r"\u0020\u00a0\u2000-\u2002"

"""Where a key sits in a profile's TOML text, so errors can say ``FILE:LINE``.

``tomllib`` gives values without positions. This scanner walks text that ``tomllib`` has
already accepted (so it need not handle invalid TOML) and records the line of every table
header, array-of-tables entry, key and inline-table / array element. Keys are addressed the way
errors name them: ``settings."wifi.2g.security"[1].path``, ``identity.macAddress[0].where``.
A key that is not found is located at its nearest recorded parent.
"""

from __future__ import annotations

import contextlib
import re

Part = str | int
_BARE = re.compile(r"[A-Za-z0-9_-]+")
_INDEX = re.compile(r"\[(\d+)\]")


def split_key(key: str) -> tuple[Part, ...]:
    """``a."b.c"[1].d`` -> ("a", "b.c", 1, "d")."""
    parts: list[Part] = []
    i = 0
    while i < len(key):
        ch = key[i]
        if ch == ".":
            i += 1
        elif ch == '"':
            end = key.index('"', i + 1)
            parts.append(key[i + 1 : end])
            i = end + 1
        elif ch == "[":
            found = _INDEX.match(key, i)
            if found is None:
                break
            parts.append(int(found.group(1)))
            i = found.end()
        else:
            end = i
            while end < len(key) and key[end] not in '.["':
                end += 1
            parts.append(key[i:end])
            i = end
    return tuple(parts)


class LineIndex:
    """Line numbers (1-based) of the keys of one TOML document."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line = 1
        self.found: dict[tuple[Part, ...], int] = {}
        # array-of-tables paths (their index inserted) -> entries seen so far
        self.arrays: dict[tuple[Part, ...], int] = {}
        # on text tomllib rejected, keep what was found before the bad spot
        with contextlib.suppress(ValueError, IndexError):
            self._document()

    def line_of(self, key: str) -> int | None:
        parts = split_key(key)
        for end in range(len(parts), 0, -1):
            line = self.found.get(parts[:end])
            if line is not None:
                return line
        return None

    # --- scanner ------------------------------------------------------------------------

    def _record(self, path: tuple[Part, ...]) -> None:
        self.found.setdefault(path, self.line)

    def _peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def _blank(self, newlines: bool) -> None:
        """Skip spaces, comments and (if asked) newlines."""
        text = self.text
        while self.pos < len(text):
            ch = text[self.pos]
            if ch in " \t\r":
                self.pos += 1
            elif ch == "\n" and newlines:
                self.line += 1
                self.pos += 1
            elif ch == "#":
                end = text.find("\n", self.pos)
                self.pos = len(text) if end < 0 else end
            else:
                return

    def _document(self) -> None:
        table: tuple[Part, ...] = ()
        while True:
            self._blank(newlines=True)
            if self.pos >= len(self.text):
                return
            if self._peek() == "[":
                table = self._header()
            else:
                self._keyval(table)
            self._blank(newlines=False)

    def _header(self) -> tuple[Part, ...]:
        double = self.text.startswith("[[", self.pos)
        self.pos += 2 if double else 1
        keys = self._key()
        self.pos += 2 if double else 1
        path: tuple[Part, ...] = ()
        for key in keys[:-1] if double else keys:
            path = self._into_array((*path, key))
        if not double:
            self._record(path)
            return path
        path = (*path, keys[-1])
        index = self.arrays.get(path, 0)
        self.arrays[path] = index + 1
        self._record(path)
        self._record((*path, index))
        return (*path, index)

    def _into_array(self, path: tuple[Part, ...]) -> tuple[Part, ...]:
        # `[a.b.c]` after `[[a.b]]` belongs to the last `a.b` entry
        count = self.arrays.get(path)
        return (*path, count - 1) if count else path

    def _key(self) -> list[str]:
        keys = []
        while True:
            self._blank(newlines=False)
            ch = self._peek()
            if ch in "\"'":
                keys.append(self._string())
            else:
                found = _BARE.match(self.text, self.pos)
                if found is None:
                    raise ValueError("no key")
                keys.append(found.group())
                self.pos = found.end()
            self._blank(newlines=False)
            if self._peek() != ".":
                return keys
            self.pos += 1

    def _keyval(self, table: tuple[Part, ...]) -> None:
        path = table + tuple(self._key())
        self._record(path)
        self._blank(newlines=False)
        if self._peek() != "=":
            raise ValueError("no =")
        self.pos += 1
        self._blank(newlines=False)
        self._value(path)

    def _value(self, path: tuple[Part, ...]) -> None:
        ch = self._peek()
        if ch in "\"'":
            self._string()
        elif ch == "{":
            self._record(path)
            self.pos += 1
            while True:
                self._blank(newlines=True)
                if self._peek() == "}":
                    self.pos += 1
                    return
                self._keyval(path)
                self._blank(newlines=True)
                if self._peek() == ",":
                    self.pos += 1
        elif ch == "[":
            self.pos += 1
            index = 0
            while True:
                self._blank(newlines=True)
                if self._peek() == "]":
                    self.pos += 1
                    return
                self._record((*path, index))
                self._value((*path, index))
                self._blank(newlines=True)
                if self._peek() == ",":
                    self.pos += 1
                    index += 1
        else:
            text = self.text
            while self.pos < len(text) and text[self.pos] not in ",]}\n#":
                self.pos += 1

    def _string(self) -> str:
        text = self.text
        quote = text[self.pos]
        triple = text.startswith(quote * 3, self.pos)
        self.pos += 3 if triple else 1
        start = self.pos
        while True:
            ch = text[self.pos]
            if ch == "\\" and quote == '"':
                if text[self.pos + 1] == "\n":
                    self.line += 1
                self.pos += 2
                continue
            if ch == "\n":
                self.line += 1
            if ch == quote and (not triple or text.startswith(quote * 3, self.pos)):
                value = text[start : self.pos]
                self.pos += 3 if triple else 1
                return value
            self.pos += 1

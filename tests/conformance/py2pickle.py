"""Write pickles the way Python 2's cPickle wrote REFER's `refs(<splitBy>).p` files (protocol 0 and protocol 2).

Python 3's `pickle.dumps(..., protocol=0|2)` is NOT what the original files hold: Python 3 writes `str` as UNICODE
opcodes and `bytes` through a `_codecs.encode` global, while Python 2 wrote its byte strings as STRING (`S'...'`,
protocol 0) or SHORT_BINSTRING/BINSTRING (`U`/`T`, protocol 2), its `unicode` objects as UNICODE (`V`) /
BINUNICODE (`X`), memoised every string and container (PUT/GET, so repeated dict keys come back through GET), wrote
64-bit ints that do not fit 4 bytes as text INT (`I...\\n`) even in protocol 2, and batched list/dict items with
APPEND(S)/SETITEM(S). lichengunc/refer's `refer.py` (and READ's copy, `dataloaders/refer.py`) read these files with a
plain `pickle.load`. This module reproduces that byte layout for plain data (None, bool, int, float, str, list,
dict); an ASCII-only `str` is written as a Python 2 byte string, any other `str` as a Python 2 unicode string.
"""

from __future__ import annotations

import struct
from typing import Any


class _Py2Pickler:
    def __init__(self, protocol: int) -> None:
        if protocol not in (0, 2):
            raise ValueError(f"Python 2 style pickles are written with protocol 0 or 2, got {protocol}")
        self.protocol = protocol
        self.out = bytearray()
        self.memo: dict[Any, int] = {}

    # -- memo (cPickle numbers memo entries from 1)
    def _put(self, memo_key: Any) -> None:
        idx = len(self.memo) + 1
        self.memo[memo_key] = idx
        if self.protocol == 0:
            self.out += b"p%d\n" % idx
        elif idx < 256:
            self.out += b"q" + bytes([idx])
        else:
            self.out += b"r" + struct.pack("<I", idx)

    def _get(self, idx: int) -> None:
        if self.protocol == 0:
            self.out += b"g%d\n" % idx
        elif idx < 256:
            self.out += b"h" + bytes([idx])
        else:
            self.out += b"j" + struct.pack("<I", idx)

    def dumps(self, obj: Any) -> bytes:
        if self.protocol == 2:
            self.out += b"\x80\x02"
        self.save(obj)
        self.out += b"."
        return bytes(self.out)

    def save(self, obj: Any) -> None:
        if obj is None:
            self.out += b"N"
        elif isinstance(obj, bool):
            if self.protocol == 0:
                self.out += b"I01\n" if obj else b"I00\n"
            else:
                self.out += b"\x88" if obj else b"\x89"
        elif isinstance(obj, int):
            self._save_int(obj)
        elif isinstance(obj, float):
            self.out += (b"F" + repr(obj).encode() + b"\n") if self.protocol == 0 else (b"G" + struct.pack(">d", obj))
        elif isinstance(obj, str):
            self._save_str(obj)
        elif isinstance(obj, list):
            self._save_list(obj)
        elif isinstance(obj, dict):
            self._save_dict(obj)
        else:
            raise TypeError(f"py2 pickler: unsupported type {type(obj).__name__}")

    def _save_int(self, value: int) -> None:
        if not -(2**63) <= value < 2**63:
            self.out += b"L%dL\n" % value  # a Python 2 long
        elif self.protocol == 0 or not -(2**31) <= value < 2**31:
            self.out += b"I%d\n" % value  # cPickle: text INT in protocol 0, and for 64-bit ints in any protocol
        elif 0 <= value < 256:
            self.out += b"K" + bytes([value])
        elif 0 <= value < 65536:
            self.out += b"M" + struct.pack("<H", value)
        else:
            self.out += b"J" + struct.pack("<i", value)

    def _save_str(self, s: str) -> None:
        key = ("str", s)
        if key in self.memo:
            self._get(self.memo[key])
            return
        if s.isascii():  # a Python 2 byte string (`str`)
            data = s.encode("ascii")
            if self.protocol == 0:
                self.out += b"S" + repr(data)[1:].encode("ascii") + b"\n"
            elif len(data) < 256:
                self.out += b"U" + bytes([len(data)]) + data
            else:
                self.out += b"T" + struct.pack("<i", len(data)) + data
        else:  # a Python 2 `unicode`
            if self.protocol == 0:
                escaped = s.replace("\\", "\\u005c").replace("\n", "\\u000a")
                self.out += b"V" + escaped.encode("raw-unicode-escape") + b"\n"
            else:
                data = s.encode("utf-8")
                self.out += b"X" + struct.pack("<I", len(data)) + data
        self._put(key)

    def _save_list(self, items: list) -> None:
        self.out += b"(l" if self.protocol == 0 else b"]"
        self._put(("id", id(items)))
        if self.protocol == 0:
            for item in items:
                self.save(item)
                self.out += b"a"
        elif len(items) == 1:
            self.save(items[0])
            self.out += b"a"
        elif items:
            for start in range(0, len(items), 1000):  # cPickle's batch size
                self.out += b"("
                for item in items[start:start + 1000]:
                    self.save(item)
                self.out += b"e"

    def _save_dict(self, d: dict) -> None:
        self.out += b"(d" if self.protocol == 0 else b"}"
        self._put(("id", id(d)))
        pairs = list(d.items())
        if self.protocol == 0:
            for k, v in pairs:
                self.save(k)
                self.save(v)
                self.out += b"s"
        elif len(pairs) == 1:
            self.save(pairs[0][0])
            self.save(pairs[0][1])
            self.out += b"s"
        elif pairs:
            for start in range(0, len(pairs), 1000):
                self.out += b"("
                for k, v in pairs[start:start + 1000]:
                    self.save(k)
                    self.save(v)
                self.out += b"u"


def py2_dumps(obj: Any, protocol: int) -> bytes:
    """`obj` pickled as Python 2's cPickle.dumps(obj, protocol) would have written it (protocol 0 or 2)."""
    return _Py2Pickler(protocol).dumps(obj)

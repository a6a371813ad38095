"""Load REFER `refs(<splitBy>).p` pickles without executing code.

A pickle is a program: `pickle.load` can call any importable function (`os.system`, ...). The refs files only hold
lists/dicts of strings and numbers, so the unpickler below refuses every global lookup except the builtin
container types set/frozenset/bytearray and numpy's scalar reconstructor and dtype; the opcodes that build
builtin containers and scalars need none. A pickle that references any callable fails before anything runs.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

import numpy as np


class UnsafePickleError(ValueError):
    """The pickle tried to reference a global (a class or function); nothing was executed."""


_SCALAR = (np._core if hasattr(np, "_core") else np.core).multiarray.scalar


def _numpy_scalar(dtype: np.dtype, data: Any = None) -> Any:
    """numpy's scalar reconstructor (what `pickle.dumps(np.int64(3))` calls), returned as the Python scalar."""
    value = _SCALAR(dtype, data) if data is not None else _SCALAR(dtype)
    return value.item() if isinstance(value, np.generic) else value


_SAFE_GLOBALS = {
    ("builtins", "set"): set, ("builtins", "frozenset"): frozenset, ("builtins", "bytearray"): bytearray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar, ("numpy._core.multiarray", "scalar"): _numpy_scalar,
}
"""Container types older protocols reach through a global lookup, and the two numpy names a pickled numpy scalar
needs (a REFER pickle re-saved by Python 3 may hold `np.int64` ids); constructing them runs no user code. numpy
scalars come back as Python scalars."""


class _ContainersOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        module = "builtins" if module == "__builtin__" else module  # Python 2 pickles (the REFER files)
        if (module, name) in _SAFE_GLOBALS:
            return _SAFE_GLOBALS[(module, name)]
        raise UnsafePickleError(
            f"refuses global {module}.{name}: a refs pickle may hold only builtin containers and scalars"
        )

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(f"refuses persistent id {pid!r}: a refs pickle may hold only plain data")


def load_plain_pickle(data: bytes, *, name: str = "<bytes>") -> Any:
    """Unpickle `data` admitting only builtin containers (list, dict, tuple, set) and scalars (numpy's as Python's).

    Raises:
        UnsafePickleError: the pickle references a global (class, function); message names `name`.
        ValueError: the bytes are not a readable pickle; message names `name`.
    """
    try:
        return _ContainersOnlyUnpickler(io.BytesIO(data), encoding="latin1").load()
    except UnsafePickleError as err:
        raise UnsafePickleError(f"{name}: {err}") from err
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError, AttributeError) as err:
        raise ValueError(f"{name}: not a readable pickle ({type(err).__name__}: {err})") from err

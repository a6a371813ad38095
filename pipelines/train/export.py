"""Write the exported model folder (`<run_dir>/export`) so it only ever appears complete."""

from __future__ import annotations

import tempfile
from collections.abc import Callable

from pipelines import storage


def export_model(write: Callable[[str], None], out_uri: str) -> None:
    """Call `write(local_dir)` on an empty local folder; the result replaces `out_uri` (local path or fsspec URI)
    through `storage.atomic_folder`, so the export only ever appears complete. A remote target is written locally
    first and uploaded into the temporary folder."""
    with storage.atomic_folder(out_uri) as tmp_uri:
        if "://" not in tmp_uri or tmp_uri.startswith("file://"):
            write(storage.filesystem(tmp_uri)[1])
            return
        fs, tmp_path = storage.filesystem(tmp_uri)
        with tempfile.TemporaryDirectory(prefix="read-export-") as local:
            write(local)
            fs.put(local.rstrip("/") + "/", tmp_path, recursive=True)

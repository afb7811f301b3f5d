"""A minimal reader and writer of the safetensors format, with numpy only.

Blender ships no safetensors or torch, and checkpoints must never be unpickled, so the add-on
reads its weights with this. Format (https://huggingface.co/docs/safetensors): an unsigned
64-bit little-endian header length ``N``, then ``N`` bytes of UTF-8 JSON
``{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}``, then
the raw little-endian tensor bytes (offsets relative to the end of the header).
"""
from __future__ import annotations

import json
import os
import struct

import numpy as np

from ..errors import GesturaError

_DTYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16,
    "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8,
    "U8": np.uint8, "BOOL": np.bool_,
}
_NAMES = {np.dtype(v).str.lstrip("<>|="): k for k, v in _DTYPES.items()}
_MAX_HEADER = 100 * 1024 * 1024


class SafetensorsError(GesturaError, ValueError):
    """The file is not a readable safetensors file; the message says what is wrong."""


def _dtype_name(array: np.ndarray) -> str:
    key = array.dtype.newbyteorder("<").str.lstrip("<>|=")
    if key not in _NAMES:
        raise SafetensorsError(f"cannot store dtype {array.dtype} in safetensors")
    return _NAMES[key]


def save_file(tensors: dict, path, metadata: dict | None = None) -> None:
    """Write ``tensors`` (name -> numpy array) and string ``metadata`` to ``path`` atomically."""
    header: dict = {}
    if metadata:
        for key, value in metadata.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise SafetensorsError(f"safetensors metadata must map str to str, got {key!r}: {type(value).__name__}")
        header["__metadata__"] = dict(metadata)
    offset = 0
    blobs = []
    for name in sorted(tensors):
        array = np.ascontiguousarray(tensors[name])
        dtype = _dtype_name(array)
        data = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": dtype, "shape": list(array.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)  # data starts 8-byte aligned
    path = os.fspath(path)
    tmp = path + ".partial"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for blob in blobs:
            f.write(blob)
    os.replace(tmp, path)


def read_header(path) -> tuple[dict, dict, int, int]:
    """``(tensor entries, metadata, data start, file size)``; checks the header against the file size."""
    path = os.fspath(path)
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise SafetensorsError(f"'{path}' is {size} bytes long, too short for a safetensors header (truncated?)")
        (length,) = struct.unpack("<Q", head)
        if length > _MAX_HEADER:
            raise SafetensorsError(f"'{path}' is not a safetensors file (its first 8 bytes are not a header length)")
        if 8 + length > size:
            raise SafetensorsError(f"'{path}' is truncated or not a safetensors file (it announces a {length}-byte "
                                   f"header, but has {size} bytes)")
        raw = f.read(length)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise SafetensorsError(f"'{path}' has an unreadable safetensors header: it is corrupt or not safetensors") from None
    if not isinstance(header, dict):
        raise SafetensorsError(f"'{path}' has a safetensors header that is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    data_start = 8 + length
    for name, entry in header.items():
        try:
            dtype = entry["dtype"]
            shape = [int(s) for s in entry["shape"]]
            begin, end = (int(v) for v in entry["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise SafetensorsError(f"'{path}': tensor '{name}' has a malformed header entry") from None
        if dtype not in _DTYPES:
            raise SafetensorsError(f"'{path}': tensor '{name}' has dtype {dtype}, which this reader does not support")
        expected = int(np.prod(shape, dtype=np.int64)) * np.dtype(_DTYPES[dtype]).itemsize
        if end - begin != expected or begin < 0:
            raise SafetensorsError(f"'{path}': tensor '{name}' has {end - begin} bytes for shape {shape} {dtype}")
        if data_start + end > size:
            raise SafetensorsError(
                f"'{path}' is truncated: tensor '{name}' ends at byte {data_start + end} but the file has {size}")
    return header, metadata, data_start, size


def load_file(path) -> tuple[dict, dict]:
    """``(tensors: name -> numpy array, metadata: dict[str, str])``."""
    header, metadata, data_start, _ = read_header(path)
    tensors = {}
    with open(os.fspath(path), "rb") as f:
        for name, entry in header.items():
            begin, end = entry["data_offsets"]
            f.seek(data_start + begin)
            data = f.read(end - begin)
            dtype = np.dtype(_DTYPES[entry["dtype"]]).newbyteorder("<")
            tensors[name] = np.frombuffer(data, dtype=dtype).reshape(entry["shape"]).astype(dtype.newbyteorder("="))
    return tensors, metadata

"""Where an ONNX graph file keeps its weights: the external-data locations it names, read without onnx.

A graph over protobuf's 2 GB limit keeps its tensors in a data file beside it; each tensor names the
file in ``external_data`` (``location``, relative to the graph's folder). ONNX Runtime opens
whatever the graph names, so a bundle's graphs are read here first and a location outside the
bundle (absolute, or climbing with ``..``) is refused before ONNX Runtime sees the graph.

This walks the protobuf wire format over the file (memory-mapped; weights stored inline are skipped
by their length, not read) through the messages that can hold a tensor::

    ModelProto.graph(7) .functions(25).node(7) .training_info(20).{initialization(1), algorithm(2)}
    GraphProto.node(1) .initializer(5) .sparse_initializer(15)
    NodeProto.attribute(5): t(5) g(6) tensors(10) graphs(11) sparse_tensor(22) sparse_tensors(23)
    SparseTensorProto.values(1) .indices(2);  TensorProto.external_data(13): {key(1), value(2)}

Standard library only: the serving install has no ``onnx`` package.
"""
from __future__ import annotations

import mmap
from pathlib import Path

_DESCEND = {
    "model": {7: "graph", 25: "function", 20: "training"},
    "training": {1: "graph", 2: "graph"},
    "function": {7: "node"},
    "graph": {1: "node", 5: "tensor", 15: "sparse"},
    "node": {5: "attribute"},
    "attribute": {5: "tensor", 6: "graph", 10: "tensor", 11: "graph", 22: "sparse", 23: "sparse"},
    "sparse": {1: "tensor", 2: "tensor"},
    "tensor": {13: "entry"},
}
_DEPTH = 64   # nested subgraphs deeper than this are refused as malformed


class GraphFileError(ValueError):
    """The file is not a well-formed ONNX protobuf."""


def _varint(buf, pos: int, end: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= end or shift > 63:
            raise GraphFileError("truncated or overlong varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _fields(buf, start: int, end: int):
    """(field number, start, end) of each length-delimited field in ``buf[start:end]``."""
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos, end)
        wire = key & 7
        if wire == 0:
            _, pos = _varint(buf, pos, end)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            size, pos = _varint(buf, pos, end)
            if pos + size > end:
                raise GraphFileError("a field runs past the end of its message")
            yield key >> 3, pos, pos + size
            pos += size
        else:
            raise GraphFileError(f"unsupported wire type {wire}")
    if pos != end:
        raise GraphFileError("a fixed-width field runs past the end of its message")


def _entry(buf, start: int, end: int) -> tuple[str, str]:
    parts = {1: "", 2: ""}
    for field, s, e in _fields(buf, start, end):
        if field in parts:
            parts[field] = bytes(buf[s:e]).decode("utf-8", "replace")
    return parts[1], parts[2]


def _walk(buf, kind: str, start: int, end: int, out: set, depth: int) -> None:
    if depth > _DEPTH:
        raise GraphFileError("subgraphs nested too deep")
    table = _DESCEND[kind]
    for field, s, e in _fields(buf, start, end):
        child = table.get(field)
        if child == "entry":
            key, value = _entry(buf, s, e)
            if key == "location":
                out.add(value)
        elif child is not None:
            _walk(buf, child, s, e, out, depth + 1)


def external_locations(path: str | Path) -> set[str]:
    """Every external-data ``location`` the ONNX graph file at ``path`` names (as written in it)."""
    with open(path, "rb") as f:
        if Path(path).stat().st_size == 0:
            raise GraphFileError("empty file")
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf, memoryview(buf) as view:
            out: set[str] = set()
            _walk(view, "model", 0, len(view), out, 0)
            return out


def outside(location: str) -> bool:
    """Whether a location escapes the graph's folder: absolute, a drive, or climbing with ``..``."""
    p = Path(location)
    return location == "" or p.is_absolute() or bool(p.drive) or ".." in p.parts or "\\" in location

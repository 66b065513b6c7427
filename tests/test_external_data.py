"""Graphs with their weights in external-data files (as graphs over 2 GB must be): they export, load
from any working directory and serve what the inline graph serves; a tampered data file, and a
graph that names a data file outside the bundle or one the manifest does not list, are refused by
name before ONNX Runtime opens the graph."""
from __future__ import annotations

import json
import os
import shutil

import numpy as np
import onnx
import pytest

from core.errors import BundleError
from core.hashing import sha256_file
from core.onnx_refs import GraphFileError, external_locations
from export.spec import ExportSpec
from export.to_onnx import export_bundle
from runtime import RewardEngine

PROMPTS = ["How do I sort a list in Python?", "Name a prime.", "Why is the sky blue?"]
ANSWERS = ["Use sorted(xs).", "7", "Rayleigh scattering of sunlight by air molecules, which favours short wavelengths."]


@pytest.fixture(scope="module")
def pair(tiny_checkpoints, tmp_path_factory):
    root = tmp_path_factory.mktemp("ext")
    inline = export_bundle(tiny_checkpoints["rodos"], ExportSpec("rodos"), root / "inline", val_pairs=4)
    external = export_bundle(tiny_checkpoints["rodos"], ExportSpec("rodos", external_data=True), root / "external",
                             val_pairs=4)
    return inline, external


def test_external_data_serves_what_the_inline_graph_serves_from_anywhere(pair, tmp_path, monkeypatch):
    inline, external = pair
    manifest = json.loads((external / "manifest.json").read_text())
    for role, graph in manifest["graphs"].items():
        assert graph["data"] == [graph["file"] + ".data"] and graph["data"][0] in manifest["files"]
        assert (external / graph["data"][0]).stat().st_size > (external / graph["file"]).stat().st_size
    assert all("data" not in g for g in json.loads((inline / "manifest.json").read_text())["graphs"].values())
    want = RewardEngine.from_bundle(inline).score(PROMPTS, ANSWERS).rewards
    monkeypatch.chdir(tmp_path)                        # ORT resolves data beside the graph, not in the cwd
    got = RewardEngine.from_bundle(external).score(PROMPTS, ANSWERS).rewards
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_a_tampered_data_file_is_refused_by_name(pair, tmp_path):
    bundle = shutil.copytree(pair[1], tmp_path / "b")
    data = bundle / "router.onnx.data"
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    data.write_bytes(bytes(raw))
    with pytest.raises(BundleError, match="bundle file 'router.onnx.data' .* does not match its checksum"):
        RewardEngine.from_bundle(bundle)


def _point_data_at(bundle, role_file: str, location: str) -> None:
    """Rewrite the graph's external-data locations and re-checksum it, so only the reference is wrong."""
    model = onnx.load(str(bundle / role_file), load_external_data=False)
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = location
    onnx.save(model, str(bundle / role_file))
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["files"][role_file] = sha256_file(bundle / role_file)
    (bundle / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("location, why", [("../router.onnx.data", "outside the bundle"),
                                           ("/tmp/router.onnx.data", "outside the bundle"),
                                           ("other.data", "does not list in graphs.router.data")])
def test_a_data_reference_outside_the_bundle_or_unlisted_is_refused(pair, tmp_path, location, why):
    bundle = shutil.copytree(pair[1], tmp_path / "b")
    shutil.copyfile(bundle / "router.onnx.data", tmp_path / "router.onnx.data")   # the escape would resolve
    shutil.copyfile(bundle / "router.onnx.data", bundle / "other.data")
    _point_data_at(bundle, "router.onnx", location)
    with pytest.raises(BundleError, match=f"bundle file 'router.onnx' keeps weights in '{location}', which .*{why}"):
        RewardEngine.from_bundle(bundle)


def test_the_reference_reader_reads_what_onnx_writes_and_refuses_garbage(pair, tmp_path):
    external = pair[1]
    assert external_locations(external / "router.onnx") == {"router.onnx.data"}
    assert external_locations(pair[0] / "router.onnx") == set()
    (tmp_path / "bad.onnx").write_bytes(b"\x3a\xff\xff\xff\xff\x0f")    # field 7 whose length runs past the end
    with pytest.raises(GraphFileError):
        external_locations(tmp_path / "bad.onnx")
    os.truncate(tmp_path / "bad.onnx", 0)
    with pytest.raises(GraphFileError, match="empty"):
        external_locations(tmp_path / "bad.onnx")

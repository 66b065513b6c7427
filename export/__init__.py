"""ONNX export of trained checkpoints into bundles (see export/to_onnx.py). Importing it does nothing."""

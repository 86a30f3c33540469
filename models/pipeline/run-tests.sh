#!/usr/bin/env bash
# The training pipeline's tests (pytest). Skipped, visibly, where Debian's PyTorch is not installed:
# the service itself never needs Python.
set -euo pipefail
cd "$(dirname "$0")"
if ! /usr/bin/python3 -c 'import torch, onnx, jsonschema' 2>/dev/null; then
  echo "SKIPPED: pipeline tests (pytest) need Debian's python3-torch python3-torchvision python3-onnx python3-jsonschema python3-pytest"
  exit 0
fi
PYTHONPATH=. exec /usr/bin/python3 -m pytest -q -p no:warnings -p no:cacheprovider tests

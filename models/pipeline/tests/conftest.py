import importlib.util

import pytest

HAVE_TORCH = importlib.util.find_spec("torch") is not None


def pytest_collection_modifyitems(config, items):
    if HAVE_TORCH:
        return
    skip = pytest.mark.skip(reason="PyTorch is not installed (apt-get install python3-torch python3-torchvision python3-onnx)")
    for item in items:
        item.add_marker(skip)

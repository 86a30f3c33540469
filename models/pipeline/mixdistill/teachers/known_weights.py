"""Provenance of the weight sets this project has met, recognised by content digest, so that a bundle's
manifest and model card state where its teacher came from and under what licence, word for word as
../shared/weights/README.md does. Weights not listed here are reported as user-supplied."""
from __future__ import annotations

import hashlib
from pathlib import Path

KNOWN = {
    # ../shared/weights/torchvision-mobilenet_v2-quantized/mobilenet_quantized.pt
    "2778381c5eb7639a2229bc39567cf644226e5aa3d3a1d46dfcee70b373738498": {
        "name": "torchvision MobileNetV2, post-training-quantized (ImageNet, int8, QNNPACK), TorchScript",
        "origin": "pytorch/ios-demo-app at commit b8f52b772b98a48f4d3bb14e8eb977724a66836b, "
                  "PyTorchDemo/PyTorchDemo/ImageClassification/model/mobilenet_quantized.pt",
        "license": "repository licence BSD-style; the weights are torchvision's (BSD-3-Clause)",
        "note": "ported to float with the dequantized weights (BatchNorm already folded, ReLU in place of ReLU6)",
    },
    # ../shared/weights/resnet18-imagenet-npy (a folder: see digest())
    "f1dafa644a79a8dc429996423944152c01f43d47094e986eafd233a9e789457d": {
        "name": "ResNet-18 (ImageNet), conv1 and layer1-layer3, one NumPy file per tensor, BatchNorm folded",
        "origin": "shiyegao/CudaResnet18 at commit 85b5947966eba80da43a2341a0968a80797a5019, folder weights/, "
                  "which its README says were extracted from an ONNX ResNet-18",
        "license": "the repository states no license; most likely torchvision's resnet18 (BSD-3-Clause), "
                   "but that could not be proven without layer4",
        "note": "layer4 is absent, so it cannot be tapped",
    },
}


def digest(weights: Path) -> str:
    """sha256 of a file; for a folder, sha256 over its files' names and sha256s in name order."""
    if weights.is_file():
        return _file_sha256(weights)
    h = hashlib.sha256()
    for f in sorted(p for p in weights.iterdir() if p.is_file()):
        h.update(f.name.encode() + b"\0" + _file_sha256(f).encode() + b"\n")
    return h.hexdigest()


def _file_sha256(file: Path) -> str:
    # streamed: a wide ResNet's state dict is 263 MB, and torch.load reads it again right after
    with open(file, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()

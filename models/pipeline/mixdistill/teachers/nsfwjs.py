"""Read the Keras networks that the npm package nsfwjs ships (tfjs layers format, browserify-wrapped).

The package is a pinned devDependency of the repo; nothing of it is copied into the repo. Node is used to
evaluate the UMD bundles because they are JavaScript, not JSON.
"""
from __future__ import annotations

import base64
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[4]
NSFWJS_VERSION = "4.4.0"
MODELS = {"mobilenet_v2": "mobilenet_v2", "inception_v3": "inception_v3"}

_DUMP_JS = r"""
const path = require('path');
const dir = process.argv[1];
const model = require(path.join(dir, 'model.min.js'));
const shards = model.weightsManifest.flatMap(g => g.paths).map(p => require(path.join(dir, p + '.min.js')));
process.stdout.write(JSON.stringify({ modelTopology: model.modelTopology, weightsManifest: model.weightsManifest, shards }));
"""


@dataclass
class KerasArtifacts:
    topology: dict
    weights: dict[str, np.ndarray]
    source: dict


def package_dir(root: Path = REPO_ROOT) -> Path:
    pkg = root / "node_modules" / "nsfwjs"
    if not (pkg / "package.json").exists():
        raise FileNotFoundError(f"nsfwjs is not installed under {pkg}: run `npm ci` in the repo root first")
    version = json.loads((pkg / "package.json").read_text())["version"]
    if version != NSFWJS_VERSION:
        raise RuntimeError(f"nsfwjs {version} found, {NSFWJS_VERSION} expected (the port was checked against it)")
    return pkg


def dequantize(spec: dict, raw: bytes, offset: int) -> tuple[np.ndarray, int]:
    shape = spec["shape"]
    count = int(np.prod(shape)) if shape else 1
    q = spec.get("quantization")
    if q is None:
        if spec["dtype"] != "float32":
            raise ValueError(f"unsupported weight dtype {spec['dtype']} for {spec['name']}")
        arr = np.frombuffer(raw, dtype="<f4", count=count, offset=offset)
        return arr.reshape(shape).astype(np.float32), offset + 4 * count
    if q["dtype"] != "uint8":
        raise ValueError(f"unsupported quantization {q['dtype']} for {spec['name']}")
    arr = np.frombuffer(raw, dtype=np.uint8, count=count, offset=offset).astype(np.float64)
    return (q["min"] + q["scale"] * arr).reshape(shape).astype(np.float32), offset + count


def load(name: str, root: Path = REPO_ROOT) -> KerasArtifacts:
    if name not in MODELS:
        raise ValueError(f"unknown nsfwjs model {name!r}; known: {sorted(MODELS)}")
    mdir = package_dir(root) / "dist" / "models" / MODELS[name]
    out = subprocess.run(["node", "-e", _DUMP_JS, str(mdir)], check=True, capture_output=True, text=True).stdout
    data = json.loads(out)
    raw = b"".join(base64.b64decode(s) for s in data["shards"])
    weights: dict[str, np.ndarray] = {}
    offset = 0
    for group in data["weightsManifest"]:
        for spec in group["weights"]:
            weights[spec["name"]], offset = dequantize(spec, raw, offset)
    if offset != len(raw):
        raise ValueError(f"weights manifest covers {offset} bytes of {len(raw)}")
    return KerasArtifacts(
        topology=data["modelTopology"],
        weights=weights,
        source={"package": "nsfwjs", "version": NSFWJS_VERSION, "model": name, "license": "MIT",
                "note": "ImageNet-initialised Keras network fine-tuned by nsfwjs on its own photo data; not the pristine ImageNet weights"},
    )

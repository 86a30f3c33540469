"""What the studies share: a bundle's fusion settings and the runs it was exported from, loaded side by side."""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pipeline"))
from mixdistill import fusion_select  # noqa: E402
from mixdistill.anomaly_map import blur  # noqa: E402
from mixdistill.members import Members  # noqa: E402


def sampled_pixel_auroc(negatives: np.ndarray, positives: np.ndarray, limit: int) -> float:
    """Pixel AUROC over at most `limit` normal pixels, drawn with a fixed seed so that the sort stays small."""
    sample = np.random.default_rng(0).choice(negatives, min(limit, len(negatives)), replace=False)
    return fusion_select.auroc(np.r_[sample, positives], np.r_[np.zeros(len(sample), bool), np.ones(len(positives), bool)])


def output_names(members: Members) -> list[str]:
    """Every student output of the runs, in the order of Members.collect_maps."""
    return [n for member in members.output_names() for n in member]


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--bundle", type=Path, required=True)
    ap.add_argument("--run", type=Path, action="append", required=True, help="the bundle's runs, in its order")


@dataclass
class BundleRuns:
    fusion: dict  # the manifest's fusion section
    paths: dict[str, dict]  # its paths by student output name
    members: Members

    @classmethod
    def load(cls, args: argparse.Namespace) -> "BundleRuns":
        torch.set_num_threads(2)
        fusion = json.loads((args.bundle / "manifest.json").read_text())["fusion"]
        return cls(fusion, {p["student"]: p for p in fusion["paths"]}, Members.load(args.run, "best.pt"))

    @property
    def names(self) -> list[str]:
        """Every student output, in the order of Members.collect_maps."""
        return output_names(self.members)

    def chosen(self) -> dict[str, float]:
        """The bundle's own weights, for the paths it uses."""
        return {n: p["weight"] for n, p in self.paths.items() if p["weight"] > 0}

    def all_direct(self) -> dict[str, float]:
        """Every direct path, equal weights within a member summing to 1 (STPM sums all its layers' maps)."""
        direct = [[n for n in member if n.startswith("direct.")] for member in self.members.output_names()]
        return {n: 1.0 / len(m) for m in direct for n in m}

    def blended(self, a: float) -> dict[str, float]:
        """(1 - a) * the bundle's own weights + a * all direct paths' weights."""
        own, direct = self.chosen(), self.all_direct()
        return {n: (1 - a) * own.get(n, 0.0) + a * direct.get(n, 0.0) for n in {*own, *direct}}

    def normalised(self, maps: dict[str, np.ndarray], name: str) -> np.ndarray:
        return (maps[name] - self.paths[name]["offset"]) / self.paths[name]["scale"]

    def smooth(self, fused: np.ndarray) -> np.ndarray:
        return blur(torch.from_numpy(fused.astype(np.float32)), self.fusion["sigma"], self.fusion["kernelSize"]).numpy()

    def heatmap(self, maps: dict[str, np.ndarray], weights: dict[str, float]) -> np.ndarray:
        """The bundle's fusion (normalise, weigh, sum, smooth) with other weights."""
        return self.smooth(sum(w * self.normalised(maps, n) for n, w in weights.items()))

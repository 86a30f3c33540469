import json

import pytest

torch = pytest.importorskip("torch")

from mixdistill.device import Precision, resolve_device  # noqa: E402
from mixdistill.synthetic import write  # noqa: E402
from mixdistill.train import TrainConfig, train  # noqa: E402
from mixdistill.data import PREPARE_JS  # noqa: E402

needs_service = pytest.mark.skipif(not PREPARE_JS.exists(), reason="the service is not built (npm run build)")
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="SKIPPED: no CUDA here (Debian's torch has no CUDA build)")


def test_device_choice():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="use --device cpu or auto"):
            resolve_device("cuda")
    with pytest.raises(ValueError, match="needs --device cuda"):
        Precision(torch.device("cpu"), amp=True)


def _tiny(tmp_path, name: str) -> TrainConfig:
    if not (tmp_path / "data" / "synthetic").exists():
        write(tmp_path / "data", size=80, train=16, test_good=2, test_bad=2)
    return TrainConfig(data=str(tmp_path / "data"), category="synthetic", out=str(tmp_path / name), width=64, height=64, epochs=2,
                       batch=4, widths=[16, 16, 32], blocks=1, threads=2, val_fraction=0.25, denoise=0.5, hard_fraction=0.5)


@needs_service
def test_device_is_where_a_run_computes_not_what_it_is(tmp_path):
    cfg = _tiny(tmp_path, "run")
    train(cfg, device="cpu")
    assert "device" not in json.loads((tmp_path / "run" / "config.json").read_text())
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["device"] for r in log] == ["cpu", "cpu"]
    # the same run resumes on another device choice (a checkpoint's tensors are on the CPU)
    cfg.epochs = 2
    train(cfg, device="auto")
    state = torch.load(tmp_path / "run" / "last.pt", map_location="cpu")
    assert all(v.device.type == "cpu" for v in state["student"].values())


@needs_service
@needs_cuda
def test_cuda_training_follows_the_cpu_run(tmp_path):
    cpu, cuda, amp = _tiny(tmp_path, "cpu"), _tiny(tmp_path, "cuda"), _tiny(tmp_path, "amp")
    train(cpu, device="cpu")
    train(cuda, device="cuda")
    train(amp, device="cuda", amp=True)
    losses = {n: [json.loads(line)["val_loss"] for line in (tmp_path / n / "log.jsonl").read_text().splitlines()] for n in ("cpu", "cuda", "amp")}
    # same initial weights and draws; only the arithmetic differs (cuDNN's kernels, float16)
    assert losses["cuda"] == pytest.approx(losses["cpu"], rel=1e-3)
    assert losses["amp"] == pytest.approx(losses["cpu"], rel=2e-2)

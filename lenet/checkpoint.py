"""Saving and loading a trained model with what is needed to use it again."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from lenet.data import DeviceData
from lenet.model import LeNet5
from lenet.train import TrainConfig, TrainResult


def save_checkpoint(path: Path, result: TrainResult, data: DeviceData) -> None:
    """Model weights, the config that trained them and the input normalisation, written
    atomically (a crash never leaves half a checkpoint under the final name)."""
    state = {k: v.detach().cpu() for k, v in result.model.state_dict().items()}
    blob: dict[str, Any] = {
        "model_state": state,
        "config": result.config.to_dict(),
        "mean": list(data.mean),
        "std": list(data.std),
        "data_checksum": data.checksum,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".pt")
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(blob, fh)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_checkpoint(path: Path) -> tuple[LeNet5, TrainConfig, dict[str, Any]]:
    blob = torch.load(path, map_location="cpu", weights_only=True)
    model = LeNet5()
    model.load_state_dict(blob["model_state"])
    return model, TrainConfig.from_dict(blob["config"]), blob

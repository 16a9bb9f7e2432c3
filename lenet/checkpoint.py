"""Saving and loading a trained model with what is needed to use it again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from lenet.atomic import atomic_write
from lenet.config import TrainConfig
from lenet.data import DeviceData
from lenet.model import LeNet5
from lenet.train import TrainResult


def save_checkpoint(path: Path, result: TrainResult, data: DeviceData) -> None:
    """Model weights, the config that trained them and the input normalisation, written
    atomically (a crash never leaves half a checkpoint under the final name)."""
    # clone: the parameters are views of one flat buffer (lenet.flat); save each on its own.
    state = {k: v.detach().cpu().clone() for k, v in result.model.state_dict().items()}
    blob: dict[str, Any] = {
        "model_state": state,
        "config": result.config.to_dict(),
        "mean": list(data.mean),
        "std": list(data.std),
        "data_checksum": data.checksum,
    }
    atomic_write(path, lambda fh: torch.save(blob, fh))


def load_checkpoint(path: Path) -> tuple[LeNet5, TrainConfig, dict[str, Any]]:
    blob = torch.load(path, map_location="cpu", weights_only=True)
    model = LeNet5()
    model.load_state_dict(blob["model_state"])
    return model, TrainConfig.from_dict(blob["config"]), blob

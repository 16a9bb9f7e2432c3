"""Pure-PyTorch training engine: LeNet-5 on CIFAR-10 with the whole data set resident on the
device. Knows nothing of Optuna or the command line."""

from lenet.data import DataError, DeviceData, load_dataset
from lenet.model import LeNet5
from lenet.train import EvalRecord, TrainConfig, TrainResult, train

__all__ = [
    "DataError",
    "DeviceData",
    "EvalRecord",
    "LeNet5",
    "TrainConfig",
    "TrainResult",
    "load_dataset",
    "train",
]

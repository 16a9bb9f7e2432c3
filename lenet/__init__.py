"""Pure-PyTorch training engine: LeNet-5 on CIFAR-10 with the whole data set resident on the
device. Knows nothing of Optuna or the command line."""

from lenet.config import TrainConfig
from lenet.curve import EvalRecord
from lenet.data import DeviceData, load_dataset
from lenet.errors import DataError
from lenet.model import LeNet5
from lenet.train import TrainingRun, TrainResult, train

__all__ = [
    "DataError",
    "DeviceData",
    "EvalRecord",
    "LeNet5",
    "TrainConfig",
    "TrainResult",
    "TrainingRun",
    "load_dataset",
    "train",
]

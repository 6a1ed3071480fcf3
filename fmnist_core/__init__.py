"""Fashion-MNIST CNN Studio's core: data, hyperparameters, model, training, evaluation, inference, store.

Never imports streamlit. Modules that need TensorFlow import it themselves, so `data` and
`hyperparameters` load in milliseconds.
"""

from .data import CLASS_NAMES, FashionMNIST, load_fashion_mnist
from .hyperparameters import PRESETS, HyperParameterError, HyperParameters, preset

__all__ = [
    "CLASS_NAMES",
    "PRESETS",
    "FashionMNIST",
    "HyperParameterError",
    "HyperParameters",
    "load_fashion_mnist",
    "preset",
]

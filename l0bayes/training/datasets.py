"""The data set a training configuration names, cut to the asked sizes."""

from __future__ import annotations

from l0bayes.data.files import ImageDataset, load_cifar, load_fashion_mnist, load_mnist
from l0bayes.data.images import SYNTHETIC_SIZES, synthetic_images
from l0bayes.nn.networks import (
    get_network,
)
from l0bayes.training.config import TrainConfig


def load_dataset(cfg: TrainConfig) -> ImageDataset:
    """The configured data set, cut to ``train_size``/``test_size`` examples when given (the
    synthetic set is drawn that large when it asks for more than its default sizes)."""
    name = cfg.dataset
    if name == "mnist":
        ds = load_mnist(cfg.data_dir)
    elif name == "fashion-mnist":
        ds = load_fashion_mnist(cfg.data_dir)
    elif name in ("cifar10", "cifar100"):
        ds = load_cifar(cfg.data_dir, num_classes=10 if name == "cifar10" else 100)
    else:
        spec = get_network(cfg.network)
        n_train = max(SYNTHETIC_SIZES[0], cfg.train_size or 0)
        n_test = max(SYNTHETIC_SIZES[1], cfg.test_size or 0)
        ds = synthetic_images(spec.input_shape, spec.num_classes, n_train, n_test, cfg.seed)
    return _subset(ds, cfg.train_size, cfg.test_size)


def _subset(ds: ImageDataset, n_train: int | None, n_test: int | None) -> ImageDataset:
    if n_train is None and n_test is None:
        return ds
    for flag, asked, have in (
        ("--train-size", n_train, len(ds.y_train)),
        ("--test-size", n_test, len(ds.y_test)),
    ):
        if asked is not None and asked > have:
            raise ValueError(f"{flag} {asked} is more than the {have} examples {ds.name} has")
    tr, te = slice(0, n_train), slice(0, n_test)
    return ImageDataset(
        ds.x_train[tr], ds.y_train[tr], ds.x_test[te], ds.y_test[te], ds.name, ds.num_classes
    )


__all__ = [
    "load_dataset",
]

"""Data: image files with checksums (MNIST, Fashion-MNIST, CIFAR), image batches on the
device, and simulated regression problems.
"""

from l0bayes.data.files import (
    ENV_VAR,
    FASHION_CLASSES,
    FASHION_MNIST_URLS,
    IDX_FILES,
    MD5,
    MNIST_URLS,
    SHA256,
    ChecksumError,
    ImageDataset,
    default_data_dir,
    load_cifar,
    load_fashion_mnist,
    load_mnist,
    read_idx,
    to_tensors,
    verify_file,
)
from l0bayes.data.images import (
    SYNTHETIC_SIZES,
    Images,
    epoch_order,
    image_splits,
    synthetic_images,
)
from l0bayes.data.simulate import (
    Problem,
    simulate_regression,
)

__all__ = [
    "ChecksumError",
    "ENV_VAR",
    "FASHION_CLASSES",
    "FASHION_MNIST_URLS",
    "IDX_FILES",
    "ImageDataset",
    "Images",
    "MD5",
    "MNIST_URLS",
    "Problem",
    "SHA256",
    "SYNTHETIC_SIZES",
    "default_data_dir",
    "epoch_order",
    "files",
    "image_splits",
    "images",
    "load_cifar",
    "load_fashion_mnist",
    "load_mnist",
    "read_idx",
    "simulate",
    "simulate_regression",
    "synthetic_images",
    "to_tensors",
    "verify_file",
]

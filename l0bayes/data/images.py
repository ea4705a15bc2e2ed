"""Image data on the device: ``uint8`` storage, per-batch scaling and augmentation, the
data order of an epoch, and a small synthetic image set for tests."""

from __future__ import annotations

import numpy as np
import torch

from l0bayes.data.files import ImageDataset

SYNTHETIC_SIZES = (2000, 500)  # the synthetic set's train and test sizes unless asked for more


def synthetic_images(
    shape: tuple[int, ...], num_classes: int = 10, n_train: int = 2000, n_test: int = 500, seed=0
) -> ImageDataset:
    """A small learnable image set for smoke tests and CI (no files): each class is a random
    smooth prototype, each image its class's prototype plus pixel noise, as ``uint8``."""
    rng = np.random.default_rng(seed)
    c, h, w = shape if len(shape) == 3 else (1, 28, 28)
    coarse = rng.uniform(0, 255, size=(num_classes, c, 7, 7))
    protos = coarse.repeat(h // 7 + 1, axis=2)[:, :, :h].repeat(w // 7 + 1, axis=3)[..., :w]

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, num_classes, size=n)
        x = protos[y] + rng.normal(0, 60, size=(n, c, h, w))
        x = np.clip(x, 0, 255).astype(np.uint8)
        return (x[:, 0] if c == 1 else x), y.astype(np.int64)

    x_tr, y_tr = draw(n_train)
    x_te, y_te = draw(n_test)
    return ImageDataset(x_tr, y_tr, x_te, y_te, "synthetic", num_classes)


class Images:
    r"""A split kept as ``uint8`` on the device (4× less memory than float32), converted per
    batch to :math:`x/255 \in [0, 1]` (the official MNIST code) or, given ``stats``,
    standardised, :math:`(x/255 - m_c)/s_c` with the training set's channel mean and standard
    deviation (the official CIFAR code); optional CIFAR augmentation (random 4-pixel-padded
    crop and flip).

    The choice matters for input gates: in [0, 1] an always-black pixel is exactly 0, so its
    gate gets no gradient from the likelihood and the penalty closes it; standardised, the same
    pixel is a constant that the first layer can use as a bias, and its gate stays open."""

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        shape: tuple[int, ...],
        device: torch.device,
        stats: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> None:
        x = torch.from_numpy(np.ascontiguousarray(x)).reshape(len(x), -1)
        self.x = x.to(device)
        self.y = torch.from_numpy(np.asarray(y, dtype=np.int64)).to(device)
        self.shape = shape
        self.stats = None if stats is None else tuple(s.to(device) for s in stats)

    def __len__(self) -> int:
        return len(self.y)

    @staticmethod
    def channel_stats(x: np.ndarray, channels: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel mean and standard deviation of ``uint8`` images scaled to [0, 1]."""
        flat = x.reshape(len(x), channels, -1)
        total = np.zeros(channels)
        squares = np.zeros(channels)
        for start in range(0, len(flat), 4096):  # float64 in chunks: no 8x copy of the set
            chunk = flat[start : start + 4096].astype(np.float64) / 255.0
            total += chunk.sum(axis=(0, 2))
            squares += np.square(chunk).sum(axis=(0, 2))
        count = flat.shape[0] * flat.shape[2]
        mean = total / count
        std = np.sqrt(np.maximum(squares / count - mean**2, 0.0))
        if np.any(std == 0):
            raise ValueError("the training images are constant in some channel: cannot standardise")
        return torch.tensor(mean, dtype=torch.float32), torch.tensor(std, dtype=torch.float32)

    def batch(self, index: torch.Tensor, augment: bool = False) -> tuple[torch.Tensor, ...]:
        x = self.x[index].float().div_(255.0).reshape(len(index), *self.shape)
        if self.stats is not None:
            mean, std = self.stats
            if len(self.shape) == 3:
                mean, std = mean[:, None, None], std[:, None, None]
            x = (x - mean) / std
        if augment and len(self.shape) == 3:
            x = _crop_flip(x)
        return x, self.y[index]


def image_splits(
    data: ImageDataset,
    input_shape: tuple[int, ...],
    standardize: bool = False,
    device: str | torch.device = "cpu",
) -> tuple[Images, Images]:
    """The train and test splits as :class:`Images`, as
    :class:`Trainer` makes them: pixels in [0, 1] (the networks' default, the
    official MNIST code) or, with ``standardize``, standardised by the training set's channel
    statistics."""
    channels = input_shape[0] if len(input_shape) == 3 else 1
    stats = Images.channel_stats(data.x_train, channels) if standardize else None
    device = torch.device(device)
    return (
        Images(data.x_train, data.y_train, input_shape, device, stats),
        Images(data.x_test, data.y_test, input_shape, device, stats),
    )


def _crop_flip(x: torch.Tensor, pad: int = 4) -> torch.Tensor:
    """Random crop of the zero-padded image back to its size, and a random horizontal flip."""
    b, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (b,), device=x.device)
    dx = torch.randint(0, 2 * pad + 1, (b,), device=x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
    batch = torch.arange(b, device=x.device)[:, None, None, None]
    chans = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    out = padded[batch, chans, rows, cols]
    flip = torch.rand(b, device=x.device) < 0.5
    return torch.where(flip[:, None, None, None], out.flip(-1), out)


def epoch_order(seed: int, epoch: int, n: int) -> torch.Tensor:
    """The data order of one epoch: a permutation that depends only on (seed, epoch), so a
    resumed run needs no saved order."""
    gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=gen)


__all__ = [
    "Images",
    "SYNTHETIC_SIZES",
    "epoch_order",
    "image_splits",
    "synthetic_images",
]

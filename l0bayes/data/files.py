"""Image classification data sets read from local files: MNIST, Fashion-MNIST and CIFAR-10/100.

Nothing is downloaded unless asked for (``download=True``). Files are read in their original
published form:

* MNIST and Fashion-MNIST: the four IDX gzip files ``train-images-idx3-ubyte.gz``,
  ``train-labels-idx1-ubyte.gz``, ``t10k-images-idx3-ubyte.gz`` and ``t10k-labels-idx1-ubyte.gz``.
  Their published checksums are embedded here (:data:`SHA256`, :data:`MD5`) and checked on load
  (sha256, streamed; a file that passed is not hashed again in this process while its path,
  modification time and size are unchanged).
* CIFAR-10 / CIFAR-100: the *extracted* python-pickle archives, ``cifar-10-batches-py/``
  (``data_batch_1`` … ``data_batch_5``, ``test_batch``, ``batches.meta``) and
  ``cifar-100-python/`` (``train``, ``test``, ``meta``; the 100 ``fine_labels`` are used).
  There are no built-in checksums for these; their keys and shapes are validated instead.

Where the files are looked for
------------------------------
One *root* directory is chosen, the first of:

1. the ``data_dir`` argument, if given;
2. the ``L0BAYES_DATA`` environment variable, if set and not empty;
3. the default cache directory, ``$XDG_CACHE_HOME/l0bayes`` (``~/.cache/l0bayes`` when
   ``XDG_CACHE_HOME`` is unset), see :func:`default_data_dir`.

The root may hold the data set in its subfolder (``mnist/``, ``fashion/``,
``cifar-10-batches-py/``, ``cifar-100-python/``), or be that folder itself. The subfolder is
tried first, then the root; the first that holds *all* the files needed is used. So
``L0BAYES_DATA=/data`` with ``/data/mnist/`` and ``/data/fashion/`` serves both MNIST loaders,
and ``load_mnist("/data/mnist")`` works as well as ``load_mnist("/data")``. When neither holds
all the files a :class:`FileNotFoundError` lists both paths and what is missing in each.

With ``download=True`` missing (or, with ``verify=True``, corrupt) MNIST/Fashion-MNIST files are
fetched into: the subfolder if it exists; else the root itself when it already holds some of the
files or was passed explicitly as ``data_dir``; else the subfolder (created). Each file is written
to a temporary file in the same folder, checked, and moved into place with :func:`os.replace`, so
no partial file ever carries the final name.

.. warning:: CIFAR archives are pickles. They are read with an unpickler that only accepts the
   numpy globals that array pickles need, but only load files from a source you trust.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import pickle
import tempfile
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

from l0bayes.device import resolve_device

__all__ = [
    "ENV_VAR",
    "ChecksumError",
    "FASHION_CLASSES",
    "FASHION_MNIST_URLS",
    "IDX_FILES",
    "MD5",
    "MNIST_URLS",
    "SHA256",
    "ImageDataset",
    "default_data_dir",
    "load_cifar",
    "load_fashion_mnist",
    "load_mnist",
    "read_idx",
    "to_tensors",
    "verify_file",
]

PathLike = str | os.PathLike

#: Environment variable naming the data root (or the data set's folder itself).
ENV_VAR = "L0BAYES_DATA"

#: The four IDX files of MNIST and Fashion-MNIST, in the order train images, train labels, test
#: images, test labels.
IDX_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)

#: Mirrors tried in order by ``load_mnist(download=True)``; yann.lecun.com is often unreachable.
MNIST_URLS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
#: Canonical location of the Fashion-MNIST files.
FASHION_MNIST_URLS = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)

#: sha256 of the published files, keyed by data set then file name; these are verified on load.
SHA256: dict[str, dict[str, str]] = {
    "mnist": {
        "train-images-idx3-ubyte.gz": (
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"
        ),
        "train-labels-idx1-ubyte.gz": (
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"
        ),
        "t10k-images-idx3-ubyte.gz": (
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"
        ),
        "t10k-labels-idx1-ubyte.gz": (
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"
        ),
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": (
            "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"
        ),
        "train-labels-idx1-ubyte.gz": (
            "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"
        ),
        "t10k-images-idx3-ubyte.gz": (
            "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"
        ),
        "t10k-labels-idx1-ubyte.gz": (
            "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"
        ),
    },
}

#: md5 as published with the data sets (for reference and :func:`verify_file`).
MD5: dict[str, dict[str, str]] = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
}

FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

_CHUNK = 1 << 20
# (resolved path, mtime_ns, size, algorithm, expected digest) of files that passed verification.
_VERIFIED: set[tuple[str, int, int, str, str]] = set()


# ----------------------------------------------------------------------------- data set container


@dataclass(frozen=True, eq=False, repr=False)
class ImageDataset:
    """Train/test split of an image classification data set as numpy arrays.

    :param x_train: training images, ``uint8``: ``(N, 28, 28)`` for MNIST-like sets,
        ``(N, 3, 32, 32)`` (channels first) for CIFAR.
    :param y_train: training labels, ``int64``, shape ``(N,)``, values in ``0..num_classes-1``.
    :param x_test: test images, same layout as ``x_train``.
    :param y_test: test labels.
    :param name: ``"mnist"``, ``"fashion-mnist"``, ``"cifar10"`` or ``"cifar100"``.
    :param num_classes: number of classes.
    :param class_names: human-readable class names, ``num_classes`` of them (may be empty).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    name: str
    num_classes: int
    class_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for split, x, y in (
            ("train", self.x_train, self.y_train),
            ("test", self.x_test, self.y_test),
        ):
            if x.ndim not in (3, 4) or y.ndim != 1 or len(x) != len(y):
                raise ValueError(
                    f"{self.name} {split}: expected images (N, H, W) or (N, C, H, W) and labels "
                    f"(N,), got {x.shape} and {y.shape}"
                )
        if self.class_names and len(self.class_names) != self.num_classes:
            raise ValueError(
                f"{self.name}: {len(self.class_names)} class names for {self.num_classes} classes"
            )

    @property
    def image_shape(self) -> tuple[int, ...]:
        """Shape of one image, e.g. ``(28, 28)`` or ``(3, 32, 32)``."""
        return tuple(self.x_train.shape[1:])

    def __repr__(self) -> str:
        return (
            f"ImageDataset(name={self.name!r}, num_classes={self.num_classes}, "
            f"train={self.x_train.shape}, test={self.x_test.shape})"
        )


# ----------------------------------------------------------------------------- checksums


def _algorithm(expected: str) -> str:
    """Hash algorithm of a hex digest, from its length (32: md5, 64: sha256)."""
    algo = {32: "md5", 64: "sha256"}.get(len(expected))
    if algo is None:
        raise ValueError(f"checksum {expected!r} is neither an md5 (32 hex) nor sha256 (64 hex)")
    return algo


def _hash_file(path: Path, algorithm: str) -> str:
    """Hex digest of a file, read in 1 MiB chunks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _cache_key(path: Path, algorithm: str, expected: str) -> tuple[str, int, int, str, str]:
    st = path.stat()
    return (str(path.resolve()), st.st_mtime_ns, st.st_size, algorithm, expected)


class ChecksumError(ValueError):
    """A file's digest differs from the expected one."""


def _mismatch(source: object, algorithm: str, expected: str, got: str, fix: str) -> ChecksumError:
    return ChecksumError(
        f"checksum mismatch for {source}: expected {algorithm} {expected}, got {got}. {fix}"
    )


_FIX_FILE = (
    "The file is corrupt, truncated or not the expected data set. Fix: delete it and download "
    "it again (from Python: load again with download=True; the command line never downloads: "
    "put the file in --data-dir by hand). Only from Python, verify=False skips the check."
)


def verify_file(path: PathLike, expected: str) -> None:
    """Check a file against a hex digest (md5 or sha256, told apart by length).

    Hashing streams the file; a success is remembered for the path, modification time and size,
    so verifying an unchanged file again costs a ``stat``.

    :param path: the file.
    :param expected: the md5 (32 hex digits) or sha256 (64 hex digits) it must have.
    :raises ChecksumError: (a :class:`ValueError`) on a mismatch, naming the file, the expected
        and the actual digest.
    """
    path = Path(path)
    expected = expected.lower()
    algorithm = _algorithm(expected)
    key = _cache_key(path, algorithm, expected)
    if key in _VERIFIED:
        return
    got = _hash_file(path, algorithm)
    if got != expected:
        raise _mismatch(path, algorithm, expected, got, _FIX_FILE)
    _VERIFIED.add(key)


def _expected_checksums(name: str, checksums: Mapping[str, str] | None) -> dict[str, str]:
    """Built-in sha256 of data set ``name`` updated with the caller's overrides."""
    return {**SHA256.get(name, {}), **{k: v.lower() for k, v in (checksums or {}).items()}}


# ----------------------------------------------------------------------------- directories


def default_data_dir() -> Path:
    """Default data root: ``$XDG_CACHE_HOME/l0bayes``, else ``~/.cache/l0bayes``."""
    cache = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(cache) if cache else Path.home() / ".cache") / "l0bayes"


def _root(data_dir: PathLike | None) -> tuple[Path, str]:
    """The root directory to search and where it came from."""
    if data_dir is not None:
        return Path(data_dir).expanduser(), "data_dir argument"
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return Path(env).expanduser(), f"${ENV_VAR}"
    return default_data_dir(), "default data directory"


def _missing(folder: Path, files: Iterable[str]) -> list[str]:
    return [f for f in files if not (folder / f).is_file()]


def _find_dir(root: Path, subdir: str, files: Sequence[str]) -> Path | None:
    """``root/subdir`` or ``root``, the first holding all ``files``."""
    for folder in (root / subdir, root):
        if not _missing(folder, files):
            return folder
    return None


def _not_found(
    title: str, root: Path, origin: str, subdir: str, files: Sequence[str], fix: str
) -> FileNotFoundError:
    lines = [f"{title} files not found; looked for {', '.join(files)} in:"]
    for folder in (root / subdir, root):
        state = (
            f"missing {', '.join(_missing(folder, files))}"
            if folder.is_dir()
            else "no such directory"
        )
        lines.append(f"  {folder}  (from {origin}: {state})")
    lines.append(
        f"Fix: pass data_dir=<a folder holding the files, or a root with a {subdir}/ subfolder>, "
        f"or set {ENV_VAR} to such a folder{fix}."
    )
    return FileNotFoundError("\n".join(lines))


def _download_target(root: Path, subdir: str, files: Sequence[str], explicit: bool) -> Path:
    """Folder that downloads go to (see the module docstring)."""
    sub = root / subdir
    if sub.is_dir():
        return sub
    if explicit or any((root / f).exists() for f in files):
        return root
    return sub


# ----------------------------------------------------------------------------- download


def _open_url(url: str, timeout: float) -> Any:
    request = urllib.request.Request(url, headers={"User-Agent": "l0bayes"})
    return urllib.request.urlopen(request, timeout=timeout)


def _copy_stream(
    response: Any, out: BinaryIO, hasher: Any, total: int | None, label: str, progress: bool
) -> None:
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=label)
    try:
        for chunk in iter(lambda: response.read(_CHUNK), b""):
            out.write(chunk)
            hasher.update(chunk)
            if bar is not None:
                bar.update(len(chunk))
    finally:
        if bar is not None:
            bar.close()


def _fetch(url: str, dest: Path, expected: str | None, timeout: float, progress: bool) -> None:
    """Download ``url`` to ``dest`` atomically; the digest is checked before the file is moved
    into place (when ``expected`` is given). Raises :class:`ChecksumError` on a mismatch,
    :class:`OSError` (or :class:`ValueError` for a malformed URL) otherwise."""
    algorithm = _algorithm(expected) if expected else "sha256"
    hasher = hashlib.new(algorithm)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, _open_url(url, timeout) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            _copy_stream(response, out, hasher, total, dest.name, progress)
            out.flush()
            os.fsync(out.fileno())
        got = hasher.hexdigest()
        if expected and got != expected:
            raise _mismatch(url, algorithm, expected, got, "Try another mirror.")
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if expected:
        _VERIFIED.add(_cache_key(dest, algorithm, expected))


def _download(
    filename: str,
    folder: Path,
    base_urls: Sequence[str],
    expected: str | None,
    timeout: float,
    progress: bool,
) -> None:
    """Fetch ``filename`` from the first base URL that serves it with the right checksum."""
    errors: list[str] = []
    bad_checksum = False
    for base in base_urls:
        url = base.rstrip("/") + "/" + filename
        try:
            _fetch(url, folder / filename, expected, timeout, progress)
            return
        except urllib.error.HTTPError as e:
            e.close()
            errors.append(f"  {url}: HTTP {e.code} {e.reason}")
        except ChecksumError as e:
            bad_checksum = True
            errors.append(f"  {url}: {e}")
        except (OSError, ValueError, http.client.HTTPException) as e:
            # URLError, timeouts, connection, file-system errors, malformed URLs
            errors.append(f"  {url}: {type(e).__name__}: {e}")
    message = f"could not download {filename} into {folder}; tried:\n" + "\n".join(errors)
    raise (ChecksumError if bad_checksum else OSError)(message)


def _ensure_files(
    folder: Path,
    files: Sequence[str],
    expected: Mapping[str, str],
    *,
    verify: bool,
    base_urls: Sequence[str],
    timeout: float,
    progress: bool,
) -> None:
    """Download every file of ``files`` that is missing, or corrupt when ``verify``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in files:
        path = folder / name
        if path.is_file():
            if not verify or name not in expected:
                continue
            try:
                verify_file(path, expected[name])
                continue
            except ChecksumError:
                pass  # corrupt: fetch it again
        digest = expected.get(name) if verify else None
        _download(name, folder, base_urls, digest, timeout, progress)


# ----------------------------------------------------------------------------- IDX parsing

_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _read_gzip(path: Path) -> bytes:
    try:
        with gzip.open(path, "rb") as f:
            return f.read()
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise ValueError(f"{path}: not a valid gzip file ({e}); re-download it") from e


def _parse_idx(data: bytes, source: str) -> np.ndarray:
    """Array from the bytes of an IDX file (header: 2 zero bytes, dtype code, rank, then one
    big-endian uint32 per dimension; then the big-endian payload)."""
    if len(data) < 4 or data[:2] != b"\x00\x00" or data[2] not in _IDX_DTYPES:
        raise ValueError(f"{source}: bad IDX magic number {data[:4].hex() or '(empty)'}")
    dtype, ndim = _IDX_DTYPES[data[2]], data[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise ValueError(f"{source}: truncated IDX header (rank {ndim}, {len(data)} bytes)")
    dims = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(data) - header != expected:
        what = "truncated" if len(data) - header < expected else "trailing bytes in"
        raise ValueError(
            f"{source}: {what} IDX payload: dims {dims} need {expected} bytes, "
            f"found {len(data) - header}"
        )
    array = np.frombuffer(data, dtype, offset=header).reshape(dims)
    return array.astype(dtype.newbyteorder("="))  # native byte order, writable copy


def read_idx(path: PathLike) -> np.ndarray:
    """Read a gzip-compressed IDX file (any IDX element type) into a numpy array.

    :param path: the ``.gz`` file.
    :raises ValueError: naming the file, for a bad gzip stream, magic number or size.
    """
    path = Path(path)
    return _parse_idx(_read_gzip(path), str(path))


def _read_images(path: Path) -> np.ndarray:
    x = read_idx(path)
    if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (28, 28):
        raise ValueError(f"{path}: expected uint8 images (N, 28, 28), got {x.dtype} {x.shape}")
    return x


def _read_labels(path: Path, count: int, num_classes: int) -> np.ndarray:
    y = read_idx(path)
    if y.dtype != np.uint8 or y.shape != (count,):
        raise ValueError(f"{path}: expected {count} uint8 labels, got {y.dtype} {y.shape}")
    if y.size and y.max() >= num_classes:
        raise ValueError(f"{path}: label {y.max()} outside 0..{num_classes - 1}")
    return y.astype(np.int64)


# ----------------------------------------------------------------------------- MNIST-like loaders


@dataclass(frozen=True)
class _IdxSpec:
    name: str
    title: str
    subdir: str
    loader: str
    base_urls: tuple[str, ...]
    class_names: tuple[str, ...]


_MNIST = _IdxSpec("mnist", "MNIST", "mnist", "load_mnist", MNIST_URLS, tuple("0123456789"))
_FASHION = _IdxSpec(
    "fashion-mnist",
    "Fashion-MNIST",
    "fashion",
    "load_fashion_mnist",
    FASHION_MNIST_URLS,
    FASHION_CLASSES,
)


def _load_idx_dataset(
    spec: _IdxSpec,
    data_dir: PathLike | None,
    *,
    download: bool,
    verify: bool,
    base_urls: Sequence[str] | None,
    checksums: Mapping[str, str] | None,
    progress: bool,
    timeout: float,
) -> ImageDataset:
    root, origin = _root(data_dir)
    expected = _expected_checksums(spec.name, checksums)
    folder = _find_dir(root, spec.subdir, IDX_FILES)
    if download and (folder is None or verify):
        folder = folder or _download_target(root, spec.subdir, IDX_FILES, data_dir is not None)
        urls = tuple(base_urls) if base_urls is not None else spec.base_urls
        _ensure_files(
            folder,
            IDX_FILES,
            expected,
            verify=verify,
            base_urls=urls,
            timeout=timeout,
            progress=progress,
        )
    if folder is None:
        fix = f", or call {spec.loader}(..., download=True) to fetch them"
        raise _not_found(spec.title, root, origin, spec.subdir, IDX_FILES, fix)
    paths = [folder / f for f in IDX_FILES]
    if verify:
        for path in paths:
            if path.name in expected:
                verify_file(path, expected[path.name])
    x_train, x_test = _read_images(paths[0]), _read_images(paths[2])
    y_train = _read_labels(paths[1], len(x_train), len(spec.class_names))
    y_test = _read_labels(paths[3], len(x_test), len(spec.class_names))
    return ImageDataset(
        x_train, y_train, x_test, y_test, spec.name, len(spec.class_names), spec.class_names
    )


def load_mnist(
    data_dir: PathLike | None = None,
    *,
    download: bool = False,
    verify: bool = True,
    base_urls: Sequence[str] | None = None,
    checksums: Mapping[str, str] | None = None,
    progress: bool = False,
    timeout: float = 60.0,
) -> ImageDataset:
    """Load MNIST (60,000 train / 10,000 test handwritten digits, 28×28, 10 classes).

    :param data_dir: root or folder holding the four IDX gzip files (see the module docstring);
        defaults to ``$L0BAYES_DATA``, then :func:`default_data_dir`.
    :param download: fetch missing files (and, with ``verify``, corrupt ones) from ``base_urls``.
    :param verify: check each file's sha256 (md5 for an md5 given in ``checksums``), on load and
        before a downloaded file is moved into place.
    :param base_urls: mirrors tried in order; default :data:`MNIST_URLS`. Any scheme urllib
        opens (``https://``, ``http://``, ``file://``).
    :param checksums: file name → expected md5/sha256 hex digest, overriding the published
        values (for mirrors of other data in the same format, or tests).
    :param progress: show a tqdm progress bar while downloading.
    :param timeout: seconds to wait for a server before trying the next URL.
    :returns: images ``uint8 (N, 28, 28)``, labels ``int64 (N,)``.
    :raises FileNotFoundError: files missing and ``download`` false; lists the paths looked at.
    :raises ValueError: checksum mismatch (:class:`ChecksumError`), or a malformed gzip/IDX
        file; the message names the file.
    :raises OSError: every download URL failed (a :class:`ChecksumError` instead when one of them
        served the file with a wrong checksum).
    """
    return _load_idx_dataset(
        _MNIST,
        data_dir,
        download=download,
        verify=verify,
        base_urls=base_urls,
        checksums=checksums,
        progress=progress,
        timeout=timeout,
    )


def load_fashion_mnist(
    data_dir: PathLike | None = None,
    *,
    download: bool = False,
    verify: bool = True,
    base_urls: Sequence[str] | None = None,
    checksums: Mapping[str, str] | None = None,
    progress: bool = False,
    timeout: float = 60.0,
) -> ImageDataset:
    """Load Fashion-MNIST (Xiao et al. 2017: 60,000 / 10,000 Zalando article images, 28×28,
    10 classes of 6,000 / 1,000 each). Same files, format and parameters as :func:`load_mnist`;
    the subfolder looked for under a root is ``fashion/`` and the default mirror is
    :data:`FASHION_MNIST_URLS`.

    :param data_dir: root or folder holding the four IDX gzip files.
    :param download: fetch missing (or corrupt) files.
    :param verify: check each file's published sha256.
    :param base_urls: mirrors tried in order.
    :param checksums: file name → expected md5/sha256, overriding the published values.
    :param progress: show a tqdm progress bar while downloading.
    :param timeout: seconds to wait for a server.
    :returns: images ``uint8 (N, 28, 28)``, labels ``int64 (N,)``.
    """
    return _load_idx_dataset(
        _FASHION,
        data_dir,
        download=download,
        verify=verify,
        base_urls=base_urls,
        checksums=checksums,
        progress=progress,
        timeout=timeout,
    )


# ----------------------------------------------------------------------------- CIFAR


@dataclass(frozen=True)
class _CifarSpec:
    subdir: str
    train: tuple[str, ...]
    test: str
    meta: str
    label_key: str
    names_key: str


_CIFAR = {
    10: _CifarSpec(
        "cifar-10-batches-py",
        tuple(f"data_batch_{i}" for i in range(1, 6)),
        "test_batch",
        "batches.meta",
        "labels",
        "label_names",
    ),
    100: _CifarSpec(
        "cifar-100-python", ("train",), "test", "meta", "fine_labels", "fine_label_names"
    ),
}

_PICKLE_GLOBALS = {
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


# numpy >= 2 keeps its internals in numpy._core, numpy 1.x in numpy.core
_NUMPY_CORE = "numpy._core" if hasattr(np, "_core") else "numpy.core"


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals numpy array pickles use."""

    def find_class(self, module: str, name: str) -> Any:
        if module == "numpy.core" or module.startswith("numpy.core."):  # written by numpy 1.x
            module = "numpy._core" + module[len("numpy.core") :]
        if (module, name) not in _PICKLE_GLOBALS:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR pickle")
        if module.startswith("numpy._core"):
            module = _NUMPY_CORE + module[len("numpy._core") :]
        return super().find_class(module, name)


def _str(value: Any) -> Any:
    return value.decode("latin1") if isinstance(value, bytes) else value


def _read_pickle(path: Path) -> dict[str, Any]:
    """A CIFAR pickle as a dict with ``str`` keys (Python 2 pickles have ``bytes`` keys)."""
    try:
        with open(path, "rb") as f:
            obj = _ArrayUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as e:
        raise ValueError(f"{path}: not a readable CIFAR pickle ({e})") from e
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a dict, got {type(obj).__name__}")
    return {_str(k): v for k, v in obj.items()}


def _get(batch: dict[str, Any], key: str, path: Path) -> Any:
    if key not in batch:
        raise ValueError(f"{path}: key {key!r} missing (keys: {sorted(map(str, batch))})")
    return batch[key]


def _read_cifar_batch(
    path: Path, label_key: str, num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    batch = _read_pickle(path)
    data = np.asarray(_get(batch, "data", path))
    labels = np.asarray(_get(batch, label_key, path))
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or data.dtype != np.uint8:
        raise ValueError(f"{path}: 'data' must be uint8 (N, 3072), got {data.dtype} {data.shape}")
    if labels.shape != (len(data),) or (labels.size and labels.dtype.kind not in "iu"):
        raise ValueError(
            f"{path}: {label_key!r} must be {len(data)} integers, got {labels.dtype} {labels.shape}"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"{path}: labels outside 0..{num_classes - 1}")
    images = data.reshape(-1, 3, 32, 32)  # rows are stored R plane, G plane, B plane
    return (images if images.flags.writeable else images.copy()), labels.astype(np.int64)


def _read_cifar_names(path: Path, key: str, num_classes: int) -> tuple[str, ...]:
    names = tuple(_str(n) for n in _get(_read_pickle(path), key, path))
    if len(names) != num_classes:
        raise ValueError(f"{path}: {key!r} has {len(names)} names, expected {num_classes}")
    return names


def load_cifar(
    data_dir: PathLike | None = None,
    *,
    num_classes: int = 10,
    verify: bool = True,
    checksums: Mapping[str, str] | None = None,
) -> ImageDataset:
    """Load CIFAR-10 or CIFAR-100 from the extracted python-pickle archive.

    The root (``data_dir``, ``$L0BAYES_DATA``, :func:`default_data_dir`) holds
    ``cifar-10-batches-py/`` or ``cifar-100-python/``, or is that folder itself. Nothing is
    downloaded: get ``cifar-10-python.tar.gz`` / ``cifar-100-python.tar.gz`` from
    https://www.cs.toronto.edu/~kriz/cifar.html and extract it.

    :param data_dir: root or archive folder.
    :param num_classes: 10 (CIFAR-10) or 100 (CIFAR-100, its ``fine_labels``).
    :param verify: check the files named in ``checksums`` (there are no built-in checksums for
        the extracted pickles; keys, dtypes and shapes are always validated).
    :param checksums: file name (e.g. ``"data_batch_1"``) → expected md5/sha256 hex digest.
    :returns: images ``uint8 (N, 3, 32, 32)`` (channels first, as stored), labels
        ``int64 (N,)``; the class names come from ``batches.meta`` / ``meta``.
    :raises FileNotFoundError: archive files missing; lists the paths looked at.
    :raises ValueError: malformed pickle, missing key, wrong shape, or checksum mismatch.
    """
    if num_classes not in _CIFAR:
        raise ValueError(f"num_classes must be 10 or 100, got {num_classes}")
    spec = _CIFAR[num_classes]
    files = (*spec.train, spec.test, spec.meta)
    root, origin = _root(data_dir)
    folder = _find_dir(root, spec.subdir, files)
    if folder is None:
        fix = (
            f", after downloading and extracting cifar-{num_classes}-python.tar.gz from "
            "https://www.cs.toronto.edu/~kriz/cifar.html"
        )
        raise _not_found(f"CIFAR-{num_classes}", root, origin, spec.subdir, files, fix)
    if verify:
        for name, digest in (checksums or {}).items():
            verify_file(folder / name, digest)
    parts = [_read_cifar_batch(folder / f, spec.label_key, num_classes) for f in spec.train]
    x_test, y_test = _read_cifar_batch(folder / spec.test, spec.label_key, num_classes)
    names = _read_cifar_names(folder / spec.meta, spec.names_key, num_classes)
    return ImageDataset(
        np.concatenate([x for x, _ in parts]),
        np.concatenate([y for _, y in parts]),
        x_test,
        y_test,
        f"cifar{num_classes}",
        num_classes,
        names,
    )


# ----------------------------------------------------------------------------- tensors


def _images_tensor(
    x: np.ndarray, device: torch.device | str, dtype: torch.dtype, flatten: bool
) -> torch.Tensor:
    t = torch.from_numpy(x if x.flags.writeable else x.copy())
    t = t.to(device).to(dtype).div_(255.0)  # move the uint8 data: 4× less to transfer
    if t.ndim == 3:
        t = t.unsqueeze(1)
    return t.flatten(1) if flatten else t


def to_tensors(
    ds: ImageDataset,
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    flatten: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The data set as tensors ``(x_train, y_train, x_test, y_test)``.

    :param ds: the data set.
    :param device: where to put the tensors.
    :param dtype: floating dtype of the images.
    :param flatten: return images as ``(N, C·H·W)`` rows (784 for MNIST, 3072 for CIFAR)
        instead of ``(N, C, H, W)`` (``(N, 1, 28, 28)`` for MNIST, ``(N, 3, 32, 32)`` for CIFAR).
    :returns: images scaled to ``[0, 1]``, labels ``torch.long``.
    """
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating point torch dtype, got {dtype}")
    device = resolve_device(device)
    if ds.x_train.dtype != np.uint8 or ds.x_test.dtype != np.uint8:
        raise ValueError(f"images must be uint8 (0..255), got {ds.x_train.dtype}")
    x_train = _images_tensor(ds.x_train, device, dtype, flatten)
    x_test = _images_tensor(ds.x_test, device, dtype, flatten)
    y_train = torch.from_numpy(np.asarray(ds.y_train, dtype=np.int64).copy()).to(device)
    y_test = torch.from_numpy(np.asarray(ds.y_test, dtype=np.int64).copy()).to(device)
    return x_train, y_train, x_test, y_test

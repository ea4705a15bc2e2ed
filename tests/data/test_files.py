"""Tests of l0bayes.data.files: IDX/CIFAR parsing on synthetic files, checksums, directory
resolution,
downloads from a local HTTP server, and (when present) the real MNIST/Fashion-MNIST files."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import os
import pickle
import socket
import struct
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

import l0bayes.data.files as data
from l0bayes.data.files import (
    IDX_FILES,
    ChecksumError,
    ImageDataset,
    load_cifar,
    load_fashion_mnist,
    load_mnist,
    read_idx,
    to_tensors,
    verify_file,
)

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"

_IDX_CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D}


# ----------------------------------------------------------------------------- helpers


def idx_bytes(array: np.ndarray) -> bytes:
    """The bytes of an IDX file (uncompressed) holding ``array``."""
    code = _IDX_CODES[array.dtype.type]
    header = struct.pack(">BBBB", 0, 0, code, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx(path: Path, array: np.ndarray) -> Path:
    path.write_bytes(gzip.compress(idx_bytes(array)))
    return path


def write_mnist(folder: Path, n_train: int = 5, n_test: int = 3, seed: int = 0) -> dict:
    """Four synthetic IDX gzip files named like the real ones; returns the arrays."""
    rng = np.random.default_rng(seed)
    arrays = {
        "x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, n_train, dtype=np.uint8),
        "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, key in zip(IDX_FILES, arrays, strict=True):
        write_idx(folder / name, arrays[key])
    return arrays


def sha256s(folder: Path) -> dict[str, str]:
    return {f: hashlib.sha256((folder / f).read_bytes()).hexdigest() for f in IDX_FILES}


def assert_matches(ds: ImageDataset, arrays: dict) -> None:
    for key, expected in arrays.items():
        got = getattr(ds, key)
        np.testing.assert_array_equal(got, expected)
        assert got.dtype == (np.uint8 if key.startswith("x") else np.int64)


@pytest.fixture
def no_env(monkeypatch, tmp_path):
    """No L0BAYES_DATA, and a default data directory inside tmp_path."""
    monkeypatch.delenv(data.ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - signature of the base class
        pass


@pytest.fixture
def http_dir(tmp_path):
    """A directory served on http://127.0.0.1:PORT/ for the test; yields (folder, base URL)."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield folder, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in IDX_FILES)


# ----------------------------------------------------------------------------- IDX parsing


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32])
def test_read_idx_roundtrips_every_element_type(tmp_path, dtype):
    a = (np.arange(2 * 3 * 4) - 7).astype(dtype).reshape(2, 3, 4)
    got = read_idx(write_idx(tmp_path / "a.gz", a))
    np.testing.assert_array_equal(got, a)
    assert got.dtype == np.dtype(dtype) and got.dtype.isnative and got.flags.writeable


def test_load_mnist_synthetic_roundtrip(tmp_path, no_env):
    arrays = write_mnist(tmp_path / "m")
    ds = load_mnist(tmp_path / "m", verify=False)
    assert_matches(ds, arrays)
    assert ds.name == "mnist" and ds.num_classes == 10 and ds.image_shape == (28, 28)
    assert ds.class_names == tuple("0123456789")
    assert "train=(5, 28, 28)" in repr(ds)


def test_load_fashion_mnist_synthetic_roundtrip(tmp_path, no_env):
    arrays = write_mnist(tmp_path / "fashion", seed=1)
    ds = load_fashion_mnist(tmp_path, verify=False)  # a root with a fashion/ subfolder
    assert_matches(ds, arrays)
    assert ds.name == "fashion-mnist" and ds.class_names[-1] == "Ankle boot"


def test_checksum_override_sha256_and_md5(tmp_path, no_env):
    arrays = write_mnist(tmp_path)
    assert_matches(load_mnist(tmp_path, checksums=sha256s(tmp_path)), arrays)
    md5 = {f: hashlib.md5((tmp_path / f).read_bytes()).hexdigest() for f in IDX_FILES}
    assert_matches(load_mnist(tmp_path, checksums=md5), arrays)


def test_wrong_checksum_names_file_expected_got_and_fix(tmp_path, no_env):
    write_mnist(tmp_path)
    with pytest.raises(ValueError) as info:
        load_mnist(tmp_path)  # verify=True against the published sha256
    message = str(info.value)
    assert isinstance(info.value, ChecksumError)
    path = tmp_path / IDX_FILES[0]
    assert str(path) in message
    assert data.SHA256["mnist"][IDX_FILES[0]] in message
    assert hashlib.sha256(path.read_bytes()).hexdigest() in message
    assert "download=True" in message and "verify=False" in message


def test_verification_is_cached_per_path_mtime_and_size(tmp_path, monkeypatch):
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc" * 1000)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    verify_file(path, digest)

    def fail(*args):
        raise AssertionError("hashed again")

    monkeypatch.setattr(data, "_hash_file", fail)
    verify_file(path, digest)  # cached: no hashing
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    with pytest.raises(AssertionError, match="hashed again"):
        verify_file(path, digest)


def test_verify_file_rejects_a_malformed_digest(tmp_path):
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises(ValueError, match="neither an md5"):
        verify_file(tmp_path / "f", "abc")


def test_bad_magic_number_names_the_file(tmp_path, no_env):
    write_mnist(tmp_path)
    raw = bytearray(idx_bytes(np.zeros((5, 28, 28), np.uint8)))
    raw[2] = 0x42
    path = tmp_path / IDX_FILES[0]
    path.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(ValueError, match="bad IDX magic") as info:
        load_mnist(tmp_path, verify=False)
    assert str(path) in str(info.value)


def test_truncated_gzip_names_the_file(tmp_path, no_env):
    write_mnist(tmp_path)
    path = tmp_path / IDX_FILES[2]
    path.write_bytes(path.read_bytes()[:-30])
    with pytest.raises(ValueError, match="not a valid gzip") as info:
        load_mnist(tmp_path, verify=False)
    assert str(path) in str(info.value)


def test_not_gzip_at_all(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(b"this is not gzip data")
    with pytest.raises(ValueError, match="not a valid gzip"):
        read_idx(path)


def test_truncated_and_oversized_payload(tmp_path):
    raw = idx_bytes(np.zeros((5, 28, 28), np.uint8))
    (tmp_path / "short.gz").write_bytes(gzip.compress(raw[:-1]))
    (tmp_path / "long.gz").write_bytes(gzip.compress(raw + b"\0"))
    (tmp_path / "header.gz").write_bytes(gzip.compress(raw[:9]))
    with pytest.raises(ValueError, match=r"short\.gz: truncated IDX payload"):
        read_idx(tmp_path / "short.gz")
    with pytest.raises(ValueError, match=r"long\.gz: trailing bytes"):
        read_idx(tmp_path / "long.gz")
    with pytest.raises(ValueError, match=r"header\.gz: truncated IDX header"):
        read_idx(tmp_path / "header.gz")


def test_wrong_dimensions_are_rejected(tmp_path, no_env):
    write_mnist(tmp_path)
    write_idx(tmp_path / IDX_FILES[0], np.zeros((5, 27, 28), np.uint8))
    with pytest.raises(ValueError, match=r"train-images.*\(N, 28, 28\)"):
        load_mnist(tmp_path, verify=False)
    write_mnist(tmp_path)
    write_idx(tmp_path / IDX_FILES[3], np.zeros(4, np.uint8))  # 3 test images, 4 labels
    with pytest.raises(ValueError, match=r"t10k-labels.*expected 3 uint8 labels"):
        load_mnist(tmp_path, verify=False)
    write_mnist(tmp_path)
    write_idx(tmp_path / IDX_FILES[1], np.full(5, 10, np.uint8))
    with pytest.raises(ValueError, match=r"label 10 outside 0\.\.9"):
        load_mnist(tmp_path, verify=False)


# ----------------------------------------------------------------------------- directories


def test_missing_directory_lists_paths_and_fixes(tmp_path, no_env):
    where = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError) as info:
        load_mnist(where)
    message = str(info.value)
    assert str(where / "mnist") in message and str(where) in message
    assert "no such directory" in message
    assert "data_dir" in message and "L0BAYES_DATA" in message and "download=True" in message


def test_partial_directory_lists_missing_files(tmp_path, no_env):
    write_mnist(tmp_path)
    (tmp_path / IDX_FILES[3]).unlink()
    with pytest.raises(FileNotFoundError, match=f"missing {IDX_FILES[3]}"):
        load_mnist(tmp_path, verify=False)


def test_default_directory_is_the_cache(tmp_path, no_env):
    with pytest.raises(FileNotFoundError, match="default data directory") as info:
        load_mnist()
    assert str(tmp_path / "xdg-cache" / "l0bayes" / "mnist") in str(info.value)
    arrays = write_mnist(tmp_path / "xdg-cache" / "l0bayes" / "mnist")
    assert_matches(load_mnist(verify=False), arrays)


def test_env_var_as_root_with_subfolders(tmp_path, monkeypatch):
    mnist = write_mnist(tmp_path / "root" / "mnist", seed=2)
    fashion = write_mnist(tmp_path / "root" / "fashion", seed=3)
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path / "root"))
    assert_matches(load_mnist(verify=False), mnist)
    assert_matches(load_fashion_mnist(verify=False), fashion)


def test_env_var_as_the_folder_itself(tmp_path, monkeypatch):
    arrays = write_mnist(tmp_path / "just-mnist")
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path / "just-mnist"))
    assert_matches(load_mnist(verify=False), arrays)


def test_env_var_missing_files_is_reported(tmp_path, monkeypatch):
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match=r"\$L0BAYES_DATA") as info:
        load_fashion_mnist()
    assert str(tmp_path / "empty" / "fashion") in str(info.value)


def test_data_dir_argument_overrides_env_var(tmp_path, monkeypatch):
    arrays = write_mnist(tmp_path / "arg")
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path / "elsewhere"))
    assert_matches(load_mnist(tmp_path / "arg", verify=False), arrays)


# ----------------------------------------------------------------------------- download


def test_download_from_local_server_with_fallback(tmp_path, no_env, http_dir, capsys):
    served, url = http_dir
    arrays = write_mnist(served, seed=4)
    checksums = sha256s(served)
    target = tmp_path / "target"
    ds = load_mnist(
        target,
        download=True,
        base_urls=[url + "absent/", url],  # the first mirror answers 404 for every file
        checksums=checksums,
        progress=True,
    )
    assert_matches(ds, arrays)
    assert sorted(p.name for p in target.iterdir()) == sorted(IDX_FILES)  # no temp leftovers
    assert sha256s(target) == checksums
    assert "train-images-idx3-ubyte.gz" in capsys.readouterr().err  # the tqdm bar
    assert_matches(load_mnist(target, checksums=checksums), arrays)  # now a plain local load


def test_download_into_env_root_creates_the_subfolder(tmp_path, monkeypatch, http_dir):
    served, url = http_dir
    arrays = write_mnist(served)
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path / "root"))
    ds = load_fashion_mnist(download=True, base_urls=[url], checksums=sha256s(served))
    assert_matches(ds, arrays)
    assert sorted(p.name for p in (tmp_path / "root" / "fashion").iterdir()) == sorted(IDX_FILES)


def test_download_fetches_only_missing_and_corrupt_files(tmp_path, no_env, http_dir):
    served, url = http_dir
    arrays = write_mnist(served)
    checksums = sha256s(served)
    target = tmp_path / "t"
    write_mnist(target)
    (target / IDX_FILES[1]).unlink()
    (target / IDX_FILES[2]).write_bytes(b"corrupt")
    before = (target / IDX_FILES[0]).stat().st_mtime_ns
    ds = load_mnist(target, download=True, base_urls=[url], checksums=checksums)
    assert_matches(ds, arrays)
    assert (target / IDX_FILES[0]).stat().st_mtime_ns == before  # good file untouched
    assert sha256s(target) == checksums and leftovers(target) == []


def test_download_with_wrong_checksum_leaves_nothing(tmp_path, no_env, http_dir):
    served, url = http_dir
    write_mnist(served)
    target = tmp_path / "t"
    with pytest.raises(ChecksumError, match="checksum mismatch") as info:
        load_mnist(target, download=True, base_urls=[url])  # published sha256 ≠ synthetic
    assert url + IDX_FILES[0] in str(info.value)
    assert list(target.iterdir()) == []


def test_download_without_verify_skips_the_checksum(tmp_path, no_env, http_dir):
    served, url = http_dir
    arrays = write_mnist(served)
    assert_matches(load_mnist(tmp_path, download=True, verify=False, base_urls=[url]), arrays)


def test_download_unreachable_server_raises_oserror(tmp_path, no_env):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/"
    with pytest.raises(OSError, match="could not download") as info:
        load_mnist(tmp_path, download=True, base_urls=[url], timeout=5)
    assert url + IDX_FILES[0] in str(info.value)
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- real data


def _real_root(name: str) -> Path:
    for root in (os.environ.get(data.ENV_VAR), SHARED_DATA):
        if root and (Path(root) / name / IDX_FILES[0]).is_file():
            return Path(root)
    pytest.skip(f"real {name} data not found under ${data.ENV_VAR} or {SHARED_DATA}")


MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.mark.parametrize(
    "loader, name, train_counts, test_counts",
    [
        (load_mnist, "mnist", MNIST_TRAIN_COUNTS, MNIST_TEST_COUNTS),
        (load_fashion_mnist, "fashion", [6000] * 10, [1000] * 10),
    ],
)
def test_real_data(loader, name, train_counts, test_counts):
    root = _real_root(name)
    ds = loader(root, verify=True)
    assert ds.x_train.shape == (60000, 28, 28) and ds.x_test.shape == (10000, 28, 28)
    assert ds.x_train.dtype == np.uint8 and ds.y_train.dtype == np.int64
    assert ds.y_train.min() == 0 and ds.y_train.max() == 9
    assert np.bincount(ds.y_train).tolist() == train_counts
    assert np.bincount(ds.y_test).tolist() == test_counts
    key = "mnist" if name == "mnist" else "fashion-mnist"
    for filename, md5 in data.MD5[key].items():  # the published md5 too
        verify_file(root / name / filename, md5)
    x_train, _, x_test, _ = to_tensors(ds, flatten=True)
    assert x_train.shape == (60000, 784) and 0.0 <= float(x_test.min()) < float(x_test.max()) <= 1


# ----------------------------------------------------------------------------- CIFAR


def write_cifar(folder: Path, num_classes: int, bytes_keys: bool, protocol: int) -> dict:
    """A small archive in the layout of cifar-10-batches-py / cifar-100-python."""
    rng = np.random.default_rng(num_classes)
    folder.mkdir(parents=True, exist_ok=True)

    def dump(name, content):
        if bytes_keys:
            content = {k.encode(): v for k, v in content.items()}
        with open(folder / name, "wb") as f:
            pickle.dump(content, f, protocol=protocol)

    label_key = "labels" if num_classes == 10 else "fine_labels"
    train_files = [f"data_batch_{i}" for i in range(1, 6)] if num_classes == 10 else ["train"]
    xs, ys = [], []
    for i, name in enumerate([*train_files, "test_batch" if num_classes == 10 else "test"]):
        x = rng.integers(0, 256, (3 + i, 3072), dtype=np.uint8)
        y = rng.integers(0, num_classes, 3 + i).tolist()
        batch = {"data": x, label_key: y, "batch_label": f"batch {i}"}
        if num_classes == 100:
            batch["coarse_labels"] = [label // 5 for label in y]
        dump(name, batch)
        xs.append(x)
        ys.append(np.array(y))
    names = [f"class{i}" for i in range(num_classes)]
    names = [n.encode() for n in names] if bytes_keys else names
    if num_classes == 10:
        dump("batches.meta", {"label_names": names, "num_cases_per_batch": 3})
    else:
        dump("meta", {"fine_label_names": names, "coarse_label_names": names[:20]})
    return {
        "x_train": np.concatenate(xs[:-1]),
        "y_train": np.concatenate(ys[:-1]),
        "x_test": xs[-1],
        "y_test": ys[-1],
    }


@pytest.mark.parametrize(
    "num_classes, subdir", [(10, "cifar-10-batches-py"), (100, "cifar-100-python")]
)
@pytest.mark.parametrize("bytes_keys, protocol", [(True, 2), (False, pickle.HIGHEST_PROTOCOL)])
def test_cifar_synthetic(tmp_path, no_env, num_classes, subdir, bytes_keys, protocol):
    raw = write_cifar(tmp_path / subdir, num_classes, bytes_keys, protocol)
    ds = load_cifar(tmp_path, num_classes=num_classes)
    assert ds.name == f"cifar{num_classes}" and ds.num_classes == num_classes
    assert ds.x_train.shape == (len(raw["x_train"]), 3, 32, 32) and ds.x_train.dtype == np.uint8
    # channels first, as stored: the first 1024 bytes of a row are the red plane
    np.testing.assert_array_equal(ds.x_train[:, 0].reshape(-1, 1024), raw["x_train"][:, :1024])
    np.testing.assert_array_equal(ds.x_train.reshape(-1, 3072), raw["x_train"])
    np.testing.assert_array_equal(ds.x_test.reshape(-1, 3072), raw["x_test"])
    np.testing.assert_array_equal(ds.y_train, raw["y_train"])
    np.testing.assert_array_equal(ds.y_test, raw["y_test"])
    assert ds.y_train.dtype == np.int64
    assert ds.x_train.flags.writeable and ds.x_test.flags.writeable
    assert ds.class_names == tuple(f"class{i}" for i in range(num_classes))
    assert load_cifar(tmp_path / subdir, num_classes=num_classes).x_test.shape == ds.x_test.shape


def test_cifar_checksums_when_given(tmp_path, no_env):
    write_cifar(tmp_path, 10, True, 2)
    good = hashlib.sha256((tmp_path / "test_batch").read_bytes()).hexdigest()
    load_cifar(tmp_path, checksums={"test_batch": good})
    with pytest.raises(ChecksumError, match="test_batch"):
        load_cifar(tmp_path, checksums={"test_batch": "0" * 64})
    load_cifar(tmp_path, checksums={"test_batch": "0" * 64}, verify=False)


def _rewrite(path: Path, edit) -> None:
    with open(path, "rb") as f:
        batch = pickle.load(f, encoding="bytes")
    with open(path, "wb") as f:
        pickle.dump(edit(batch), f, protocol=2)


def test_cifar_missing_key(tmp_path, no_env):
    write_cifar(tmp_path, 10, True, 2)
    _rewrite(tmp_path / "data_batch_3", lambda b: {k: v for k, v in b.items() if k != b"labels"})
    with pytest.raises(ValueError, match=r"data_batch_3: key 'labels' missing"):
        load_cifar(tmp_path)


def test_cifar_wrong_shape_and_labels(tmp_path, no_env):
    write_cifar(tmp_path, 100, True, 2)
    _rewrite(tmp_path / "test", lambda b: {**b, b"data": b[b"data"][:, :3000]})
    with pytest.raises(ValueError, match=r"test: 'data' must be uint8 \(N, 3072\)"):
        load_cifar(tmp_path, num_classes=100)
    _rewrite(tmp_path / "train", lambda b: {**b, b"fine_labels": [100] * len(b[b"data"])})
    with pytest.raises(ValueError, match=r"train: labels outside 0\.\.99"):
        load_cifar(tmp_path, num_classes=100)


def test_cifar_meta_with_wrong_number_of_names(tmp_path, no_env):
    write_cifar(tmp_path, 10, False, 2)
    _rewrite(tmp_path / "batches.meta", lambda b: {"label_names": ["a", "b"]})
    with pytest.raises(ValueError, match=r"batches\.meta: 'label_names' has 2 names"):
        load_cifar(tmp_path)


def test_cifar_pickle_written_by_numpy_1(tmp_path, no_env):
    raw = write_cifar(tmp_path, 10, True, 2)
    path = tmp_path / "test_batch"
    blob = path.read_bytes()
    assert b"numpy._core.multiarray\n" in blob or b"numpy.core.multiarray\n" in blob
    path.write_bytes(blob.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n"))
    np.testing.assert_array_equal(load_cifar(tmp_path).x_test.reshape(-1, 3072), raw["x_test"])


class _Evil:
    def __reduce__(self):
        return (os.getcwd, ())


def test_cifar_pickle_with_foreign_globals_is_refused(tmp_path, no_env):
    write_cifar(tmp_path, 10, False, 2)
    with open(tmp_path / "data_batch_1", "wb") as f:
        pickle.dump({"data": _Evil()}, f)
    with pytest.raises(ValueError, match=r"data_batch_1: not a readable CIFAR pickle.*getcwd"):
        load_cifar(tmp_path)


def test_cifar_missing_and_bad_arguments(tmp_path, no_env):
    with pytest.raises(FileNotFoundError, match="cifar-100-python") as info:
        load_cifar(tmp_path, num_classes=100)
    assert "cs.toronto.edu" in str(info.value)
    with pytest.raises(ValueError, match="10 or 100"):
        load_cifar(tmp_path, num_classes=20)


# ----------------------------------------------------------------------------- tensors


def test_to_tensors_mnist_layout_range_and_dtypes(tmp_path, no_env):
    arrays = write_mnist(tmp_path)
    ds = load_mnist(tmp_path, verify=False)
    x_train, y_train, x_test, y_test = to_tensors(ds)
    assert x_train.shape == (5, 1, 28, 28) and x_test.shape == (3, 1, 28, 28)
    assert x_train.dtype == torch.float32 and y_train.dtype == torch.long
    assert 0.0 <= float(x_train.min()) and float(x_train.max()) <= 1.0
    torch.testing.assert_close(
        x_train[:, 0], torch.from_numpy(arrays["x_train"]).float() / 255, rtol=0, atol=0
    )
    assert y_test.tolist() == arrays["y_test"].tolist()
    flat = to_tensors(ds, dtype=torch.float64, flatten=True)
    assert flat[0].shape == (5, 784) and flat[2].shape == (3, 784)
    assert flat[0].dtype == torch.float64 and flat[0].device.type == "cpu"
    with pytest.raises(ValueError, match="floating point"):
        to_tensors(ds, dtype=torch.int32)


def test_to_tensors_cifar_and_read_only_arrays(tmp_path, no_env):
    write_cifar(tmp_path, 10, True, 2)
    ds = load_cifar(tmp_path)
    for a in (ds.x_train, ds.x_test):
        a.setflags(write=False)  # must not trigger torch's non-writable warning
    x_train, _, x_test, _ = to_tensors(ds)
    assert x_train.shape == (len(ds.x_train), 3, 32, 32)
    assert to_tensors(ds, flatten=True)[2].shape == (len(ds.x_test), 3072)
    assert float(x_test.max()) <= 1.0


def test_image_dataset_validates_lengths():
    x = np.zeros((3, 28, 28), np.uint8)
    with pytest.raises(ValueError, match="train"):
        ImageDataset(x, np.zeros(2, np.int64), x, np.zeros(3, np.int64), "toy", 10)
    with pytest.raises(ValueError, match="class names"):
        ImageDataset(x, np.zeros(3, np.int64), x, np.zeros(3, np.int64), "toy", 10, ("a",))

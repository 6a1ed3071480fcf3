"""The IDX reader, checksums and search order, against files the tests write and the real dataset."""

import gzip
import hashlib

import numpy as np
import pytest

from fmnist_core import data
from fmnist_core.data import (
    IDX_FILES,
    DatasetFileError,
    DatasetNotFoundError,
    IdxFile,
    decode_idx,
    find_dataset_dir,
    load_fashion_mnist,
    read_idx_file,
    stratified_split,
    stratified_subset,
)
from fmnist_core.settings import Settings


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + array.astype(np.uint8).tobytes()


IMAGES = np.arange(3 * 28 * 28, dtype=np.uint32).reshape(3, 28, 28).astype(np.uint8)


def test_decode_idx_reads_a_hand_made_file():
    decoded = decode_idx(idx_bytes(IMAGES), "hand-made", (3, 28, 28))
    np.testing.assert_array_equal(decoded, IMAGES)


def test_decode_idx_rejects_wrong_magic():
    raw = bytearray(idx_bytes(IMAGES))
    raw[2] = 0x0D  # float32 type code
    with pytest.raises(DatasetFileError, match=r"hand-made: magic number 0x00000d03, expected 0x00000803"):
        decode_idx(bytes(raw), "hand-made", (3, 28, 28))


def test_decode_idx_rejects_truncated_data():
    with pytest.raises(DatasetFileError, match=r"hand-made: 2367 bytes, expected 2368"):
        decode_idx(idx_bytes(IMAGES)[:-1], "hand-made", (3, 28, 28))


def test_decode_idx_rejects_a_header_cut_short():
    with pytest.raises(DatasetFileError, match="header cut short"):
        decode_idx(idx_bytes(IMAGES)[:9], "hand-made", (3, 28, 28))


def test_decode_idx_rejects_wrong_count():
    with pytest.raises(DatasetFileError, match=r"dimensions \(3, 28, 28\), expected \(60000, 28, 28\)"):
        decode_idx(idx_bytes(IMAGES), "hand-made", (60000, 28, 28))


def test_decode_idx_rejects_empty_file():
    with pytest.raises(DatasetFileError, match="found 0 bytes"):
        decode_idx(b"", "empty", (3,))


@pytest.mark.parametrize("compress", [True, False])
def test_read_idx_file_verifies_checksum_of_decompressed_bytes(tmp_path, compress):
    raw = idx_bytes(IMAGES)
    path = tmp_path / ("images.gz" if compress else "images")
    path.write_bytes(gzip.compress(raw) if compress else raw)
    spec = IdxFile("images", (3, 28, 28), hashlib.sha256(raw).hexdigest())
    array, digest = read_idx_file(path, spec)
    np.testing.assert_array_equal(array, IMAGES)
    assert digest == spec.sha256


def test_read_idx_file_rejects_checksum_mismatch(tmp_path):
    path = tmp_path / "images"
    path.write_bytes(idx_bytes(IMAGES))
    spec = IdxFile("images", (3, 28, 28), "0" * 64)
    with pytest.raises(DatasetFileError, match=r"SHA-256 .* expected 0000"):
        read_idx_file(path, spec)


def test_read_idx_file_names_a_broken_gzip(tmp_path):
    path = tmp_path / "images.gz"
    path.write_bytes(b"not gzip at all")
    with pytest.raises(DatasetFileError, match=r"images\.gz: cannot be read or decompressed"):
        read_idx_file(path, IDX_FILES["test_images"])


def _fill_folder(folder):
    folder.mkdir(parents=True, exist_ok=True)
    for spec in IDX_FILES.values():
        (folder / f"{spec.stem}.gz").write_bytes(b"placeholder")
    return folder


def test_search_order_takes_the_data_dir_setting_first(tmp_path, monkeypatch):
    env_dir = _fill_folder(tmp_path / "env")
    preferred = Settings.from_environment({"FMNIST_DATA_DIR": str(env_dir)}).data_dir
    monkeypatch.setattr(data, "DEBIAN_DATA_DIR", _fill_folder(tmp_path / "debian"))
    labels = [label for label, _ in data.candidate_dirs(preferred)]
    assert labels == ["$FMNIST_DATA_DIR", "Debian package dataset-fashion-mnist", "Keras cache"]
    assert find_dataset_dir(preferred=preferred) == env_dir
    assert find_dataset_dir() == tmp_path / "debian"  # without the setting


def test_search_order_skips_incomplete_folders(tmp_path, monkeypatch):
    env_dir = _fill_folder(tmp_path / "env")
    (env_dir / "t10k-labels-idx1-ubyte.gz").unlink()
    keras_dir = _fill_folder(tmp_path / "keras")
    monkeypatch.setattr(data, "DEBIAN_DATA_DIR", tmp_path / "missing")
    monkeypatch.setattr(data, "KERAS_CACHE_DIR", keras_dir)
    assert find_dataset_dir(preferred=env_dir) == keras_dir


def test_missing_everywhere_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "DEBIAN_DATA_DIR", tmp_path / "no-debian")
    monkeypatch.setattr(data, "KERAS_CACHE_DIR", tmp_path / "no-keras")

    def offline_download():
        raise OSError("no internet")

    import keras

    monkeypatch.setattr(keras.datasets.fashion_mnist, "load_data", offline_download)
    with pytest.raises(DatasetNotFoundError) as error:
        load_fashion_mnist(preferred=tmp_path / "nowhere")
    message = str(error.value)
    for expected in ("nowhere", "no-debian", "no-keras", "Keras download: failed"):
        assert expected in message
    assert "apt-get install dataset-fashion-mnist" in message


def test_explicit_folder_missing_files_is_named(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="missing train-images-idx3-ubyte"):
        load_fashion_mnist(tmp_path)


def test_real_dataset_shapes_labels_and_checksums(dataset):
    assert dataset.train_images.shape == (60000, 28, 28) and dataset.train_images.dtype == np.uint8
    assert dataset.test_images.shape == (10000, 28, 28)
    assert np.bincount(dataset.train_labels).tolist() == [6000] * 10
    assert np.bincount(dataset.test_labels).tolist() == [1000] * 10
    assert dataset.class_names[0] == "T-shirt/top" and dataset.class_names[9] == "Ankle boot"
    assert dataset.sha256 == {spec.stem: spec.sha256 for spec in IDX_FILES.values()}
    assert not dataset.train_images.flags.writeable


def test_second_load_is_cached(dataset):
    assert load_fashion_mnist() is dataset


def test_stratified_split_keeps_class_balance_and_is_seeded(dataset):
    train, validation = stratified_split(dataset.train_labels, 0.1, seed=7)
    assert len(validation) == 6000 and len(train) == 54000
    assert not set(train) & set(validation)
    assert np.bincount(dataset.train_labels[validation]).tolist() == [600] * 10
    again = stratified_split(dataset.train_labels, 0.1, seed=7)
    np.testing.assert_array_equal(validation, again[1])
    assert not np.array_equal(validation, stratified_split(dataset.train_labels, 0.1, seed=8)[1])


def test_stratified_split_rejects_bad_fraction(dataset):
    with pytest.raises(ValueError, match=r"validation_fraction=1.5, expected a number strictly between 0 and 1"):
        stratified_split(dataset.train_labels, 1.5, seed=0)


def test_stratified_subset_size_and_balance(dataset):
    subset = stratified_subset(dataset.train_labels, 5000, seed=1)
    assert len(subset) == 5000
    assert np.bincount(dataset.train_labels[subset]).tolist() == [500] * 10

"""Fashion-MNIST from its four original IDX files: find, verify, read and split.

The reader is pure numpy, so loading the data never needs TensorFlow. Files are looked for in
`$FMNIST_DATA_DIR`, Debian's `dataset-fashion-mnist` package, the Keras cache and, last, Keras's
own download (which needs internet).
"""

from __future__ import annotations

import gzip
import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CLASS_NAMES: tuple[str, ...] = (
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
NUM_CLASSES = len(CLASS_NAMES)
IMAGE_SIZE = 28

DEBIAN_DATA_DIR = Path("/usr/share/datasets/fashion-mnist")
KERAS_CACHE_DIR = Path("~/.keras/datasets/fashion-mnist").expanduser()
INSTALL_HINT = (
    "Install Debian's package with `apt-get install dataset-fashion-mnist`, "
    "or point FMNIST_DATA_DIR at a folder holding the four IDX files."
)


@dataclass(frozen=True)
class IdxFile:
    """One of the four files: its name, its expected shape and the SHA-256 of its decompressed bytes."""

    stem: str
    shape: tuple[int, ...]
    sha256: str


IDX_FILES: dict[str, IdxFile] = {
    "train_images": IdxFile(
        "train-images-idx3-ubyte",
        (60000, 28, 28),
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    ),
    "train_labels": IdxFile(
        "train-labels-idx1-ubyte",
        (60000,),
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    ),
    "test_images": IdxFile(
        "t10k-images-idx3-ubyte",
        (10000, 28, 28),
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    ),
    "test_labels": IdxFile(
        "t10k-labels-idx1-ubyte",
        (10000,),
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    ),
}

_UBYTE_TYPE_CODE = 0x08


class DatasetNotFoundError(FileNotFoundError):
    """None of the places we look holds the Fashion-MNIST files."""


class DatasetFileError(ValueError):
    """A file was found but is not the Fashion-MNIST file it claims to be."""


@dataclass(frozen=True)
class FashionMNIST:
    """The whole dataset as read-only uint8 arrays, with where it came from."""

    train_images: np.ndarray  # (60000, 28, 28) uint8
    train_labels: np.ndarray  # (60000,) uint8, values 0-9
    test_images: np.ndarray  # (10000, 28, 28) uint8
    test_labels: np.ndarray  # (10000,) uint8
    class_names: tuple[str, ...]
    source: Path
    sha256: dict[str, str]


def decode_idx(raw: bytes, name: str, expected_shape: tuple[int, ...]) -> np.ndarray:
    """Decode the bytes of an IDX file of unsigned bytes, checking magic number, dimensions and counts."""
    if len(raw) < 4:
        raise DatasetFileError(
            f"{name}: found {len(raw)} bytes, expected an IDX header of at least 4 bytes. "
            "The file is empty or truncated; download or install it again."
        )
    zero, type_code, ndim = int.from_bytes(raw[0:2], "big"), raw[2], raw[3]
    expected_magic = (_UBYTE_TYPE_CODE << 8) | len(expected_shape)
    if zero != 0 or type_code != _UBYTE_TYPE_CODE or ndim != len(expected_shape):
        raise DatasetFileError(
            f"{name}: magic number 0x{int.from_bytes(raw[0:4], 'big'):08x}, expected "
            f"0x{expected_magic:08x} (unsigned bytes, {len(expected_shape)} dimensions). "
            "This is not the Fashion-MNIST file of that name; replace it with the original."
        )
    header_end = 4 + 4 * ndim
    if len(raw) < header_end:
        raise DatasetFileError(
            f"{name}: header cut short at {len(raw)} bytes, expected {header_end}. "
            "The file is truncated; download or install it again."
        )
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if shape != expected_shape:
        raise DatasetFileError(
            f"{name}: dimensions {shape}, expected {expected_shape}. "
            "This is not the Fashion-MNIST file of that name; replace it with the original."
        )
    expected_bytes = header_end + int(np.prod(shape))
    if len(raw) != expected_bytes:
        raise DatasetFileError(
            f"{name}: {len(raw)} bytes, expected {expected_bytes} for dimensions {shape}. "
            "The file is truncated or has trailing data; download or install it again."
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header_end).reshape(shape)


def _file_in(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    return None


def read_idx_file(path: Path, expected: IdxFile, verify: bool = True) -> tuple[np.ndarray, str]:
    """Read one IDX file (gzip or plain); return its array and the SHA-256 of its decompressed bytes."""
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        raise DatasetFileError(
            f"{path}: cannot be read or decompressed ({error}). Download or install it again."
        ) from error
    digest = hashlib.sha256(raw).hexdigest()
    if verify and digest != expected.sha256:
        raise DatasetFileError(
            f"{path}: SHA-256 of the decompressed bytes is {digest}, expected {expected.sha256}. "
            "The file is corrupt or not the original Fashion-MNIST; download or install it again."
        )
    return decode_idx(raw, str(path), expected.shape), digest


def candidate_dirs(preferred: Path | None = None) -> list[tuple[str, Path]]:
    """The folders we look in, in order, each with a label saying why it is there: `preferred` (the data_dir
    setting, $FMNIST_DATA_DIR) first when given."""
    candidates = []
    if preferred is not None:
        candidates.append(("$FMNIST_DATA_DIR", Path(preferred).expanduser()))
    candidates.append(("Debian package dataset-fashion-mnist", DEBIAN_DATA_DIR))
    candidates.append(("Keras cache", KERAS_CACHE_DIR))
    return candidates


def find_dataset_dir(candidates: list[tuple[str, Path]] | None = None, preferred: Path | None = None) -> Path | None:
    """The first candidate folder holding all four files (by default `candidate_dirs(preferred)`), or None."""
    for _label, folder in candidate_dirs(preferred) if candidates is None else candidates:
        if all(_file_in(folder, spec.stem) for spec in IDX_FILES.values()):
            return folder
    return None


def _download_with_keras(preferred: Path | None = None) -> Path:
    """Last resort: let Keras download the files into its cache (needs internet)."""
    try:
        import keras

        keras.datasets.fashion_mnist.load_data()
    except Exception as error:  # noqa: BLE001 - any failure here means "no download"; we report it below
        looked = "\n".join(f"  - {label}: {folder}" for label, folder in candidate_dirs(preferred))
        raise DatasetNotFoundError(
            "Fashion-MNIST was not found. Looked in:\n"
            f"{looked}\n  - Keras download: failed ({type(error).__name__}: {error})\n"
            f"{INSTALL_HINT}"
        ) from error
    return KERAS_CACHE_DIR


_cache: dict[tuple, FashionMNIST] = {}
_cache_lock = threading.Lock()


def _folder_key(folder: Path) -> tuple:
    stamps = []
    for spec in IDX_FILES.values():
        path = _file_in(folder, spec.stem)
        stat = path.stat() if path else None
        stamps.append((str(path), stat.st_mtime_ns if stat else None, stat.st_size if stat else None))
    return (str(folder.resolve()), tuple(stamps))


def load_fashion_mnist(data_dir: Path | str | None = None, verify: bool = True,
                       preferred: Path | None = None) -> FashionMNIST:
    """Load the dataset, from `data_dir` or the first place that has it (`preferred`, the data_dir setting, looked in
    first); cached in the process.

    Raises DatasetNotFoundError (saying where we looked) or DatasetFileError (naming the bad file).
    """
    if data_dir is not None:
        folder = Path(data_dir).expanduser()
        if find_dataset_dir([("data_dir", folder)]) is None:
            missing = [s.stem for s in IDX_FILES.values() if _file_in(folder, s.stem) is None]
            raise DatasetNotFoundError(
                f"{folder}: missing {', '.join(missing)} (.gz or plain). {INSTALL_HINT}"
            )
    else:
        folder = find_dataset_dir(preferred=preferred) or _download_with_keras(preferred)
    key = (_folder_key(folder), verify)
    with _cache_lock:
        if key in _cache:
            return _cache[key]
        arrays, digests = {}, {}
        for field_name, spec in IDX_FILES.items():
            array, digest = read_idx_file(_file_in(folder, spec.stem), spec, verify=verify)
            array.flags.writeable = False  # shared between sessions and threads: never mutate
            arrays[field_name], digests[spec.stem] = array, digest
        for split in ("train", "test"):
            labels = arrays[f"{split}_labels"]
            if labels.max() >= NUM_CLASSES:
                raise DatasetFileError(
                    f"{folder}: {split} labels go up to {labels.max()}, expected 0-{NUM_CLASSES - 1}."
                )
        dataset = FashionMNIST(**arrays, class_names=CLASS_NAMES, source=folder, sha256=digests)
        _cache[key] = dataset
        return dataset


def stratified_split(
    labels: np.ndarray, validation_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, validation) holding `validation_fraction` of every class, shuffled by `seed`."""
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError(
            f"validation_fraction={validation_fraction!r}, expected a number strictly between 0 and 1 "
            "(e.g. 0.1 for 10 %)."
        )
    rng = np.random.default_rng(seed)
    train_parts, validation_parts = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        cut = int(round(len(members) * validation_fraction))
        validation_parts.append(members[:cut])
        train_parts.append(members[cut:])
    return rng.permutation(np.concatenate(train_parts)), rng.permutation(np.concatenate(validation_parts))


def stratified_subset(labels: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Indices of `size` examples with the class balance of `labels`, chosen by `seed`."""
    if size >= len(labels):
        return np.arange(len(labels))
    _, chosen = stratified_split(labels, size / len(labels), seed)
    return np.sort(chosen)

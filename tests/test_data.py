"""Tests of nas_engine.data: loading (offline, real torchvision file formats), split, streams."""

from __future__ import annotations

import math
import os
import pickle
import struct
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch
import torchvision.datasets

from nas_engine.config import DataConfig
from nas_engine.data import BatchStream, ImageSet, load_images, make_streams, split_indices


@pytest.fixture(scope="module")
def digits() -> ImageSet:
    return load_images(DataConfig())


def _tiny_set(n: int = 50, size: int = 16, channels: int = 3) -> ImageSet:
    """A uint8 set whose pixel values identify the image, so batches can be traced back."""
    gen = torch.Generator().manual_seed(123)
    images = torch.randint(0, 256, (n, channels, size, size), generator=gen, dtype=torch.uint8)
    labels = torch.arange(n) % 10
    return ImageSet("tiny", images, labels, 10, (0.5,) * channels, (0.25,) * channels,
                    torch.arange(n), torch.arange(0), "")


# --- digits --------------------------------------------------------------------------------


def test_digits_read_from_the_file_equal_scikit_learns_loader(monkeypatch) -> None:
    from sklearn.datasets import load_digits

    import nas_engine.digits as digits_file

    expected_pixels, expected_labels = load_digits(return_X_y=True)
    assert digits_file.bundled_file() is not None  # the fast path is the one taken here
    pixels, labels = digits_file.load_digits_arrays()
    assert np.array_equal(pixels, expected_pixels)
    assert np.array_equal(labels, expected_labels) and labels.dtype == np.int64
    monkeypatch.setattr(digits_file, "bundled_file", lambda: None)  # the file kept elsewhere
    pixels, labels = digits_file.load_digits_arrays()
    assert np.array_equal(pixels, expected_pixels) and labels.dtype == np.int64
    images = load_images(DataConfig()).images
    assert torch.equal(images, torch.from_numpy(expected_pixels).float().div(16).view(-1, 1, 8, 8))


def test_digits_shape_classes_and_range(digits: ImageSet) -> None:
    assert digits.images.shape == (1797, 1, 8, 8)
    assert digits.images.dtype == torch.float32
    assert len(digits) == 1797 and digits.in_channels == 1 and digits.image_size == 8
    assert digits.num_classes == 10
    assert set(digits.labels.tolist()) == set(range(10))
    assert digits.labels.dtype == torch.int64
    assert digits.images.min().item() == 0.0 and digits.images.max().item() == 1.0
    # The fixed normalisation constants match the data they were computed from.
    assert digits.images.mean().item() == pytest.approx(digits.mean[0], abs=1e-4)
    assert digits.images.std().item() == pytest.approx(digits.std[0], abs=1e-3)


def test_digits_resize() -> None:
    resized = load_images(DataConfig(resize=16))
    assert resized.images.shape == (1797, 1, 16, 16)
    assert resized.images.dtype == torch.float32
    assert 0.0 <= resized.images.min().item() and resized.images.max().item() <= 1.0


def test_digits_subset_is_seeded(digits: ImageSet) -> None:
    a = load_images(DataConfig(subset=100), seed=3)
    b = load_images(DataConfig(subset=100), seed=3)
    c = load_images(DataConfig(subset=100), seed=4)
    assert len(a.search) == 100 and torch.equal(a.images, digits.images)
    assert torch.equal(a.search, b.search) and not torch.equal(a.search, c.search)
    # The subset comes from the search part; the test part is untouched.
    assert set(a.search.tolist()) <= set(digits.search.tolist())
    assert torch.equal(a.test, digits.test) and a.test_digest == digits.test_digest


def test_held_out_part_is_fixed_and_never_searched(digits: ImageSet) -> None:
    """The test images are the same whatever the seed and never reach a search's streams."""
    assert len(digits.test) == 360 and len(digits.search) == 1437  # ⌈0.2 · 1797⌉ held out
    assert set(digits.test.tolist()).isdisjoint(digits.search.tolist())
    assert sorted([*digits.test.tolist(), *digits.search.tolist()]) == list(range(1797))
    for seed in (0, 7):
        again = load_images(DataConfig(), seed=seed)
        assert torch.equal(again.test, digits.test) and again.test_digest == digits.test_digest
        train, val = make_streams(again, DataConfig(batch_size=500), seed)
        served = torch.cat([stream.indices for stream in (train, val)])
        assert sorted(served.tolist()) == sorted(digits.search.tolist())
    other = load_images(DataConfig(test_portion=0.3))
    assert len(other.test) == 540 and other.test_digest != digits.test_digest
    assert digits.test_split() == {"test_images": 360, "test_sha256": digits.test_digest}


def test_digits_clutter_is_deterministic_and_follows_its_parameters() -> None:
    config = DataConfig(name="digits_clutter")
    config.clutter.images, config.clutter.canvas = 400, 16
    a, b = load_images(config), load_images(config)
    assert a.images.shape == (400, 1, 16, 16) and torch.equal(a.images, b.images)
    assert torch.equal(a.labels, b.labels) and set(a.labels.tolist()) == set(range(10))
    assert a.mean[0] == pytest.approx(a.images.mean().item(), rel=1e-4)
    config.clutter.noise = 0.0
    clean = load_images(config)
    background = lambda s: (s.images == 0).float().mean().item()  # noqa: E731
    assert background(clean) > 0.6 > background(a)  # noise reaches the empty canvas
    assert config.task()["clutter"]["noise"] == 0.0 and config.task()["test_portion"] == 0.5
    assert len(a.test) == 200 and len(a.search) == 200  # the task holds out half of itself
    config.test_portion = 0.2
    assert len(load_images(config).test) == 80 and config.task()["test_portion"] == 0.2


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"name": "foo"}, "data.name"), ({"name": "digits", "resize": 3}, "data.resize"),
     ({"name": "digits", "subset": 19}, "data.subset"),
     ({"name": "digits", "subset": 5000}, "data.subset")],
)
def test_load_images_rejects_bad_arguments(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        load_images(DataConfig(**kwargs))


def test_unknown_name_message_lists_choices() -> None:
    with pytest.raises(ValueError) as info:
        load_images(DataConfig(name="foo"))
    assert str(info.value) == ("data.name must be one of digits, digits_clutter, mnist, "
                               "fashion_mnist, cifar10, regression1d, diabetes, digits_flat; "
                               "got 'foo'")


# --- split ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "portion"), [(1797, 0.5), (100, 0.29), (10, 0.7)])
def test_split_sizes_disjoint_and_complete(n: int, portion: float) -> None:
    train, val = split_indices(n, portion, seed=0)
    assert len(train) == math.floor(portion * n) and len(val) == n - math.floor(portion * n)
    assert train.dtype == val.dtype == torch.int64
    assert set(train.tolist()).isdisjoint(val.tolist())
    assert sorted(train.tolist() + val.tolist()) == list(range(n))


def test_split_is_seeded() -> None:
    a, b = split_indices(200, 0.5, seed=1), split_indices(200, 0.5, seed=1)
    c = split_indices(200, 0.5, seed=2)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


@pytest.mark.parametrize("portion", [0.0, 1.0, -0.1, 1.5, float("nan"), True])
def test_config_rejects_bad_portion(portion: float) -> None:
    with pytest.raises(ValueError, match=r"^data.train_portion must be a number > 0.0 and "
                                         r"< 1.0; got"):
        DataConfig(train_portion=portion).validate()


def test_split_rejects_a_portion_that_empties_a_half() -> None:
    # 0.04 of 20 images is 0.8, floored to an empty w half.
    with pytest.raises(ValueError, match="data.train_portion 0.04 leaves an empty part"):
        split_indices(20, 0.04, seed=0)


# --- BatchStream ---------------------------------------------------------------------------


def _pixels(x: torch.Tensor, data: ImageSet) -> torch.Tensor:
    """Undo the normalisation of a batch of a uint8 set: back to the stored 0..255 values."""
    mean = torch.tensor(data.mean).view(1, -1, 1, 1)
    std = torch.tensor(data.std).view(1, -1, 1, 1)
    return torch.round((x * std + mean) * 255).to(torch.uint8)


def _identify(x: torch.Tensor, data: ImageSet) -> list[int]:
    """Which image of `data` each (unaugmented) image of the normalised batch `x` is."""
    matches = (_pixels(x, data)[:, None] == data.images[None]).flatten(2).all(2)
    assert (matches.sum(1) == 1).all()
    return matches.int().argmax(1).tolist()


def test_one_pass_covers_every_index_once() -> None:
    data = _tiny_set(n=50)
    stream = BatchStream(data, torch.arange(50), batch_size=16, seed=0)
    assert stream.batches_per_pass == len(stream) == 4 and stream.num_samples == 50
    seen, sizes = [], []
    for _ in range(4):
        x, y = stream.next()
        sizes.append(len(x))
        rows = _identify(x, data)
        assert torch.equal(y, data.labels[rows])
        seen += rows
    assert sizes == [16, 16, 16, 2]  # the last partial batch is kept
    assert sorted(seen) == list(range(50))
    # The next pass is reshuffled, not a repeat of the first.
    second = _identify(stream.next()[0], data)
    assert second != seen[:16]


def test_normalisation_matches_hand_computation(digits: ImageSet) -> None:
    idx = torch.arange(0, 1797, 3)
    stream = BatchStream(digits, idx, batch_size=128, seed=0)
    x = torch.cat([stream.next()[0] for _ in range(stream.batches_per_pass)])
    assert x.shape == (len(idx), 1, 8, 8) and x.dtype == torch.float32
    expected = (digits.images[idx].mean().item() - digits.mean[0]) / digits.std[0]
    assert x.mean().item() == pytest.approx(expected, abs=1e-5)
    assert x.std().item() == pytest.approx(digits.images[idx].std().item() / digits.std[0],
                                           rel=1e-4)


def test_state_round_trip_gives_identical_batches() -> None:
    data = _tiny_set(n=50)
    for augment in (False, True):
        a = BatchStream(data, torch.arange(50), batch_size=16, seed=7, augment=augment)
        for _ in range(5):  # crosses a pass boundary (4 batches per pass)
            a.next()
        state = a.state_dict()
        expected = [a.next() for _ in range(3)]
        b = BatchStream(data, torch.arange(50), batch_size=16, seed=99, augment=augment)
        b.load_state_dict(state)
        for (xa, ya), (xb, yb) in zip(expected, [b.next() for _ in range(3)], strict=True):
            assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_load_state_rejects_other_size() -> None:
    data = _tiny_set(n=50)
    state = BatchStream(data, torch.arange(50), 16, seed=0).state_dict()
    with pytest.raises(ValueError, match="50"):
        BatchStream(data, torch.arange(40), 16, seed=0).load_state_dict(state)


def test_iter_pass_in_order_and_leaves_shuffle_alone() -> None:
    data = _tiny_set(n=50)
    idx = torch.arange(49, -1, -1)  # reversed, so "in order" means the stream's own order
    stream = BatchStream(data, idx, batch_size=16, seed=0, augment=True)
    twin = BatchStream(data, idx, batch_size=16, seed=0, augment=True)
    batches = list(stream.iter_pass())
    assert [len(x) for x, _ in batches] == [16, 16, 16, 2]
    x = torch.cat([b[0] for b in batches])
    y = torch.cat([b[1] for b in batches])
    assert torch.equal(_pixels(x, data), data.images[idx])
    assert torch.equal(y, data.labels[idx])
    xa, ya = stream.next()
    xb, yb = twin.next()
    assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_augmentation_is_seeded_and_changes_images() -> None:
    data = _tiny_set(n=50, size=16)
    plain = BatchStream(data, torch.arange(50), batch_size=50, seed=5)
    aug_a = BatchStream(data, torch.arange(50), batch_size=50, seed=5, augment=True)
    aug_b = BatchStream(data, torch.arange(50), batch_size=50, seed=5, augment=True)
    (x0, y0), (xa, ya), (xb, yb) = plain.next(), aug_a.next(), aug_b.next()
    assert xa.shape == x0.shape == (50, 3, 16, 16)
    assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert torch.equal(ya, y0)  # same shuffle: augmentation draws come after the permutation
    assert (xa != x0).any(1).flatten(1).any(1).float().mean().item() > 0.5
    # Padding is 4 zero pixels: at least one sample shows the normalised zero value somewhere.
    zero = (0.0 - 0.5) / 0.25
    assert (xa == zero).all(1).any().item()


def test_augmentation_is_crop_and_flip_of_the_original() -> None:
    """Each augmented sample equals some shift (|dy|, |dx| <= pad) of the image, maybe mirrored."""
    data = _tiny_set(n=20, size=8, channels=1)  # 8 px: padding 1
    stream = BatchStream(data, torch.arange(20), batch_size=20, seed=0, augment=True)
    perm = stream.state_dict()["perm"]
    x, _ = stream.next()
    pixels = _pixels(x, data)
    mirrored = 0
    for i in range(20):
        img = torch.nn.functional.pad(data.images[perm[i]], (1, 1, 1, 1))
        crops = [img[:, dy:dy + 8, dx:dx + 8] for dy in range(3) for dx in range(3)]
        straight = any(torch.equal(pixels[i], c) for c in crops)
        flipped = any(torch.equal(pixels[i], c.flip(-1)) for c in crops)
        assert straight or flipped
        mirrored += flipped and not straight
    assert 3 <= mirrored <= 17  # about half are flipped


def test_make_streams_split_and_seeds(digits: ImageSet) -> None:
    train, val = make_streams(digits, DataConfig(batch_size=64), seed=0)
    assert train.num_samples == 718 and val.num_samples == 719  # of the 1437 search images
    assert train.batches_per_pass == 12 and val.batches_per_pass == 12
    x, y = train.next()
    assert x.shape == (64, 1, 8, 8) and y.shape == (64,) and y.dtype == torch.int64
    train_part, val_part = split_indices(1437, 0.5, 0)
    xv = torch.cat([b[0] for b in val.iter_pass()])
    expected = (digits.images[digits.search[val_part]] - digits.mean[0]) / digits.std[0]
    assert torch.allclose(xv, expected, atol=1e-6)


# --- torchvision sets, in their real on-disk formats, without network ----------------------


def _write_idx(path: Path, array: np.ndarray) -> None:
    """IDX (LeCun) file: big-endian magic 0x08 (uint8) + ndim, big-endian int32 dims, data."""
    header = struct.pack(">i", 0x0800 + array.ndim)
    header += struct.pack(f">{array.ndim}i", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def _write_mnist(root: Path, folder: str) -> tuple[np.ndarray, np.ndarray]:
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (30, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 30, dtype=np.uint8)
    _write_idx(raw / "train-images-idx3-ubyte", images)
    _write_idx(raw / "train-labels-idx1-ubyte", labels)
    _write_idx(raw / "t10k-images-idx3-ubyte", images[:2])
    _write_idx(raw / "t10k-labels-idx1-ubyte", labels[:2])
    return images, labels


@pytest.mark.parametrize(("name", "folder", "mean"),
                         [("mnist", "MNIST", 0.1307), ("fashion_mnist", "FashionMNIST", 0.2860)])
def test_mnist_formats_load(tmp_path: Path, name: str, folder: str, mean: float) -> None:
    images, labels = _write_mnist(tmp_path, folder)
    data = load_images(DataConfig(name=name, root=str(tmp_path)))
    assert data.images.shape == (30, 1, 28, 28) and data.images.dtype == torch.uint8
    assert torch.equal(data.images[:, 0], torch.from_numpy(images))
    assert torch.equal(data.labels, torch.from_numpy(labels).long())
    assert data.mean == (mean,) and data.num_classes == 10
    small = load_images(DataConfig(name=name, root=str(tmp_path), resize=14))
    assert small.images.shape == (30, 1, 14, 14) and small.images.dtype == torch.float32
    # Bilinear halving with align_corners=False averages each 2x2 block.
    block = torch.from_numpy(images[0, :2, :2]).float().mean().item() / 255
    assert small.images[0, 0, 0, 0].item() == pytest.approx(block, abs=1e-6)


def test_cifar10_format_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The real batches are Python 2 pickles whose str keys torchvision reads back (latin1) as
    # str, so keys are written as str here: Python 3 bytes keys would stay bytes.
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(1)
    batches = []
    for i in range(5):
        data = rng.integers(0, 256, (4, 3072), dtype=np.uint8)  # rows: R plane, G plane, B plane
        labels = [int(v) for v in rng.integers(0, 10, 4)]
        batches.append((data, labels))
        with open(folder / f"data_batch_{i + 1}", "wb") as f:
            pickle.dump({"data": data, "labels": labels}, f, protocol=2)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({"data": batches[0][0], "labels": batches[0][1]}, f, protocol=2)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"c{i}" for i in range(10)]}, f, protocol=2)
    # torchvision checks each file's md5 against the real CIFAR-10 release, which these tiny
    # files cannot match; accept any existing file instead (it also guards batches.meta).
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity",
                        lambda path, md5=None: os.path.isfile(path))

    loaded = load_images(DataConfig(name="cifar10", root=str(tmp_path)))
    expected = np.concatenate([d for d, _ in batches]).reshape(20, 3, 32, 32)
    assert loaded.images.shape == (20, 3, 32, 32) and loaded.images.dtype == torch.uint8
    assert torch.equal(loaded.images, torch.from_numpy(expected))
    assert loaded.images[0, 1, 0, 0].item() == batches[0][0][0, 1024]  # green plane, pixel (0, 0)
    assert loaded.labels.tolist() == [v for _, labels in batches for v in labels]
    assert loaded.in_channels == 3 and loaded.image_size == 32
    assert loaded.mean == (0.4914, 0.4822, 0.4465)


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "cifar10"])
def test_missing_files_give_clear_error(tmp_path: Path, name: str) -> None:
    with pytest.raises(FileNotFoundError) as info:
        load_images(DataConfig(name=name, root=str(tmp_path)))
    message = str(info.value)
    assert repr(name) in message and str(tmp_path.resolve()) in message
    assert "data.download=true" in message and "\n" not in message


@pytest.mark.parametrize("error", [URLError("no network"), OSError("network unreachable")])
@pytest.mark.parametrize("name", ["mnist", "cifar10"])
def test_failed_download_gives_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           name: str, error: OSError) -> None:
    calls = []

    def offline(url: str, *args: object, **kwargs: object) -> None:
        calls.append(url)
        raise error

    # Every torchvision download goes through utils.download_url: failing it there keeps the
    # test off the network while exercising the real download code around it.
    monkeypatch.setattr(torchvision.datasets.utils, "download_url", offline)
    with pytest.raises(FileNotFoundError) as info:
        load_images(DataConfig(name=name, root=str(tmp_path), download=True))
    assert calls  # the download really was attempted
    message = str(info.value)
    assert repr(name) in message and str(tmp_path.resolve()) in message
    assert "internet" in message and "\n" not in message

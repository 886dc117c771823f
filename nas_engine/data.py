"""Images for a search: loading, the held-out test part, the DARTS w/α split, and seeded
in-memory batch streams.

Everything is held in memory (and on the search device) because the search datasets are small
and a DataLoader's worker processes would cost more than they save on a laptop CPU. Batches
come from a seeded generator whose state can be saved, so a resumed search sees exactly the
batches an uninterrupted one would have seen.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from nas_engine.clutter import make_clutter
from nas_engine.config import DataConfig
from nas_engine.digits import load_digits_arrays

# Per-channel (mean, std) used for normalisation. The torchvision sets use the usual published
# training-split values; digits' were computed once over all 1797 images scaled to [0, 1].
_STATS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "digits": ((0.3053,), (0.3760,)),
    "mnist": ((0.1307,), (0.3081,)),
    "fashion_mnist": ((0.2860,), (0.3530,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
}
_NUM_CLASSES = 10  # all four sets


# The held-out test part is drawn with this seed, never the run's: a dataset's test images are
# the same for every search and every retrain.
SPLIT_SEED = 20_261_201


@dataclass(frozen=True, eq=False)  # eq=False: comparing tensors field by field is ambiguous
class ImageSet:
    """A dataset's images in memory, in the dataset's order, with the indices a search (and a
    retrain's train/val) may use and those held out for testing."""

    name: str
    images: torch.Tensor  # (N, C, H, W): float32 in [0, 1], or uint8 (0..255) for torchvision sets
    labels: torch.Tensor  # int64 (N,)
    num_classes: int
    mean: tuple[float, ...]  # per channel, in the [0, 1] scale
    std: tuple[float, ...]
    search: torch.Tensor  # indices searches may use (after `data.subset`)
    test: torch.Tensor  # the held-out indices
    test_digest: str  # sha256 of the dataset's name and its test indices

    def test_split(self) -> dict[str, Any]:
        """What a run folder records of the held-out part (`split.json`)."""
        return {"test_images": len(self.test), "test_sha256": self.test_digest}

    @property
    def in_channels(self) -> int:
        return self.images.shape[1]

    @property
    def image_size(self) -> int:
        """Height (= width: every set here is square)."""
        return self.images.shape[2]

    def __len__(self) -> int:
        return self.images.shape[0]


def _load_digits() -> tuple[torch.Tensor, torch.Tensor]:
    # Bundled with scikit-learn, so it works offline: the default for quick CPU demos.
    pixels, labels = load_digits_arrays()
    images = torch.from_numpy(pixels).float().div_(16.0).view(-1, 1, 8, 8)
    return images, torch.from_numpy(labels)


def _load_torchvision(name: str, root: Path, download: bool) -> tuple[torch.Tensor, torch.Tensor]:
    # Imported here so the digits path (and anything that only needs the API) stays light.
    import torchvision.datasets as tvd

    cls = {"mnist": tvd.MNIST, "fashion_mnist": tvd.FashionMNIST, "cifar10": tvd.CIFAR10}[name]
    try:
        dataset = cls(str(root), train=True, download=download)
    except (RuntimeError, OSError) as err:
        # torchvision says "Dataset not found" as a RuntimeError and a failed download as a
        # RuntimeError, URLError or OSError; turn them all into one line that says what to do.
        if download:
            message = (f"dataset {name!r} not found under {root} and could not be downloaded "
                       f"(downloading needs internet access; or place the torchvision files "
                       f"there)")
        else:
            message = (f"dataset {name!r} not found under {root} (set data.download=true to "
                       f"fetch it, or place the torchvision files there)")
        raise FileNotFoundError(message) from err
    if name == "cifar10":
        images = torch.from_numpy(dataset.data).permute(0, 3, 1, 2).contiguous()  # NHWC -> NCHW
        labels = torch.tensor(dataset.targets, dtype=torch.int64)
    else:
        images = dataset.data.unsqueeze(1)
        labels = dataset.targets.long()
    return images, labels


def _load_clutter(data: DataConfig) -> tuple[torch.Tensor, torch.Tensor]:
    digits, labels = _load_digits()
    c = data.clutter
    return make_clutter(digits, labels, c.images, c.canvas, c.fragments, c.fragment_size,
                        c.noise, c.seed)


def held_out(n: int, portion: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(search, test) indices of range(n): a fixed permutation (SPLIT_SEED), the last
    ⌈portion·n⌉ of it held out."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(SPLIT_SEED))
    cut = n - math.ceil(portion * n)
    return order[:cut], order[cut:]


def load_images(data: DataConfig, seed: int = 0) -> ImageSet:
    """Load a dataset's training split into memory and mark its held-out test part (the same
    whatever the seed) and the search part (an optional seeded subset of the rest).

    `data` is validated here (the config's own checks: one source for every caller); what only
    the loaded images can tell (a subset larger than the search part) is checked after loading.
    `subset` keeps a seeded random sample of the search images (fewer images make the search
    task harder, a lever for the collapse demos). `resize` is applied here, once, to all.
    """
    data.validate()
    name, resize, subset = data.name, data.resize, data.subset
    if name == "digits":
        images, labels = _load_digits()
    elif name == "digits_clutter":
        images, labels = _load_clutter(data)
    else:
        images, labels = _load_torchvision(name, Path(data.root).expanduser().resolve(),
                                           data.download)
    search, test = held_out(len(images), data.held_out_portion)
    digest = hashlib.sha256(f"{name}:{sorted(test.tolist())}".encode()).hexdigest()
    if subset is not None:
        if subset > len(search):
            raise ValueError(f"data.subset must be at most the {len(search)} search images of "
                             f"{name!r} (the rest are held out for testing); got {subset}")
        search = search[torch.randperm(len(search),
                                       generator=torch.Generator().manual_seed(seed))[:subset]]

    if resize is not None and resize != images.shape[-1]:
        if images.dtype == torch.uint8:
            images = images.float().div_(255.0)
        images = F.interpolate(images, size=(resize, resize), mode="bilinear",
                               align_corners=False)
    mean, std = _STATS.get(name) or _measured_stats(images)
    return ImageSet(name, images, labels, _NUM_CLASSES, mean, std, search, test, digest)


def _measured_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of a generated task (its parameters change them)."""
    x = images.float().transpose(0, 1).flatten(1)
    return tuple(x.mean(1).tolist()), tuple(x.std(1).tolist())


def split_indices(n: int, train_portion: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Split range(n) DARTS-style into the w half (first part) and the α half (the rest).

    DARTS splits the training set so that architecture weights are fitted on images the
    network weights never trained on; the split is a seeded permutation so runs are repeatable.
    """
    n_train = math.floor(train_portion * n)
    if n_train < 1 or n_train >= n:
        raise ValueError(f"data.train_portion {train_portion} leaves an empty part when "
                         f"splitting {n} images; choose a portion nearer 0.5 or use more images")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[:n_train], perm[n_train:]


# A dataset stays on a CUDA device when it takes at most this share of the free memory at the
# start (CIFAR-10's 150 MB of uint8 always does); otherwise it waits in pinned host memory.
RESIDENT_SHARE = 0.25


def fits_on_device(data: torch.Tensor, device: torch.device) -> bool:
    """Whether `data` may live on `device` for the whole run (always, off CUDA: a CPU run's
    images are already in memory, an MPS device shares it)."""
    if device.type != "cuda":
        return True
    free, _ = torch.cuda.mem_get_info(device)
    return data.numel() * data.element_size() <= RESIDENT_SHARE * free


class Shuffle:
    """A seeded order over n items, drawn again at each pass: what decides a stream's batches.
    Its state saves and restores exactly, so a resumed run sees the batches an uninterrupted
    one would. The generator lives on the CPU (its state is portable across devices and
    checkpoints) and also serves the stream's other draws (crops, flips, cutout)."""

    def __init__(self, n: int, seed: int) -> None:
        self.n = n
        self.generator = torch.Generator().manual_seed(seed)
        self.perm = torch.randperm(n, generator=self.generator)
        self.pos = 0

    def take(self, size: int) -> tuple[slice, bool]:
        """Where in `perm` the next batch of at most `size` lies, and whether a new pass (a
        new `perm`) began with it."""
        new_pass = self.pos >= self.n
        if new_pass:
            self.perm = torch.randperm(self.n, generator=self.generator)
            self.pos = 0
        part = slice(self.pos, min(self.pos + size, self.n))
        self.pos = part.stop
        return part, new_pass

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "perm": self.perm.clone(),
                "pos": self.pos}

    def load_state_dict(self, state: dict[str, Any], items: str) -> None:
        """Continue where the saved order was; it must cover as many `items` (their name)."""
        if len(state["perm"]) != self.n:
            raise ValueError(f"saved stream state covers {len(state['perm'])} {items}, this "
                             f"stream has {self.n}: was the data config changed?")
        self.generator.set_state(state["generator"])
        self.perm = state["perm"].clone()
        self.pos = int(state["pos"])


class BatchStream:
    """Endless, seeded, reshuffled-per-pass batches from part of an ImageSet, on one device.

    The images move to the device once (when they fit, `fits_on_device`); each batch is then
    only an index, a cast, optional augmentation and normalisation. What still crosses from the
    host (a pass's shuffle, augmentation draws, batches of a set too big for the device) is
    copied from pinned memory without blocking (the CUDA best-practices guide), so a step never
    waits for the host.
    """

    def __init__(self, images: ImageSet, indices: torch.Tensor, batch_size: int, seed: int,
                 device: torch.device | str = "cpu", augment: bool = False, cutout: int = 0,
                 channels_last: bool = False, resident: bool | None = None) -> None:
        """`channels_last`: batches in NHWC memory (the network's weights are); `resident`:
        keep the images on the device (default: when they fit)."""
        if len(indices) == 0:
            raise ValueError("a BatchStream needs at least one image")
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.augment = augment
        self.cutout = cutout  # side of a zeroed square per image (DeVries & Taylor), 0 = off
        self.channels_last = channels_last
        self.num_samples = len(indices)
        self.batches_per_pass = math.ceil(self.num_samples / batch_size)
        # uint8 sets stay uint8 (4x smaller) and are scaled per batch.
        self.indices = indices  # which images of the set it serves
        x = images.images[indices]
        self.resident = fits_on_device(x, self.device) if resident is None else resident
        self._x = x.to(self.device) if self.resident else self._pinned(x)
        self._y = images.labels[indices].to(self.device)
        self._scale = 1.0 / 255.0 if self._x.dtype == torch.uint8 else 1.0
        self._mean = torch.tensor(images.mean, device=self.device).view(1, -1, 1, 1)
        self._std = torch.tensor(images.std, device=self.device).view(1, -1, 1, 1)
        size = images.image_size
        self._pad = 4 if size >= 16 else max(1, size // 8)
        self._order = Shuffle(self.num_samples, seed)
        self._gen = self._order.generator
        self._perm_on_device = self._to_device(self._order.perm)

    def __len__(self) -> int:
        return self.batches_per_pass

    def _pinned(self, t: torch.Tensor) -> torch.Tensor:
        return t.pin_memory() if self.device.type == "cuda" else t

    def _to_device(self, t: torch.Tensor) -> torch.Tensor:
        """A host tensor on the device, copied without blocking the host."""
        return self._pinned(t).to(self.device, non_blocking=True)

    def _images(self, rows: torch.Tensor | slice, host_rows: torch.Tensor | slice
                ) -> torch.Tensor:
        """The stored images at `rows` (device indices), or at `host_rows` on the host."""
        if self.resident:
            return self._x[rows]
        return self._to_device(self._x[host_rows])

    def _finish(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The next (normalised images, labels) batch; a new shuffle starts each pass."""
        part, new_pass = self._order.take(self.batch_size)
        if new_pass:  # one copy of the order per pass, not one per batch
            self._perm_on_device = self._to_device(self._order.perm)
        idx = self._perm_on_device[part]
        x = self._images(idx, self._order.perm[part]).float() * self._scale
        if self.augment:
            x = self._crop_and_flip(x)
        x = (x - self._mean) / self._std
        if self.cutout:
            x = self._cut_out(x)
        return self._finish(x), self._y[idx]

    def iter_pass(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One pass in stored order, unaugmented, leaving the shuffle state untouched (for eval)."""
        for start in range(0, self.num_samples, self.batch_size):
            part = slice(start, start + self.batch_size)
            x = self._images(part, part).float() * self._scale
            yield self._finish((x - self._mean) / self._std), self._y[part]

    def _crop_and_flip(self, x: torch.Tensor) -> torch.Tensor:
        """DARTS' RandomCrop(padding) + RandomHorizontalFlip, per sample, as one gather."""
        b, _, h, w = x.shape
        p = self._pad
        off_y = self._to_device(torch.randint(0, 2 * p + 1, (b,), generator=self._gen))
        off_x = self._to_device(torch.randint(0, 2 * p + 1, (b,), generator=self._gen))
        flip = self._to_device(torch.rand(b, generator=self._gen) < 0.5)
        rows = off_y[:, None] + torch.arange(h, device=self.device)  # (B, H)
        cols = off_x[:, None] + torch.arange(w, device=self.device)  # (B, W)
        cols = torch.where(flip[:, None], cols.flip(1), cols)  # reading columns backwards = flip
        padded = F.pad(x, (p, p, p, p)).permute(0, 2, 3, 1)  # (B, H+2p, W+2p, C), zero padding
        batch = torch.arange(b, device=self.device)[:, None, None]
        return padded[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)

    def _cut_out(self, x: torch.Tensor) -> torch.Tensor:
        """DARTS' Cutout after normalisation: a square of side `cutout` around a random centre
        per image set to 0 (clipped at the borders, as the official one)."""
        b, _, h, w = x.shape
        half = self.cutout // 2
        cy = self._to_device(torch.randint(0, h, (b,), generator=self._gen))
        cx = self._to_device(torch.randint(0, w, (b,), generator=self._gen))
        rows = torch.arange(h, device=self.device)[None, :]
        cols = torch.arange(w, device=self.device)[None, :]
        inside_rows = (rows >= (cy[:, None] - half)) & (rows < (cy[:, None] + half))
        inside_cols = (cols >= (cx[:, None] - half)) & (cols < (cx[:, None] + half))
        hole = inside_rows[:, :, None] & inside_cols[:, None, :]  # (B, H, W)
        return x.masked_fill(hole[:, None], 0.0)

    def state_dict(self) -> dict[str, Any]:
        """Everything that decides future batches: generator state, current shuffle, position."""
        return self._order.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue exactly where the saved stream was; the stream must cover the same images."""
        self._order.load_state_dict(state, "images")
        self._perm_on_device = self._to_device(self._order.perm)


def make_streams(images: ImageSet, data: DataConfig, seed: int,
                 device: torch.device | str = "cpu", cutout: int = 0,
                 channels_last: bool = False) -> tuple[BatchStream, BatchStream]:
    """The (train, val) streams of a search: w learns on train, α on val.

    The two streams get different seeds so their shuffles are independent; only the training
    stream is augmented (and cut out), because α (or a retrain's progress) should be judged
    on the images as they are.
    """
    train_part, val_part = split_indices(len(images.search), data.train_portion, seed)
    train_idx, val_idx = images.search[train_part], images.search[val_part]
    train = BatchStream(images, train_idx, data.batch_size, seed, device, augment=data.augment,
                        cutout=cutout, channels_last=channels_last)
    val = BatchStream(images, val_idx, data.batch_size, seed + 1, device, augment=False,
                      channels_last=channels_last)
    return train, val

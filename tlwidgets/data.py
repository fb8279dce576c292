"""Image datasets for transfer learning: folders, arrays and offline sample photographs.

:class:`ImageData` holds a fixed train/valid split and builds the transforms from a model's
pretrained config (timm's ``resolve_model_data_config`` + ``create_transform``), so that the
images a pretrained backbone sees are resized and normalised the way it was trained.

>>> import tlwidgets as tlw
>>> data = tlw.ImageData.from_folder("photos/", img_size=128)   # doctest: +SKIP
>>> data.summary()                                               # doctest: +SKIP
>>> xb, yb = next(iter(data.train_loader()))                     # doctest: +SKIP

The core never imports ipywidgets; this module needs only torch, timm, PIL, numpy and pandas.

Where each part lives (this module re-exports their public names):

- ``_image_files``: reading and checking image files (``to_rgb``, ``upright``, ``load_rgb``,
  ``check_image``, the thread-pool file check with its progress bar, the skip log).
- ``_class_folders``: scanning a folder into classes (class folders, train/valid layouts,
  links back to the root, notes).
- ``_image_transforms``: transforms and data configs (``resolve_data_config``, the augment
  levels, the ``img_size`` check).
- ``_data_splits``: the stratified split, ``valid_pct`` and ``seed`` checks, subset positions.
- ``_image_arrays``: images and labels given as arrays (``from_arrays``).
- ``_image_dataset``: the torch dataset over one split (``ImageDataset``).
- ``_data_summary``: the ``summary()`` table (``DataSummary``) and the notes under it.
- here: ``ImageData`` with its constructors, and ``sample_data``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader

from ._class_folders import scan_folder
from ._data_splits import check_seed, check_valid_pct, positions, stratified_split
from ._data_summary import DataSummary, reading_notes, summary_table
from ._image_arrays import images_to_uint8_nhwc, label_indices
from ._image_dataset import ImageDataset, Item, Source
from ._image_files import (
    CHECK_CHOICES,
    IMAGE_EXTENSIONS,
    SkipLog,
    check_image,
    load_rgb,
    to_rgb,
    upright,
)
from ._image_transforms import (
    AUGMENT_CHOICES,
    IMAGENET_MEAN,
    IMAGENET_STD,
    MAX_IMG_SIZE,
    build_transform,
    check_augment,
    check_img_size,
    resolve_data_config,
)
from .errors import DataError

__all__ = [
    "AUGMENT_CHOICES",
    "IMAGE_EXTENSIONS",
    "DataSummary",
    "ImageData",
    "check_image",
    "load_rgb",
    "resolve_data_config",
    "sample_data",
    "to_rgb",
    "upright",
]
# tlwidgets.data.<name> keeps reaching these too, as before they moved to their own modules
_ALSO_HERE = (CHECK_CHOICES, IMAGENET_MEAN, IMAGENET_STD, MAX_IMG_SIZE, ImageDataset, Item)

Split = Literal["train", "valid"]


class ImageData:
    """A labelled image dataset with a fixed train/valid split and model-matched transforms.

    Build one with :meth:`from_folder`, :meth:`from_arrays` or :func:`sample_data`.

    Attributes: ``classes``, ``num_classes``, ``train_items``/``valid_items`` (lists of
    ``(path or None, label)`` in the stable order of ``train_ds``/``valid_ds``), ``skipped``
    (``(path, reason)`` of files that could not be read), ``ignored`` (non-image files left
    out, ``{extension: count}``), ``notes`` (sentences about both, shown by :meth:`summary`),
    ``batch_size``, ``augment``, ``data_config`` (the resolved preprocessing config),
    ``num_workers``.

    >>> import tlwidgets as tlw
    >>> data = tlw.ImageData.from_folder("photos/", img_size=128)   # doctest: +SKIP
    >>> data.classes, len(data.train_ds), len(data.valid_ds)          # doctest: +SKIP
    """

    def __init__(
        self,
        *,
        classes: Sequence[str],
        train_items: Sequence[Item],
        valid_items: Sequence[Item],
        source: Source,
        model: Any = None,
        img_size: int | None = None,
        batch_size: int = 32,
        augment: str = "light",
        num_workers: int = 0,
        skipped: Sequence[tuple[str, str]] | SkipLog = (),
        seed: int = 0,
        crop_pct: float | None = None,
        array_index: tuple[Sequence[int], Sequence[int]] | None = None,
        root: Path | None = None,
        ignored: dict[str, int] | None = None,
        notes: Sequence[str] = (),
    ) -> None:
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise DataError(f"batch_size must be a positive integer; got {batch_size!r}.")
        if not isinstance(num_workers, int) or num_workers < 0:
            raise DataError(f"num_workers must be an integer >= 0; got {num_workers!r}.")
        img_size = check_img_size(img_size)
        seed = check_seed(seed)
        self.classes: list[str] = list(classes)
        self.train_items: list[Item] = list(train_items)
        self.valid_items: list[Item] = list(valid_items)
        self.batch_size = batch_size
        self.augment = check_augment(augment)
        self.num_workers = num_workers
        self.seed = int(seed)
        self.root = root
        #: Non-image files left out when the folder was read: extension -> count.
        self.ignored: dict[str, int] = dict(ignored or {})
        self._notes = list(notes)
        self._source = source
        self._skip_log = skipped if isinstance(skipped, SkipLog) else SkipLog(list(skipped))
        self._img_size = img_size
        self._crop_pct = crop_pct
        self._array_index = array_index
        self.model_cfg_source = model
        self.data_config = resolve_data_config(model, img_size)
        if crop_pct is not None:
            self.data_config["crop_pct"] = crop_pct
        self._transforms: dict[tuple[str, bool], Callable[[Any], torch.Tensor]] = {}

    # ---------------------------------------------------------------- properties
    @property
    def num_classes(self) -> int:
        """How many classes there are (the size of the classifier head)."""
        return len(self.classes)

    @property
    def skipped(self) -> list[tuple[str, str]]:
        """``(path, reason)`` of every file left out: at construction (header check) or when it
        failed to decode while loading. Grows during an epoch if a file fails then."""
        with self._skip_log.lock:
            return list(self._skip_log.entries)

    @property
    def img_size(self) -> int:
        """The side length, in pixels, of the tensors the transforms produce."""
        return int(self.data_config["input_size"][-1])

    @property
    def mean(self) -> tuple[float, ...]:
        return tuple(self.data_config["mean"])

    @property
    def std(self) -> tuple[float, ...]:
        return tuple(self.data_config["std"])

    @property
    def augment_is_random(self) -> bool:
        """True when the training transform draws random numbers (any augment but "none")."""
        return self.augment != "none"

    def transform(
        self, train: bool = False, augment: str | bool | None = None
    ) -> Callable[[Any], torch.Tensor]:
        """The transform (PIL RGB image -> normalised CHW tensor) of the training or eval path.

        >>> tf = data.transform(train=False)                     # doctest: +SKIP
        >>> tf(load_rgb("cat.jpg")).shape                       # doctest: +SKIP
        torch.Size([3, 224, 224])
        """
        aug = self.augment if augment is None else check_augment(augment)
        key = (aug if train else "none", bool(train))
        if key not in self._transforms:
            self._transforms[key] = build_transform(self.data_config, aug, train)
        return self._transforms[key]

    @property
    def eval_transform(self) -> Callable[[Any], torch.Tensor]:
        """The deterministic transform used for validation, feature caching and prediction."""
        return self.transform(train=False)

    def preprocess(self, image: Any) -> torch.Tensor:
        """Turn a path, PIL image or HWC/CHW array into one normalised CHW tensor (eval path).
        Files and PIL images are turned upright by their EXIF orientation tag first.

        >>> x = data.preprocess("cat.jpg").unsqueeze(0)         # doctest: +SKIP
        """
        if isinstance(image, (str, os.PathLike)):
            try:
                img = load_rgb(image)
            except FileNotFoundError:
                raise DataError(f"No image file at {str(image)!r}; check the path.") from None
            except Exception as err:
                raise DataError(
                    f"Could not read {str(image)!r} as an image ({type(err).__name__}: {err}); "
                    "check the file opens in an image viewer."
                ) from None
        elif isinstance(image, Image.Image):
            img = to_rgb(upright(image))
        else:
            if isinstance(image, torch.Tensor):
                image = image.detach().cpu().numpy()
            arr = images_to_uint8_nhwc(np.asarray(image)[None])
            img = Image.fromarray(arr[0])
        return self.eval_transform(img)

    # ---------------------------------------------------------------- datasets and loaders
    def _dataset(self, split: Split, transform: Callable[[Any], torch.Tensor]) -> ImageDataset:
        items = self.train_items if split == "train" else self.valid_items
        ai = None
        if self._array_index is not None:
            ai = self._array_index[0] if split == "train" else self._array_index[1]
        return ImageDataset(items, transform, self._source, self._skip_log, ai)

    @property
    def train_ds(self) -> ImageDataset:
        """Training split with the training transform (random when ``augment_is_random``)."""
        return self._dataset("train", self.transform(train=True))

    @property
    def valid_ds(self) -> ImageDataset:
        """Validation split with the eval transform; item ``i`` is ``valid_items[i]``."""
        return self._dataset("valid", self.eval_transform)

    def _loader(self, ds: ImageDataset, shuffle: bool, drop_last: bool) -> DataLoader:
        generator = torch.Generator().manual_seed(self.seed) if shuffle else None
        return DataLoader(
            ds,
            batch_size=self.batch_size,
            shuffle=shuffle,
            drop_last=drop_last,
            num_workers=self.num_workers,
            pin_memory=torch.cuda.is_available(),
            persistent_workers=self.num_workers > 0,
            generator=generator,
        )

    def train_loader(
        self, augment: str | bool | None = None, shuffle: bool = True, drop_last: bool = False
    ) -> DataLoader:
        """A DataLoader over the training split.

        ``augment=None`` uses the data's own ``augment``; ``False`` (or ``"none"``) gives the
        deterministic eval transform (for feature caching: the same image always gives the same
        tensor); a string picks another augmentation level. The shuffle order is reproducible
        from ``seed`` (a fresh, seeded generator per loader).

        >>> for xb, yb in data.train_loader():                  # doctest: +SKIP
        ...     loss = loss_fn(model(xb), yb)
        """
        aug = self.augment if augment is None else check_augment(augment)
        ds = self._dataset("train", self.transform(train=aug != "none", augment=aug))
        return self._loader(ds, shuffle=shuffle, drop_last=drop_last)

    def valid_loader(self) -> DataLoader:
        """A DataLoader over the validation split, in ``valid_items`` order, eval transform.

        >>> preds = [model(xb).argmax(1) for xb, _ in data.valid_loader()]   # doctest: +SKIP
        """
        return self._loader(self.valid_ds, shuffle=False, drop_last=False)

    def raw_image(self, split: Split, index: int) -> Image.Image:
        """Item ``index`` of ``split`` ("train" or "valid") as an RGB PIL image, not resized or
        normalised (for galleries of mistakes).

        >>> data.raw_image("valid", 0).size                     # doctest: +SKIP
        """
        if split not in ("train", "valid"):
            raise DataError(f"split must be 'train' or 'valid'; got {split!r}.")
        items = self.train_items if split == "train" else self.valid_items
        if not -len(items) <= index < len(items):
            raise DataError(
                f"index {index} is out of range: the {split} split has {len(items)} images."
            )
        ds = self._dataset(split, self.eval_transform)
        try:
            return ds.raw(index % len(items))
        except Exception as err:
            path = items[index][0]
            raise DataError(
                f"Could not read {path!r} ({type(err).__name__}: {err}); the file is damaged "
                "or was removed after the data was built."
            ) from None

    # ---------------------------------------------------------------- summaries and copies
    def summary(self) -> DataSummary:
        """Images per class and split: rows are classes, columns ``train``, ``valid``, ``total``;
        under the table (and in ``.notes``) what was skipped and why, and how many non-image
        files were ignored.

        >>> data.summary()                                      # doctest: +SKIP
                train  valid  total
        class
        brick      40     12     52
        ...
        - 1 file skipped (data.skipped lists each with its reason): brick/cut.jpg: the file is cut off
        - 2 non-image files ignored: .txt (2)
        """
        return summary_table(self.classes, self.train_items, self.valid_items, self.notes)

    @property
    def notes(self) -> list[str]:
        """Plain sentences about how the data was read: files skipped (and why), non-image
        files ignored, class folders that are not classes. Shown under :meth:`summary`.

        >>> for line in data.notes: print(line)                # doctest: +SKIP
        """
        return reading_notes(self.skipped, self.ignored, self.root) + self._notes

    def with_model(self, model: Any) -> ImageData:
        """The same split and settings with transforms re-derived from ``model``'s pretrained
        cfg (mean, std, interpolation, crop; the size too unless ``img_size`` was given).

        >>> data = data.with_model(timm.create_model("vit_tiny_patch16_224"))   # doctest: +SKIP
        """
        return ImageData(
            classes=self.classes,
            train_items=self.train_items,
            valid_items=self.valid_items,
            source=self._source,
            model=model,
            img_size=self._img_size,
            batch_size=self.batch_size,
            augment=self.augment,
            num_workers=self.num_workers,
            skipped=self._skip_log,
            seed=self.seed,
            crop_pct=self._crop_pct,
            array_index=self._array_index,
            root=self.root,
            ignored=self.ignored,
            notes=self._notes,
        )

    def subset(
        self, train_indices: Any, valid_indices: Any = None
    ) -> ImageData:
        """The same data restricted to some training images (and optionally some validation
        images): same classes, transforms, batch size, seed and augment.

        ``train_indices`` are positions in ``train_items`` (a list, range or 1-D integer
        array, no repeats); the result's ``train_items`` keep the original order. The
        validation split is kept whole unless ``valid_indices`` (positions in ``valid_items``)
        is given. Subsets nest: ``data.subset(a).subset(b)`` indexes into the first subset.
        Files that fail to decode are recorded in one ``skipped`` list shared with ``self``.

        >>> import numpy as np, tlwidgets as tlw
        >>> x = np.random.rand(20, 16, 16, 3).astype("float32"); y = np.arange(20) % 2
        >>> data = tlw.ImageData.from_arrays(x, y, classes=["a", "b"])
        >>> small = data.subset(range(4))
        >>> len(small.train_items), len(small.valid_items) == len(data.valid_items)
        (4, True)
        """
        tr = positions(train_indices, len(self.train_items), "train_indices", "train_items")
        if not tr:
            raise DataError(
                "train_indices is empty; a subset needs at least one training image (pass "
                "positions in data.train_items)."
            )
        va = (
            list(range(len(self.valid_items)))
            if valid_indices is None
            else positions(valid_indices, len(self.valid_items), "valid_indices", "valid_items")
        )
        array_index = None
        if self._array_index is not None:
            array_index = (
                [self._array_index[0][i] for i in tr],
                [self._array_index[1][i] for i in va],
            )
        return ImageData(
            classes=self.classes,
            train_items=[self.train_items[i] for i in tr],
            valid_items=[self.valid_items[i] for i in va],
            source=self._source,
            model=self.model_cfg_source,
            img_size=self._img_size,
            batch_size=self.batch_size,
            augment=self.augment,
            num_workers=self.num_workers,
            skipped=self._skip_log,
            seed=self.seed,
            crop_pct=self._crop_pct,
            array_index=array_index,
            root=self.root,
            ignored=self.ignored,
            notes=self._notes,
        )

    def __repr__(self) -> str:
        return (
            f"ImageData({self.num_classes} classes, {len(self.train_items)} train / "
            f"{len(self.valid_items)} valid images, {self.img_size}px, augment={self.augment!r}, "
            f"{len(self._skip_log.entries)} skipped)"
        )

    # ---------------------------------------------------------------- constructors
    @classmethod
    def from_folder(
        cls,
        root: str | os.PathLike[str],
        valid_pct: float = 0.2,
        seed: int = 0,
        model: Any = None,
        img_size: int | None = None,
        batch_size: int = 32,
        augment: str = "light",
        num_workers: int = 0,
        progress: bool = True,
        check: str = "decode",
    ) -> ImageData:
        """Images in one subfolder per class (``root/<class>/*.jpg``), or already split into
        ``root/train/<class>/`` and ``root/valid/<class>/`` (``val/`` works too; then
        ``valid_pct`` is not used).

        The split is stratified and deterministic for a ``seed``. Every image file is decoded
        once here (:func:`check_image`, in a thread pool; a progress bar appears when that
        takes over a second, unless ``progress=False``): files that cannot be used are left out
        and listed with the reason in ``data.skipped``, and files without an image extension
        are counted in ``data.ignored``; :meth:`summary` says both. ``check="header"`` checks
        headers and JPEG end markers only (for huge folders of large photos: it finds cut-off
        files, not damage inside a file, which then shows up when training reaches it).
        Classes are decided after that: a class folder with no readable image (or none at all)
        is not a class and gets a note; a class with images in ``valid/`` only, or a folder
        that links back to ``root`` (or is another class's folder under a second name), is a
        :class:`DataError`. Transforms follow ``model``'s
        pretrained cfg (ImageNet defaults without one); ``img_size`` overrides its size.
        ``augment`` is "none", "light" (mild random-resized crop and flip) or "standard"
        (timm's default training transform).

        >>> import tlwidgets as tlw
        >>> data = tlw.ImageData.from_folder("pets/", model=model, img_size=128)   # doctest: +SKIP
        >>> data.summary()                                                          # doctest: +SKIP
        """
        augment = check_augment(augment)
        pct = check_valid_pct(valid_pct)
        img_size = check_img_size(img_size)
        seed = check_seed(seed)
        if check not in CHECK_CHOICES:
            raise DataError(
                f"check={check!r} is not understood; use 'decode' (decode every file now, the "
                "default) or 'header' (headers and JPEG end markers only, faster)."
            )
        layout = scan_folder(root, pct, seed, progress, check)
        return cls(
            classes=layout.classes,
            train_items=layout.train_items,
            valid_items=layout.valid_items,
            source=Source(),
            model=model,
            img_size=img_size,
            batch_size=batch_size,
            augment=augment,
            num_workers=num_workers,
            skipped=layout.skipped,
            seed=seed,
            root=layout.root,
            ignored=layout.ignored,
            notes=layout.notes,
        )

    @classmethod
    def from_arrays(
        cls,
        images: Any,
        labels: Any,
        classes: Sequence[str] | None = None,
        valid_pct: float = 0.2,
        seed: int = 0,
        batch_size: int = 32,
        model: Any = None,
        img_size: int | None = None,
        augment: str = "none",
        num_workers: int = 0,
    ) -> ImageData:
        """In-memory images: a numpy array or torch tensor, ``NCHW`` or ``NHWC`` (the layout is
        found from where the 1- or 3-channel axis is; ``NHW`` is grayscale), ``uint8`` (0..255)
        or float (0..1). ``labels`` are ints in ``[0, len(classes))`` or class-name strings.

        Images are normalised with the model's mean/std (ImageNet's without a model) and
        resized to ``img_size`` if given, else to the model's input size if a model is given,
        else kept at their own size. They are kept in memory as one uint8 copy (float input is
        rounded to 1/255 steps, which no image model notices).

        >>> import numpy as np, tlwidgets as tlw
        >>> x = np.random.rand(20, 32, 32, 3).astype("float32"); y = np.arange(20) % 2
        >>> data = tlw.ImageData.from_arrays(x, y, classes=["a", "b"])
        >>> data.train_ds[0][0].shape
        torch.Size([3, 32, 32])
        """
        augment = check_augment(augment)
        pct = check_valid_pct(valid_pct)
        img_size = check_img_size(img_size)
        seed = check_seed(seed)
        arr = images_to_uint8_nhwc(images)
        n = arr.shape[0]
        int_labels, classes = label_indices(labels, classes, n)
        tr, va = stratified_split(int_labels.tolist(), pct, seed, classes)
        train_items = [(None, int(int_labels[i])) for i in tr]
        valid_items = [(None, int(int_labels[i])) for i in va]
        if img_size is None and model is None:
            img_size = int(arr.shape[1])
        return cls(
            classes=classes,
            train_items=train_items,
            valid_items=valid_items,
            source=Source(arr),
            model=model,
            img_size=img_size,
            batch_size=batch_size,
            augment=augment,
            num_workers=num_workers,
            seed=seed,
            # arrays are already framed by whoever made them: resize, never centre-crop away
            crop_pct=1.0,
            array_index=(tr, va),
        )


def sample_data(
    name: str = "textures",
    model: Any = None,
    img_size: int | None = None,
    batch_size: int = 16,
    augment: str = "light",
    num_workers: int = 0,
    cache_dir: str | os.PathLike[str] | None = None,
) -> ImageData:
    """A small offline dataset of real photographs shipped inside an installed package.

    The images are written once as PNG files under ``cache_dir`` (default
    ``~/.cache/tlwidgets/sample_data``) and loaded with :meth:`ImageData.from_folder`, so the
    sample takes the same path as a user's folder. Nothing is downloaded.

    Samples (``name``), all built from photographs in the scikit-image wheel (``skimage/data``,
    scikit-image is in the ``offline`` extra):

    ``"textures"`` (default): 4 classes of real surface photographs: ``brick`` (a brick wall,
    CC0Textures "Bricks25", CC0), ``grass`` (DeviantArt user linolafett "Grass 01", CC0),
    ``gravel`` (CC0Textures "Gravel04", CC0) and ``stars`` (the Hubble eXtreme Deep Field,
    NASA, public domain), all grayscale. Each class is 40 training and 12 validation crops
    (128x128 px, random size and position, some mirrored) of one photograph; training crops
    come from the top 70% of the photo and validation crops from the bottom 30%, so no
    validation pixel is ever seen in training. 208 files, about 3 MB, built in about a second.

    ``"faces"``: scikit-image's ``lfw_subset``: 100 face and 100 non-face crops (25x25 px,
    grayscale) from the Labeled Faces in the Wild photographs (Huang et al., UMass Amherst;
    news photographs redistributed for research in scikit-image, no separate licence stated);
    split 80/20, stratified.

    >>> import tlwidgets as tlw
    >>> data = tlw.sample_data(img_size=64)       # doctest: +SKIP
    >>> data.summary()                            # doctest: +SKIP
    """
    from . import _sample_data

    img_size = check_img_size(img_size)
    augment = check_augment(augment)
    folder, valid_pct = _sample_data.materialise(name, cache_dir)
    return ImageData.from_folder(
        folder,
        valid_pct=valid_pct,
        seed=0,
        model=model,
        img_size=img_size,
        batch_size=batch_size,
        augment=augment,
        num_workers=num_workers,
    )

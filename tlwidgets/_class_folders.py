"""Scanning a folder into classes: one subfolder per class, or train/ and valid/ with one
subfolder per class in each; classes are decided after every file is checked, links that
would count images twice are refused, and what was left out becomes a note.

:func:`scan_folder` is the body of ``ImageData.from_folder``; it returns a
:class:`FolderLayout` (classes, both splits' items, skipped files, ignored extensions, notes).

>>> layout = scan_folder("photos/", 0.2, 0, progress=False, check="decode")   # doctest: +SKIP
>>> layout.classes, len(layout.train_items), layout.notes                     # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ._data_splits import stratified_split
from ._image_files import IMAGE_EXTENSIONS, check_files
from .errors import DataError

__all__ = [
    "FolderLayout",
    "FolderScan",
    "check_classes",
    "class_names",
    "found_problems",
    "list_images",
    "rel",
    "scan_folder",
    "subdirs",
]


@dataclass
class FolderLayout:
    """What :func:`scan_folder` found: ``root`` (the folder, ``~`` expanded), ``classes``
    (sorted), ``train_items``/``valid_items`` (``(path, class index)`` sorted by class, then
    path), ``skipped`` (``(path, reason)``), ``ignored`` (``{extension: count}``) and ``notes``.

    >>> FolderLayout(Path("p"), ["a", "b"], [("p/a/1.png", 0)], [], [], {}, []).classes
    ['a', 'b']
    """

    root: Path
    classes: list[str]
    train_items: list[tuple[str, int]]
    valid_items: list[tuple[str, int]]
    skipped: list[tuple[str, str]]
    ignored: dict[str, int]
    notes: list[str]


def scan_folder(
    root: str | os.PathLike[str], pct: float, seed: int, progress: bool, check: str
) -> FolderLayout:
    """The classes and split of the image folder ``root`` (``root/<class>/``, or
    ``root/train/<class>/`` and ``root/valid/<class>/``; ``val/`` works too), every file
    checked with :func:`check_files` first; a DataError naming the fix when the folder is
    missing, holds fewer than two classes, a class only in ``valid/`` or a link that would
    count images twice. ``pct`` and ``seed`` split a folder that is not split already.

    >>> scan_folder("photos/", 0.2, 0, True, "header").classes     # doctest: +SKIP
    ['cat', 'dog']
    """
    root_path = Path(root).expanduser()
    if not root_path.exists():
        raise DataError(
            f"The folder {str(root_path)!r} does not exist; pass the folder that holds one "
            "subfolder per class (or train/ and valid/ subfolders)."
        )
    if not root_path.is_dir():
        raise DataError(
            f"{str(root_path)!r} is a file, not a folder; pass the folder that holds one "
            "subfolder per class."
        )
    names = {p.name.lower(): p for p in subdirs(root_path)}
    train_dir = names.get("train")
    valid_dir = names.get("valid") or names.get("val")
    skipped: list[tuple[str, str]] = []
    ignored: Counter[str] = Counter()
    notes: list[str] = []
    # classes are decided after every file is checked: a folder with no readable image is
    # not a class, and says so in notes
    scan = FolderScan(root_path)

    if train_dir is not None and valid_dir is not None:
        train_found = scan.classes(train_dir, ignored)
        valid_found = scan.classes(valid_dir, ignored)
        bad = found_problems([train_found, valid_found], progress, check)
        train_ok = scan.readable(train_dir, train_found, bad, skipped)
        valid_ok = scan.readable(valid_dir, valid_found, bad, skipped)
        classes = sorted(set(train_ok) | set(valid_ok))
        check_classes(root_path, classes, {**valid_ok, **train_ok}, True, scan.notes,
                      bool(scan.unreadable))
        only_valid = sorted(set(valid_ok) - set(train_ok))
        if only_valid:
            raise DataError(
                f"{class_names(only_valid)} {'has' if len(only_valid) == 1 else 'have'} images "
                f"in {valid_dir.name}/ but none in {train_dir.name}/: the model would have "
                "an output for a class it never sees, and its validation images could "
                f"never be right. Add training images to {train_dir.name}/<class>/, or "
                f"move those folders out of {valid_dir.name}/."
            )
        only_train = sorted(set(train_ok) - set(valid_ok))
        if only_train:
            notes.append(
                f"{class_names(only_train)}: images in {train_dir.name}/ but none in "
                f"{valid_dir.name}/, so validation measures nothing for "
                f"{'it' if len(only_train) == 1 else 'them'}. Add images to "
                f"{valid_dir.name}/<class>/."
            )
        index = {c: i for i, c in enumerate(classes)}
        train_items = [(str(p), index[c]) for c, ps in train_ok.items() for p in ps]
        valid_items = [(str(p), index[c]) for c, ps in valid_ok.items() for p in ps]
    else:
        found_ignored: Counter[str] = Counter()
        folder = root_path
        found = scan.classes(root_path, found_ignored)
        if train_dir is not None and valid_dir is None:
            # root/train/<class>/ without a valid/ folder: split train/ by valid_pct rather
            # than mistaking "train" (and "test") for class names
            nested = FolderScan(root_path)
            nested_found = nested.classes(train_dir, ignored)
            if nested_found:
                found, found_ignored, scan, folder = nested_found, ignored, nested, train_dir
        ignored = found_ignored
        bad = found_problems([found], progress, check)
        ok = scan.readable(folder, found, bad, skipped)
        classes = sorted(ok)
        check_classes(root_path, classes, ok, False, scan.notes, bool(scan.unreadable))
        index = {c: i for i, c in enumerate(classes)}
        all_items = [(str(p), index[c]) for c, ps in ok.items() for p in ps]
        labels = [y for _, y in all_items]
        tr, va = stratified_split(labels, pct, seed, classes)
        train_items = [all_items[i] for i in tr]
        valid_items = [all_items[i] for i in va]
    # a stable, human-sensible order: by class, then by path
    train_items.sort(key=lambda it: (it[1], it[0]))
    valid_items.sort(key=lambda it: (it[1], it[0]))
    return FolderLayout(
        root=root_path,
        classes=classes,
        train_items=train_items,
        valid_items=valid_items,
        skipped=skipped,
        ignored=dict(ignored),
        notes=scan.notes + notes,
    )


def check_classes(
    root: Path,
    classes: list[str],
    found: dict[str, list[Path]],
    presplit: bool,
    notes: Sequence[str] = (),
    unreadable: bool = False,
) -> None:
    """A DataError unless ``classes`` has at least two names: it says what the folder holds
    instead (one class, no readable image, nothing, images outside class folders, only other
    files) and lists ``notes``. ``presplit``: the folder has train/ and valid/.

    >>> check_classes(Path("photos"), ["cat", "dog"], {}, False)
    """
    if len(classes) >= 2:
        return
    layout = "train/<class>/ and valid/<class>/" if presplit else "<class>/"
    expected = (
        f"expected at least two class subfolders with images ({root}/{layout}<image>, "
        f"extensions {', '.join(IMAGE_EXTENSIONS)})"
    )
    also = "".join(f"\n- {n}" for n in notes)
    if len(classes) == 1:
        c = classes[0]
        raise DataError(
            f"Found only one class, {c!r} ({len(found[c])} images) under {str(root)!r}; "
            f"{expected}. Add a subfolder for each other class.{also}"
        )
    if unreadable:
        raise DataError(
            f"No class folder under {str(root)!r} has a readable image; {expected}.{also}"
        )
    all_images, others = list_images(root)
    entries = list(root.iterdir())
    if not entries:
        raise DataError(f"The folder {str(root)!r} is empty; {expected}.")
    if all_images:
        raise DataError(
            f"Found {len(all_images)} images in {str(root)!r} but not in class subfolders; "
            f"{expected}. Move each class's images into a subfolder named after the class."
            f"{also}"
        )
    ext_list = ", ".join(f"{ext} ({n})" for ext, n in others.most_common(10)) or "none"
    raise DataError(
        f"No images with a known extension under {str(root)!r}: found "
        f"{sum(others.values())} other files with extensions {ext_list}; {expected}.{also}"
    )


def list_images(folder: Path) -> tuple[list[Path], Counter[str]]:
    """Image files under ``folder`` (recursive, sorted, hidden files and folders left out) and
    a count of every other extension.

    >>> images, others = list_images(Path("photos/cat"))   # doctest: +SKIP
    >>> others                                             # doctest: +SKIP
    Counter({'.txt': 1})
    """
    images: list[Path] = []
    others: Counter[str] = Counter()
    for dirpath, dirnames, filenames in os.walk(folder):
        # hidden folders (.ipynb_checkpoints, .git) and files (macOS ._x.jpg) are never data
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if name.startswith("."):
                continue
            ext = os.path.splitext(name)[1].lower()
            if ext in IMAGE_EXTENSIONS:
                images.append(Path(dirpath) / name)
            else:
                others[ext or "(no extension)"] += 1
    return sorted(images), others


def found_problems(
    founds: Sequence[dict[str, list[Path]]], progress: bool, check: str
) -> dict[Path, str]:
    """Path -> why it cannot be used, for every file of the class -> files maps in ``founds``
    (all checked in one pool).

    >>> found_problems([{"cat": [Path("cat/cut.jpg")]}], False, "decode")   # doctest: +SKIP
    {PosixPath('cat/cut.jpg'): 'the file is cut off (OSError: image file is truncated ...)'}
    """
    paths = [p for found in founds for ps in found.values() for p in ps]
    problems = check_files(paths, progress, check)
    return {p: why for p, why in zip(paths, problems) if why is not None}


def class_names(classes: Sequence[str]) -> str:
    """'Class 'a'' or 'Classes 'a', 'b'' (the first eight, then how many more), for messages.

    >>> class_names(["cat", "dog"])
    "Classes 'cat', 'dog'"
    """
    shown = ", ".join(repr(c) for c in classes[:8])
    more = f" and {len(classes) - 8} more" if len(classes) > 8 else ""
    return f"{'Class' if len(classes) == 1 else 'Classes'} {shown}{more}"


class FolderScan:
    """Finds the class folders of one dataset folder, refuses folders that would count images
    twice (a link back to the root or above it, two names for one folder), and writes a note
    for each class folder that turns out not to be a class (no images, none readable).

    >>> scan = FolderScan(Path("photos"))                              # doctest: +SKIP
    >>> found = scan.classes(Path("photos"), Counter())                # doctest: +SKIP
    >>> ok = scan.readable(Path("photos"), found, {}, [])              # doctest: +SKIP
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root_real = root.resolve()
        self.splits: dict[Path, Path] = {}  # resolved train/ and valid/ -> as found
        self.seen: dict[Path, Path] = {}  # resolved class folder -> the folder as found
        self.linked: set[Path] = set()  # resolved folders reached through a link
        self.notes: list[str] = []
        self.unreadable: list[str] = []  # class folders whose every image failed the check

    def _claim(self, folder: Path, split: bool = False) -> None:
        real = folder.resolve()
        where = rel(folder, self.root)
        if real == self.root_real or real in self.root_real.parents:
            what = "the data folder itself" if real == self.root_real else "a folder above it"
            kind = "split folder" if split else "class folder"
            raise DataError(
                f"The {kind} {where!r} is a link to {what} ({real}): every image would be "
                f"counted again under another name. Remove the link from {str(self.root)!r} "
                "(or pass a folder that does not contain it)."
            )
        # folders of one kind (class folders; train/ and valid/) must not overlap, and a class
        # folder may sit inside a split folder but never be one or hold one. Only a folder
        # reached through a link can overlap another, so only those are compared with all.
        registry = self.splits if split else self.seen
        linked = real != self.root_real / folder.relative_to(self.root)
        pool = registry.items() if linked else [(r, registry[r]) for r in self.linked
                                                 if r in registry]
        clashes = [(r, f) for r, f in pool if r in real.parents or real in r.parents]
        if real in registry:
            clashes.insert(0, (real, registry[real]))
        if not split:
            clashes += [(r, f) for r, f in self.splits.items() if real == r or real in r.parents]
        for other_real, other in clashes[:1]:
            same = "the same folder" if real == other_real else "folders inside each other"
            raise DataError(
                f"{where!r} and {rel(other, self.root)!r} are {same} ({real} and "
                f"{other_real}; one is a link): their images would count twice, under two "
                "classes or in both training and validation. Remove the link, or copy "
                "the images you mean."
            )
        if linked:
            self.linked.add(real)
        registry[real] = folder

    def classes(self, folder: Path, ignored: Counter[str]) -> dict[str, list[Path]]:
        """Class name -> image files, for each subfolder of ``folder`` holding any image; the
        other files' extensions are counted into ``ignored``; empty subfolders get a note."""
        if folder != self.root:
            self._claim(folder, split=True)
        found: dict[str, list[Path]] = {}
        for sub in subdirs(folder):
            self._claim(sub)
            images, others = list_images(sub)
            ignored.update(others)
            if images:
                found[sub.name] = images
                continue
            what = (
                f"holds no image files, only {sum(others.values())} others "
                f"({', '.join(f'{e} ({n})' for e, n in others.most_common(4))})"
                if others else "is empty"
            )
            self.notes.append(
                f"The folder {rel(sub, self.root)}/ {what}: it is not a class. Add images to "
                "it or remove it."
            )
        return found

    def readable(
        self,
        folder: Path,
        found: dict[str, list[Path]],
        bad: dict[Path, str],
        skipped: list[tuple[str, str]],
    ) -> dict[str, list[Path]]:
        """``found`` without the files in ``bad`` (recorded in ``skipped``) and without the
        classes left with no image (noted)."""
        ok: dict[str, list[Path]] = {}
        for cname, paths in found.items():
            good = [p for p in paths if p not in bad]
            skipped.extend((str(p), bad[p]) for p in paths if p in bad)
            if good:
                ok[cname] = good
            else:
                n = len(paths)
                self.unreadable.append(cname)
                self.notes.append(
                    f"The folder {rel(folder / cname, self.root)}/ has {n} image "
                    f"file{'s' if n != 1 else ''} and none can be read: it is not a class "
                    "(data.skipped says why for each file)."
                )
        return ok


def subdirs(folder: Path) -> list[Path]:
    """The subfolders of ``folder``, sorted, hidden ones (``.git``) left out.

    >>> subdirs(Path("photos"))   # doctest: +SKIP
    [PosixPath('photos/cat'), PosixPath('photos/dog')]
    """
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def rel(path: str | Path, root: Path | None) -> str:
    """``path`` relative to ``root`` when it is inside it (short names in messages).

    >>> rel("/data/cat/1.jpg", Path("/data")), rel("/elsewhere/1.jpg", Path("/data"))
    ('cat/1.jpg', '/elsewhere/1.jpg')
    """
    if root is not None:
        try:
            return str(Path(path).relative_to(root))
        except ValueError:
            pass
    return str(path)

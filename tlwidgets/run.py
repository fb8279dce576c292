"""Run a training recipe outside the notebook: ``python -m tlwidgets.run recipe.json``.

A recipe says how to build a run, as a dict or a JSON file:

.. code-block:: json

    {"name": "pets",
     "model": {"name": "tf_efficientnet_lite0", "weights": "auto"},
     "data": {"root": "data/pets", "img_size": 224, "batch_size": 32},
     "freeze": "head",
     "trainer": {"lr": 0.001, "epochs": 5}}

- ``model``: keyword arguments of :func:`tlwidgets.create_model` (``name`` required;
  ``num_classes`` defaults to the data's classes).
- ``data``: keyword arguments of :meth:`tlwidgets.ImageData.from_folder` (``root`` required).
- ``freeze``: a preset name (``"head"``, ``"last-stage"``, ``"all"``, ``"none"``) or a
  :func:`tlwidgets.freeze_to` index.
- ``trainer``: keyword arguments of :class:`tlwidgets.Trainer` (``lr`` as a number, or
  ``[lo, hi]`` for ``slice(lo, hi)``); not ``run_dir`` or ``callbacks``.
- ``fine_tune``: keyword arguments of ``Trainer.fine_tune`` to run that instead of ``fit()``.
- ``function``: ``"package.module:function"`` for custom code, instead of ``model``/``data``/
  ``freeze``: it is called (with ``run_dir=`` if it takes it) and returns a ``Trainer`` built on
  that ``run_dir``, or a ``(model, data)`` pair that gets ``trainer``'s keyword arguments.
  ``tlw.launch("package.module:function")`` is short for ``{"function": ...}``.
- ``name``: the run's label. ``resume``: continue the run in ``run_dir``
  (``Trainer.resume``), with the same or another number of processes.

Under ``torchrun`` every process runs the same recipe; the Trainer sees the launcher's
environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``) and trains as one DDP job, rank 0
writing the run folder. On a cluster, run on every node::

    torchrun --nnodes 2 --nproc-per-node 4 --rdzv-backend c10d \\
        --rdzv-endpoint node0.example.org:29400 --rdzv-id pets-1 \\
        -m tlwidgets.run recipe.json --run-dir /shared/runs/pets-1

>>> from tlwidgets.run import validate_recipe
>>> validate_recipe({"model": {"name": "resnet18"}, "data": {"root": "."}})["freeze"] is None
True
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import importlib.util
import inspect
import json
import os
import re
import signal
import sys
from pathlib import Path
from typing import Any, Callable

from .errors import RecipeError

__all__ = ["load_recipe", "validate_recipe", "build_trainer", "main"]

RECIPE_KEYS = ("name", "model", "data", "freeze", "trainer", "fine_tune", "function", "resume",
               "version")
_FUNCTION = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
_NOT_FROM_RECIPE = {"model", "data", "run_dir", "callbacks"}  # the recipe itself provides these


def _close(word: str, choices: Any) -> str:
    near = difflib.get_close_matches(word, list(choices), n=2)
    return f" (did you mean {' or '.join(repr(n) for n in near)}?)" if near else ""


def load_recipe(recipe: Any) -> dict[str, Any]:
    """A recipe as a dict: from a dict, a JSON file's path, or ``"module:function"``.

    >>> load_recipe("mypkg.recipes:build")
    {'function': 'mypkg.recipes:build'}
    """
    if isinstance(recipe, dict):
        return dict(recipe)
    if isinstance(recipe, (str, os.PathLike)):
        text = os.fspath(recipe)
        path = Path(text).expanduser()
        if path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise RecipeError(f"cannot read the recipe {text!r}: {exc}") from exc
            if not isinstance(data, dict):
                raise RecipeError(f"the recipe {text!r} must hold a JSON object, not "
                                  f"{type(data).__name__}.")
            return data
        if isinstance(recipe, str) and _FUNCTION.match(text):
            return {"function": text}
        raise RecipeError(
            f"no recipe file at {text!r}; pass a dict, the path of a JSON recipe, or "
            "'package.module:function'."
        )
    raise RecipeError(f"a recipe is a dict, a JSON file's path or 'module:function', got "
                      f"{type(recipe).__name__}.")


def _params(fn: Any) -> tuple[set[str], bool]:
    sig = inspect.signature(fn)
    names = {n for n, p in sig.parameters.items()
             if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and n != "self"}
    return names, any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values())


def _check_kwargs(section: str, kwargs: Any, fn: Any, exclude: set[str] = frozenset(),
                  required: tuple[str, ...] = ()) -> dict[str, Any]:
    if not isinstance(kwargs, dict):
        raise RecipeError(f"recipe[{section!r}] must be a dict of keyword arguments, got "
                          f"{type(kwargs).__name__}.")
    names, var_kw = _params(fn)
    for key in kwargs:
        if key in exclude:
            raise RecipeError(f"recipe[{section!r}] cannot set {key!r}: the recipe provides it"
                              + (" (tlw.launch(..., run_dir=...) sets the folder)"
                                 if key == "run_dir" else "") + ".")
        if key not in names and not var_kw:
            raise RecipeError(
                f"recipe[{section!r}] has {key!r}, which {fn.__qualname__}() does not take"
                f"{_close(key, names - exclude)}; it takes {', '.join(sorted(names - exclude))}."
            )
    for key in required:
        if key not in kwargs:
            raise RecipeError(f"recipe[{section!r}] needs {key!r}.")
    try:
        json.dumps(kwargs)
    except (TypeError, ValueError) as exc:
        raise RecipeError(f"recipe[{section!r}] must be plain JSON values (numbers, strings, "
                          f"lists, dicts), so each process can read it: {exc}") from exc
    return dict(kwargs)


def validate_recipe(recipe: Any) -> dict[str, Any]:
    """Check a recipe before any process starts; returns it with every key present.

    Raises :class:`tlwidgets.RecipeError` naming the key and the fix.

    >>> validate_recipe({"model": {"name": "resnet18"}, "data": {"root": "."},
    ...                  "trainer": {"epochs": 2}})["trainer"]
    {'epochs': 2}
    """
    r = load_recipe(recipe)
    for key in r:
        if key not in RECIPE_KEYS:
            raise RecipeError(f"unknown recipe key {key!r}{_close(key, RECIPE_KEYS)}; a recipe "
                              f"has {', '.join(RECIPE_KEYS)}.")
    from .data import ImageData
    from .training import Trainer

    out: dict[str, Any] = {k: r.get(k) for k in RECIPE_KEYS}
    out["version"] = int(r.get("version", 1))
    out["resume"] = bool(r.get("resume", False))
    if out["name"] is not None and not isinstance(out["name"], str):
        raise RecipeError(f"recipe['name'] must be a string, got {out['name']!r}.")
    out["trainer"] = _check_kwargs("trainer", r.get("trainer", {}), Trainer.__init__,
                                   exclude=_NOT_FROM_RECIPE)
    if out["fine_tune"] is not None:
        out["fine_tune"] = _check_kwargs("fine_tune", out["fine_tune"], Trainer.fine_tune,
                                         exclude={"background"}, required=("epochs",))
    fn = r.get("function")
    if fn is not None:
        extra = [k for k in ("model", "data", "freeze") if k in r]
        if extra:
            raise RecipeError(f"a recipe with 'function' builds the model and data itself; drop "
                              f"{', '.join(repr(k) for k in extra)}.")
        if not isinstance(fn, str) or not _FUNCTION.match(fn):
            raise RecipeError(f"recipe['function'] must be 'package.module:function', got {fn!r}.")
        module = fn.split(":")[0]
        try:
            found = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            found = None
        if found is None:
            raise RecipeError(f"cannot find the module {module!r} of recipe['function']; it must "
                              "be importable by the training processes (on sys.path, or "
                              "installed).")
        return out
    from .weights import create_model

    for key in ("model", "data"):
        if key not in r:
            raise RecipeError(f"the recipe needs {key!r} (or a 'function' that builds the run).")
    model = _check_kwargs("model", r["model"], create_model, required=("name",))
    if not isinstance(model["name"], str):
        raise RecipeError(f"recipe['model']['name'] must be a model name, got {model['name']!r}.")
    out["model"] = model
    out["data"] = _check_kwargs("data", r["data"], ImageData.from_folder, exclude={"model"},
                                required=("root",))
    freeze = r.get("freeze")
    if freeze is not None:
        from .freeze import PRESETS

        if isinstance(freeze, bool) or not isinstance(freeze, (str, int)) or (
                isinstance(freeze, str) and freeze not in PRESETS):
            raise RecipeError(f"recipe['freeze'] must be a preset ({', '.join(PRESETS)}) or a "
                              f"freeze_to index, got {freeze!r}.")
    return out


def _trainer_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    kw = dict(kwargs)
    lr = kw.get("lr")
    if isinstance(lr, list) and len(lr) == 2:
        kw["lr"] = slice(lr[0], lr[1])
    return kw


def build_trainer(recipe: Any, run_dir: str | os.PathLike[str]) -> Any:
    """The ``Trainer`` a recipe describes, writing to ``run_dir`` (resumed from it when the
    recipe says ``"resume": true``).

    >>> trainer = build_trainer("recipe.json", "runs/pets-1")            # doctest: +SKIP
    """
    import tlwidgets as tlw
    from .training import Trainer

    r = validate_recipe(recipe)
    run_dir = Path(run_dir)
    kw = _trainer_kwargs(r["trainer"])
    if r["name"] is not None:
        kw.setdefault("name", r["name"])
    if r["function"] is not None:
        mod_name, _, attr = r["function"].partition(":")
        obj: Any = importlib.import_module(mod_name)
        for part in attr.split("."):
            obj = getattr(obj, part, None)
        if not callable(obj):
            raise RecipeError(f"{r['function']!r} is not a function in {mod_name}.")
        takes_dir = "run_dir" in inspect.signature(obj).parameters
        built = obj(run_dir=str(run_dir)) if takes_dir else obj()
        if isinstance(built, Trainer):
            if Path(built.run_dir).resolve() != run_dir.resolve():
                raise RecipeError(f"{r['function']} built a Trainer on {str(built.run_dir)!r}, "
                                  f"not on the run_dir {str(run_dir)!r}: pass run_dir to it.")
            return built
        if not (isinstance(built, tuple) and len(built) == 2):
            raise RecipeError(f"{r['function']} must return a Trainer or a (model, data) pair, "
                              f"got {type(built).__name__}.")
        model, data = built
    else:
        m = dict(r["model"])
        name = m.pop("name")
        data = tlw.ImageData.from_folder(**r["data"])
        num_classes = m.pop("num_classes", None) or data.num_classes
        model = tlw.create_model(name, num_classes, **m)
        data = data.with_model(model)
        if isinstance(r["freeze"], str):
            tlw.apply_preset(model, r["freeze"])
        elif r["freeze"] is not None:
            tlw.freeze_to(model, int(r["freeze"]))
    if r["resume"]:
        return Trainer.resume(run_dir, model, data, **kw)
    return Trainer(model, data, run_dir=run_dir, **kw)


class Terminated(Exception):
    """A second SIGTERM: end now (torchrun kills a worker that does not end in 30 s)."""


def _sigterm_handler(run_dir: Path) -> Callable[[int, Any], None]:
    """On SIGTERM (torchrun ends every worker this way when one fails; so do schedulers and
    ``job.terminate()``), ask the run to stop after its step through its own control file, which
    rank 0 reads and takes to every rank; a second SIGTERM ends the process at once."""
    count = [0]

    def handler(signum: int, frame: Any) -> None:
        count[0] += 1
        if count[0] > 1:
            raise Terminated("ended by a second SIGTERM")
        if os.environ.get("RANK", "0") == "0":
            from .training.run_reader import RunReader

            try:
                RunReader(run_dir).send("stop")
            except Exception:  # noqa: BLE001 - no folder to write: the next SIGTERM ends it
                pass

    return handler


def _run(args: argparse.Namespace) -> int:
    recipe = load_recipe(args.recipe)
    if args.resume:
        recipe["resume"] = True
    run_dir = args.run_dir or recipe.get("run_dir")
    if run_dir is None:
        recipe_path = Path(args.recipe) if not isinstance(args.recipe, dict) else None
        if recipe_path is not None and recipe_path.is_file() and recipe_path.name == "recipe.json":
            run_dir = recipe_path.parent  # tlw.launch writes the recipe into the run folder
        else:
            raise RecipeError("say where the run goes: --run-dir DIR (every process the same).")
    recipe.pop("run_dir", None)
    signal.signal(signal.SIGTERM, _sigterm_handler(Path(run_dir)))
    trainer = build_trainer(recipe, run_dir)
    ft = validate_recipe(recipe)["fine_tune"]
    job = getattr(trainer, "distributed", None)
    try:
        if ft is not None:
            trainer.fine_tune(**ft)
        else:
            trainer.fit()
    finally:
        if job is not None:  # every rank leaves the group together when the run ended well
            job.close(barrier=trainer.state in ("finished", "stopped"))
    return 0 if trainer.state in ("finished", "stopped") else 1


def main(argv: list[str] | None = None) -> int:
    """``python -m tlwidgets.run RECIPE [--run-dir DIR] [--resume]``; exit status 0 when the
    run finished or was stopped, 1 when it failed (the error is in the run folder and, under
    torchrun, in its error report).

    >>> main(["recipe.json", "--run-dir", "runs/pets"])                 # doctest: +SKIP
    0
    """
    ap = argparse.ArgumentParser(prog="python -m tlwidgets.run", description=__doc__.split("\n")[0])
    ap.add_argument("recipe", help="a JSON recipe file, or package.module:function")
    ap.add_argument("--run-dir", help="the run folder (default: the recipe's own folder when it "
                    "is a run folder's recipe.json)")
    ap.add_argument("--resume", action="store_true", help="continue the run in --run-dir")
    args = ap.parse_args(argv)
    try:
        from torch.distributed.elastic.multiprocessing.errors import record
    except ImportError:  # pragma: no cover - torch without distributed
        return _run(args)
    # torchrun's own error propagation: a failing rank's traceback reaches the launcher's report
    return record(_run)(args)


if __name__ == "__main__":
    sys.exit(main())

"""One config system: YAML files with inheritance, ``key=value`` overrides, validation.

* A config file may name a parent with ``_base_: <path or packaged name>``; the child is merged
  over the parent recursively and may only set keys the parent declares. The root of every chain
  is a task's packaged default (``eventvision/configs/<task>/default.yaml``): it declares every key
  that exists, and may pull in shared sections (the trainer's ``train:`` block) with
  ``_defaults_: [base]``, a merge that is allowed to declare new keys.
* A key that the parent chain does not declare is an error (with a did-you-mean), as is a value
  of the wrong type (ints are accepted where floats are declared; ``null`` declares "any type").
* Overrides ``a.b.c=value`` are parsed as YAML scalars/lists (``lr=1e-3``, ``dims=[1,2]``).
* Names: a path that exists on disk, else a packaged config such as ``stereo/small`` or
  ``stereo/small.yaml`` under ``eventvision/configs``.
"""

from __future__ import annotations

import copy
import difflib
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from eventvision.errors import UserError

PACKAGED_CONFIG_DIR = Path(__file__).resolve().parent / "configs"
BASE_KEY = "_base_"
DEFAULTS_KEY = "_defaults_"


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e-3`` / ``5E+2`` as floats (YAML 1.2 style; PyYAML wants a dot)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                   |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                   |\.[0-9_]+(?:[eE][-+][0-9]+)?
                   |[-+]?\.(?:inf|Inf|INF)
                   |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."),
)


def _yaml_load(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


class Config(dict):
    """A dict with attribute access for nested keys (``cfg.model.channels``)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"config has no key '{name}'") from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __deepcopy__(self, memo):
        return Config({k: copy.deepcopy(v, memo) for k, v in self.items()})

    def to_dict(self) -> dict:
        return _plain(self)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _wrap(value: Any) -> Any:
    if isinstance(value, Mapping):
        return Config({k: _wrap(v) for k, v in value.items()})
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


def resolve_config_path(name: str | Path, relative_to: Path | None = None) -> Path:
    """Find a config file by path or packaged name; raise UserError listing what exists if absent."""
    name = str(name)
    candidates = []
    if relative_to is not None:
        candidates += [relative_to / name, relative_to / (name + ".yaml")]
    candidates += [Path(name), Path(name + ".yaml")]
    for stem in (name, name + ".yaml"):
        candidates.append(PACKAGED_CONFIG_DIR / stem)
    for path in candidates:
        if path.is_file():
            return path
    known = sorted(str(p.relative_to(PACKAGED_CONFIG_DIR).with_suffix("")) for p in PACKAGED_CONFIG_DIR.rglob("*.yaml"))
    raise UserError(f"config '{name}' not found as a file or packaged config; packaged configs: {', '.join(known)}")


def _read_yaml(path: Path) -> dict:
    try:
        data = _yaml_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        where = f" (line {line + 1})" if line is not None else ""
        raise UserError(f"{path}: not valid YAML{where}; fix the syntax") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: a config file must be a mapping of keys to values")
    return data


def _type_ok(declared: Any, value: Any) -> bool:
    if declared is None or value is None:
        return True
    if isinstance(declared, bool):
        return isinstance(value, bool)
    if isinstance(declared, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(declared, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(declared, (list, tuple)):
        return isinstance(value, (list, tuple))
    if isinstance(declared, Mapping):
        return isinstance(value, Mapping)
    return isinstance(value, type(declared))


def _merge(base: dict, child: Mapping, *, source: str, prefix: str = "", strict: bool = True) -> dict:
    out = dict(base)
    for key, value in child.items():
        full = f"{prefix}{key}"
        if strict and key not in base:
            close = difflib.get_close_matches(str(key), [str(k) for k in base], n=1)
            hint = f"; did you mean '{prefix}{close[0]}'?" if close else f"; known keys here: {', '.join(map(str, base))}"
            raise UserError(f"{source}: unknown config key '{full}'{hint}")
        declared = base.get(key)
        if strict and not _type_ok(declared, value):
            raise UserError(f"{source}: config key '{full}' expects {type(declared).__name__}, got {value!r}")
        if isinstance(declared, Mapping) and isinstance(value, Mapping) and declared:
            out[key] = _merge(dict(declared), value, source=source, prefix=f"{full}.", strict=strict)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _load_chain(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    if path in seen:
        raise UserError(f"{path}: circular _base_ chain ({' -> '.join(map(str, seen + (path,)))})")
    data = _read_yaml(path)
    base_name = data.pop(BASE_KEY, None)
    defaults = data.pop(DEFAULTS_KEY, None) or []
    if base_name is not None and defaults:
        raise UserError(f"{path}: use either _base_ (inherit) or _defaults_ (declare), not both")
    if base_name is None:
        # the root of a chain declares the schema: shared sections first, then its own keys
        declared: dict = {}
        for name in ([defaults] if isinstance(defaults, str) else defaults):
            declared = _merge(declared, _load_chain(resolve_config_path(name, relative_to=path.parent),
                                                    seen + (path,)), source=str(path), strict=False)
        return _merge(declared, data, source=str(path), strict=False)
    base = _load_chain(resolve_config_path(base_name, relative_to=path.parent), seen + (path,))
    return _merge(base, data, source=str(path))


def parse_override(text: str) -> tuple[list[str], Any]:
    if "=" not in text:
        raise UserError(f"override '{text}' is not of the form key=value (e.g. train.lr=1e-3)")
    key, raw = text.split("=", 1)
    try:
        value = _yaml_load(raw) if raw != "" else ""
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def apply_overrides(cfg: Mapping, overrides: Iterable[str], *, source: str = "command line") -> Config:
    data = _plain(cfg)
    for text in overrides:
        keys, value = parse_override(text)
        nested: Any = value
        for k in reversed(keys):
            nested = {k: nested}
        data = _merge(data, nested, source=source)
    return _wrap(data)


def load_config(name: str | Path, overrides: Iterable[str] = ()) -> Config:
    """Load a config by path or packaged name, resolve ``_base_`` inheritance, apply overrides, validate."""
    cfg = _load_chain(resolve_config_path(name))
    return apply_overrides(cfg, overrides)


def config_from_dict(data: Mapping) -> Config:
    return _wrap(data)


class _Dumper(yaml.SafeDumper):
    """Block-style mappings; lists of scalars inline (``dims: [1, 2]``)."""


def _represent_list(dumper: yaml.SafeDumper, data: list):
    flow = all(not isinstance(v, (dict, list)) for v in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(list, _represent_list)


def dump_config(cfg: Mapping) -> str:
    """The resolved config as YAML (what ``--print-config`` prints); ``load_config`` reads it back."""
    return yaml.dump(_plain(cfg), Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=100)


def config_input_paths(cfg: Mapping, *, skip: tuple[str, ...] = ("output_dir",)) -> list[str]:
    """Every string value of ``cfg`` (nested) that names an existing file or folder: the inputs a run reads.

    Keys in ``skip`` (outputs) are left out. Commands pass the result to
    ``eventvision.utils.io.refuse_overwrite_input`` so no output lands on or inside a dataset or input file.
    """
    found: list[str] = []

    def walk(value: Any, key: str) -> None:
        if key in skip:
            return
        if isinstance(value, Mapping):
            for k, v in value.items():
                walk(v, str(k))
        elif isinstance(value, (list, tuple)):
            for v in value:
                walk(v, key)
        elif isinstance(value, str) and value.strip() and len(value) < 4096:
            try:
                if Path(value).expanduser().exists():
                    found.append(value)
            except (OSError, ValueError):
                pass

    walk(cfg, "")
    return found

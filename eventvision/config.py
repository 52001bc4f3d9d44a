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
* Values are range-checked after the overrides (:func:`validate_config`): numbers finite, sizes and
  counts positive (:data:`POSITIVE_KEYS`), rates and fractions in range, pairs of two, and string
  keys whose packaged default documents its choices (``name: adamw  # adamw | adam | sgd``) take one of
  them. Every error names the key.
"""

from __future__ import annotations

import copy
import difflib
import math
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from eventvision.errors import ConfigError

PACKAGED_CONFIG_DIR = Path(__file__).resolve().parent / "configs"
BASE_KEY = "_base_"
MAX_YAML_ALIASES = 100
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
    """Find a config file by path or packaged name; raise ConfigError listing what exists if absent."""
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
    known = sorted(str(p.relative_to(PACKAGED_CONFIG_DIR).with_suffix(""))
                   for p in PACKAGED_CONFIG_DIR.rglob("*.yaml"))
    raise ConfigError(f"config '{name}' not found as a file or packaged config; packaged configs: "
                      f"{', '.join(known)}")


def _read_yaml(path: Path) -> dict:
    from eventvision.utils.io import read_text

    try:
        text = read_text(path, max_bytes=16 << 20)
        # aliases share nodes; a few hundred nested ones ("billion laughs") expand exponentially when copied
        aliases = sum(isinstance(e, yaml.AliasEvent) for e in yaml.parse(text)) if "*" in text else 0
        if aliases > MAX_YAML_ALIASES:
            raise ConfigError(f"{path}: {aliases} YAML aliases (*name), more than {MAX_YAML_ALIASES}; "
                              "write the values out")
        data = _yaml_load(text) or {}
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        where = f" (line {line + 1})" if line is not None else ""
        raise ConfigError(f"{path}: not valid YAML{where}; fix the syntax") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file must be a mapping of keys to values")
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
            hint = (f"; did you mean '{prefix}{close[0]}'?" if close
                    else f"; known keys here: {', '.join(map(str, base))}")
            raise ConfigError(f"{source}: unknown config key '{full}'{hint}")
        declared = base.get(key)
        if strict and not _type_ok(declared, value):
            raise ConfigError(f"{source}: config key '{full}' expects {type(declared).__name__}, got "
                              f"{value!r}")
        if isinstance(declared, Mapping) and isinstance(value, Mapping) and declared:
            out[key] = _merge(dict(declared), value, source=source, prefix=f"{full}.", strict=strict)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _load_chain(path: Path, seen: tuple[Path, ...] = (), choices: dict | None = None) -> dict:
    if path in seen:
        raise ConfigError(f"{path}: circular _base_ chain ({' -> '.join(map(str, seen + (path,)))})")
    data = _read_yaml(path)
    base_name = data.pop(BASE_KEY, None)
    defaults = data.pop(DEFAULTS_KEY, None) or []
    if base_name is not None and defaults:
        raise ConfigError(f"{path}: use either _base_ (inherit) or _defaults_ (declare), not both")
    if base_name is None:
        # the root of a chain declares the schema: shared sections first, then its own keys
        declared: dict = {}
        for name in ([defaults] if isinstance(defaults, str) else defaults):
            declared = _merge(declared, _load_chain(resolve_config_path(name, relative_to=path.parent),
                                                    seen + (path,), choices), source=str(path), strict=False)
        if choices is not None:
            choices.update(_documented_choices(path))
        return _merge(declared, data, source=str(path), strict=False)
    base = _load_chain(resolve_config_path(base_name, relative_to=path.parent), seen + (path,), choices)
    return _merge(base, data, source=str(path))


def parse_override(text: str) -> tuple[list[str], Any]:
    if "=" not in text:
        raise ConfigError(f"override '{text}' is not of the form key=value (e.g. train.lr=1e-3)")
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
    return load_config_and_choices(name, overrides)[0]


def load_config_and_choices(name: str | Path, overrides: Iterable[str] = ()
                            ) -> tuple[Config, dict[str, tuple[str, ...]]]:
    """:func:`load_config` and the documented choices of the config's chain, from one read of its files."""
    path = resolve_config_path(name)
    choices: dict = {}
    cfg = _load_chain(path, choices=choices)
    validate_config(cfg, source=str(path), choices=choices)
    overrides = list(overrides)
    if overrides:  # the file's values are valid: a problem now comes from an override
        cfg = apply_overrides(cfg, overrides)
        validate_config(cfg, source=f"{path} with overrides {' '.join(overrides)}"[:300], choices=choices)
    return _wrap(cfg), choices


# ------------------------------------------------------------------------------------ value validation
#: numbers that are sizes, counts, lengths, rates or scales: must be > 0 (by the key's last name)
POSITIVE_KEYS = frozenset("""
    batch_size epochs step_size log_every gamma num_heads num_blocks num_layers num_bins num_depth_bins
    num_frames num_classes num_train hidden channels in_channels feat_width feat_channels psv_channels
    voxel_channels bev_channels embed_dim dim resolution image_size stride timesteps time_steps voting
    window_ms
    max_disp max_disparity frame_dt_us focal_px baseline_m camera_height patch_len event_bins event_contrast
    mlp_ratio width height image_scale train_size val_size gwc_groups head_stride max_dets
    fea_filter_multiplier mat_filter_multiplier block_multiplier synthetic_frames synthetic_supersample
    synthetic_videos synthetic_train_seqs test_clips test_crops val_clips val_crops fold tau image_std
    polarity_channels depth_min depth_max max_ego_image_speed_px_s
""".split())
#: counts and weights that may be 0 but never negative
NON_NEGATIVE_KEYS = frozenset("""
    seed val_batch_size num_workers weight_decay grad_clip warmup_epochs max_steps checkpoint_every val_every
    motion_weight jitter spread separation synthetic_val_seqs synthetic_val synthetic_train synthetic_objects
    num_val num_test fusion_radius psv_convs prefill_workers threads
""".split())
#: dataset split names a config may hold (``train.val_split``); integer splits (MVSEC) are 1..3
SPLIT_NAMES = ("train", "val", "test")
#: fractions in [0, 1] (dropout in [0, 1))
UNIT_KEYS = frozenset("momentum warmup_factor min_lr_ratio score_thresh nms_thresh fusion_prob_factor ground_prob "
                      "leaves_prob image_mean".split())
#: lists whose entries are all > 0
POSITIVE_LIST_KEYS = frozenset("dims depths bev_blocks voxel_size anchor_sizes crop".split())
#: [low, high] pairs
RANGE_PAIR_KEYS = frozenset("x_range y_range z_range synthetic_z_range patch_disparity background_disparity "
                            "num_patches window_start_ms ego_rotation_px_s".split())


def _documented_choices(path: Path) -> dict[str, tuple[str, ...]]:
    """``{key path: options}`` from ``key: value  # a | b | c`` lines of a packaged default (where the value
    is one of the options): the comment that documents the choices is also what is checked."""
    found: dict[str, tuple[str, ...]] = {}
    stack: list[tuple[int, str]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^(\s*)([A-Za-z_][\w]*):\s*([^#]*?)\s*(?:#\s*(.*))?$", line)
        if not m:
            continue
        indent, key, value, comment = len(m[1]), m[2], m[3], m[4] or ""
        while stack and stack[-1][0] >= indent:
            stack.pop()
        full = ".".join([k for _, k in stack] + [key])
        if not value:
            stack.append((indent, key))
            continue
        if "|" in comment:
            options = tuple(part.split()[0] for part in comment.split("|") if part.split())
            if value.strip("'\"") in options:
                found[full] = options
    return found


def _check_value(key: str, value: Any, choices: Mapping[str, tuple[str, ...]]) -> str | None:
    """The problem with ``value`` at ``key`` (dotted path), or None."""
    name = key.rsplit(".", 1)[-1]
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            return "must be a finite number"
        if name in POSITIVE_KEYS and value <= 0:
            return "must be > 0"
        if name in NON_NEGATIVE_KEYS and value < 0:
            return "must be >= 0"
        if name in UNIT_KEYS and not 0 <= value <= 1:
            return "must lie in [0, 1]"
        if name == "dropout" and not 0 <= value < 1:
            return "must lie in [0, 1)"
        if name == "split" and value not in (1, 2, 3):
            return "must be 1, 2 or 3 (MVSEC splits)"
        return None
    if isinstance(value, str):
        options = choices.get(key)
        if key == "device":
            ok = re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", value)
            return None if ok else "must be auto, cpu, cuda or cuda:N"
        if options and value not in options:
            return f"must be one of {', '.join(options)}"
        if name.endswith("split") and value not in SPLIT_NAMES:
            return f"must be one of {', '.join(SPLIT_NAMES)}"
        if name in UNIT_KEYS:
            return "must be a number in [0, 1]"
        return None
    if isinstance(value, (list, tuple)):
        flat = list(_flatten_numbers(value))
        if any(isinstance(v, float) and not math.isfinite(v) for v in flat):
            return "must hold finite numbers"
        if name == "betas" and (len(value) != 2 or not all(isinstance(v, (int, float)) and 0 <= v < 1
                                                           for v in value)):
            return "must be two numbers in [0, 1)"
        if name in POSITIVE_LIST_KEYS and any(not isinstance(v, (int, float)) or v <= 0 for v in flat):
            return "must hold numbers > 0"
        if name == "crop" and len(value) not in (0, 2):
            return "must be [] or [H, W]"
        if name in RANGE_PAIR_KEYS and (len(value) != 2 or not all(isinstance(v, (int, float)) for v in value)
                                         or value[0] > value[1]):
            return "must be a pair [low, high] with low <= high"
        if name.endswith("_probs") and any(not isinstance(v, (int, float)) or not 0 <= v <= 1 for v in flat):
            return "must hold probabilities in [0, 1]"
    return None


def _flatten_numbers(value):
    for v in value:
        if isinstance(v, (list, tuple)):
            yield from _flatten_numbers(v)
        else:
            yield v


def validate_config(cfg: Mapping, *, source: str = "config",
                    choices: Mapping[str, tuple[str, ...]] | None = None) -> None:
    """Range-check every value of ``cfg`` (see the module doc); :class:`ConfigError` naming the key."""
    choices = choices or {}

    def walk(node: Mapping, prefix: str) -> None:
        for k, v in node.items():
            key = f"{prefix}{k}"
            if isinstance(v, Mapping):
                walk(v, f"{key}.")
                continue
            problem = _check_value(key, v, choices)
            if problem:
                raise ConfigError(f"{source}: config key {key} {v!r} {problem}; fix the value")

    if not isinstance(cfg, Mapping):
        raise ConfigError(f"{source}: a config must be a mapping of keys to values, got {type(cfg).__name__}")
    walk(cfg, "")


def with_missing_keys(cfg: Mapping, defaults: Mapping) -> Config:
    """``cfg`` plus every key of ``defaults`` that it lacks, at any depth (``cfg``'s values win): a config
    stored before a key was added to the suite gets that key's default, so overrides can name it."""
    return _wrap(_merge(_plain(defaults), _plain(cfg), source="stored config", strict=False))


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

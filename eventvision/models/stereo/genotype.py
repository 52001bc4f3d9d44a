"""SpikeDHS genotypes: cell structure + layer path for the feature and matching nets.

A genotype is what the hierarchical search produces and what a trained model is built from::

    feature:  {cell: [[edge, op], ...6 rows], path: [level per layer]}
    matching: {cell: [[edge, op], ...],        path: [...]}

* ``op`` is one of :data:`PRIMITIVES` (``skip``, ``snn_b3``, ``snn_b5``), stored by name in YAML.
* ``edge`` numbers the inputs of the 3 nodes of a cell (LEAStereo convention): node 0 reads the
  cell inputs ``s0`` (prev-prev) and ``s1`` (prev) on edges 0, 1; node 1 reads ``s0, s1, n0`` on
  edges 2, 3, 4; node 2 reads ``s0, s1, n0, n1`` on edges 5..8. Each node keeps exactly 2 edges.
* ``path[l]`` is the level of layer ``l``: level ``k`` works at 1/(3*2^k) of the input resolution
  with ``filter_multiplier * 2^k`` channels per node. Layer 0 starts from the stem (level 0) so
  ``path[0]`` is 0 or 1; consecutive layers differ by at most 1 (down, stay or up).

:data:`SPIKEDHS_MVSEC` is the architecture in the released SpikeDHS logs
(``logs/best_model/Structure.txt``: feature path [1 0], matching path [1 2 2 1]).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import yaml

from eventvision.errors import ConfigError, FileFormatError

#: candidate operations on an edge (index = position in the search's alpha)
PRIMITIVES: tuple[str, ...] = ("skip", "snn_b3", "snn_b5")
#: aliases accepted when reading (the released code calls skip "skip_connect")
_OP_ALIASES = {"skip_connect": "skip", "identity": "skip"}
#: number of intermediate nodes per cell (fixed by the search space)
STEPS = 3
#: number of resolution levels (channel multipliers 1, 2, 4, 8)
NUM_LEVELS = 4


def num_edges(steps: int = STEPS) -> int:
    """Edges of a cell with ``steps`` nodes, each reading the 2 cell inputs and all earlier nodes."""
    return sum(2 + i for i in range(steps))


def node_edges(node: int) -> range:
    """Edge indices entering ``node`` (0-based): node 0 -> 0..1, node 1 -> 2..4, node 2 -> 5..8."""
    start = sum(2 + i for i in range(node))
    return range(start, start + 2 + node)


@dataclasses.dataclass(frozen=True)
class StageGenotype:
    """One network stage: ``cell`` = tuple of (edge, op name), ``path`` = level per layer."""

    cell: tuple[tuple[int, str], ...]
    path: tuple[int, ...]

    def __post_init__(self):
        cell = tuple(sorted((int(e), _op_name(o)) for e, o in self.cell))
        object.__setattr__(self, "cell", cell)
        object.__setattr__(self, "path", tuple(int(p) for p in self.path))
        _validate_stage(self)

    @property
    def num_layers(self) -> int:
        return len(self.path)

    def edges_of(self, node: int) -> list[tuple[int, str]]:
        """The (edge, op) pairs feeding ``node``."""
        return [(e, o) for e, o in self.cell if e in node_edges(node)]

    def to_dict(self) -> dict:
        return {"cell": [[e, o] for e, o in self.cell], "path": list(self.path)}


@dataclasses.dataclass(frozen=True)
class Genotype:
    """Feature-net and matching-net architecture of a SpikeDHS stereo model."""

    feature: StageGenotype
    matching: StageGenotype

    def to_dict(self) -> dict:
        return {"feature": self.feature.to_dict(), "matching": self.matching.to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "genotype") -> "Genotype":
        try:
            stages = {}
            for name in ("feature", "matching"):
                stage = data[name]
                stages[name] = StageGenotype(cell=tuple(tuple(r) for r in stage["cell"]), path=tuple(stage["path"]))
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{source}: not a SpikeDHS genotype ({exc!s}); expected "
                              "feature/matching each with 'cell' [[edge, op], ...] and 'path' [levels]"
                              ) from None
        return cls(**stages)


def _op_name(op: Any) -> str:
    if isinstance(op, (int, np.integer)):
        if not 0 <= int(op) < len(PRIMITIVES):
            raise ConfigError(f"op index {op} out of range; ops: {', '.join(PRIMITIVES)}")
        return PRIMITIVES[int(op)]
    name = _OP_ALIASES.get(str(op), str(op))
    if name not in PRIMITIVES:
        raise ConfigError(f"unknown op '{op}'; ops: {', '.join(PRIMITIVES)}")
    return name


def _validate_stage(stage: StageGenotype) -> None:
    for node in range(STEPS):
        edges = [e for e, _ in stage.cell if e in node_edges(node)]
        if len(edges) != 2 or len(set(edges)) != 2:
            raise ConfigError(f"cell must keep exactly 2 distinct edges per node; node {node} has {edges} "
                              f"(edges of node {node}: {list(node_edges(node))})")
    if any(not 0 <= e < num_edges() for e, _ in stage.cell) or len(stage.cell) != 2 * STEPS:
        raise ConfigError(f"cell edges must be in 0..{num_edges() - 1}, 2 per node; got {list(stage.cell)}")
    validate_path(stage.path)


def validate_path(path) -> None:
    """Raise ConfigError unless ``path`` is a legal layer path (see module doc)."""
    path = [int(p) for p in path]
    if not path:
        raise ConfigError("layer path is empty; give one level per layer")
    if path[0] not in (0, 1):
        raise ConfigError(f"layer path must start at level 0 or 1 (from the stem), got {path}")
    for a, b in zip(path, path[1:]):
        if abs(a - b) > 1:
            raise ConfigError(f"layer path may move at most one level per layer, got {path}")
    if max(path) >= NUM_LEVELS or min(path) < 0:
        raise ConfigError(f"levels must be in 0..{NUM_LEVELS - 1}, got {path}")


#: SpikeDHS released architecture (MVSEC search; logs/best_model/Structure.txt, ops 0 skip 1 b3 2 b5)
SPIKEDHS_MVSEC = Genotype(
    feature=StageGenotype(cell=((1, 1), (0, 1), (3, 2), (2, 1), (7, 1), (8, 1)), path=(1, 0)),
    matching=StageGenotype(cell=((0, 1), (1, 2), (4, 2), (3, 2), (8, 1), (6, 1)), path=(1, 2, 2, 1)),
)

NAMED_GENOTYPES = {"spikedhs_mvsec": SPIKEDHS_MVSEC}


def resolve_genotype(spec: Any) -> Genotype:
    """A :class:`Genotype` from a name (``spikedhs_mvsec``), a YAML path, a dict or a Genotype."""
    if isinstance(spec, Genotype):
        return spec
    if spec is None:
        return SPIKEDHS_MVSEC
    if isinstance(spec, Mapping):
        return Genotype.from_dict(spec, source="model.genotype")
    spec = str(spec)
    if spec in NAMED_GENOTYPES:
        return NAMED_GENOTYPES[spec]
    return load_genotype(spec)


def load_genotype(path: str | Path) -> Genotype:
    """Read a genotype YAML written by :func:`save_genotype` / ``eventvision search stereo``."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: genotype file not found; give a genotype YAML written by the stereo "
                          f"search or one of {', '.join(NAMED_GENOTYPES)}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError:
        raise FileFormatError(f"{path}: not valid YAML; regenerate it with the stereo search") from None
    if isinstance(data, Mapping) and "genotype" in data:
        data = data["genotype"]
    if not isinstance(data, Mapping):
        raise FileFormatError(f"{path}: expected a mapping with 'feature' and 'matching'")
    return Genotype.from_dict(data, source=str(path))


def save_genotype(path: str | Path, genotype: Genotype, extra: Mapping[str, Any] | None = None) -> None:
    """Write ``genotype`` (plus optional ``extra`` info, e.g. the softmaxed alphas) as YAML, atomically."""
    from eventvision.utils.io import atomic_write_text

    data: dict[str, Any] = {"genotype": genotype.to_dict()}
    if extra:
        data.update(extra)
    atomic_write_text(path, yaml.safe_dump(data, sort_keys=False, default_flow_style=None))


# --- decoding (search -> genotype) ----------------------------------------------------------------

def decode_cell(alpha_probs: np.ndarray, steps: int = STEPS) -> tuple[tuple[int, str], ...]:
    """Top-2 incoming edges per node with their best op, as released (SpikeDHS
    ``models/snndarts_search/decoding_formulas.py`` ``genotype_decode``): edges are ranked by their
    best *non-skip* op's probability (so an edge that is mostly skip does not win a node), and each
    kept edge takes its overall best op (which may be skip).

    ``alpha_probs``: [num_edges, len(PRIMITIVES)] softmax-normalised cell weights (column 0 = skip).
    """
    alpha_probs = np.asarray(alpha_probs, dtype=np.float64)
    genes = []
    for node in range(steps):
        edges = sorted(node_edges(node), key=lambda e: -alpha_probs[e, 1:].max())
        for e in sorted(edges[:2]):
            genes.append((int(e), PRIMITIVES[int(alpha_probs[e].argmax())]))
    return tuple(genes)


def rescale_boundary_levels(beta_probs: np.ndarray) -> np.ndarray:
    """Scale the transition probabilities of sources with only 2 legal moves (the first and the
    deepest level) by 2/3 before Viterbi, as released (``decoding_formulas.py`` ``Decoder``): a
    2-way softmax is otherwise favoured over the 3-way ones of the inner levels.

    ``beta_probs``: [L, levels, 3], 0 for illegal moves. Returns a rescaled copy.
    """
    probs = np.array(beta_probs, dtype=np.float64, copy=True)
    two_way = (probs > 0).sum(-1) == 2
    probs[two_way] *= 2.0 / 3.0
    return probs


def transition_target(src: int, k: int) -> int:
    """Level reached from ``src`` by transition ``k`` (0 down = coarser, 1 stay, 2 up = finer)."""
    return src + 1 - k


def viterbi_path(beta_probs: np.ndarray) -> tuple[int, ...]:
    """Most probable layer path under transition probabilities ``beta_probs`` [L, levels, 3].

    ``beta_probs[l, src, k]`` is the probability that layer ``l`` moves from level ``src`` (the
    level of layer ``l-1``; the stem is level 0 for ``l = 0``) by transition ``k`` (see
    :func:`transition_target`); illegal transitions must have probability 0. Maximises the product
    of the chosen transitions (in log space) by dynamic programming and backtracks.
    """
    probs = np.asarray(beta_probs, dtype=np.float64)
    num_layers, levels, _ = probs.shape
    with np.errstate(divide="ignore"):
        logp = np.log(probs)
    score = np.full((num_layers, levels), -np.inf)
    back = np.zeros((num_layers, levels), dtype=np.int64)
    for k in range(3):
        dst = transition_target(0, k)
        if 0 <= dst < levels:
            score[0, dst] = max(score[0, dst], logp[0, 0, k])
    for layer in range(1, num_layers):
        for src in range(levels):
            if not np.isfinite(score[layer - 1, src]):
                continue
            for k in range(3):
                dst = transition_target(src, k)
                if 0 <= dst < levels:
                    cand = score[layer - 1, src] + logp[layer, src, k]
                    if cand > score[layer, dst]:
                        score[layer, dst], back[layer, dst] = cand, src
    if not np.isfinite(score[-1]).any():
        raise ValueError("no legal path has non-zero probability")
    path = [int(np.argmax(score[-1]))]
    for layer in range(num_layers - 1, 0, -1):
        path.append(int(back[layer, path[-1]]))
    return tuple(reversed(path))

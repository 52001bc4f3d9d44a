import itertools

import numpy as np
import pytest

from eventvision.errors import UserError
from eventvision.models.stereo.genotype import (
    SPIKEDHS_MVSEC,
    Genotype,
    StageGenotype,
    decode_cell,
    load_genotype,
    node_edges,
    rescale_boundary_levels,
    num_edges,
    resolve_genotype,
    save_genotype,
    validate_path,
    viterbi_path,
)


def test_edge_numbering_matches_leastereo():
    assert num_edges() == 9
    assert [list(node_edges(i)) for i in range(3)] == [[0, 1], [2, 3, 4], [5, 6, 7, 8]]


def test_published_genotype_decoded_from_released_indices():
    # logs/best_model/Structure.txt: op indices 0 skip_connect, 1 snn_b3, 2 snn_b5
    assert SPIKEDHS_MVSEC.feature.cell == ((0, "snn_b3"), (1, "snn_b3"), (2, "snn_b3"), (3, "snn_b5"),
                                           (7, "snn_b3"), (8, "snn_b3"))
    assert SPIKEDHS_MVSEC.feature.path == (1, 0)
    assert SPIKEDHS_MVSEC.matching.path == (1, 2, 2, 1)
    assert SPIKEDHS_MVSEC.matching.edges_of(1) == [(3, "snn_b5"), (4, "snn_b5")]


def test_yaml_roundtrip_and_names(tmp_path):
    path = tmp_path / "g.yaml"
    save_genotype(path, SPIKEDHS_MVSEC, extra={"note": "x"})
    assert load_genotype(path) == SPIKEDHS_MVSEC
    assert resolve_genotype(str(path)) == SPIKEDHS_MVSEC
    assert resolve_genotype("spikedhs_mvsec") is SPIKEDHS_MVSEC
    assert resolve_genotype(SPIKEDHS_MVSEC.to_dict()) == SPIKEDHS_MVSEC
    inline = {"feature": {"cell": [[1, 1], [0, "skip_connect"], [3, 2], [2, 1], [7, 1], [8, 1]], "path": [0]},
              "matching": {"cell": [[0, 1], [1, 2], [4, 2], [3, 2], [8, 1], [6, 1]], "path": [0, 1]}}
    g = Genotype.from_dict(inline)
    assert g.feature.cell[0] == (0, "skip")


@pytest.mark.parametrize("cell,path,what", [
    ([[0, 1], [1, 1], [2, 1], [3, 1], [4, 1], [8, 1]], [0], "2 distinct edges"),   # node 1 has 3 edges
    ([[0, 1], [1, 1], [2, 1], [3, 1], [7, 1], [8, 9]], [0], "op index"),
    ([[0, 1], [1, 1], [2, 1], [3, 1], [7, 1], [8, "conv"]], [0], "unknown op"),
    ([[0, 1], [1, 1], [2, 1], [3, 1], [7, 1], [8, 1]], [2], "start at level 0 or 1"),
    ([[0, 1], [1, 1], [2, 1], [3, 1], [7, 1], [8, 1]], [0, 2], "at most one level"),
])
def test_invalid_genotypes_raise(cell, path, what):
    with pytest.raises(UserError, match=what):
        StageGenotype(cell=tuple(tuple(r) for r in cell), path=tuple(path))


def test_bad_file_is_user_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("feature: [1, 2\n")
    with pytest.raises(UserError, match="not valid YAML"):
        load_genotype(bad)
    with pytest.raises(UserError, match="not found"):
        load_genotype(tmp_path / "missing.yaml")
    bad.write_text("feature: {cell: [], path: [0]}\n")
    with pytest.raises(UserError, match="matching|edges"):
        load_genotype(bad)


def test_decode_cell_top2_edges_best_ops():
    p = np.full((9, 3), 1 / 3)
    p[1] = [0.1, 0.2, 0.7]   # node 0 keeps both edges whatever the values
    p[0] = [0.5, 0.3, 0.2]
    p[2] = [0.34, 0.33, 0.33]
    p[3] = [0.1, 0.8, 0.1]
    p[4] = [0.05, 0.05, 0.9]  # node 1: edges 4 and 3 beat 2
    p[5:9] = [0.34, 0.33, 0.33]
    p[6] = [0.0, 0.0, 1.0]
    p[8] = [0.6, 0.2, 0.2]    # mostly skip: ranked by its best conv (0.2), it loses node 2 to edge 5
    assert decode_cell(p) == ((0, "skip"), (1, "snn_b5"), (3, "snn_b3"), (4, "snn_b5"), (5, "skip"), (6, "snn_b5"))


def test_decode_cell_skip_does_not_win_an_edge_as_released():
    """Hand-made alpha where ranking by the overall best op (skip included) picks the skip-heavy
    edges; the released decoder ranks by the best non-skip op."""
    p = np.tile([0.2, 0.4, 0.4], (9, 1))
    p[2] = [0.9, 0.05, 0.05]   # node 1: skip-dominated edge (best op 0.9 would rank first)
    p[7] = [0.8, 0.1, 0.1]     # node 2: likewise
    p[3] = [0.1, 0.6, 0.3]
    p[4] = [0.1, 0.3, 0.6]
    p[5] = [0.3, 0.5, 0.2]
    p[8] = [0.2, 0.2, 0.6]
    genes = decode_cell(p)
    assert (2, "skip") not in genes and (7, "skip") not in genes
    assert genes[2:] == ((3, "snn_b3"), (4, "snn_b5"), (5, "snn_b3"), (8, "snn_b5"))


def test_boundary_levels_rescaled_before_viterbi():
    """From the stem (level 0, two legal moves) a 0.55/0.45 split must not beat an inner level's
    0.4 three-way choice on raw probabilities: the released decoder scales 2-way rows by 2/3."""
    probs = np.zeros((2, 4, 3))
    probs[0, 0] = [0.45, 0.55, 0.0]   # stem: down 0.45, stay 0.55
    probs[1, 0] = [0.5, 0.5, 0.0]     # level 0 (2-way): best 0.5
    probs[1, 1] = [0.4, 0.3, 0.3]     # level 1 (3-way): best 0.4
    # raw: stay-stay 0.55*0.5=0.275 vs down-down 0.45*0.4=0.18 -> (0, 0)/(0, 1)
    assert viterbi_path(probs) in ((0, 0), (0, 1))
    scaled = rescale_boundary_levels(probs)
    np.testing.assert_allclose(scaled[1, 1], probs[1, 1])
    np.testing.assert_allclose(scaled[1, 0], probs[1, 0] * 2 / 3)
    # scaled: 0.55*2/3*0.5*2/3 = 0.122 vs 0.45*2/3*0.4 = 0.12 -> still level 0, but a 0.46 choice flips it
    probs[1, 1] = [0.46, 0.27, 0.27]
    assert viterbi_path(probs)[0] == 0
    assert viterbi_path(rescale_boundary_levels(probs)) == (1, 2)


def _brute_force(probs):
    L = probs.shape[0]
    best, best_path = -1.0, None
    for path in itertools.product(range(4), repeat=L):
        try:
            validate_path(path)
        except UserError:
            continue
        prev, prob = 0, 1.0
        for layer, lv in enumerate(path):
            k = prev + 1 - lv
            prob *= probs[layer, prev, k]
            prev = lv
        if prob > best:
            best, best_path = prob, path
    return best_path


def test_viterbi_beats_greedy_and_matches_brute_force():
    probs = np.zeros((2, 4, 3))
    probs[0, 0] = [0.4, 0.6, 0.0]   # from the stem: down 0.4, stay 0.6
    probs[1, 0] = [0.5, 0.5, 0.0]
    probs[1, 1] = [0.0, 1.0, 0.0]
    assert viterbi_path(probs) == (1, 1)  # greedy would take level 0 first (0.3 < 0.4)
    rng = np.random.default_rng(0)
    for _ in range(20):
        raw = rng.random((5, 4, 3))
        raw[:, 0, 2] = 0   # no level -1
        raw[:, 3, 0] = 0   # no level 4
        probs = raw / raw.sum(-1, keepdims=True)
        assert viterbi_path(probs) == _brute_force(probs)

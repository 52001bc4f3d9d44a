"""Stereo networks: SpikeDHS (genotype, network with hybrid SNN/ANN per stage, hierarchical search) and the
default SGBM + learned refinement (``refine``).

    from eventvision.models.stereo import SpikeDHSStereo, build_stereo_model, SMALL_CONFIG
    model = SpikeDHSStereo.from_config(cfg.model)       # or build_stereo_model(**SMALL_CONFIG)
    disparity = model(left, right)                       # [N, B, H, W] x 2 -> [N, H, W] pixels
    refine = SGBMRefineStereo.from_config(cfg.model)    # model.arch: sgbm_refine
    disparity = refine(left, guide)                      # [N, 3, H, W] uint8, [N, 9, H, W] -> [N, H, W] pixels
"""

from eventvision.models.stereo.genotype import (  # noqa: F401
    PRIMITIVES,
    SPIKEDHS_MVSEC,
    Genotype,
    StageGenotype,
    load_genotype,
    resolve_genotype,
    save_genotype,
)
from eventvision.models.stereo.refine import RefineConfig, SGBMRefineStereo  # noqa: F401
from eventvision.models.stereo.network import (  # noqa: F401
    FULL_CONFIG,
    SMALL_CONFIG,
    SpikeDHSStereo,
    StereoModelConfig,
    build_cost_volume,
    build_stereo_model,
    soft_argmin,
)

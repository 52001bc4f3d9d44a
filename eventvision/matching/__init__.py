"""Classical (non-learned) stereo matching on event images, shared by data, models, inference and benchmarks.

:mod:`.sgbm`: per-window event images (time surfaces, counts) and OpenCV semi-global matching, the
yardstick of every stereo table (``--method sgbm``); :mod:`.refine_inputs`: hole filling and the
matching-cost profile that the SGBM-refine network reads. Nothing here imports torch or a model.
"""

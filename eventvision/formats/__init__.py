"""File formats shared by data, models, simulation and evaluation.

:mod:`.kitti`: KITTI label / result files (tracking and object columns), calibration files (both key
spellings, read, scaled and written here only) and the dataset folder helpers.
"""

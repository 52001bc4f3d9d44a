"""KITTI AP of kitti-object-eval-python (:mod:`.ap`) and synthetic detections for tests (:mod:`.synthetic`).

The file formats live in :mod:`eventvision.formats.kitti`, box geometry and the rotated IoU in
:mod:`eventvision.geometry`. Imported lazily: importing this package compiles no numba kernel.
"""

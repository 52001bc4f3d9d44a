"""3D box geometry shared by data, models, simulation and evaluation.

:mod:`.boxes3d`: KITTI camera boxes, corners, BEV rectangles, projection, the camera <-> grid (lidar-like)
box frames; :mod:`.rotated_iou`: numba 2D / rotated BEV / 3D overlaps (kitti-object-eval-python semantics).
Imported lazily: ``from eventvision.geometry import boxes3d`` compiles no numba kernel.
"""

"""KITTI (Tracking) formats, 3D boxes, rotated IoU and the KITTI AP of kitti-object-eval-python.

Modules: :mod:`.io` (label/result/calib files), :mod:`.boxes` (camera boxes, corners, BEV,
projection), :mod:`.iou` (numba 2D/BEV/3D IoU), :mod:`.ap` (``kitti_eval``). Imported lazily:
``from eventvision.evaluation.kitti import io`` does not compile any numba kernel.
"""

"""Frames, voxel grid and camera geometry for stereo 3D detection (pure torch, CPU and CUDA).

Frame conventions (explicit, because every bug in this area is a frame bug):

* **camera** = KITTI rectified reference camera (cam0 after R_rect): x right, y down, z forward, metres.
  KITTI labels live here; a label box is ``(x, y, z, l, w, h, ry)`` with (x, y, z) the *bottom* centre.
* **lidar-like** ("grid frame", as in DSGN/OpenPCDet, but with its origin at the camera, no Velodyne
  extrinsics involved): ``x_l = z_cam`` (forward), ``y_l = -x_cam`` (left), ``z_l = -y_cam`` (up). A box is
  ``(x, y, z, l, w, h, θ)`` with (x, y, z) the *gravity* centre and ``θ = -ry - π/2`` the heading measured
  from x_l towards y_l. The voxel grid (x 2..53.2, y −28.8..28.8, z −3..1 m) and all network boxes use it;
  the ground lies near ``z_l = −1.65`` (KITTI camera height).
* images: pixel (u, v) with the centre of pixel i at coordinate i; a feature map of stride s has its cell j
  centred at image coordinate ``(j + 0.5)·s − 0.5``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from eventvision.geometry.boxes3d import camera_to_lidar_boxes, lidar_to_camera_boxes, limit_period_np  # noqa: F401


def limit_period(val: torch.Tensor, offset: float = 0.5, period: float = 2 * math.pi) -> torch.Tensor:
    return val - torch.floor(val / period + offset) * period


def lidar_to_camera_points(points: torch.Tensor) -> torch.Tensor:
    """[..., 3] grid-frame points -> [..., 3] camera-frame points."""
    return torch.stack([-points[..., 1], -points[..., 2], points[..., 0]], dim=-1)


def project_camera_points(points_cam: torch.Tensor, P: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Project camera-frame points [N, ..., 3] with P [N, 3, 4] -> (uv [N, ..., 2] pixels, depth [N, ...] metres)."""
    n = points_cam.shape[0]
    flat = points_cam.reshape(n, -1, 3)
    homo = torch.cat([flat, torch.ones_like(flat[..., :1])], dim=-1)
    img = torch.einsum("nij,nkj->nki", P.to(flat.dtype), homo)
    depth = img[..., 2]
    uv = img[..., :2] / depth.clamp(min=1e-6).unsqueeze(-1)
    return uv.reshape(*points_cam.shape[:-1], 2), depth.reshape(points_cam.shape[:-1])


def stereo_disparity_numerator(P2: torch.Tensor, P3: torch.Tensor) -> torch.Tensor:
    """``P2[0,3] − P3[0,3]`` [N] (pixels·metres): disparity at camera depth z is this / z (KITTI rectified pair)."""
    return P2[..., 0, 3] - P3[..., 0, 3]


# --------------------------------------------------------------------------------- voxel grid
@dataclass(frozen=True)
class VoxelGrid:
    """Regular grid in the lidar-like frame: ranges in metres, ``voxel_size`` (dx, dy, dz) in metres."""

    x_range: tuple[float, float] = (2.0, 53.2)
    y_range: tuple[float, float] = (-28.8, 28.8)
    z_range: tuple[float, float] = (-3.0, 1.0)
    voxel_size: tuple[float, float, float] = (0.2, 0.2, 0.2)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(Z, Y, X) number of voxels."""
        nx = int(round((self.x_range[1] - self.x_range[0]) / self.voxel_size[0]))
        ny = int(round((self.y_range[1] - self.y_range[0]) / self.voxel_size[1]))
        nz = int(round((self.z_range[1] - self.z_range[0]) / self.voxel_size[2]))
        return nz, ny, nx

    def centres(self, device=None, dtype=torch.float32) -> torch.Tensor:
        """Voxel centres [Z, Y, X, 3] (x, y, z) in the grid frame."""
        nz, ny, nx = self.shape
        xs = self.x_range[0] + (torch.arange(nx, device=device, dtype=dtype) + 0.5) * self.voxel_size[0]
        ys = self.y_range[0] + (torch.arange(ny, device=device, dtype=dtype) + 0.5) * self.voxel_size[1]
        zs = self.z_range[0] + (torch.arange(nz, device=device, dtype=dtype) + 0.5) * self.voxel_size[2]
        zz, yy, xx = torch.meshgrid(zs, ys, xs, indexing="ij")
        return torch.stack([xx, yy, zz], dim=-1)

    def bev_centres(self, stride: int = 1, device=None, dtype=torch.float32) -> torch.Tensor:
        """BEV cell centres [Y/stride, X/stride, 2] (x, y) for a BEV map downsampled by ``stride``."""
        _, ny, nx = self.shape
        dx, dy = self.voxel_size[0] * stride, self.voxel_size[1] * stride
        xs = self.x_range[0] + (torch.arange(nx // stride, device=device, dtype=dtype) + 0.5) * dx
        ys = self.y_range[0] + (torch.arange(ny // stride, device=device, dtype=dtype) + 0.5) * dy
        yy, xx = torch.meshgrid(ys, xs, indexing="ij")
        return torch.stack([xx, yy], dim=-1)


@dataclass(frozen=True)
class DepthBins:
    """Uniform depth planes for the plane sweep: ``num`` camera depths from ``min_m`` to ``max_m`` (inclusive)."""

    min_m: float = 2.0
    max_m: float = 53.2
    num: int = 64

    def values(self, device=None, dtype=torch.float32) -> torch.Tensor:
        return torch.linspace(self.min_m, self.max_m, self.num, device=device, dtype=dtype)

    @property
    def step(self) -> float:
        return (self.max_m - self.min_m) / max(self.num - 1, 1)


def image_to_feature_coords(uv: torch.Tensor, stride: int) -> torch.Tensor:
    """Image pixel coordinates -> feature-map cell coordinates for a map of the given stride."""
    return (uv + 0.5) / stride - 0.5


def plane_sweep_grid(depths: torch.Tensor, disp_numerator: torch.Tensor, height: int, width: int,
                     stride: int) -> torch.Tensor:
    """Sampling grid that warps the right feature map onto the left view for every depth plane.

    For depth z the left cell at feature column j sees the right cell at ``j − d/stride`` with
    ``d = disp_numerator / z`` pixels. Returns ``grid`` [N, D, H, W, 2] normalised for
    ``grid_sample(align_corners=True)`` (x = column, y = row).
    """
    n = disp_numerator.shape[0]
    dev, dt = depths.device, depths.dtype
    disp_feat = disp_numerator.to(dt).view(n, 1) / depths.view(1, -1) / stride  # [N, D]
    cols = torch.arange(width, device=dev, dtype=dt)
    rows = torch.arange(height, device=dev, dtype=dt)
    src_cols = cols.view(1, 1, 1, width) - disp_feat.view(n, -1, 1, 1)  # [N, D, 1, W]
    gx = src_cols / max(width - 1, 1) * 2 - 1
    gy = (rows / max(height - 1, 1) * 2 - 1).view(1, 1, height, 1)
    d = depths.numel()
    return torch.stack([gx.expand(n, d, height, width), gy.expand(n, d, height, width)], dim=-1)


def voxel_sampling_grid(grid: VoxelGrid, bins: DepthBins, P2: torch.Tensor, feat_hw: tuple[int, int],
                        stride: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Where each voxel centre falls in the plane-sweep volume.

    Projects the grid-frame voxel centres into the left image with P2 (camera frame, see module doc) and
    converts (u, v, depth) to normalised ``grid_sample`` coordinates of a volume [N, C, D, H, W]
    (align_corners=True). Returns ``(grid [N, Z, Y, X, 3], valid [N, Z, Y, X] bool)``; invalid voxels
    (behind the camera, outside the image or the depth range) get coordinates outside [−1, 1] so
    ``grid_sample(padding_mode="zeros")`` yields 0 there.
    """
    n = P2.shape[0]
    h, w = feat_hw
    centres = grid.centres(device=P2.device, dtype=P2.dtype)  # [Z, Y, X, 3]
    cam = lidar_to_camera_points(centres).unsqueeze(0).expand(n, *centres.shape)
    uv, _ = project_camera_points(cam, P2)
    depth = cam[..., 2]  # plane-sweep depth = rectified camera z
    fuv = image_to_feature_coords(uv, stride)
    gx = fuv[..., 0] / max(w - 1, 1) * 2 - 1
    gy = fuv[..., 1] / max(h - 1, 1) * 2 - 1
    gz = (depth - bins.min_m) / (bins.max_m - bins.min_m) * 2 - 1
    g = torch.stack([gx, gy, gz], dim=-1)
    valid = (g.abs() <= 1.0).all(dim=-1) & (depth > 0.1)
    g = torch.where(valid.unsqueeze(-1), g, torch.full_like(g, -2.0))
    return g, valid

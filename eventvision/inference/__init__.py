"""Running models on streams: one predictor per task (:mod:`.detect3d`: KITTI stereo sequences -> 3D boxes)."""

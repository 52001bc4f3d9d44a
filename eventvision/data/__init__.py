"""Datasets per task: ``eventvision.data.stereo`` (DSEC, MVSEC, synthetic), ``eventvision.data.gesture``,
``eventvision.data.action``, ... Each subpackage is imported explicitly by its task."""

"""Action task splits: val and test are different videos, test has the multi-view sampling."""

from __future__ import annotations

import pytest
import torch

from eventvision.config import load_config
from eventvision.errors import ConfigError
from eventvision.tasks.action import ActionTask


def test_action_splits_are_distinct_and_test_is_multiview():
    cfg = load_config("action/small", ["data.synthetic_videos=2", "data.synthetic_frames=40",
                                       "data.num_frames=4", "data.image_size=32", "data.test_clips=2",
                                       "data.test_crops=3"])
    task = ActionTask.from_config(cfg)
    val, test = task.build_dataset("val"), task.build_dataset("test")
    assert len(val) == 2 * cfg.data.val_clips * cfg.data.val_crops and len(test) == 2 * 2 * 3
    assert [int(test[i]["video_id"]) for i in range(len(test))] == [0] * 6 + [1] * 6
    for i in range(2):  # another seed stream: other videos
        a, b = val.load(val.records[i]), test.load(test.records[i])
        assert not torch.equal(torch.as_tensor(a), torch.as_tensor(b))
    with pytest.raises(ConfigError, match="action: unknown split 'foo'"):
        task.build_dataset("foo")

"""Task registry: name -> module:Class, imported lazily and explicitly."""

from __future__ import annotations

import importlib

from eventvision.errors import ConfigError

TASKS: dict[str, str] = {
    "stereo": "eventvision.tasks.stereo:StereoTask",
    "detect3d": "eventvision.tasks.detect3d:Detect3DTask",
    "action": "eventvision.tasks.action:ActionTask",
    "gesture": "eventvision.tasks.gesture:GestureTask",
    "toy": "eventvision.tasks.toy:ToyTask",  # tiny synthetic task used by the engine's tests
}


def get_task_class(name: str):
    """Return the Task class registered under ``name`` (ConfigError listing the tasks if unknown)."""
    if name not in TASKS:
        raise ConfigError(f"unknown task '{name}'; tasks: {', '.join(sorted(TASKS))}")
    module_name, cls_name = TASKS[name].split(":")
    return getattr(importlib.import_module(module_name), cls_name)

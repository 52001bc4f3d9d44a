"""The shared training engine: one trainer for every task, checkpoints, evaluation, torch.distributed.

    from eventvision.engine import Trainer, evaluate, load_model_from_checkpoint
    metrics = Trainer.from_config(cfg, task).fit()   # Trainer(..., hooks=[MyHook()]), MyHook(HookBase)
    task, model, ckpt = load_model_from_checkpoint("runs/x/best.pt")
    metrics = evaluate(task, model, "val", "cpu")

See docs/engine.md.
"""

from eventvision.engine.checkpoint import load_checkpoint, load_model_from_checkpoint, save_checkpoint, unwrap
from eventvision.engine.evaluate import evaluate
from eventvision.engine.hooks import HookBase
from eventvision.engine.trainer import Trainer

__all__ = ["Trainer", "HookBase", "evaluate", "save_checkpoint", "load_checkpoint",
           "load_model_from_checkpoint", "unwrap"]

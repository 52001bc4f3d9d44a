"""eventvision: event-camera perception suite.

Subpackages are imported explicitly by users (``from eventvision.events import read_events``);
this top-level module stays light so ``eventvision info`` starts without torch.
"""

__version__ = "0.1.0"

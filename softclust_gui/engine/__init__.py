"""The hypersurface clustering engine: numpy, torch and scikit-learn only.

Public API: :class:`HypersurfaceClustering` (a scikit-learn estimator), the
:class:`TreeNode` records of its fitted ``tree_``, progress reports
(:class:`FitProgress`, :class:`FitCancelled`), and the criterion extension point
(:class:`ClusterCriterion`, :class:`CompactCriterion`, :class:`ConnectedCriterion`).
"""

from .criteria import ClusterCriterion, CompactCriterion, ConnectedCriterion, NodeData
from .estimator import HypersurfaceClustering
from .progress import FitCancelled, FitProgress
from .split import SplitResult, SplitSettings, split_node
from .tree import TreeNode

__all__ = [
    "ClusterCriterion",
    "CompactCriterion",
    "ConnectedCriterion",
    "FitCancelled",
    "FitProgress",
    "HypersurfaceClustering",
    "NodeData",
    "SplitResult",
    "SplitSettings",
    "TreeNode",
    "split_node",
]

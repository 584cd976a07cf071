"""The hypersurface clustering engine: numpy, torch and scikit-learn only.

Public API: :class:`HypersurfaceClustering` (a scikit-learn estimator), the
:class:`TreeNode` records of its fitted ``tree_``, progress reports
(:class:`FitProgress`, :class:`FitCancelled`), and the criterion extension point
(:class:`ClusterCriterion`, :class:`CompactCriterion`, :class:`ConnectedCriterion`).
K clusters at once: :class:`SoftmaxClustering` and :func:`refine_kway`; the split test
behind automatic K: :func:`assess_split`.
"""

from ._auto_k import SplitTest, assess_split
from ._kway import KWayResult, KWaySurface, SoftmaxClustering, refine_kway
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
    "KWayResult",
    "KWaySurface",
    "NodeData",
    "SoftmaxClustering",
    "SplitResult",
    "SplitSettings",
    "SplitTest",
    "TreeNode",
    "assess_split",
    "refine_kway",
    "split_node",
]

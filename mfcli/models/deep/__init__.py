"""Deep matrix factorization: one driver, seven models that differ only in their layer updates.

Two chains (survey, De Handschutter, Gillis & Siebert, "A survey on deep matrix factorizations",
Computer Science Review 42, 2021, sections 3.1-3.2):

- features chain (deep ONMF, deep AONMF; section 3.2.1): X ~= W_1 H_1, W_1 ~= W_2 H_2, ...,
  W_{L-1} ~= W_L H_L, hence X ~= W_L H_L ... H_1. Layer l's data-space view is its basis W_l
  (m x r_l) with the composite coefficients C_l = H_l ... H_1 (r_l x n).
- activations chain (multilayer NMF, deep semi-NMF, deep NMF, deep sparse NMF, deep nsNMF;
  section 3.1): X ~= W_1 H_1, H_1 ~= W_2 H_2, ..., hence X ~= W_1 W_2 ... W_L H_L. Layer l's
  data-space view is the basis W_1 ... W_l with the coefficients H_l.

The driver (:func:`deep_factorize`) initializes layer by layer with the variant's single-layer
model (survey Algorithm 2), then, for variants with a joint stage, runs sweeps
``for l in layers: variant.update_layer(state, l)`` followed by ``variant.end_sweep(state)``,
recording the global loss per sweep (``Result.history``) under the shared stopping rules.

Layer updates:

- ``deep-onmf``: every H_l a hard assignment (one nonzero per column). Block coordinate descent
  on the global loss ||X - W_L H_L ... H_1||_F^2: (1) every pixel is moved to the top-level group
  whose basis vector fits it best, with the optimal weight (exact minimization for that pixel;
  among the layer-1 clusters of that group, all of which give the same global loss, it takes the
  one of largest cosine with the layer-1 basis); (2) for l = 2..L, every cluster of layer l-1 is
  moved likewise, as a block, to a group and a layer-l cluster of it (a cluster is not moved
  when that would leave its parent empty); (3) W_L is the least-squares basis for the new
  composite coefficients (and so is each W_l for its layer's view, which the global loss does not
  involve). Each step is an exact block minimization, so the global loss never increases. All
  of it needs the products with X once per sweep: X C_l^T = (X H_1^T) (H_l ... H_2)^T.
- ``deep-aonmf``: soft H_l >= 0 with the AONMF penalty lambda sum_{j<k} <h_j, h_k> on each; H_1
  by HALS, H_l (l >= 2) by projected gradient with step 1/L on the global loss,
  W_L by exact unit-norm column updates. Objective: 1/2 global loss + penalties, never increases.
- ``multilayer`` (Cichocki & Zdunek, Electronics Letters 42(16), 2006; survey Algorithm 2): the
  sequential NMFs only.
- ``deep-semi`` (Trigeorgis, Bousmalis, Zafeiriou & Schuller, ICML 2014 / IEEE TPAMI 2017; survey
  Algorithm 3): semi-NMF pretraining, then W_l = A_l^+ X B_l^+ and H_l by HALS on
  ||X - A_l W_l H_l||, B_l = W_{l+1} H_{l+1}. Not a descent method on the global loss (survey
  section 3.1), so its recorded loss may rise.
- ``deep-nmf`` (survey Algorithm 4): BCD on ||X - W_1 ... W_L H_L||^2 with W_l, H_L >= 0: W_1 and
  H_L by HALS, W_l (l >= 2) by projected gradient with step 1/L; or, with ``loss="layers"``, the
  layer-balanced loss sum_l lambda_l ||H_{l-1} - W_l H_l||^2 (H_0 = X, lambda_1 = 1, lambda_l =
  ``layer_weight``), BCD on every W_l and H_l. Both never increase their objective.
- ``deep-sparse``: deep NMF with lambda ||H_L||_1 (lambda relative to the rms column norm, as
  :mod:`mfcli.models.sparse`), W_1 with unit columns and W_l (l >= 2) column-stochastic, so the
  scale cannot escape the penalty (survey section 3.2.2).
- ``deep-nsnmf``: X ~= W_1 S_1 W_2 S_2 ... W_L S_L H_L with the nsNMF smoothing
  S_l = (1 - theta) I + theta / r_l 11^T (survey section 3.2.3); BCD as deep NMF.

Hierarchy: ``Layer.assignments`` of layer 1 give each data column's cluster, of layer l the
parent in layer l of each cluster of layer l-1 (hard for deep ONMF; for soft models the largest
contribution, with its share in ``assignment_weights``).

The package: :mod:`~mfcli.models.deep.driver` (:func:`deep_factorize`: layer loop, stopping,
Result), :mod:`~mfcli.models.deep.common` (the variant interface and the state every variant
extends), :mod:`~mfcli.models.deep.onmf` (deep ONMF), :mod:`~mfcli.models.deep.aonmf` (deep
AONMF), :mod:`~mfcli.models.deep.chain` (the activations chain: multilayer, deep semi-NMF, deep
NMF, deep sparse, deep nsNMF) and :mod:`~mfcli.models.deep.abundances`. Each variant keeps its
own typed state (a dataclass extending :class:`DeepState`). NumPy only.
"""

from __future__ import annotations

from mfcli.models.deep.abundances import layer_abundances, soft_abundances
from mfcli.models.deep.aonmf import AONMFState, DeepAONMF
from mfcli.models.deep.chain import (ActivationsChain, ChainState, DeepNMF, DeepNMFState, DeepNsNMF, DeepSemi,
                                     DeepSparse, Multilayer, SemiState, SparseState)
from mfcli.models.deep.common import LAYER_INIT_TOL, PG_STEPS, DeepState, DeepVariant
from mfcli.models.deep.driver import DEEP_MODELS, VARIANTS, deep_factorize
from mfcli.models.deep.onmf import DeepONMF, ONMFState

__all__ = ["DEEP_MODELS", "VARIANTS", "deep_factorize", "layer_abundances", "soft_abundances", "DeepState",
           "DeepVariant", "DeepONMF", "ONMFState", "DeepAONMF", "AONMFState", "ActivationsChain", "ChainState",
           "Multilayer", "DeepNMF", "DeepNMFState", "DeepSparse", "SparseState", "DeepNsNMF", "DeepSemi", "SemiState",
           "LAYER_INIT_TOL", "PG_STEPS"]

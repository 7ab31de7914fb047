"""Matrix completion of ratings: factor models (:mod:`.models`) and deep MF (:mod:`.dmf`).

The model names live here, free of NumPy imports, so the command line can list them without
slowing ``mfcli --help``.
"""

DEEP_MODELS = ("dmf", "dmf-d")
MODELS = ("baseline", "als", "sgd", "wals", "bpr", "svd", *DEEP_MODELS)
# Models of implicit feedback (interactions, judged by ranking metrics): bpr, and wals with implicit=True.
RANKING_MODELS = ("bpr",)

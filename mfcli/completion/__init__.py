"""Matrix completion of ratings: factor models (:mod:`.models`) and deep MF (:mod:`.dmf`).

The model names live here, free of NumPy imports, so the command line can list them without
slowing ``mfcli --help``.
"""

DEEP_MODELS = ("dmf", "dmf-d")
MODELS = ("baseline", "als", "sgd", "wals", "svd", *DEEP_MODELS)

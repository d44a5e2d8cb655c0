"""k-fold validation: folds (:mod:`.folds`), the figures across them (:mod:`.stats`) and the driver
that writes the run folder (:mod:`.run`)."""

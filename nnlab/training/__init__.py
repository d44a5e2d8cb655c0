"""Training: the prepared data (:mod:`.data`), how it is fed (:mod:`.feed`, :mod:`.device_loop`), the one
fit every command shares (:mod:`.fit`, :mod:`.callbacks`), what a run records after it (:mod:`.results`),
and ``nnlab train`` itself (:mod:`.run`)."""

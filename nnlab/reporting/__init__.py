"""``nnlab report``: one self-contained HTML page of runs (``write``), what it shows (``content``),
its charts (``charts``, Vega-Lite through altair), what it carries inside (``assets``) and its HTML
(``page``)."""

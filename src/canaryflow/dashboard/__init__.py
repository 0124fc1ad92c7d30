"""The web dashboard: every canary live, a page per canary, the GitOps objects, the seed's Grafana view, and the
user operations (promote, abort, retry, gates) behind a token.

It reads and acts only through the ``Backend`` Protocol (``base.py``), which the local runtime
(``local/dashboard.py``) and the operator (``kube/dashboard.py``) implement; it must not import either of them.
Pages are rendered on the server (Jinja2, autoescaped); the one front-end library, uPlot, is vendored under
``static/vendor`` with its licence, so nothing is fetched at run time.
"""

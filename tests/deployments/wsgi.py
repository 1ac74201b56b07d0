"""The WSGI application the uWSGI and gunicorn runs serve.

With ``DEPLOY_WARM_UP`` set to a file name, loading the application makes one ID and writes it
there, as a warm-up or a data check at start-up would: in a preforking server that loads the
application before forking, the master then holds a generator its workers inherit.
"""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.deployments.settings")
application = get_wsgi_application()

_warm_up = os.environ.get("DEPLOY_WARM_UP")
if _warm_up:
    import django_flakeid

    with open(_warm_up, "w") as handle:
        handle.write(f"{django_flakeid.next_id()}\n")

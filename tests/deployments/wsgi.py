"""The WSGI application the uWSGI and gunicorn runs serve.

With ``DEPLOY_WARM_UP`` set to a file name, loading the application makes one ID and appends
``<pid> <id>`` to it, as a warm-up or a data check at start-up would: in a preforking server
that loads the application before forking, the master then holds a generator its workers
inherit; with uWSGI's ``--lazy-apps``, each worker makes its own while loading.
"""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.deployments.settings")
application = get_wsgi_application()

_warm_up = os.environ.get("DEPLOY_WARM_UP")
if _warm_up:
    import django_flakeid

    # Appending a line in one write: workers that load the application at the same moment
    # cannot interleave or overwrite each other's.
    with open(_warm_up, "a") as handle:
        handle.write(f"{os.getpid()} {django_flakeid.next_id()}\n")

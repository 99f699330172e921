"""A one-file Django site whose sessions live in a corecache cluster.

Sessions use Django's cache backend over PyLibMCCache, with libmemcached's
ketama placement and automatic ejection of failed nodes, the settings a
session store behind a fleet of web servers uses. Each visit to / counts up
`n` in the visitor's session and answers {"n": n}; the session key travels in
the `sessionid` cookie, and the cache key is
`:1:django.contrib.sessions.cache<session key>`.

Run:  MC_SERVERS=127.0.0.1:22141,127.0.0.1:22142,127.0.0.1:22143 \\
          python app.py runserver 127.0.0.1:8000 --noreload --nothreading

--nothreading keeps one pylibmc client for the whole process: with threads,
each request thread has its own client, and each of them fails once on a dead
node before it ejects it.
"""

import os
import sys

from django.conf import settings
from django.http import JsonResponse
from django.urls import path

SERVERS = os.environ.get("MC_SERVERS", "127.0.0.1:11211").split(",")

settings.configure(
    DEBUG=False,
    SECRET_KEY=os.environ.get("SECRET_KEY", "session-store-example-not-secret"),
    ALLOWED_HOSTS=["127.0.0.1", "localhost"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware"],
    SESSION_ENGINE="django.contrib.sessions.backends.cache",
    # Failed requests are logged with their traceback on stderr.
    LOGGING={
        "version": 1,
        "handlers": {"stderr": {"class": "logging.StreamHandler"}},
        "loggers": {"django.request": {"handlers": ["stderr"], "level": "ERROR"}},
    },
    CACHES={
        "default": {
            "BACKEND": "django.core.cache.backends.memcached.PyLibMCCache",
            "LOCATION": SERVERS,
            "OPTIONS": {
                "binary": False,
                # ketama: libmemcached's one_at_a_time continuum, 100 points per
                # node (corecache-ring --mode libmemcached). remove_failed ejects
                # a node after one failure; retry_timeout keeps it out for 10 min.
                "behaviors": {
                    "ketama": True,
                    "remove_failed": 1,
                    "failure_limit": 1,
                    "retry_timeout": 600,
                },
            },
        }
    },
)


def count(request):
    """Counts this visitor's visits in the session."""
    n = request.session.get("n", 0) + 1
    request.session["n"] = n
    return JsonResponse({"n": n})


urlpatterns = [path("", count)]

if __name__ == "__main__":
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)

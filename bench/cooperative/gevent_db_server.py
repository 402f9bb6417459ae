"""The gevent side of the database benchmark: gevent's WSGI server, psycopg2 made cooperative
by psycogreen, a pool of N connections (gevent.queue). GET /pg_pool?ms=N runs
SELECT pg_sleep(N/1000) on a pooled connection, as Weft's example plugin does.

    python3 gevent_db_server.py PORT CONNINFO POOL_SIZE
"""

from gevent import monkey

monkey.patch_all()

import sys  # noqa: E402
import urllib.parse  # noqa: E402

import gevent.queue  # noqa: E402
import psycogreen.gevent  # noqa: E402
import psycopg2  # noqa: E402
from gevent.pywsgi import WSGIServer  # noqa: E402

psycogreen.gevent.patch_psycopg()

port, conninfo, size = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
pool = gevent.queue.Queue()
made = [0]


def take():
    if pool.empty() and made[0] < size:
        made[0] += 1
        c = psycopg2.connect(conninfo)
        c.autocommit = True
        return c
    return pool.get()


def app(environ, start_response):
    q = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
    if environ["PATH_INFO"] == "/":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"Hello, World!"]
    if environ["PATH_INFO"] != "/pg_pool":
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]
    ms = int(q.get("ms", ["0"])[0])
    c = take()
    try:
        with c.cursor() as cur:
            cur.execute("SELECT pg_sleep(%s)", (ms / 1000.0,))
            cur.fetchall()
    finally:
        pool.put(c)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"pg_sleep done\n"]


WSGIServer(("127.0.0.1", port), app, log=None, backlog=1024).serve_forever()

"""Runs the simpleflow command line with one change to how its processes use connections.

simpleflow forks its deciders, pollers and activity processes from processes that already
hold a boto3 client, and a forked child keeps using the keep-alive connections it inherited:
two processes then share one connection and can read each other's answers (moto hides this by
closing every connection; SWF and swf-warden keep them open). This worker setup gives each
forked process connections of its own: after a fork, the child drops (without shutting down)
every pooled connection it inherited, so its next call opens a new one. The proxy is not
changed for it."""

import gc
import os
import sys

from botocore.httpsession import URLLib3Session


def _own_connections():
    for obj in gc.get_objects():
        if isinstance(obj, URLLib3Session):
            # Closes the child's copies of the sockets; the parent's stay open and in use.
            obj.close()


os.register_at_fork(after_in_child=_own_connections)

if __name__ == "__main__":
    from simpleflow.command import cli

    sys.argv[0] = "simpleflow"
    sys.exit(cli())

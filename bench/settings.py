"""Settings for bench/ledger_post.py: the project's settings plus django-hordak.

The script points DATABASE_URL at its own throw-away database before Django reads this module.
"""

from core.settings import *  # noqa: F403
from core.settings import INSTALLED_APPS

# django-hordak (measured beside the posting service) and the tree library it builds on.
INSTALLED_APPS = [*INSTALLED_APPS, "mptt", "hordak"]

# DEBUG keeps every query in memory (connection.queries): not what production runs.
DEBUG = False
# A benchmark needs no lockout bookkeeping or cached connections between runs.
AXES_ENABLED = False

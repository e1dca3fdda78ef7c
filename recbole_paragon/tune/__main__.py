"""``python -m recbole_paragon.tune``: deprecated, runs ``python -m recbole_paragon.sweep``."""
from logging import getLogger

from recbole_paragon.sweep import main

getLogger().warning("python -m recbole_paragon.tune was renamed python -m recbole_paragon.sweep; "
                    "the old name goes in the next release")
print("warning: python -m recbole_paragon.tune was renamed python -m recbole_paragon.sweep")
main()

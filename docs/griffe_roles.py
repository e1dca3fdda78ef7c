"""A griffe extension for the API reference: the docstrings' Sphinx roles (``:func:`name```) become code spans."""
import re

import griffe

ROLE = re.compile(r":(?:func|class|mod|meth|attr|data|exc|obj):`[~.]?([^`]+)`")


class SphinxRoles(griffe.Extension):
    """``:func:`setting``` -> ```setting```, in every docstring, once the object tree is built."""

    def on_object(self, *, obj, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = ROLE.sub(r"`\1`", obj.docstring.value)

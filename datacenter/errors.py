"""The one base class of the errors this package reports to a person.

Every error a face (the command line, later the console) shows in one line
derives from :class:`DataCenterError`, so a face can catch the family
without knowing each member. Errors that also are OS errors (a journal
group committed but not finished) keep ``OSError`` as a base as well.
"""

from __future__ import annotations


class DataCenterError(Exception):
    """Something this package refuses or cannot do; the message says what and where."""

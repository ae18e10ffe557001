"""Data in and out: import a case-management extract (replayed in logical time), export the
history in the same canonical format, and reconcile an extract with what icsflow holds."""

from icsflow.workflow.transfer.importer import ImportReport, import_file
from icsflow.workflow.transfer.mapping import MappingProfile, load_profile
from icsflow.workflow.transfer.rows import EventRow, Problem

__all__ = ["ImportReport", "import_file", "MappingProfile", "load_profile", "EventRow",
           "Problem"]

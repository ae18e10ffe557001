"""The statutory returns: the SSDA903 extract and the CIN census in (derived into the processes'
own events through the ordinary import), their review and child protection parts out for a
collection year, and reconcile. See docs/returns.md."""

from icsflow.workflow.transfer.returns.export import export_cin_census, export_ssda903
from icsflow.workflow.transfer.returns.importing import ReturnsReport, import_returns
from icsflow.workflow.transfer.returns.reconcile import reconcile_returns

__all__ = ["import_returns", "ReturnsReport", "export_ssda903", "export_cin_census",
           "reconcile_returns"]

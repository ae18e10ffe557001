"""Runs inside the side virtual environment of ``validators.py`` (pandas < 2): one DfE rule
set over one return, printing ``{"errors": {code: [location, ...]}, ...}`` as JSON.

Not a test module and not part of icsflow: icsflow's own environment never imports it.
Usage: ``python dfe_runner.py '{"kind": "903"|"cin", "files": [...], "year": "2012-13",
"rules": [...], "ruleset": "..."}'``.
"""

import contextlib
import importlib
import io
import json
import logging
import sys
from pathlib import Path


def _years(year):
    """'2012-13' -> (2012, 2013)."""
    first = int(year[:4])
    return first, first + 1


def run_903(files, year, rules, ruleset):
    from lac_validator import lac_validator
    from lac_validator.config import column_names
    from lac_validator.types import UploadedFile

    uploads, names = [], {}
    for path in files:
        content = Path(path).read_bytes()
        header = content.decode("utf-8-sig").splitlines()[0].split(",")
        for table, columns in column_names.items():
            if set(h.strip() for h in header) == set(columns):
                names[table] = Path(path).name
        uploads.append(UploadedFile(name=str(path), description="This year",
                                    file_content=content))
    registry = importlib.import_module(f"lac_validator.rules.{ruleset}").registry
    unknown = [r for r in rules if r not in registry]
    validator = lac_validator.LacValidator(
        metadata={"collectionYear": str(_years(year)[1]), "localAuthority": "E09000027"},
        files=uploads, registry=registry, selected_rules=rules)
    errors = {code: [] for code in rules}
    for table, frame in validator.ds_results.items():
        if table == "metadata":
            continue
        for code in rules:
            column = f"ERR_{code}"
            if column not in frame.columns:
                continue
            flagged = frame.index[frame[column].fillna(False).astype(bool)]
            for index in flagged:
                child = frame.loc[index, "CHILD"] if "CHILD" in frame.columns else ""
                errors[code].append(f"{names.get(table, table)}:{int(index) + 2} CHILD {child}")
    return {"errors": errors, "ran": sorted(validator.dones), "skipped": sorted(validator.skips),
            "failed": sorted(validator.fails), "unknown": unknown}


def run_cin(files, year, rules, ruleset):
    import xml.etree.ElementTree as ET

    from cin_validator import cin_validator

    registry = importlib.import_module(f"cin_validator.rules.{ruleset}").registry
    unknown = [r for r in rules if r not in registry]
    (path,) = files
    data = cin_validator.process_data(cin_validator.convert_data(ET.parse(path).getroot()))
    validator = cin_validator.CinValidator(data, registry, selected_rules=rules)
    errors = {code: [] for code in rules}
    for row in validator.full_issue_df.to_dict("records"):
        errors.setdefault(str(row["rule_code"]), []).append(
            f"{row['tables_affected']}[{row['row_id']}] {row['columns_affected']} "
            f"child {row.get('child_id')}")
    for issue in validator.la_rules_broken:
        for row in issue.to_dict("records"):
            errors.setdefault(str(row.get("rule_code")), []).append(
                f"la-level: {row.get('rule_description')}")
    ran = [str(c) for c in validator.rules_passed + validator.rules_broken]
    return {"errors": errors, "ran": sorted(set(ran) | {c for c, e in errors.items() if e}),
            "skipped": [], "failed": [], "unknown": unknown}


def main():
    args = json.loads(sys.argv[1])
    logging.disable(logging.CRITICAL)
    run = run_903 if args["kind"] == "903" else run_cin
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):  # the validators print as they go
        result = run(args["files"], args["year"], args["rules"], args["ruleset"])
    # cin_validator prints "Error with rule X: ..." for a rule that raised, then counts it as
    # passed: a rule that could not run must not read as a pass.
    for line in printed.getvalue().splitlines():
        if line.startswith("Error with rule "):
            result["failed"].append(line.removeprefix("Error with rule "))
    print(json.dumps(result))


if __name__ == "__main__":
    main()

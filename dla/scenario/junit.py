"""JUnit XML: one ``<testcase>`` per check result, so CI servers show scenarios as test suites.

The layout is the common Jenkins/Ant dialect (``testsuites > testsuite > testcase`` with
``failure`` or ``error`` children) that GitLab, Jenkins and GitHub reporters all read.  A failed
threshold is a ``<failure>`` whose message holds the numbers; a scenario that could not run at
all is one ``<error>`` case carrying its message.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

# characters XML 1.0 cannot hold at all, even escaped (control characters such as ANSI colour codes)
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _x(text: Any) -> str:
    return _NOT_XML.sub("\ufffd", str(text))


def _suite(name: str, seconds: float, cases: list[dict[str, Any]]) -> ET.Element:
    failures = sum(1 for c in cases if not c.get("passed") and not c.get("error"))
    errors = sum(1 for c in cases if c.get("error"))
    suite = ET.Element("testsuite", name=_x(name), tests=str(len(cases)), failures=str(failures), errors=str(errors),
                       skipped="0", time=f"{seconds:.3f}")
    for c in cases:
        case = ET.SubElement(suite, "testcase", classname=_x(f"dla.scenario.{name}"), name=_x(c["name"]), time="0")
        if c.get("error"):
            ET.SubElement(case, "error", message=_x(c["message"]), type="ScenarioError").text = _x(c["message"])
        elif not c["passed"]:
            text = f"value {c['value']}, threshold {c['threshold']}: {c['message']}"
            ET.SubElement(case, "failure", message=_x(c["message"]), type="ThresholdFailure").text = _x(text)
        else:
            ET.SubElement(case, "system-out").text = _x(c["message"])
    return suite


def scenario_suite(summary: dict[str, Any], seconds: float = 0.0) -> ET.Element:
    return _suite(summary["scenario"], seconds, summary["checks"])


def error_suite(name: str, message: str, seconds: float = 0.0) -> ET.Element:
    """A scenario that raised or whose worker died: one error case."""
    return _suite(name, seconds, [{"name": "run", "passed": False, "error": True, "message": message}])


def junit_xml(suites: list[ET.Element]) -> bytes:
    root = ET.Element("testsuites", tests=str(sum(int(s.get("tests", 0)) for s in suites)),
                      failures=str(sum(int(s.get("failures", 0)) for s in suites)),
                      errors=str(sum(int(s.get("errors", 0)) for s in suites)))
    root.extend(suites)
    ET.indent(root)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8") + b"\n"

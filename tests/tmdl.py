"""A reader of TMDL as Microsoft documents it (learn.microsoft.com/analysis-services/tmdl/tmdl-overview), strict
enough to refuse what Power BI Desktop would: written for the tests, independently of the code that writes it.

The rules checked:
- indentation is tabs only; an object's properties and children sit one level below it;
- an object is declared as `<type> <name>` (`ref table <name>` in the model), optionally `= <expression>`;
  a name holding a space or one of `. = : '` is in single quotes, a quote doubled inside;
- a property is `<name>: <value>`, a flag is `<name>` alone, an expression property is `<name> =` (or
  `= <value>`); a multi-line expression continues on the lines indented deeper than the property that opened
  it, or than the properties of the object whose declaration opened it;
- descriptions are `///` lines right above an object;
- each object type has its own properties and children, and enumerated properties take known values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

NAME = r"(?:'(?:[^']|'')+'|[^\s.=:']+)"
_DECLARATION = re.compile(rf"^(?P<type>ref table|[a-zA-Z]+) (?P<name>{NAME})(?: = ?(?P<expression>.*))?$")
_PROPERTY = re.compile(r"^(?P<name>[a-zA-Z]+)(?:(?P<colon>: )(?P<value>.+)| =(?P<expression> .*)?)?$")

# Per object type: its properties (None: any value; a set: one of these; "flag": no value), its children.
PROPERTIES: dict[str, dict[str, object]] = {
    "database": {"compatibilityLevel": None},
    "model": {"culture": None, "defaultPowerBIDataSourceVersion": {"powerBI_V3"}, "discourageImplicitMeasures": "flag",
              "sourceQueryCulture": None},
    "table": {"lineageTag": None, "dataCategory": {"Time"}, "isHidden": "flag"},
    "column": {"dataType": {"string", "int64", "double", "decimal", "dateTime", "boolean"}, "formatString": None,
               "isHidden": "flag", "isKey": "flag", "lineageTag": None, "summarizeBy": {"none", "sum", "count",
                                                                                          "min", "max", "average"},
               "sourceColumn": None, "dataCategory": None},
    "measure": {"formatString": None, "lineageTag": None, "displayFolder": None, "isHidden": "flag"},
    "partition": {"mode": {"import", "directQuery", "dual"}, "source": "expression"},
    "relationship": {"fromColumn": None, "toColumn": None, "isActive": {"true", "false"},
                     "crossFilteringBehavior": {"oneDirection", "bothDirections", "automatic"},
                     "fromCardinality": {"one", "many"}, "toCardinality": {"one", "many"}},
    "expression": {"lineageTag": None, "queryGroup": None},
    "annotation": {},
}
CHILDREN: dict[str | None, set[str]] = {
    None: {"database", "model", "table", "relationship", "expression", "annotation", "ref table"},
    "table": {"column", "measure", "partition", "annotation"},
    "column": {"annotation"}, "measure": {"annotation"}, "expression": {"annotation"}, "model": {"annotation"},
}


class TmdlError(ValueError):
    pass


@dataclass
class Node:
    type: str
    name: str
    expression: str | None = None
    properties: dict[str, str] = field(default_factory=dict)
    children: list[Node] = field(default_factory=list)
    description: str = ""


def unquote(name: str) -> str:
    return name[1:-1].replace("''", "'") if name.startswith("'") else name


def parse(text: str, where: str = "") -> list[Node]:
    """The top-level objects of one TMDL file, or TmdlError naming the line that breaks a rule."""
    roots: list[Node] = []
    stack: list[tuple[int, Node]] = []          # (depth, object)
    expression_depth: int | None = None         # lines deeper than this continue an expression
    expression_lines: list[str] = []            # ... of the expression being read, and whose it is:
    expression_owner: tuple[Node, str | None] | None = None   # an object's own (None) or its property's
    description: list[str] = []

    def close_expression() -> None:
        if expression_owner is not None:
            node, prop = expression_owner
            text = "\n".join(expression_lines).strip("\n")
            if prop is None:
                node.expression = text
            else:
                node.properties[prop] = text

    for number, line in enumerate(text.splitlines(), 1):
        def fail(why: str, number: int = number, line: str = line) -> TmdlError:
            return TmdlError(f"{where} line {number}: {why}: {line!r}")

        body = line.lstrip("\t")
        depth = len(line) - len(body)
        if expression_depth is not None and (not line.strip() or depth > expression_depth):
            expression_lines.append(line[expression_depth + 1:])
            continue
        close_expression()
        expression_depth, expression_owner, expression_lines = None, None, []
        if not line.strip():
            continue
        if body[0].isspace():
            raise fail("indentation must be tabs")
        if body.startswith("///"):
            description.append(body[3:].strip())
            continue
        while stack and stack[-1][0] >= depth:
            stack.pop()
        parent = stack[-1][1] if stack else None
        if parent is not None and depth != stack[-1][0] + 1:
            raise fail("a line must sit one tab below its object")
        if parent is None and depth != 0:
            raise fail("a top-level object starts at the margin")
        declaration = _DECLARATION.match(body)
        kind = declaration["type"] if declaration else None
        if declaration and kind in CHILDREN.get(parent.type if parent else None, set()):
            node = Node(kind, unquote(declaration["name"]), declaration["expression"],
                        description="\n".join(description))
            description = []
            (parent.children if parent else roots).append(node)
            stack.append((depth, node))
            if declaration["expression"] == "":
                expression_depth = depth + 1  # `=`, then the expression a level below the object's properties
                expression_owner = (node, None)
            continue
        if description:
            raise fail("a description must stand right above an object")
        if parent is None:
            raise fail("not an object this file may declare")
        prop = _PROPERTY.match(body)
        allowed = PROPERTIES.get(parent.type, {})
        if not prop or prop["name"] not in allowed:
            raise fail(f"not a property or child of a {parent.type}")
        rule = allowed[prop["name"]]
        if rule == "flag":
            if prop["colon"] or prop["expression"] is not None:
                raise fail("a flag takes no value")
            parent.properties[prop["name"]] = "true"
        elif rule == "expression":
            if prop["colon"]:
                raise fail("an expression property takes `=`")
            parent.properties[prop["name"]] = (prop["expression"] or "").strip()
            if not (prop["expression"] or "").strip():
                expression_depth, expression_owner = depth, (parent, prop["name"])
        else:
            if not prop["colon"]:
                raise fail("a property takes `: value`")
            if isinstance(rule, set) and prop["value"] not in rule:
                raise fail(f"{prop['name']} must be one of {sorted(rule)}")
            parent.properties[prop["name"]] = prop["value"]
    close_expression()
    if description:
        raise TmdlError(f"{where}: a description at the end of the file describes nothing")
    return roots

"""The data dictionary as FHIR Questionnaires, and the server's CapabilityStatement.

Two Questionnaires come from the loaded dictionary: ``registry3d-case`` (its
case sections, what the 3D printing lab records) and ``registry3d-physician``
(its questionnaire sections, what the treating physician answers). Sections
are group items, elements are question items whose linkId is the element's
path (``age_years``, ``prints.material``), repeating groups are group items
that repeat. Nothing here holds a list of elements of its own.
"""

import ast

from django.conf import settings

from registry3d import __version__
from registry3d.dictionary.spec import Dictionary, Element, Section
from registry3d.dictionary.validation import YEAR_MONTH_PATTERN
from registry3d.dictionary.versions import read_published
from registry3d.fhir.common import (
    CANONICAL,
    CASE_QUESTIONNAIRE,
    ELEMENT_SYSTEM,
    EXTENSION,
    FHIR_VERSION,
    PHYSICIAN_QUESTIONNAIRE,
    UCUM,
    questionnaire_url,
    validated,
    value_set_system,
)

HL7 = "http://hl7.org/fhir/StructureDefinition/"
ITEM_CONTROL = HL7 + "questionnaire-itemControl"
ITEM_CONTROL_SYSTEM = "http://hl7.org/fhir/questionnaire-item-control"
MIN_OCCURS = HL7 + "questionnaire-minOccurs"
MAX_OCCURS = HL7 + "questionnaire-maxOccurs"
MIN_VALUE = HL7 + "minValue"
MAX_VALUE = HL7 + "maxValue"
UNIT = HL7 + "questionnaire-unit"
REGEX = HL7 + "regex"
ENTRY_FORMAT = HL7 + "entryFormat"
REQUIRED_WHEN = EXTENSION + "required-when"
UNKNOWN_ANSWER = EXTENSION + "unknown-answer"

# Dictionary type -> Questionnaire item type.
ITEM_TYPES = {
    "text": "string",
    "code": "string",
    "integer": "integer",
    "decimal": "decimal",
    "boolean": "boolean",
    "choice": "choice",
    "multi_choice": "choice",
    "year_month": "string",
    "duration": "integer",
    "integer_list": "integer",
    "group": "group",
}
REPEATING = {"multi_choice", "integer_list", "group"}

QUESTIONNAIRES = {
    CASE_QUESTIONNAIRE: {
        "name": "Registry3dCase",
        "title": "the case",
        "sections": Dictionary.case_sections,
        "description": "What the 3D printing lab records about one case",
    },
    PHYSICIAN_QUESTIONNAIRE: {
        "name": "Registry3dPhysician",
        "title": "the physician's assessment",
        "sections": Dictionary.questionnaire_sections,
        "description": "What the treating or referring physician says the object was worth",
    },
}


def sections_of(dictionary: Dictionary, name: str) -> list[Section]:
    return QUESTIONNAIRES[name]["sections"](dictionary)


def build(dictionary: Dictionary, name: str) -> dict:
    """Return the Questionnaire ``name`` (registry3d-case or registry3d-physician)."""
    spec = QUESTIONNAIRES[name]
    published = dictionary.version in read_published()
    questionnaire = {
        "resourceType": "Questionnaire",
        "id": name,
        "url": questionnaire_url(name),
        "version": dictionary.version,
        "name": spec["name"],
        "title": f"{dictionary.title}: {spec['title']} (dictionary {dictionary.version})",
        # A version not yet published may still change under the same number.
        "status": "active" if published else "draft",
        "date": str(dictionary.released),
        "publisher": settings.REGISTRY3D_NAME,
        "description": f"{spec['description']}. {dictionary.description}",
        "subjectType": ["Patient"],
        "item": [_section(s, dictionary) for s in spec["sections"](dictionary)],
    }
    return validated(questionnaire)


def _help(link_id: str, text: str) -> dict:
    """Help text as a display item shown behind a help button (FHIR SDC)."""
    return {
        "linkId": f"{link_id}.help",
        "type": "display",
        "text": text,
        "extension": [
            {
                "url": ITEM_CONTROL,
                "valueCodeableConcept": {
                    "coding": [{"system": ITEM_CONTROL_SYSTEM, "code": "help"}]
                },
            }
        ],
    }


def _section(section: Section, dictionary: Dictionary) -> dict:
    return {
        "linkId": section.id,
        "type": "group",
        "text": section.label,
        "item": [_help(section.id, section.help)]
        + [_item(e, dictionary, None) for e in section.elements],
    }


def _number(kind: str, value) -> dict:
    return {"valueInteger": int(value)} if kind == "integer" else {"valueDecimal": value}


def _item(element: Element, dictionary: Dictionary, group: Element | None) -> dict:
    kind = element.type
    link_id = element.path_name
    item: dict = {
        "linkId": link_id,
        "code": [{"system": ELEMENT_SYSTEM, "code": link_id, "display": element.label}],
        "text": element.label,
        "type": ITEM_TYPES[kind],
    }
    extensions: list[dict] = []
    if kind in REPEATING:
        item["repeats"] = True
        if element.min_items:
            extensions.append({"url": MIN_OCCURS, "valueInteger": element.min_items})
        if element.max_items is not None:
            extensions.append({"url": MAX_OCCURS, "valueInteger": element.max_items})
    if kind in ("integer", "decimal", "duration", "integer_list"):
        number = "decimal" if kind == "decimal" else "integer"
        low = 0 if kind == "duration" else element.min
        if low is not None:
            extensions.append({"url": MIN_VALUE, **_number(number, low)})
        if element.max is not None:
            extensions.append({"url": MAX_VALUE, **_number(number, element.max)})
    if element.unit:
        extensions.append(
            {"url": UNIT, "valueCoding": {"system": UCUM, "code": element.unit}},
        )
    if kind == "duration":
        # Whole minutes, or an answer with no value that says "unknown".
        extensions.append({"url": UNKNOWN_ANSWER, "valueCode": "unknown"})
    if kind in ("text", "code") and element.pattern:
        extensions.append({"url": REGEX, "valueString": element.pattern})
    if kind == "year_month":
        extensions.append({"url": REGEX, "valueString": YEAR_MONTH_PATTERN})
        extensions.append({"url": ENTRY_FORMAT, "valueString": "YYYY-MM"})
    if kind == "text":
        item["maxLength"] = element.max_length
        if element.free_text and element.max_length > 255:
            item["type"] = "text"
    if element.value_set is not None:
        system = value_set_system(element.value_set.name)
        item["answerOption"] = [
            {"valueCoding": {"system": system, "code": c.code, "display": c.label}}
            for c in element.value_set.codes
            if c.active
        ]
    if element.required:
        item["required"] = True
    elif element.required_text:
        extensions.append({"url": REQUIRED_WHEN, "valueString": element.required_text})
        condition = enable_when(element.required_text, dictionary, group)
        if condition is not None:
            # Shown only when the condition holds, and then required (as the
            # REDCap dictionary's branching logic does).
            item["required"] = True
            item.update(condition)
    if extensions:
        item["extension"] = extensions
    children = [_help(link_id, element.help)]
    if kind == "group":
        children += [_item(i, dictionary, element) for i in element.elements]
    item["item"] = children
    return item


# --- required-when -> enableWhen ---------------------------------------------------------------


class Untranslatable(ValueError):
    """The expression has no enableWhen equivalent."""


def enable_when(expression: str, dictionary: Dictionary, group: Element | None) -> dict | None:
    """Translate a simple required-when expression into enableWhen and enableBehavior.

    Comparisons of an element with a literal, ``in`` lists, ``filled(x)``
    and one kind of and/or are translated (as the REDCap branching of
    ``generators.redcap_branching``); anything else gives None.
    """
    try:
        node = ast.parse(expression, mode="eval").body
        behavior = "all"
        if isinstance(node, ast.BoolOp):
            behavior = "all" if isinstance(node.op, ast.And) else "any"
            parts = node.values
        else:
            parts = [node]
        conditions = []
        for part in parts:
            found, in_list = _conditions(part, dictionary, group)
            if in_list and len(parts) > 1 and behavior == "all":
                raise Untranslatable(expression)  # (a or b) and c: no single behaviour
            if in_list:
                behavior = "any"
            conditions += found
    except (SyntaxError, Untranslatable, KeyError):
        return None
    out = {"enableWhen": conditions}
    if len(conditions) > 1:
        out["enableBehavior"] = behavior
    return out


def _question(name: str, dictionary: Dictionary, group: Element | None) -> Element:
    if group is not None:
        for item in group.elements:
            if item.name == name:
                return item
    return dictionary.elements[name]


def _answer(element: Element, value) -> dict:
    if isinstance(value, bool):
        if element.type != "boolean":
            raise Untranslatable(element.name)
        return {"answerBoolean": value}
    if element.type == "choice" and isinstance(value, str):
        system = value_set_system(element.value_set.name)
        return {"answerCoding": {"system": system, "code": value}}
    if element.type == "integer" and isinstance(value, int):
        return {"answerInteger": value}
    if element.type == "decimal" and isinstance(value, int | float):
        return {"answerDecimal": value}
    if element.type in ("text", "code", "year_month") and isinstance(value, str):
        return {"answerString": value}
    raise Untranslatable(element.name)


OPERATORS = {ast.Eq: "=", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}


def _conditions(node, dictionary, group) -> tuple[list[dict], bool]:
    """Return (enableWhen conditions, whether they came from an ``in`` list)."""
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "filled"
        and len(node.args) == 1
        and isinstance(node.args[0], ast.Name)
    ):
        element = _question(node.args[0].id, dictionary, group)
        return [{"question": element.path_name, "operator": "exists", "answerBoolean": True}], False
    if not (
        isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.left, ast.Name)
    ):
        raise Untranslatable(ast.dump(node))
    element = _question(node.left.id, dictionary, group)
    op, right = node.ops[0], node.comparators[0]
    if isinstance(op, ast.In) and isinstance(right, ast.List | ast.Tuple):
        values = [c.value for c in right.elts if isinstance(c, ast.Constant)]
        if len(values) != len(right.elts):
            raise Untranslatable(ast.dump(node))
        return [
            {"question": element.path_name, "operator": "=", **_answer(element, v)} for v in values
        ], True
    if type(op) in OPERATORS and isinstance(right, ast.Constant):
        if right.value is None and isinstance(op, ast.Eq | ast.NotEq):
            exists = isinstance(op, ast.NotEq)
            return [
                {"question": element.path_name, "operator": "exists", "answerBoolean": exists}
            ], False
        return [
            {
                "question": element.path_name,
                "operator": OPERATORS[type(op)],
                **_answer(element, right.value),
            }
        ], False
    raise Untranslatable(ast.dump(node))


# --- CapabilityStatement ---------------------------------------------------------------------


def capability_statement(dictionary: Dictionary) -> dict:
    """What this server does in FHIR, for clients that ask ``GET /fhir/metadata``."""
    statement = {
        "resourceType": "CapabilityStatement",
        "id": "registry3d",
        "url": f"{CANONICAL}/CapabilityStatement/registry3d",
        "version": __version__,
        "name": "Registry3dServer",
        "title": f"{settings.REGISTRY3D_NAME} FHIR interface",
        "status": "active",
        "date": str(dictionary.released),
        "publisher": settings.REGISTRY3D_NAME,
        "description": (
            "The data dictionary as Questionnaires; case and physician QuestionnaireResponses "
            "from site software (bearer token with write scope). Cases are exported as "
            "Bundles at /api/v1/cases/{case_uid}/fhir (read token) and in bulk as NDJSON."
        ),
        "kind": "instance",
        "software": {"name": "registry3d", "version": __version__},
        "implementation": {"description": "registry3d clinical data registry for 3D printing"},
        "fhirVersion": FHIR_VERSION,
        "format": ["application/fhir+json", "json"],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "description": (
                        "Reads of Questionnaires and metadata are public. Writes need "
                        "'Authorization: Bearer <token>' with an API token of write scope."
                    )
                },
                "resource": [
                    {
                        "type": "Questionnaire",
                        "interaction": [{"code": "read"}],
                        "versioning": "no-version",
                    },
                    {
                        "type": "QuestionnaireResponse",
                        "interaction": [{"code": "create"}],
                        "versioning": "no-version",
                    },
                ],
            }
        ],
    }
    return validated(statement)

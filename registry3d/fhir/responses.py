"""Read a QuestionnaireResponse from site software into case data, or say what is wrong.

The response is checked in three passes, and nothing is written unless all
pass: it must be JSON of the right resourceType; ``fhir.resources`` must
read it as FHIR R4B; and every item must be one of the Questionnaire's, in
its place, with answers of its type. Each problem becomes one
OperationOutcome issue whose expression is the item's FHIRPath by linkId,
e.g. ``QuestionnaireResponse.item.where(linkId='printed_model')
.item.where(linkId='prints')[1].item.where(linkId='prints.material')``.
"""

import json
import re
from dataclasses import dataclass, field

from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from pydantic import ValidationError

from registry3d.dictionary.spec import Dictionary, Element, Section
from registry3d.dictionary.validation import Problem, is_safe_name, shown_name
from registry3d.fhir.common import (
    CASE_QUESTIONNAIRE,
    CASE_UID_SYSTEM,
    DATA_ABSENT,
    PHYSICIAN_QUESTIONNAIRE,
    issue,
    patient_key_system,
    questionnaire_url,
    validation_issues,
    value_set_system,
)
from registry3d.fhir.errors import CaseNotFound, InvalidResource
from registry3d.fhir.questionnaire import sections_of

ROOT = "QuestionnaireResponse"
# Response status -> case status; other statuses are refused.
CASE_STATUS = {"in-progress": "draft", "completed": "submitted", "amended": "submitted"}
SITE_CASE_UID = re.compile(r"^urn:registry3d:site:([^:]+):case-uid$")
# The answer each element type takes.
VALUE_KEYS = {
    "choice": "valueCoding",
    "multi_choice": "valueCoding",
    "integer": "valueInteger",
    "duration": "valueInteger",
    "integer_list": "valueInteger",
    "decimal": "valueDecimal",
    "boolean": "valueBoolean",
    "text": "valueString",
    "code": "valueString",
    "year_month": "valueString",
}

WHAT = {
    "valueCoding": "a Coding",
    "valueInteger": "a whole number",
    "valueDecimal": "a number",
    "valueBoolean": "true or false",
    "valueString": "text",
}


@dataclass
class Parsed:
    questionnaire: str  # registry3d-case or registry3d-physician
    case_uid: str
    status: str  # the case status: draft or submitted
    data: dict
    patient_key: str | None = None
    issues: list[dict] = field(default_factory=list)


def _where(path: str, link_id: str) -> str:
    return f"{path}.item.where(linkId='{link_id}')"


def parse(body: bytes, site_code: str, dictionary: Dictionary) -> Parsed:
    """Return what the response says; raise InvalidResource listing every problem."""
    try:
        resource = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidResource(
            400, [issue(f"The body is not JSON: {exc}", code="structure")]
        ) from None
    if not isinstance(resource, dict):
        raise InvalidResource(
            400, [issue("The body must be a JSON object, a FHIR resource", code="structure")]
        )
    if resource.get("resourceType") != ROOT:
        got = resource.get("resourceType")
        got = shown_name(got) if isinstance(got, str) and got else "none"
        raise InvalidResource(
            400,
            [
                issue(
                    f"Expected a QuestionnaireResponse, got resourceType {got}",
                    "resourceType",
                    code="structure",
                )
            ],
        )
    try:
        QuestionnaireResponse.model_validate(resource)
    except ValidationError as exc:
        raise InvalidResource(422, _fhir_issues(resource, exc, dictionary)) from None
    issues: list[dict] = []
    name = _questionnaire(resource, dictionary, issues)
    status = resource.get("status")
    if status not in CASE_STATUS:
        issues.append(
            issue(
                "status is not accepted: send in-progress (a draft), completed or amended",
                f"{ROOT}.status",
                code="value",
            )
        )
    case_uid = _case_uid(resource, site_code, issues)
    patient_key = _patient_key(resource, site_code, issues)
    data: dict = {}
    if name is not None:
        sections = sections_of(dictionary, name)
        data = _read_sections(resource.get("item") or [], sections, name, dictionary, issues)
    if issues:
        raise InvalidResource(422, issues)
    return Parsed(name, case_uid, CASE_STATUS[status], data, patient_key)


def _fhir_issues(resource: dict, exc: ValidationError, dictionary: Dictionary) -> list[dict]:
    """fhir.resources' complaints, located by linkId where they fall inside an item."""
    issues = validation_issues(ROOT, exc)
    for found, error in zip(issues, exc.errors(include_url=False), strict=True):
        found["expression"] = [_linked(resource, tuple(error["loc"]), dictionary)]
    return issues


def _linked(resource: dict, loc: tuple, dictionary: Dictionary) -> str:
    """``('item', 0, 'item', 2, 'answer', 0)`` -> the path by linkId, where it has them."""
    path, node, rest = ROOT, resource, list(loc)
    while len(rest) >= 2 and rest[0] == "item" and isinstance(rest[1], int):
        siblings = node.get("item") if isinstance(node, dict) else None
        if not isinstance(siblings, list) or rest[1] >= len(siblings):
            break
        item = siblings[rest[1]]
        link_id = item.get("linkId") if isinstance(item, dict) else None
        if not isinstance(link_id, str):
            break
        path = _where(path, link_id)
        element = dictionary.all_elements.get(link_id)
        if element is not None and element.is_group:
            before = [s for s in siblings[: rest[1]] if isinstance(s, dict)]
            path += f"[{sum(1 for s in before if s.get('linkId') == link_id)}]"
        node, rest = item, rest[2:]
    for part in rest:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _questionnaire(resource: dict, dictionary: Dictionary, issues: list) -> str | None:
    canonical = resource.get("questionnaire")
    expected = " or ".join(
        questionnaire_url(n) for n in (CASE_QUESTIONNAIRE, PHYSICIAN_QUESTIONNAIRE)
    )
    if not canonical:
        issues.append(
            issue(f"questionnaire is required: {expected}", f"{ROOT}.questionnaire", "required")
        )
        return None
    url, _, version = canonical.partition("|")
    for name in (CASE_QUESTIONNAIRE, PHYSICIAN_QUESTIONNAIRE):
        if url == questionnaire_url(name):
            if version and version != dictionary.version:
                issues.append(
                    issue(
                        f"These are answers to version {version} of {name}; this registry "
                        f"reads version {dictionary.version} (GET /fhir/Questionnaire/{name})",
                        f"{ROOT}.questionnaire",
                        code="not-supported",
                    )
                )
                return None
            return name
    issues.append(
        issue(
            f"Unknown questionnaire: expected {expected}",
            f"{ROOT}.questionnaire",
            code="not-supported",
        )
    )
    return None


def _case_uid(resource: dict, site_code: str, issues: list) -> str:
    ident = resource.get("identifier") or {}
    system, value = ident.get("system"), ident.get("value")
    own = f"urn:registry3d:site:{site_code}:case-uid"
    match = SITE_CASE_UID.match(system or "")
    if match and match.group(1) != site_code:
        raise CaseNotFound("No case with this ID at the token's site")
    if system not in (CASE_UID_SYSTEM, own) or not isinstance(value, str) or not value:
        issues.append(
            issue(
                f"identifier must carry the site's case ID: system {CASE_UID_SYSTEM} (or {own}) "
                "and value the case ID",
                f"{ROOT}.identifier",
                code="required",
            )
        )
        return ""
    return value


def _patient_key(resource: dict, site_code: str, issues: list) -> str | None:
    subject = resource.get("subject")
    if subject is None:
        return None
    ident = subject.get("identifier") or {}
    expected = patient_key_system(site_code)
    unexpected = set(subject) - {"identifier", "display", "type"}
    if ident.get("system") != expected or not ident.get("value") or unexpected:
        issues.append(
            issue(
                f"subject must be the patient key as an identifier with system {expected}, "
                "and nothing else (no reference, no name)",
                f"{ROOT}.subject",
                code="value",
            )
        )
        return None
    if "display" in subject:
        issues.append(
            issue(
                "subject.display is not accepted: the registry never takes patient names",
                f"{ROOT}.subject.display",
                code="security",
            )
        )
    return ident["value"]


def _read_sections(
    items: list, sections: list[Section], name: str, dictionary: Dictionary, issues: list
) -> dict:
    by_id = {s.id: s for s in sections}
    data: dict = {}
    seen: set[str] = set()
    for index, item in enumerate(items):
        link_id = item.get("linkId")
        path = _where(ROOT, link_id)
        section = by_id.get(link_id)
        if section is None:
            issues.append(_misplaced(link_id, f"{ROOT}.item[{index}]", "", name, dictionary))
            continue
        if link_id in seen:
            issues.append(issue(f"Group '{link_id}' appears twice; send it once", path))
            continue
        seen.add(link_id)
        if item.get("answer"):
            issues.append(issue(f"Group '{link_id}' takes items, not answers", path))
            continue
        data.update(
            _read_elements(item.get("item") or [], section.elements, path, name, dictionary, issues)
        )
    return data


def _misplaced(link_id, path: str, parent: str, name: str, dictionary: Dictionary) -> dict:
    here = f"in group {parent!r}" if parent else "at the top level"
    known = _parent_of(link_id, name, dictionary)
    if known is not None:
        where = f"in group {known!r}" if known else "at the top level"
        return issue(f"Item '{link_id}' belongs {where}, not {here}", path, code="structure")
    # An unknown linkId is quoted only when shaped like one: it is the
    # sender's text and may hold anything (#15).
    return issue(
        f"Unknown item {shown_name(link_id)} {here}: the {name} Questionnaire has no such item",
        path,
        code="not-found",
    )


def _parent_of(link_id, name: str, dictionary: Dictionary) -> str | None:
    for section in sections_of(dictionary, name):
        if link_id == section.id:
            return ""
        for element in section.elements:
            if link_id == element.path_name:
                return section.id
            for child in element.elements:
                if link_id == child.path_name:
                    return element.path_name
    return None


def _read_elements(
    items: list,
    elements: list[Element],
    parent_path: str,
    name: str,
    dictionary: Dictionary,
    issues: list,
) -> dict:
    by_link = {e.path_name: e for e in elements}
    parent = parent_path.rsplit("linkId='", 1)[-1].split("'")[0]
    data: dict = {}
    counts: dict[str, int] = {}
    for index, item in enumerate(items):
        link_id = item.get("linkId")
        element = by_link.get(link_id)
        if element is None:
            # An unknown linkId is the sender's text: the path names it only
            # when it may be quoted, else the item's place (#15).
            where = (
                _where(parent_path, link_id)
                if is_safe_name(link_id)
                else f"{parent_path}.item[{index}]"
            )
            issues.append(_misplaced(link_id, where, parent, name, dictionary))
            continue
        number = counts.get(link_id, 0)
        counts[link_id] = number + 1
        path = _where(parent_path, link_id)
        if element.is_group:
            instance = f"{path}[{number}]"
            if item.get("answer"):
                issues.append(issue(f"{element.label} ({link_id}) takes items, not answers", path))
                continue
            values = _read_elements(
                item.get("item") or [], element.elements, instance, name, dictionary, issues
            )
            data.setdefault(element.name, []).append(values)
            continue
        if number:
            issues.append(
                issue(f"{element.label} ({link_id}) appears twice; send it once", f"{path}[1]")
            )
            continue
        if item.get("item"):
            issues.append(
                issue(f"{element.label} ({link_id}) takes answers, not items", f"{path}.item")
            )
            continue
        value = _value(element, item.get("answer") or [], path, issues)
        if value is not None:
            data[element.name] = value
    return data


def _value(element: Element, given: list, path: str, issues: list):
    kind = element.type
    if not given:
        return None
    repeats = kind in ("multi_choice", "integer_list")
    if len(given) > 1 and not repeats:
        issues.append(
            issue(
                f"{element.label} ({element.path_name}) takes one answer; {len(given)} were sent",
                f"{path}.answer",
            )
        )
        return None
    key = VALUE_KEYS[kind]
    values, bad = [], False
    for number, answer in enumerate(given):
        at = f"{path}.answer[{number}]"
        if answer.get("item"):
            issues.append(issue(f"{element.label} ({element.path_name}) takes no nested items", at))
            bad = True
            continue
        sent = [k for k in answer if k.startswith("value")]
        if kind == "duration" and not sent and _unknown(answer):
            values.append("unknown")
            continue
        raw = answer.get(key)
        if sent != [key] or not _fits(kind, raw):
            # Name the kind of value sent, never the value itself (#15).
            got = ", ".join(sent) if sent else "no value"
            expected = f"{key} ({WHAT[key]})" + (
                ", or no value with the data-absent-reason extension 'unknown'"
                if kind == "duration"
                else ""
            )
            issues.append(
                issue(
                    f"{element.label} ({element.path_name}) expects {expected}; got {got}",
                    at,
                    code="value",
                )
            )
            bad = True
            continue
        if kind in ("choice", "multi_choice"):
            system = value_set_system(element.value_set.name)
            if raw.get("system") not in (None, system) or not raw.get("code"):
                issues.append(
                    issue(
                        f"{element.label} ({element.path_name}) expects a code of {system}",
                        f"{at}.valueCoding",
                        code="code-invalid",
                    )
                )
                bad = True
                continue
            values.append(raw["code"])
        else:
            values.append(raw)
    if bad:
        return None
    return values if repeats else values[0]


def _unknown(answer: dict) -> bool:
    return any(
        e.get("url") == DATA_ABSENT and e.get("valueCode") == "unknown"
        for e in answer.get("extension") or []
    )


def _fits(kind: str, raw) -> bool:
    """Whether the JSON value is of the FHIR type (pydantic alone would take "5" or true)."""
    if kind in ("choice", "multi_choice"):
        return isinstance(raw, dict)
    if kind in ("integer", "duration", "integer_list"):
        return isinstance(raw, int) and not isinstance(raw, bool)
    if kind == "decimal":
        return isinstance(raw, int | float) and not isinstance(raw, bool)
    if kind == "boolean":
        return isinstance(raw, bool)
    return isinstance(raw, str)


# --- Problems of the write path as issues --------------------------------------------------------

PATH = re.compile(r"^(?P<name>\w+)(?:\[(?P<n>\d+)\])?(?:\.(?P<child>\w+)(?:\[(?P<m>\d+)\])?)?$")


def expression_of(path: str, name: str, dictionary: Dictionary) -> str:
    """The FHIRPath of a problem's path (``prints[2].material``, ``case_uid``...)."""
    if path == "case_uid":
        return f"{ROOT}.identifier"
    if path == "patient_key":
        return f"{ROOT}.subject.identifier"
    if path == "status":
        return f"{ROOT}.status"
    match = PATH.match(path or "")
    element = dictionary.elements.get(match.group("name")) if match else None
    section = next(
        (s for s in sections_of(dictionary, name) if element in s.elements),
        None,
    )
    if element is None or section is None:
        return ROOT
    out = _where(_where(ROOT, section.id), element.path_name)
    if match.group("n"):
        index = int(match.group("n")) - 1
        out += f"[{index}]" if element.is_group else f".answer[{index}]"
    child = match.group("child")
    if child and element.is_group:
        out = _where(out, f"{element.name}.{child}")
        if match.group("m"):
            out += f".answer[{int(match.group('m')) - 1}]"
    return out


def problem_issues(problems: list[Problem], name: str, dictionary: Dictionary) -> list[dict]:
    return [
        issue(
            p.message,
            expression_of(p.path, name, dictionary),
            code="required" if p.code == "required" else "value",
            severity="warning" if p.severity == "warning" else "error",
        )
        for p in problems
    ]

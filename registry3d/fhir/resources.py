"""One case as FHIR resources: Patient, Procedures, Devices, Observations, responses.

1. A pseudonymous **Patient**: the site's patient key as its identifier, the
   sex as gender, and nothing else (no name, no birth date); the age is an
   Observation, since it belongs to the case's time.
2. A **Procedure** for the 3D printing service: the CPT lines (0559T-0562T,
   each with its units), the indication, the anatomic parts as body sites,
   the prints as focal devices. A second **Procedure** for the clinical
   procedure the object was made for, when the case says whether it took
   place: its type and CPT code, the devices used, the complication.
3. A **Device** for each print, with its properties (technology, material,
   printer, scale, ...).
4. An **Observation** for each time and cost: staff effort (minutes, or
   "unknown"), machine times, turnaround and intervals (days), costs
   (``[USD]``), procedure figures, and the patient's age.
5. The case as a **QuestionnaireResponse** of the ``registry3d-case``
   Questionnaire (everything the case holds) and, when the
   physician answered, one of ``registry3d-physician``.

Text that looks like a patient identifier (stored past the entry screen) is
replaced by a marker in every resource (:mod:`registry3d.lib.withhold`).

No resource carries a date: the registry keeps none (only the month of the
request, inside the case's response) and a date of export or change would
tell when the patient was treated. Ids are name-based UUIDs of the case's
random ``code``, so they are the same at every export and reveal neither the
case ID nor the patient key.
"""

from registry3d.cases.models import Case, CaseStatus
from registry3d.dictionary import registry
from registry3d.dictionary.spec import Dictionary, Element
from registry3d.fhir.common import (
    CASE_QUESTIONNAIRE,
    CPT,
    DATA_ABSENT,
    DATA_ABSENT_SYSTEM,
    ELEMENT_SYSTEM,
    EXTENSION,
    ICD10CM,
    LOINC,
    PHYSICIAN_QUESTIONNAIRE,
    SYSTEMS,
    UCUM,
    case_uid_system,
    patient_key_system,
    questionnaire_url,
    resource_id,
    validated,
    value_set_system,
)
from registry3d.fhir.questionnaire import sections_of
from registry3d.lib.withhold import withheld

CPT_UNITS = EXTENSION + "cpt-units"
SITE_SYSTEM = "urn:registry3d:site"
PSEUDONYMIZED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "PSEUDED",
    "display": "pseudonymized",
}
YES_NO = "http://terminology.hl7.org/CodeSystem/v2-0136"
GENDER = {"female": "female", "male": "male", "other": "other", "unknown": "unknown"}
# The case's status -> the status of what describes it.
PROCEDURE_STATUS = {
    CaseStatus.DRAFT: "in-progress",
    CaseStatus.SUBMITTED: "completed",
    CaseStatus.WITHDRAWN: "entered-in-error",
}
OBSERVATION_STATUS = {
    CaseStatus.DRAFT: "preliminary",
    CaseStatus.SUBMITTED: "final",
    CaseStatus.WITHDRAWN: "entered-in-error",
}
RESPONSE_STATUS = {
    CaseStatus.DRAFT: "in-progress",
    CaseStatus.SUBMITTED: "completed",
    CaseStatus.WITHDRAWN: "entered-in-error",
}
PERFORMED_STATUS = {
    "yes": "completed",
    "no": "not-done",
    "not_yet": "preparation",
    "unknown": "unknown",
}
AGE = {"system": LOINC, "code": "30525-0", "display": "Age"}
# Elements the Bundle maps to resources of their own; every other element with
# a unit becomes an Observation. All of them are in the case's response too.
AGE_ELEMENTS = {"age_years", "age_under_1_months"}
PROCEDURE_SECTION = "procedure"
PER_PRINT_OBSERVATION_UNITS = {"min", "h", "s", "[USD]"}


class Refs:
    """References between a case's resources: ``urn:uuid:`` in a Bundle, ``Type/id`` in NDJSON."""

    def __init__(self, case: Case, in_bundle: bool):
        self.case = case
        self.in_bundle = in_bundle

    def id(self, resource_type: str, *parts) -> str:
        return resource_id(self.case.code, resource_type, *parts)

    def to(self, resource_type: str, *parts) -> dict:
        rid = self.id(resource_type, *parts)
        return {"reference": f"urn:uuid:{rid}" if self.in_bundle else f"{resource_type}/{rid}"}


def _coding(element: Element, code: str) -> dict:
    return {
        "system": value_set_system(element.value_set.name),
        "code": code,
        "display": element.value_set.label_of(code),
    }


def _concept(element: Element, code: str) -> dict:
    return {"coding": [_coding(element, code)], "text": element.value_set.label_of(code)}


def _element_code(element: Element) -> dict:
    return {
        "coding": [{"system": ELEMENT_SYSTEM, "code": element.path_name, "display": element.label}],
        "text": element.label,
    }


def _quantity(value, unit: str) -> dict:
    quantity = {"value": value}
    if unit:
        quantity.update(unit=unit, system=UCUM, code=unit)
    return quantity


def _site(case: Case) -> dict:
    return {
        "identifier": {"system": SITE_SYSTEM, "value": case.site.code},
        "display": case.site.name,
    }


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# --- The case's questionnaire responses -------------------------------------------------------


def answers(element: Element, value) -> list[dict]:
    """The QuestionnaireResponse answers of one element's value (none when empty)."""
    kind = element.type
    if value is None or value == [] or value == "":
        return []
    if kind == "choice":
        return [{"valueCoding": _coding(element, value)}]
    if kind == "multi_choice":
        return [{"valueCoding": _coding(element, code)} for code in value]
    if kind == "integer_list":
        return [{"valueInteger": number} for number in value]
    if kind == "duration" and value == "unknown":
        return [{"extension": [{"url": DATA_ABSENT, "valueCode": "unknown"}]}]
    if kind in ("integer", "duration"):
        return [{"valueInteger": value}]
    if kind == "decimal":
        return [{"valueDecimal": value}]
    if kind == "boolean":
        return [{"valueBoolean": value}]
    return [{"valueString": withheld(value, token=element.token) if element.screened else value}]


def _items(elements: list[Element], data: dict, free_text: bool) -> list[dict]:
    items = []
    for element in elements:
        if element.free_text and not free_text:
            continue
        value = data.get(element.name)
        if element.is_group:
            for each in value or []:
                children = _items(element.elements, each or {}, free_text)
                if children:
                    items.append(
                        {"linkId": element.path_name, "text": element.label, "item": children}
                    )
            continue
        given = answers(element, value)
        if given:
            items.append({"linkId": element.path_name, "text": element.label, "answer": given})
    return items


def response(
    case: Case,
    name: str,
    *,
    dictionary: Dictionary | None = None,
    refs: Refs | None = None,
    free_text: bool = True,
) -> dict | None:
    """The case's answers to Questionnaire ``name``, or None when it has none.

    The response names its case by ``identifier`` (the site's case ID) and
    its patient by ``subject`` (the patient key), so site software can send
    it back to ``POST /fhir/QuestionnaireResponse``.
    """
    dictionary = dictionary or registry.current().dictionary
    items = []
    for section in sections_of(dictionary, name):
        children = _items(section.elements, case.data or {}, free_text)
        if children:
            items.append({"linkId": section.id, "text": section.label, "item": children})
    if not items and name == PHYSICIAN_QUESTIONNAIRE:
        return None
    subject: dict = {}
    if refs is not None:
        subject.update(refs.to("Patient"))
    if case.patient_key:
        subject["identifier"] = {
            "system": patient_key_system(case.site.code),
            "value": case.patient_key,
        }
    resource = {
        "resourceType": "QuestionnaireResponse",
        "id": resource_id(case.code, "QuestionnaireResponse", name),
        "identifier": {"system": case_uid_system(case.site.code), "value": case.case_uid},
        "questionnaire": f"{questionnaire_url(name)}|{dictionary.version}",
        "status": RESPONSE_STATUS[case.status]
        if name == CASE_QUESTIONNAIRE
        else ("entered-in-error" if case.status == CaseStatus.WITHDRAWN else "completed"),
    }
    if subject:
        resource["subject"] = subject
    if items:
        resource["item"] = items
    return resource


# --- The resources of a case -------------------------------------------------------------------


def case_resources(
    case: Case, *, in_bundle: bool = False, free_text: bool = True, dictionary=None
) -> list[dict]:
    """Every resource of one case, Patient first (not validated: see :func:`bundle`)."""
    dictionary = dictionary or registry.current().dictionary
    refs = Refs(case, in_bundle)
    data = case.data or {}
    out = [_patient(case, data, refs)]
    prints = [p for p in data.get("prints") or [] if isinstance(p, dict)]
    performed = data.get("procedure_performed")
    out.append(_printing(case, data, prints, refs, dictionary, free_text))
    if performed:
        out.append(_clinical(case, data, prints, refs, dictionary))
    out += [_device(case, data, n, item, refs, dictionary) for n, item in enumerate(prints, 1)]
    out += _observations(case, data, prints, refs, dictionary, bool(performed))
    for name in (CASE_QUESTIONNAIRE, PHYSICIAN_QUESTIONNAIRE):
        answered = response(case, name, dictionary=dictionary, refs=refs, free_text=free_text)
        if answered is not None:
            out.append(answered)
    return out


def bundle(case: Case, *, free_text: bool = True) -> dict:
    """The case as a FHIR Bundle of type collection, validated with fhir.resources."""
    entries = [
        {"fullUrl": f"urn:uuid:{resource['id']}", "resource": resource}
        for resource in case_resources(case, in_bundle=True, free_text=free_text)
    ]
    return validated(
        {
            "resourceType": "Bundle",
            "id": resource_id(case.code, "Bundle"),
            "meta": {"security": [PSEUDONYMIZED]},
            "identifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{case.code}"},
            "type": "collection",
            "entry": entries,
        }
    )


def _patient(case: Case, data: dict, refs: Refs) -> dict:
    patient = {
        "resourceType": "Patient",
        "id": refs.id("Patient"),
        "meta": {"security": [PSEUDONYMIZED]},
    }
    if case.patient_key:
        patient["identifier"] = [
            {"system": patient_key_system(case.site.code), "value": case.patient_key}
        ]
    if data.get("sex") in GENDER:
        patient["gender"] = GENDER[data["sex"]]
    patient["managingOrganization"] = _site(case)
    return patient


def _printing(case, data, prints, refs: Refs, dictionary: Dictionary, free_text: bool) -> dict:
    elements = dictionary.all_elements
    procedure = {
        "resourceType": "Procedure",
        "id": refs.id("Procedure", "printing"),
        "status": PROCEDURE_STATUS[case.status],
        "subject": refs.to("Patient"),
        "performer": [{"actor": _site(case)}],
    }
    object_type = data.get("object_type")
    if object_type and "object_type" in elements:
        procedure["category"] = _concept(elements["object_type"], object_type)
    codings = []
    for line in data.get("cpt_lines") or []:
        if isinstance(line, dict) and line.get("code"):
            coding = {"system": CPT, "code": line["code"]}
            if "cpt_lines.code" in elements:
                coding["display"] = elements["cpt_lines.code"].value_set.label_of(line["code"])
            if _is_number(line.get("units")):
                coding["extension"] = [{"url": CPT_UNITS, "valueInteger": line["units"]}]
            codings.append(coding)
    label = procedure.get("category", {}).get("text", "object")
    procedure["code"] = {"text": f"3D printed {label.lower()} made at the point of care"}
    if codings:
        procedure["code"]["coding"] = codings
    reasons = []
    if data.get("organ_system") and "organ_system" in elements:
        reasons.append(_concept(elements["organ_system"], data["organ_system"]))
    if data.get("primary_diagnosis_icd10"):
        reasons.append({"coding": [{"system": ICD10CM, "code": data["primary_diagnosis_icd10"]}]})
    if "intended_uses" in elements:
        reasons += [_concept(elements["intended_uses"], u) for u in data.get("intended_uses") or []]
    if reasons:
        procedure["reasonCode"] = reasons
    sites = [_body_site(part, dictionary, free_text) for part in data.get("anatomic_parts") or []]
    if [s for s in sites if s]:
        procedure["bodySite"] = [s for s in sites if s]
    if prints:
        procedure["focalDevice"] = [
            {"manipulated": refs.to("Device", n)} for n in range(1, len(prints) + 1)
        ]
    return procedure


def _body_site(part, dictionary: Dictionary, free_text: bool) -> dict | None:
    if not isinstance(part, dict):
        return None
    codings, words = [], []
    for name in ("region", "subregion", "structure", "laterality"):
        element = dictionary.all_elements.get(f"anatomic_parts.{name}")
        if element is not None and part.get(name):
            codings.append(_coding(element, part[name]))
            words.append(element.value_set.label_of(part[name]))
    comment = dictionary.all_elements.get("anatomic_parts.comment")
    if part.get("comment") and (free_text or (comment is not None and not comment.free_text)):
        words.append(withheld(part["comment"]))
    if not codings:
        return None
    return {"coding": codings, "text": ", ".join(words)}


def _clinical(case, data, prints, refs: Refs, dictionary: Dictionary) -> dict:
    elements = dictionary.all_elements
    performed = data.get("procedure_performed")
    procedure = {
        "resourceType": "Procedure",
        "id": refs.id("Procedure", "clinical"),
        "status": "entered-in-error"
        if case.status == CaseStatus.WITHDRAWN
        else PERFORMED_STATUS.get(performed, "unknown"),
        "subject": refs.to("Patient"),
    }
    codings = []
    if data.get("procedure_type") and "procedure_type" in elements:
        codings.append(_coding(elements["procedure_type"], data["procedure_type"]))
    if data.get("procedure_cpt"):
        system = (
            SYSTEMS.get(elements["procedure_cpt"].system, CPT)
            if "procedure_cpt" in elements
            else CPT
        )
        codings.append({"system": system, "code": data["procedure_cpt"]})
    procedure["code"] = {"text": "The procedure the 3D printed object was made for"}
    if codings:
        procedure["code"]["coding"] = codings
    if prints and performed == "yes":
        procedure["usedReference"] = [refs.to("Device", n) for n in range(1, len(prints) + 1)]
    if data.get("intraop_complication") and "intraop_complication" in elements:
        procedure["complication"] = [
            _concept(elements["intraop_complication"], data["intraop_complication"])
        ]
    return procedure


def _property(element: Element, value) -> dict | None:
    kind = element.type
    out = {"type": _element_code(element)}
    if kind == "choice":
        out["valueCode"] = [_concept(element, value)]
    elif kind == "multi_choice":
        out["valueCode"] = [_concept(element, code) for code in value]
    elif kind == "boolean":
        code = "Y" if value else "N"
        out["valueCode"] = [{"coding": [{"system": YES_NO, "code": code}], "text": str(value)}]
    elif kind in ("integer", "decimal") and _is_number(value):
        out["valueQuantity"] = [_quantity(value, element.unit)]
    elif kind == "integer_list":
        out["valueQuantity"] = [_quantity(n, "") for n in value]
    elif isinstance(value, str):
        out["valueCode"] = [
            {"text": withheld(value, token=element.token) if element.screened else value}
        ]
    else:
        return None
    return out


def _device(case, data, number: int, item: dict, refs: Refs, dictionary: Dictionary) -> dict:
    elements = dictionary.all_elements
    kinds = []
    if data.get("object_type") and "object_type" in elements:
        kinds.append(_coding(elements["object_type"], data["object_type"]))
    if data.get("guide_type") and "guide_type" in elements:
        kinds.append(_coding(elements["guide_type"], data["guide_type"]))
    role = item.get("print_role")
    role_label = (
        elements["prints.print_role"].value_set.label_of(role)
        if role and "prints.print_role" in elements
        else f"Print {number}"
    )
    kind_label = kinds[0]["display"] if kinds else "3D printed object"
    device = {
        "resourceType": "Device",
        "id": refs.id("Device", number),
        "status": "entered-in-error" if case.status == CaseStatus.WITHDRAWN else "active",
        "deviceName": [
            {"name": f"{kind_label}, print {number} ({role_label})", "type": "user-friendly-name"}
        ],
        "patient": refs.to("Patient"),
        "owner": _site(case),
    }
    if kinds:
        device["type"] = {"coding": kinds, "text": kind_label}
    properties = []
    group = dictionary.elements.get("prints")
    for element in group.elements if group is not None else []:
        value = item.get(element.name)
        if value is None or value == [] or value == "" or element.free_text:
            continue
        if element.unit in PER_PRINT_OBSERVATION_UNITS:
            continue  # times and costs are Observations
        prop = _property(element, value)
        if prop is not None:
            properties.append(prop)
    if properties:
        device["property"] = properties
    return device


def _observation(case, refs: Refs, key, element: Element, value, **links) -> dict:
    observation = {
        "resourceType": "Observation",
        "id": refs.id("Observation", key),
        "status": OBSERVATION_STATUS[case.status],
        "code": _element_code(element),
        "subject": refs.to("Patient"),
        **links,
    }
    if value == "unknown":
        observation["dataAbsentReason"] = {
            "coding": [{"system": DATA_ABSENT_SYSTEM, "code": "unknown", "display": "Unknown"}]
        }
    else:
        observation["valueQuantity"] = _quantity(value, element.unit)
    return observation


def _observations(case, data, prints, refs: Refs, dictionary: Dictionary, clinical: bool):
    out = []
    age = data.get("age_years")
    if _is_number(age):
        element = dictionary.all_elements.get("age_years")
        months = data.get("age_under_1_months")
        if age == 0 and _is_number(months):
            quantity = _quantity(months, "mo")
        else:
            quantity = _quantity(age, "a")
            if element is not None and element.top_code is not None and age >= element.top_code:
                quantity["comparator"] = ">="  # ages above the top code are stored as it
        out.append(
            {
                "resourceType": "Observation",
                "id": refs.id("Observation", "age"),
                "status": OBSERVATION_STATUS[case.status],
                "code": {"coding": [AGE], "text": "Age when the case was requested"},
                "subject": refs.to("Patient"),
                "valueQuantity": quantity,
            }
        )
    for section in dictionary.case_sections():
        part_of = refs.to(
            "Procedure", "clinical" if clinical and section.id == PROCEDURE_SECTION else "printing"
        )
        for element in section.elements:
            if element.name in AGE_ELEMENTS or not element.unit:
                continue
            if element.type not in ("integer", "decimal", "duration"):
                continue
            value = data.get(element.name)
            if _is_number(value) or (element.type == "duration" and value == "unknown"):
                out.append(_observation(case, refs, element.name, element, value, partOf=[part_of]))
    group = dictionary.elements.get("prints")
    for number, item in enumerate(prints, 1):
        for element in group.elements if group is not None else []:
            value = item.get(element.name)
            if element.unit in PER_PRINT_OBSERVATION_UNITS and _is_number(value):
                out.append(
                    _observation(
                        case,
                        refs,
                        f"prints[{number}].{element.name}",
                        element,
                        value,
                        partOf=[refs.to("Procedure", "printing")],
                        focus=[refs.to("Device", number)],
                    )
                )
    return out

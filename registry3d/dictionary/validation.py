"""Validate case data against the dictionary, reporting every problem at once.

The dictionary is compiled once into a pydantic model (types, ranges, value
sets, unknown elements, list lengths: checked by pydantic's compiled core)
and a list of Python checks for what a model cannot say (required and
required-when on complete cases, warnings, cross-element rules, CPT coding,
patient identifiers in free text).

Paths name the element as a person would: ``age_years``, ``prints[2].material``
(items count from 1), ``intended_uses[3]``.
"""

import re
from dataclasses import asdict, dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, create_model

from registry3d.dictionary import cpt
from registry3d.dictionary.expressions import is_filled
from registry3d.dictionary.spec import Dictionary, Element
from registry3d.lib.text_screen import find_identifier, find_identifier_in_token

YEAR_MONTH_PATTERN = r"^[0-9]{4}-(0[1-9]|1[0-2])$"
UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with the data: where, what kind, and how to fix it."""

    path: str
    code: str
    message: str
    severity: str = "error"

    def as_dict(self) -> dict:
        return asdict(self)


def _py_type(element: Element, item_model=None) -> Any:
    """Return the pydantic type of an element's value (None is always allowed)."""
    kind = element.type
    if kind == "text":
        return Annotated[
            str, StringConstraints(max_length=element.max_length, pattern=element.pattern or None)
        ]
    if kind == "code":
        return Annotated[str, StringConstraints(max_length=40, pattern=element.pattern or None)]
    if kind == "integer":
        return Annotated[int, Field(ge=element.min, le=element.max)]
    if kind == "decimal":
        return Annotated[float, Field(ge=element.min, le=element.max, allow_inf_nan=False)]
    if kind == "boolean":
        return bool
    if kind == "choice":
        return Literal[tuple(element.value_set.active_codes())]
    if kind == "multi_choice":
        return Annotated[
            list[Literal[tuple(element.value_set.active_codes())]],
            Field(max_length=element.max_items),
        ]
    if kind == "year_month":
        return Annotated[str, StringConstraints(pattern=YEAR_MONTH_PATTERN)]
    if kind == "duration":
        return Annotated[int, Field(ge=0, le=element.max)] | Literal[UNKNOWN]
    if kind == "integer_list":
        return Annotated[
            list[Annotated[int, Field(ge=element.min, le=element.max)]],
            Field(max_length=element.max_items),
        ]
    if kind == "group":
        return Annotated[list[item_model], Field(max_length=element.max_items)]
    raise ValueError(f"no type for {kind}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, regex_engine="python-re")


def _model(name: str, elements: list[Element], items: dict[str, type]) -> type[BaseModel]:
    fields = {e.name: (_py_type(e, items.get(e.name)) | None, None) for e in elements}
    return create_model(name, __base__=_Strict, **fields)


def _expected(element: Element) -> str:
    """Say in plain words what an element accepts."""
    kind = element.type
    unit = f" {element.unit}" if element.unit and element.unit not in ("a", "%") else ""
    if kind in ("integer", "decimal"):
        number = "a whole number" if kind == "integer" else "a number"
        if element.min is not None and element.max is not None:
            return f"{number} from {element.min} to {element.max}{unit}"
        if element.min is not None:
            return f"{number} of at least {element.min}{unit}"
        if element.max is not None:
            return f"{number} of at most {element.max}{unit}"
        return number
    if kind == "duration":
        return f"whole minutes from 0 to {element.max} or 'unknown'"
    if kind == "boolean":
        return "true or false"
    if kind in ("choice", "multi_choice"):
        codes = element.value_set.active_codes()
        listed = ", ".join(codes) if len(codes) <= 12 else ", ".join(codes[:12]) + ", …"
        prefix = "a list of codes from " if kind == "multi_choice" else "one of "
        return prefix + listed
    if kind == "year_month":
        return "a month as YYYY-MM, e.g. 2026-07"
    if kind == "code":
        return f"a {element.system or 'code'} code" + (
            " such as Q21.1" if element.system == "ICD-10-CM" else ""
        )
    if kind == "text":
        return f"text of at most {element.max_length} characters"
    if kind == "integer_list":
        return f"a list of whole numbers from {element.min} to {element.max}"
    if kind == "group":
        return "a list of items"
    return kind


class Validator:
    """The compiled checks of one dictionary version."""

    def __init__(self, dictionary: Dictionary):
        self.dictionary = dictionary
        d = dictionary
        questionnaire = {e.name for s in d.questionnaire_sections() for e in s.elements}
        self.questionnaire_names = questionnaire
        items = {g.name: _model(f"Item_{g.name}", g.elements, {}) for g in d.groups()}
        top = list(d.elements.values())
        self.model = _model("Case", top, items)
        self.questionnaire_model = _model(
            "Questionnaire", [e for e in top if e.name in questionnaire], {}
        )
        self.top = d.elements
        # Complete-case checks, precomputed as flat lists for speed.
        self.required = [e for e in top if e.required and e.name not in questionnaire]
        self.required_when = [
            e for e in top if e.required_when is not None and e.name not in questionnaire
        ]
        self.questionnaire_required = [e for e in top if e.name in questionnaire and e.required]
        self.groups = [
            (
                g,
                [i for i in g.elements if i.required],
                [i for i in g.elements if i.required_when is not None],
                [i for i in g.elements if i.screened],
                [i for i in g.elements if i.warn_min is not None or i.warn_max is not None],
                [i for i in g.elements if i.type in ("multi_choice", "integer_list")],
            )
            for g in d.groups()
        ]
        self.screened = [e for e in top if e.screened]
        self.warned = [e for e in top if e.warn_min is not None or e.warn_max is not None]
        self.months = [
            e for e in top if e.type == "year_month" and (e.min is not None or e.max is not None)
        ]
        self.listed = [e for e in top if e.type in ("multi_choice", "integer_list")]
        self.case_rules = [r for r in d.rules if not r.scope]
        self.item_rules = [r for r in d.rules if r.scope]
        self.has_cpt = bool(d.cpt_codes)

    # -- entry points

    def validate(
        self,
        data: Any,
        *,
        complete: bool = True,
        site_printer_labels: list[str] | None = None,
    ) -> list[Problem]:
        """Return every problem of ``data``; errors first, then warnings.

        ``complete`` applies the required checks and the rules (a submitted
        case); a draft gets only the checks of the values it holds.
        """
        if not isinstance(data, dict):
            return [Problem("", "wrong_type", "Case data must be an object of elements")]
        problems: list[Problem] = []
        bad: set[str] = set()  # top-level names with errors, to skip rules on them
        try:
            self.model.model_validate(data)
        except ValidationError as exc:
            self._translate(exc, data, problems, bad)
        ctx = {"site_printer_labels": site_printer_labels}
        self._values(data, problems, bad)
        if complete:
            self._required(data, problems, bad, ctx)
        self._rules(data, problems, bad, ctx, complete)
        if complete and self.has_cpt and "cpt_lines" not in bad:
            for path, code, message, severity in cpt.check(self.dictionary, data):
                problems.append(Problem(path, code, message, severity))
        if len(problems) > 1:
            problems.sort(key=lambda p: p.severity != "error")
        return problems

    def validate_questionnaire(self, data: Any, *, complete: bool = True) -> list[Problem]:
        """Check a physician's answers alone (the questionnaire sections)."""
        if not isinstance(data, dict):
            return [Problem("", "wrong_type", "Answers must be an object of elements")]
        problems: list[Problem] = []
        bad: set[str] = set()
        try:
            self.questionnaire_model.model_validate(data)
        except ValidationError as exc:
            self._translate(exc, data, problems, bad)
        self._values(data, problems, bad, names=self.questionnaire_names)
        if complete:
            for element in self.questionnaire_required:
                if element.name not in bad and not is_filled(data.get(element.name)):
                    problems.append(
                        Problem(element.name, "required", f"{element.label} is required")
                    )
        return problems

    # -- type and value checks

    def _translate(self, exc: ValidationError, data: dict, problems: list, bad: set) -> None:
        seen: set[str] = set()
        for error in exc.errors(include_url=False):
            loc = error["loc"]
            if not loc:
                continue
            top = loc[0]
            element = self.top.get(top) if isinstance(top, str) else None
            if element is None or (len(loc) == 1 and error["type"] == "extra_forbidden"):
                bad.add(str(top))
                problems.append(
                    Problem(
                        str(top) if is_safe_name(top) else "",
                        "unknown_element",
                        f"{shown_name(top)} is not an element of dictionary version "
                        f"{self.dictionary.version}",
                    )
                )
                continue
            path, element, value = self._locate(element, loc, data)
            bad.add(top)
            if path in seen:
                continue  # a union (duration) reports once per alternative
            seen.add(path)
            if element is None:  # an unknown element inside a group item
                problems.append(
                    Problem(
                        path,
                        "unknown_element",
                        f"{shown_name(loc[-1])} is not an element of {self.top[top].label.lower()}",
                    )
                )
                continue
            problems.append(self._problem(path, element, error, value))

    def _locate(self, element: Element, loc: tuple, data: dict):
        """Turn a pydantic location into our path, element and the bad value."""
        path = element.name
        value = data.get(element.name)
        rest = list(loc[1:])
        if element.is_group and rest and isinstance(rest[0], int):
            index = rest.pop(0)
            path += f"[{index + 1}]"
            value = value[index] if isinstance(value, list) and index < len(value) else None
            if rest and isinstance(rest[0], str):
                name = rest.pop(0)
                item = next((i for i in element.elements if i.name == name), None)
                if item is None:  # the path names an unknown key only if it may be quoted
                    return (path + f".{name}" if is_safe_name(name) else path), None, value
                path += f".{name}"
                element = item
                value = value.get(name) if isinstance(value, dict) else None
        if element.type in ("multi_choice", "integer_list") and rest and isinstance(rest[0], int):
            index = rest.pop(0)
            path += f"[{index + 1}]"
            value = value[index] if isinstance(value, list) and index < len(value) else None
        return path, element, value

    def _problem(self, path: str, element: Element, error: dict, value) -> Problem:
        kind = error["type"]
        label = element.label
        if kind in ("too_long",) and element.type in ("group", "multi_choice", "integer_list"):
            return Problem(
                path,
                "too_many",
                f"{label}: at most {element.max_items} allowed, "
                f"{len(value) if isinstance(value, list) else 'more'} given",
            )
        if kind == "literal_error" and element.value_set is not None and isinstance(value, str):
            code = element.value_set.get(value)
            if code is not None and not code.active:
                hint = f"; use '{code.replaced_by}'" if code.replaced_by else ""
                return Problem(
                    path,
                    "retired_code",
                    f"{label}: '{value}' was retired in dictionary version {code.retired_in}{hint}",
                )
            return Problem(
                path,
                "not_in_value_set",
                f"{label}: the value is not a code of this list; expected {_expected(element)}",
            )
        if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
            return Problem(
                path,
                "out_of_range",
                f"{label}: the value is out of range; expected {_expected(element)}",
            )
        if kind == "string_too_long":
            return Problem(
                path, "too_long", f"{label}: at most {element.max_length} characters allowed"
            )
        if kind == "string_pattern_mismatch":
            return Problem(
                path,
                "bad_format",
                f"{label}: the value is not valid; expected {_expected(element)}",
            )
        if kind == "finite_number":
            return Problem(path, "wrong_type", f"{label}: expected {_expected(element)}")
        return Problem(
            path,
            "wrong_type",
            f"{label}: {_wrong(value)}; expected {_expected(element)}",
        )

    def _values(self, data: dict, problems: list, bad: set, names=None) -> None:
        """Month ranges, warnings, repeats in lists and identifiers in free text."""
        for element in self.months:
            value = data.get(element.name)
            if element.name in bad or not isinstance(value, str):
                continue
            if (element.min is not None and value < element.min) or (
                element.max is not None and value > element.max
            ):
                bad.add(element.name)
                limits = " and ".join(
                    part
                    for part in (
                        f"not before {element.min}" if element.min else "",
                        f"not after {element.max}" if element.max else "",
                    )
                    if part
                )
                problems.append(
                    Problem(
                        element.name,
                        "out_of_range",
                        f"{element.label}: the month is out of range; {limits}",
                    )
                )
        for element in self.warned:
            if names is not None and element.name not in names:
                continue
            value = data.get(element.name)
            if element.name not in bad and isinstance(value, int | float):
                warning = _warn(element, value, element.name)
                if warning:
                    problems.append(warning)
        for element in self.listed:
            value = data.get(element.name)
            if (
                element.name not in bad
                and isinstance(value, list)
                and len(set(value)) != len(value)
            ):
                bad.add(element.name)
                problems.append(
                    Problem(
                        element.name, "duplicate_value", f"{element.label}: a value is repeated"
                    )
                )
        for element in self.screened:
            value = data.get(element.name)
            if isinstance(value, str) and element.name not in bad:
                found = _screen(element, value)
                if found:
                    bad.add(element.name)
                    problems.append(_identifier_problem(element.name, element, found))
        if names is not None:
            return
        for group, _req, _when, free, warned, listed in self.groups:
            items = data.get(group.name)
            if group.name in bad or not isinstance(items, list):
                continue
            for number, item in enumerate(items, start=1):
                if not isinstance(item, dict):
                    continue
                for element in free:
                    value = item.get(element.name)
                    found = _screen(element, value) if isinstance(value, str) else None
                    if found:
                        bad.add(group.name)
                        path = f"{group.name}[{number}].{element.name}"
                        problems.append(_identifier_problem(path, element, found))
                for element in warned:
                    value = item.get(element.name)
                    if isinstance(value, int | float):
                        warning = _warn(element, value, f"{group.name}[{number}].{element.name}")
                        if warning:
                            problems.append(warning)
                for element in listed:
                    value = item.get(element.name)
                    if isinstance(value, list) and len(set(value)) != len(value):
                        bad.add(group.name)
                        problems.append(
                            Problem(
                                f"{group.name}[{number}].{element.name}",
                                "duplicate_value",
                                f"{element.label}: a value is repeated",
                            )
                        )

    # -- completeness

    def _required(self, data: dict, problems: list, bad: set, ctx: dict) -> None:
        missing: list[str] = []
        for element in self.required:
            if element.name not in bad and not is_filled(data.get(element.name)):
                problems.append(_missing(element.name, element))
                missing.append(element.name)
        empty: dict = {}
        for element in self.required_when:
            if element.name in bad or is_filled(data.get(element.name)):
                continue
            if element.required_when.names & bad:
                continue
            if element.required_when.evaluate(empty, data, ctx):
                problems.append(_missing(element.name, element, element.required_when.text))
                missing.append(element.name)
        # Rules about an element that is missing would only repeat the problem.
        bad.update(missing)
        for group, required, required_when, _f, _w, _l in self.groups:
            items = data.get(group.name)
            if group.name in bad or not isinstance(items, list):
                continue
            if group.min_items and 0 < len(items) < group.min_items:
                problems.append(
                    Problem(
                        group.name, "too_few", f"{group.label}: at least {group.min_items} needed"
                    )
                )
            for number, item in enumerate(items, start=1):
                for element in required:
                    if not is_filled(item.get(element.name)):
                        problems.append(_missing(f"{group.name}[{number}].{element.name}", element))
                for element in required_when:
                    if is_filled(item.get(element.name)):
                        continue
                    if element.required_when.evaluate(item, data, ctx):
                        problems.append(
                            _missing(
                                f"{group.name}[{number}].{element.name}",
                                element,
                                element.required_when.text,
                            )
                        )

    # -- cross-element rules

    def _rules(self, data: dict, problems: list, bad: set, ctx: dict, complete: bool) -> None:
        for rule in self.case_rules:
            if not (complete or rule.drafts) or rule.names & bad:
                continue
            if rule.context_names and any(ctx.get(n) is None for n in rule.context_names):
                continue
            empty: dict = {}
            if rule.when is not None and not rule.when.evaluate(empty, data, ctx):
                continue
            if not rule.check.evaluate(empty, data, ctx):
                problems.append(
                    Problem(rule.path or "", f"rule_{rule.id}", rule.message, rule.severity)
                )
        for rule in self.item_rules:
            if not (complete or rule.drafts) or rule.scope in bad or rule.names & bad:
                continue
            if rule.context_names and any(ctx.get(n) is None for n in rule.context_names):
                continue
            items = data.get(rule.scope)
            if not isinstance(items, list):
                continue
            for number, item in enumerate(items, start=1):
                if not isinstance(item, dict):
                    continue
                if rule.when is not None and not rule.when.evaluate(item, data, ctx):
                    continue
                if not rule.check.evaluate(item, data, ctx):
                    path = f"{rule.scope}[{number}]" + (f".{rule.path}" if rule.path else "")
                    problems.append(Problem(path, f"rule_{rule.id}", rule.message, rule.severity))


def _wrong(value) -> str:
    """Say what kind of value was sent, never the value (it may be an identifier)."""
    if value is None:
        return "an empty value is not valid"
    if isinstance(value, bool):
        return "true or false is not valid here"
    if isinstance(value, str):
        return "this text is not valid"
    if isinstance(value, int | float):
        return "this number is not valid"
    if isinstance(value, list):
        return "a list is not valid here"
    if isinstance(value, dict):
        return "an object is not valid here"
    return "the value is not valid"


def _screen(element: Element, value: str) -> str | None:
    """What kind of identifier the value of a text element seems to hold, or None."""
    return find_identifier_in_token(value) if element.token else find_identifier(value)


NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")


def is_safe_name(name) -> bool:
    """Whether a name the sender gave (a column, an element) may be quoted back.

    Names are echoed so a typo can be found, but only when shaped like an
    element name and holding no identifier: a patient's name or number sent
    as a key or a column must not come back (#15). A name has no spaces, so it
    is screened as a file name is: ``Maria_Garcia`` is a person's name.
    """
    text = str(name)
    return (
        bool(NAME_RE.match(text))
        and not re.search(r"\d{4}", text)
        and not find_identifier_in_token(text)
    )


def shown_name(name) -> str:
    """Quote a name the sender gave when it is safe to (:func:`is_safe_name`), else "this name"."""
    return f"'{name}'" if is_safe_name(name) else "this name"


def _missing(path: str, element: Element, condition: str | None = None) -> Problem:
    reason = f" when {element.required_words or condition}" if condition else ""
    return Problem(path, "required", f"{element.label} is required{reason}")


def _warn(element: Element, value, path: str) -> Problem | None:
    if element.warn_max is not None and value > element.warn_max:
        return Problem(
            path,
            "unusually_high",
            f"{element.label}: the value is above {element.warn_max}{_unit(element)}; "
            "please check it",
            "warning",
        )
    if element.warn_min is not None and value < element.warn_min:
        return Problem(
            path,
            "unusually_low",
            f"{element.label}: the value is below {element.warn_min}{_unit(element)}; "
            "please check it",
            "warning",
        )
    return None


def _unit(element: Element) -> str:
    names = {"min": " minutes", "h": " hours", "d": " days", "mm": " mm", "a": " years"}
    return names.get(element.unit, f" {element.unit}" if element.unit else "")


def _identifier_problem(path: str, element: Element, found: str) -> Problem:
    return Problem(
        path,
        "identifier_suspected",
        f"{element.label}: this looks like {found}; the registry never stores patient "
        "identifiers, so remove it",
    )

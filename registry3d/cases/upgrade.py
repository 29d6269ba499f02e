"""Carry stored cases forward to the dictionary in force.

Each case keeps the dictionary version its data follow. When a newer
version is in force, a case of an older one must be carried forward before
anything reads it under the new elements: a research export would otherwise
put the free text a 1.0.0 case holds ("Mimics run by ...") under a 1.1.0
column that is now a code. :func:`upgrade_cases`

1. finds the older dictionary versions that stored cases still follow;
2. takes those cases in batches by id, each batch in one transaction with
   its rows locked and their version checked again (so a second run, or a
   case saved meanwhile, is not carried twice);
3. carries each case's data forward with the history of the dictionary
   (:func:`registry3d.dictionary.versions.carry_forward`) and stores it as a
   new version of the case, noted "carried forward to dictionary X"; a case
   whose data do not change gets the new version too, which records the
   dictionary its data now follow;
4. records one audit event per site and batch naming the cases, their new
   version numbers and the elements that changed, never a value.

Carried data are checked against the new version, and what does not pass
is reported by case, element and problem code (never the value) for the
site to correct; the case is carried all the same, since leaving it behind
would leave its old text under a new column.
"""

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from registry3d.audit.services import record
from registry3d.cases.models import Case, CaseStatus, CaseVersion
from registry3d.cases.services import COLUMNS, column_values, differences, validate
from registry3d.dictionary import registry
from registry3d.dictionary.versions import carry_forward, is_older

BATCH_SIZE = 500
VIA = "dictionary upgrade"


@dataclass
class UpgradeResult:
    version: str  # the dictionary version the cases were carried to
    carried: int = 0
    # (site code, case ID, element path, problem code) of carried data that
    # the new version refuses; the site corrects them.
    problems: list[tuple[str, str, str, str]] = field(default_factory=list)


def older_versions(version: str) -> list[str]:
    """The dictionary versions, older than ``version``, that stored cases follow."""
    stored = Case.objects.order_by().values_list("dictionary_version", flat=True).distinct()
    return sorted(v for v in stored if is_older(v, version))


def upgrade_cases(
    *,
    batch_size: int = BATCH_SIZE,
    actor=None,
    progress: Callable[[int], None] | None = None,
) -> UpgradeResult:
    """Carry every case of an older dictionary version forward to the one in force.

    ``progress`` is called with the number of cases of each batch done.
    Safe to run again: cases already carried are not found.
    """
    dictionary = registry.current().dictionary
    result = UpgradeResult(dictionary.version)
    old = older_versions(dictionary.version)
    if not old:
        return result
    ids = list(
        Case.objects.filter(dictionary_version__in=old).order_by("id").values_list("id", flat=True)
    )
    for start in range(0, len(ids), batch_size):
        done = _carry_batch(ids[start : start + batch_size], old, dictionary, actor, result)
        if progress:
            progress(done)
    return result


def _carry_batch(ids: list[int], old: list[str], dictionary, actor, result) -> int:
    """Carry one batch of cases forward in one transaction; return how many."""
    now = timezone.now()
    note = f"carried forward to dictionary {dictionary.version}"
    with transaction.atomic():
        cases = list(
            Case.objects.select_for_update(of=("self",))
            .filter(id__in=ids, dictionary_version__in=old)
            .select_related("site")
            .order_by("id")
        )
        versions, by_site = [], defaultdict(dict)
        elements = defaultdict(set)
        for case in cases:
            before = case.dictionary_version
            data = carry_forward(case.data, before, dictionary)
            changes = differences(case.data, data)
            for path in changes:
                elements[case.site.code].add(path)
            changes["dictionary_version"] = [before, dictionary.version]
            _check(case, data, result)
            case.data = data
            case.dictionary_version = dictionary.version
            case.version += 1
            case.updated_by, case.updated_at = actor, now
            for name, value in zip(COLUMNS, column_values(data), strict=True):
                setattr(case, name, value)
            versions.append(
                CaseVersion(
                    site=case.site,
                    case=case,
                    version=case.version,
                    status=case.status,
                    dictionary_version=dictionary.version,
                    data=data,
                    patient_key=case.patient_key,
                    changes=changes,
                    note=note,
                    via=VIA,
                    changed_by=actor,
                    changed_at=now,
                )
            )
            by_site[case.site][case.case_uid] = case.version
        Case.objects.bulk_update(
            cases,
            ["data", "dictionary_version", "version", "updated_by", "updated_at", *COLUMNS],
            batch_size=BATCH_SIZE,
        )
        CaseVersion.objects.bulk_create(versions, batch_size=BATCH_SIZE)
        for site, summary in by_site.items():
            record(
                "cases.carried_forward",
                actor=actor,
                site=site,
                object_type="dictionary",
                object_id=dictionary.version,
                changes={
                    "cases": summary,
                    "to": dictionary.version,
                    "elements": sorted(elements[site.code]),
                },
            )
    result.carried += len(cases)
    return len(cases)


def _check(case: Case, data: dict, result: UpgradeResult) -> None:
    """Note the problems the new version finds in carried data (withdrawn: none)."""
    if case.status == CaseStatus.WITHDRAWN:
        return
    for problem in validate(case.site, data, case.status):
        if problem.severity == "error":
            result.problems.append((case.site.code, case.case_uid, problem.path, problem.code))

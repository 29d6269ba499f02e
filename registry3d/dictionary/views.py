"""The public dictionary page, its downloads, and the case form preview."""

import random

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from registry3d.dictionary import forms, generators, registry
from registry3d.dictionary.examples import synthetic_case

DOWNLOADS = {
    "dictionary.csv": ("text/csv; charset=utf-8", generators.table_csv),
    "dictionary.xlsx": (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        generators.table_xlsx,
    ),
    "redcap-data-dictionary.csv": ("text/csv; charset=utf-8", generators.redcap_csv),
    "case.schema.json": ("application/schema+json", generators.json_schema_text),
    "import-template.csv": ("text/csv; charset=utf-8", generators.template_csv),
    "import-template.xlsx": (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        generators.template_xlsx,
    ),
}


def _matches(element, query: str) -> bool:
    if not query:
        return True
    words = [element.name, element.label, element.help, element.type]
    if element.value_set is not None:
        words += [c.code for c in element.value_set.codes] + [
            c.label for c in element.value_set.codes
        ]
    for item in element.elements:
        words += [item.name, item.label, item.help]
        if item.value_set is not None:
            words += [c.code for c in item.value_set.codes] + [
                c.label for c in item.value_set.codes
            ]
    text = " ".join(words).lower()
    return all(word in text for word in query.lower().split())


def _value_sets_shown(dictionary, sections, query: str) -> list:
    """All value sets, or with a search those of the elements shown (items too)."""
    if not query:
        return list(dictionary.value_sets.values())
    names = set()
    for _section, elements in sections:
        for element in elements:
            for each in [element, *element.elements]:
                if each.value_set is not None:
                    names.add(each.value_set.name)
    return [vs for name, vs in dictionary.value_sets.items() if name in names]


@require_GET
def dictionary_page(request):
    """Every element with its label, type, rules, value set and provenance."""
    loaded = registry.current()
    dictionary = loaded.dictionary
    query = request.GET.get("q", "").strip()[:100]
    sections = []
    total = 0
    for section in dictionary.sections:
        elements = [e for e in section.elements if _matches(e, query)]
        total += len(elements)
        if elements:
            sections.append((section, elements))
    context = {
        "dictionary": dictionary,
        "sections": sections,
        "query": query,
        "total": total,
        "downloads": list(DOWNLOADS),
        "value_sets": _value_sets_shown(dictionary, sections, query),
    }
    template = "dictionary/_results.html" if request.htmx else "dictionary/dictionary.html"
    return render(request, template, context)


@require_GET
def dictionary_download(request, filename):
    if filename not in DOWNLOADS:
        raise Http404("No such file")
    content_type, make = DOWNLOADS[filename]
    dictionary = registry.current().dictionary
    body = make(dictionary)
    if filename in ("dictionary.csv", "import-template.csv"):
        # A byte-order mark makes Excel read the file as UTF-8 (– ∞ ’).
        body = "\ufeff" + body
    response = HttpResponse(body, content_type=content_type)
    stem, _, ext = filename.rpartition(".")
    response["Content-Disposition"] = (
        f'attachment; filename="registry3d-{stem}-{dictionary.version}.{ext}"'
    )
    return response


@login_required
def form_preview(request):
    """Try the case form: fill it in and see what the registry would say.

    Nothing is stored; this page checks data against the dictionary, as a
    submission would.
    """
    loaded = registry.current()
    dictionary = loaded.dictionary
    problems = []
    checked = False
    complete = True
    if request.method == "POST":
        complete = request.POST.get("check") != "draft"
        row, data, problems = forms.read_post(dictionary, request.POST)
        site = getattr(request, "current_site", None)
        labels = (
            list(site.printers.filter(active=True).values_list("label", flat=True))
            if site is not None
            else None
        )
        problems = problems + loaded.validator.validate(
            data, complete=complete, site_printer_labels=labels
        )
        checked = True
    elif request.GET.get("example"):
        data = synthetic_case(dictionary, random.Random(request.GET.get("example")))
        row = forms.row_of(dictionary, data)
    else:
        row = {}
    sections = forms.build(dictionary, row, problems)
    errors = [p for p in problems if p.severity == "error"]
    warnings = [p for p in problems if p.severity == "warning"]
    return render(
        request,
        "dictionary/form_preview.html",
        {
            "dictionary": dictionary,
            "sections": sections,
            "errors": [(p, forms.problem_field(p.path)) for p in errors],
            "warnings": [(p, forms.problem_field(p.path)) for p in warnings],
            "checked": checked,
            "complete": complete,
        },
        status=400 if errors else 200,
    )

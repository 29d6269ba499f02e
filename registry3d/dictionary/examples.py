"""Synthetic, realistic case data for demos, tests and benchmarks.

The shape follows the published registry (Wang et al. 2024: about 70% models
and 30% guides, cardiac the most common model category and neurologic the
most common guide category, three technologies in 86% of cases, about 92
clinician and 335 non-clinician minutes per case). Organ systems and
technologies the dictionary no longer offers are left out, so the cases stay
valid as the dictionary changes.
"""

import random

from registry3d.dictionary.spec import Dictionary

MODEL_SYSTEMS = [
    ("cardiac", 27),
    ("musculoskeletal", 14),
    ("genitourinary", 16),
    ("breast", 15),
    ("neurologic", 8),
    ("craniomaxillofacial", 6),
    ("vascular", 6),
    ("thoracic", 3),
    ("hepatobiliary_gastrointestinal", 3),
    ("head_and_neck_ent", 2),
]
GUIDE_SYSTEMS = [
    ("neurologic", 42),
    ("craniomaxillofacial", 25),
    ("musculoskeletal", 25),
    ("head_and_neck_ent", 5),
    ("other", 3),
]
TECHNOLOGIES = [
    ("material_jetting", 40),
    ("vat_photopolymerization", 27),
    ("material_extrusion", 19),
    ("powder_bed_fusion", 9),
    ("binder_jetting", 5),
]
PARTS = {
    "cardiac": [
        ("heart", "myocardium"),
        ("heart", "blood_pool"),
        ("heart", "valve"),
        ("chest", "artery"),
    ],
    "musculoskeletal": [
        ("lower_extremity", "bone"),
        ("upper_extremity", "bone"),
        ("pelvis", "bone"),
        ("spine", "bone"),
    ],
    "genitourinary": [
        ("abdomen", "kidney"),
        ("abdomen", "tumor"),
        ("pelvis", "prostate"),
        ("abdomen", "collecting_system"),
        ("abdomen", "artery"),
    ],
    "breast": [("breast", "tumor"), ("breast", "skin_soft_tissue")],
    "neurologic": [("head", "bone"), ("head", "brain"), ("head", "tumor"), ("head", "artery")],
    "craniomaxillofacial": [("head", "bone")],
    "vascular": [("vascular_systemic", "artery"), ("abdomen", "artery")],
    "thoracic": [("chest", "airway"), ("chest", "lung"), ("chest", "tumor")],
    "hepatobiliary_gastrointestinal": [
        ("abdomen", "liver"),
        ("abdomen", "biliary_tree"),
        ("abdomen", "tumor"),
    ],
    "head_and_neck_ent": [("neck", "airway"), ("head", "bone"), ("neck", "tumor")],
    "other": [("other", "other")],
}
SERVICES = {
    "cardiac": "congenital_cardiac_surgery",
    "musculoskeletal": "orthopedic_surgery",
    "genitourinary": "urology",
    "breast": "breast_surgery",
    "neurologic": "neurosurgery",
    "craniomaxillofacial": "oral_maxillofacial_surgery",
    "vascular": "vascular_surgery",
    "thoracic": "thoracic_surgery",
    "hepatobiliary_gastrointestinal": "hepatobiliary_transplant_surgery",
    "head_and_neck_ent": "otolaryngology",
    "other": "other",
}
MATERIALS = {
    "material_jetting": "photopolymer_rigid",
    "vat_photopolymerization": "photopolymer_biocompatible",
    "material_extrusion": "pla",
    "powder_bed_fusion": "nylon_pa12",
    "binder_jetting": "gypsum_composite",
}
LIMBS_AND_BREAST = {"upper_extremity", "lower_extremity", "breast"}
# Products with a version each; None: no CAD software used.
SEGMENTATION_SOFTWARE = [
    (("materialise_mimics", "26"), 45),
    (("slicer_3d", "5.6.2"), 20),
    (("materialise_mimics_inprint", "3.1"), 10),
    (("simpleware_scanip", "2024.06"), 8),
    (("terarecon", None), 7),
    (("vitrea", "7.16"), 5),
    (("axial3d", None), 5),
]
CAD_SOFTWARE = [
    (("materialise_3_matic", "18"), 50),
    (("meshmixer", "3.5"), 15),
    (("blender", "4.1"), 10),
    (("geomagic_freeform", None), 10),
    (None, 15),
]
TRADE_NAMES = {
    "material_jetting": ["stratasys_veroclear", "stratasys_verowhite", "stratasys_agilus30"],
    "vat_photopolymerization": ["formlabs_biomed_clear", "formlabs_clear", "formlabs_white"],
    "material_extrusion": ["pla"],
    "powder_bed_fusion": ["eos_pa_2200", "hp_pa12"],
    "binder_jetting": ["visijet_pxl"],
}
GUIDE_TRADE_NAMES = ["formlabs_surgical_guide", "stratasys_med610"]


def _weighted(rng: random.Random, pairs):
    values, weights = zip(*pairs, strict=True)
    return rng.choices(values, weights=weights)[0]


def _minutes(rng: random.Random, mean: float) -> int:
    return max(0, int(rng.expovariate(1 / mean))) if mean else 0


def synthetic_case(
    dictionary: Dictionary,
    rng: random.Random,
    *,
    printer_labels: dict[str, str] | None = None,
    year_months: list[str] | None = None,
    with_questionnaire: bool = False,
) -> dict:
    """Return one complete, valid case.

    ``printer_labels`` maps a technology to the label of the site's printer
    of that technology; without it, labels are made up from the technology.
    """
    systems = set(dictionary.value_sets["organ_system"].active_codes())
    technologies = set(dictionary.value_sets["print_technology"].active_codes())
    is_model = rng.random() < 0.7
    system = _weighted(
        rng, [(s, w) for s, w in (MODEL_SYSTEMS if is_model else GUIDE_SYSTEMS) if s in systems]
    )
    months = year_months or [f"{y}-{m:02d}" for y in (2024, 2025, 2026) for m in range(1, 13)]
    month = rng.choice(months)
    age = int(rng.gauss(42, 24)) if is_model else int(rng.gauss(56, 18))
    age = min(90, max(0, age))
    case: dict = {
        "object_type": "anatomic_model" if is_model else "anatomic_guide",
        "case_year_month": month,
        "is_point_of_care": True,
        "exclusion_check": True,
        "age_years": age,
        "sex": rng.choice(["female", "male"]) if rng.random() < 0.97 else "unknown",
        "organ_system": system,
        "imaging": [
            {
                "modality": rng.choice(
                    ["ct", "cta", "mr"] if system != "cardiac" else ["cardiac_ct", "cta", "mr"]
                ),
                "contrast": rng.choice(["none", "iv_contrast"]),
                "slice_thickness_mm": rng.choice([0.5, 0.625, 1.0, 1.25]),
                "acquired_for_3dp": rng.random() < 0.3,
                "exam_interval_days": rng.randint(0, 60),
            }
            for _ in range(1 if rng.random() < 0.8 else 2)
        ],
        "ordering_service": SERVICES.get(system, "other"),
        "ordering_clinician_role": "attending_physician",
        "intended_uses": rng.sample(
            [
                "pre_procedural_planning",
                "patient_education_consent",
                "trainee_education",
                "multidisciplinary_communication",
            ],
            k=rng.randint(1, 2),
        )
        if is_model
        else ["intra_procedural_guidance_guide"],
        "segmentation_method": ["threshold", "manual"],
        "output_file_format": "stl",
        "procedure_performed": "yes" if rng.random() < 0.85 else "not_yet",
    }
    if age == 0:
        case["age_under_1_months"] = rng.randint(0, 11)
    if is_model:
        count = rng.choices([1, 2, 3, 4, 5, 6], weights=[50, 20, 12, 8, 6, 4])[0]
        choices = PARTS.get(system, PARTS["other"])
        parts = []
        for _ in range(count):
            region, structure = rng.choice(choices)
            part = {"region": region, "structure": structure, "cpt_component": True}
            if region in LIMBS_AND_BREAST:
                part["laterality"] = rng.choice(["right", "left"])
            parts.append(part)
        case["anatomic_parts"] = parts
    else:
        case["guide_type"] = rng.choice(
            ["cutting_guide", "drilling_guide", "cutting_and_drilling_guide"]
        )
        case["virtual_surgical_planning"] = True
    prints = []
    for number in range(rng.choices([1, 2, 3], weights=[75, 20, 5])[0]):
        technology = _weighted(rng, [(t, w) for t, w in TECHNOLOGIES if t in technologies])
        label = (printer_labels or {}).get(technology) or technology.upper()[:12]
        item = {
            "print_role": "primary" if number == 0 else "secondary",
            "printer_label": label,
            "technology": technology,
            "material": MATERIALS[technology] if is_model else "photopolymer_biocompatible",
            "scale_percent": 100.0,
            "copies": 1,
            "optical": rng.choice(["opaque", "translucent", "mixed"]),
            "print_time_minutes": rng.randint(120, 1800),
            "material_used_g": round(rng.uniform(20, 400), 1),
            "material_cost_usd": round(rng.uniform(10, 600), 2),
            "reprint_required": rng.random() < 0.05,
        }
        if is_model:
            item["part_numbers"] = sorted(
                rng.sample(
                    range(1, len(case["anatomic_parts"]) + 1),
                    k=rng.randint(1, len(case["anatomic_parts"])),
                )
            )
        else:
            item["biocompatible_sterilizable"] = True
            item["sterilization_method"] = "steam_autoclave"
        prints.append(item)
    case["prints"] = prints
    if case["procedure_performed"] == "yes":
        case["procedure_type"] = rng.choice(
            ["open_surgery", "minimally_invasive_surgery", "endovascular_or_transcatheter"]
        )
        case["actual_uses"] = list(case["intended_uses"])
        case["used_in_sterile_field"] = not is_model
        case["case_to_procedure_days"] = rng.randint(0, 30)
    clinician = {"consultation": 34, "segmentation": 20, "cad": 18, "prep_post_processing": 20}
    other = {"consultation": 25, "segmentation": 148, "cad": 90, "prep_post_processing": 72}
    for activity in clinician:
        case[f"effort_{activity}_clinician"] = _minutes(rng, clinician[activity])
        case[f"effort_{activity}_non_clinician"] = (
            "unknown" if rng.random() < 0.03 else _minutes(rng, other[activity])
        )
    case["turnaround_days"] = rng.randint(1, 21)
    case["charge_billed"] = rng.choice(["not_billed", "billed_cpt_cat_iii"])
    if case["charge_billed"] == "billed_cpt_cat_iii":
        case["payer_class"] = rng.choice(["medicare", "commercial", "medicaid"])
        case["cpt_lines"] = _cpt_lines(case)
    if with_questionnaire:
        likert = ["1", "2", "3", "4", "5"]
        case.update(
            respondent_role="surgeon_or_proceduralist",
            ua_easy_to_use=rng.choice(likert[2:]),
            ua_important=rng.choice(likert[2:]),
            ua_confidence_before=rng.choice(likert[1:4]),
            ua_confidence_after=rng.choice(likert[3:]),
            est_procedure_time_saved_min=int(rng.gauss(38.5, 30)),
            would_request_again=rng.choice(likert[3:]),
        )
        changed = rng.random() < 0.55
        case["plan_change_type"] = (
            [
                rng.choice(
                    ["approach_changed", "implant_or_device_size_changed", "procedure_changed"]
                )
            ]
            if changed
            else ["none"]
        )
    scenarios = [
        s["id"]
        for s in (dictionary.references.get("appropriateness.yaml") or {}).get("scenarios") or []
        if s.get("organ_system") == case["organ_system"]
    ]
    if scenarios and rng.random() < 0.6:
        case["appropriateness_scenario"] = rng.choice(scenarios)
    _add_products(case, dictionary, rng)
    return case


def _add_products(case: dict, dictionary: Dictionary, rng: random.Random) -> None:
    """Name the software and materials, when the dictionary has value sets for them.

    A generator of its own, seeded from ``rng`` without drawing from it, so
    the cases made before products were named stay the same.
    """
    element = dictionary.elements.get("segmentation_software")
    if element is None or element.type != "choice":
        return
    own = random.Random(repr(rng.getstate()[1][:8]))
    for name, weights in (
        ("segmentation_software", SEGMENTATION_SOFTWARE),
        ("cad_software", CAD_SOFTWARE),
    ):
        choice = _weighted(own, weights)
        if choice is not None and choice[0] in dictionary.elements[name].value_set.active_codes():
            case[name] = choice[0]
            if choice[1] and f"{name}_version" in dictionary.elements:
                case[f"{name}_version"] = choice[1]
    trade_names = dictionary.value_sets.get("material_trade_name")
    for item in case["prints"]:
        options = (
            GUIDE_TRADE_NAMES
            if case["object_type"] == "anatomic_guide"
            else TRADE_NAMES.get(item["technology"], [])
        )
        options = [o for o in options if trade_names and o in trade_names.active_codes()]
        if options and own.random() < 0.8:
            item["material_trade_name"] = own.choice(options)


def _cpt_lines(case: dict) -> list[dict]:
    if case["object_type"] == "anatomic_model":
        components = sum(1 for p in case["anatomic_parts"] if p.get("cpt_component"))
        lines = [{"code": "0559T", "units": 1}]
        if components > 1:
            lines.append({"code": "0560T", "units": min(components - 1, _cap(case, 5))})
        return lines
    lines = [{"code": "0561T", "units": 1}]
    if len(case["prints"]) > 1:
        lines.append({"code": "0562T", "units": min(len(case["prints"]) - 1, _cap(case, 2))})
    return lines


def _cap(case: dict, after_april_2026: int) -> int:
    return after_april_2026 if case["case_year_month"] >= "2026-04" else 1

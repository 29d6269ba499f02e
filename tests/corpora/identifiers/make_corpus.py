"""Write the labelled identifier corpora: ``corpus.csv`` and ``heldout.csv``.

Run ``python tests/corpora/identifiers/make_corpus.py`` from the
repository's root. It writes the same bytes every time (a seeded random
generator, no clock). Each file has the columns ``kind,text``: ``kind`` is
``benign`` or one of the Safe Harbor kinds the detector must find (name,
date, phone, ssn, address, zip, email, url, ip, mrn, serial).

1. ``corpus.csv`` is the set the detector is measured and tuned against:
   strings shaped like what 3D-printing lab staff type into product,
   comment and reason fields, DICOM series descriptions and model file
   names; half carry an identifier, half are benign lab text.
2. ``heldout.csv`` is built from other names, streets, numbers and
   sentence templates. It was written before the detector was tuned and
   is only reported, never tuned against; keep it that way by never
   changing the detector to pass one of its rows.

Every identifier here is fictional: 555-01xx telephone numbers, SSNs and
record numbers from a seeded generator, example.org addresses.
"""

import csv
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent

MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
STATES = ["MA", "NY", "CA", "TX", "OH", "IL", "PA", "MN", "WA", "GA", "NC", "MI"]


def ordinal(day: int) -> str:
    suffix = "th" if 10 <= day % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def casing(rng: random.Random, text: str) -> str:
    """Mostly as typed, sometimes shouted or all lower case."""
    roll = rng.random()
    if roll < 0.12:
        return text.upper()
    if roll < 0.22:
        return text.lower()
    return text


# --- the main corpus ------------------------------------------------------------------------

FIRST = [
    "John", "Mary", "James", "Patricia", "Robert", "Jennifer", "Michael", "Linda",
    "William", "Elizabeth", "David", "Barbara", "Richard", "Susan", "Joseph", "Jessica",
    "Thomas", "Sarah", "Charles", "Karen", "Daniel", "Nancy", "Matthew", "Lisa",
    "Anthony", "Betty", "Donald", "Sandra", "Steven", "Ashley", "Paul", "Kimberly",
    "Andrew", "Emily", "Joshua", "Donna", "Kenneth", "Michelle", "Kevin", "Carol",
    "Brian", "Amanda", "George", "Melissa", "Timothy", "Deborah", "Maria", "Jose",
    "Luis", "Carlos", "Juan", "Ana", "Wei", "Mohammed", "Fatima", "Aisha",
]  # fmt: skip
LAST = [
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis",
    "Rodriguez", "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson",
    "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson",
    "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson", "Walker",
    "Young", "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores",
    "Green", "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell", "Mitchell",
    "Carter", "Roberts", "Patel", "Chen", "Kowalski", "O'Brien", "McDonald",
]  # fmt: skip
STREETS = [
    "Elm Street", "Oak Avenue", "Maple Drive", "Washington Blvd", "Main St",
    "Park Road", "Cedar Ln", "Pine Court", "Lakeview Terrace", "Sunset Boulevard",
    "W 33rd St", "Highland Ave", "Church Street", "Mill Rd", "River Way",
]  # fmt: skip
CITIES = ["Springfield", "Boston", "Columbus", "Austin", "Albany", "Fresno", "Rochester"]

PRODUCTS = [
    "Mimics 25", "Mimics 26.0", "3-matic 17", "3-matic 18.0", "3D Slicer 5.6",
    "3D Slicer 5.6.2", "Materialise Mimics Innovation Suite", "Stratasys J850",
    "Stratasys J750 Digital Anatomy", "Formlabs Form 3B", "Form 3B+", "Form 4B",
    "VeroClear", "VeroClear RGD810", "BioMed Clear", "BioMed Amber", "TissueMatrix",
    "Agilista-3200", "Ultimaker S5", "Geomagic Freeform", "Meshmixer 3.5", "Blender 4.1",
    "Simpleware ScanIP 2023.12", "ITK-SNAP 4.0", "OsiriX MD 14", "Horos 4.0.1",
    "D2P 1.0", "Vitrea 7.15", "nTopology 4.2", "Agilus30 Clear", "Draft Resin",
    "Elastic 50A", "Surgical Guide Resin", "PolyJet", "Objet260 Connex3", "Fusion 360",
    "SolidWorks 2024", "Rhino 8", "Netfabb 2025", "PreForm 3.39", "GrabCAD Print",
    "Cura 5.7", "Synapse 3D", "TeraRecon Intuition", "Axial3D", "Ricoh 3D",
]  # fmt: skip
EPONYMS = [
    "Fontan", "Glenn", "Norwood", "Ross", "Bentall", "Ebstein anomaly",
    "Tetralogy of Fallot", "Wilms tumor", "Le Fort I", "Chiari I malformation",
    "Blalock-Taussig shunt", "Rastelli", "Jatene arterial switch", "Sano shunt",
    "Kawashima", "Damus-Kaye-Stansel", "Marfan syndrome", "Williams syndrome",
    "Turner syndrome", "Alagille syndrome", "DiGeorge syndrome", "Ewing sarcoma",
    "Hodgkin lymphoma", "Whipple", "Nissen", "Roux-en-Y", "Ilizarov frame",
    "Salter-Harris II", "Weber B", "Colles fracture", "Lisfranc injury",
    "Schatzker VI", "Smith fracture", "Jones fracture", "Hill-Sachs lesion", "Bankart",
    "Monteggia", "Kawasaki disease", "Crohn disease", "Mustard", "Senning", "Konno",
    "Nikaidoh", "hemi-Fontan", "Pierre Robin sequence", "Crouzon syndrome",
    "Apert syndrome", "Treacher Collins", "Moyamoya", "Hounsfield units",
]  # fmt: skip
ANATOMY = [
    "left ventricle", "aortic root", "mandible", "pelvis", "right kidney", "liver segments",
    "pulmonary arteries", "skull base", "orbital floor", "tibial plateau", "acetabulum",
    "scapula", "L4-L5", "C1-C2", "aortic arch", "RVOT", "VSD", "ASD secundum",
    "coronary arteries", "maxilla", "zygoma", "femoral head", "sacrum", "trachea",
    "pancreas head", "portal vein", "circle of Willis", "sinus of Valsalva",
]  # fmt: skip
SLICES = ["0.5", "0.625", "1.0", "1.25"]
SERIES = [
    "AX 0.625 STND", "CTA HEAD W CONTRAST", "COR 1.0 BONE", "SAG T1 MPRAGE",
    "AX 3D FIESTA", "Cardiac 75% 0.5mm", "CTA CHEST ECG GATED", "3D SPGR POST",
    "AX T2 FLAIR", "Bone 0.6 Hr64", "DE_Body 1.0 Qr40 3", "MIP COR 5mm",
    "PHASE 70% BEST DIAST", "Scout", "AX 1.25 SOFT", "CT ABD PEL W CON",
]  # fmt: skip
BENIGN_FILES = [
    "heart_v2_final.stl", "liver_segments_2026-07.3mf", "mandible_guide_rev3.stl",
    "pelvis_L_hemi.obj", "TOF_repair_model_v4.stl", "aorta_case014.stl",
    "skull_LeFort1_plan.stl", "kidney_R_wilms.stl", "fontan_baffle_v1.stl",
    "Series5_0.625mm.stl", "KIDNEY-LEFT.STL", "aortic.root.v1.2.stl",
    "J850_tray_12.stl", "glenn_shunt_final_final.stl", "ross_autograft.ply",
    "cutting_guide_fibula_v7.3mf", "tibia-plateau-plate.obj", "bentall_graft_2025.stl",
    "ventricle_blood_pool_v3.stl", "orbit_floor_mirror.stl", "model_0001.stl",
    "scapula_glenoid_guide.stl", "mimics25_export_heart.stl", "pt_model_v2.stl",
]  # fmt: skip


def rand_digits(rng: random.Random, n: int) -> str:
    return str(rng.randint(1, 9)) + "".join(str(rng.randint(0, 9)) for _ in range(n - 1))


def main_name(rng: random.Random) -> str:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    form = rng.choice(
        [
            f"{first} {last}",
            f"{last}, {first}",
            f"{last.upper()}, {first.upper()}",
            f"{first} {rng.choice('ABCDEFGHJKLMNPRST')}. {last}",
            f"{last}^{first}",
            f"{first.upper()} {last.upper()}",
        ]
    )
    template = rng.choice(
        [
            "{n}",
            "Mimics run by {n}",
            "Segmented by {n}, checked twice",
            "Patient {n}",
            "pt {n} - model for OR",
            "Spoke with {n} about the model",
            "Model for {n}",
            "Name: {n}",
            "Surgeon reviewed with {n} on rounds",
            "Printed for {n} (cardiology)",
            "{n} asked for a second copy",
            "Withdrawn at request of {n}",
            "called {n} re: consent",
        ]
    )
    return template.format(n=form)


def main_cued_name(rng: random.Random) -> str:
    last = rng.choice(LAST)
    return rng.choice(
        [
            f"Mr {last} to review",
            f"Mrs. {last} consented",
            f"Ms {last}",
            f"Dr {last}",
            f"per Dr. {last}",
            f"pt {last} scanned twice",
            f"patient: {last}",
            f"discussed with Mr. {last}'s family",
        ]
    )


def main_date(rng: random.Random) -> str:
    year = rng.randint(1930, 2025)
    month = rng.randint(1, 12)
    day = rng.randint(1, 28)
    mon = MONTHS[month - 1]
    yy = year % 100
    form = rng.choice(
        [
            f"{ordinal(day)} {mon} {year}",
            f"{mon} {ordinal(day)}, {year}",
            f"{mon} {day}, {year}",
            f"{day} {mon[:3]} {year}",
            f"{mon[:3]}. {day} {year}",
            f"{month:02d}/{day:02d}/{year}",
            f"{month}/{day}/{year}",
            f"{month}/{day}/{yy:02d}",
            f"{year}-{month:02d}-{day:02d}",
            f"{year}/{month:02d}/{day:02d}",
            f"{day}.{month}.{yy:02d}",
            f"{day:02d}.{month:02d}.{year}",
            f"{month:02d}-{day:02d}-{year}",
            f"{day}-{mon[:3]}-{year}",
            f"{day:02d}{mon[:3].upper()}{year}",
            f"the {ordinal(day)} of {mon} {year}",
            f"{mon} {ordinal(day)}",
        ]
    )
    template = rng.choice(
        [
            "DOB {d}",
            "DOB: {d}",
            "born {d}",
            "b. {d}",
            "scanned {d}",
            "Surgery on {d}, model needed 2 days before",
            "Printed {d}",
            "{d}",
            "CT {d} reviewed",
            "date of birth {d}",
            "Withdrawn: duplicate of the case entered {d}",
        ]
    )
    return template.format(d=form)


def glued_date(rng: random.Random) -> str:
    year, month, day = rng.randint(1930, 2020), rng.randint(1, 12), rng.randint(1, 28)
    return rng.choice(
        [
            f"DOB{year}-{month:02d}-{day:02d}",
            f"DOB {year}/{month:02d}/{day:02d}",
            f"dob:{month:02d}/{day:02d}/{year}",
            f"DOB{year}{month:02d}{day:02d}",
        ]
    )


def main_phone(rng: random.Random) -> str:
    area = rng.choice(["617", "212", "415", "312", "713", "206", "404", "508", "614"])
    line = f"01{rng.randint(0, 99):02d}"
    form = rng.choice(
        [
            f"({area}){'555'}-{line}",
            f"({area}) 555-{line}",
            f"{area}-555-{line}",
            f"{area}.555.{line}",
            f"{area} 555 {line}",
            f"{area}555{line}",
            f"+1 {area} 555 {line}",
            f"+1-{area}-555-{line}",
            f"1-{area}-555-{line}",
            f"1 ({area}) 555-{line}",
            f"{area}-555-{line} x{rng.randint(2, 999)}",
            f"555-{line}",
            f"+1{area}555{line}",
        ]
    )
    template = rng.choice(
        [
            "call {p}",
            "Tel: {p}",
            "cell {p} (mother)",
            "{p}",
            "pager {p}",
            "Reach surgeon at {p} before printing",
            "fax {p}",
            "phone {p}, ask for the lab",
        ]
    )
    return template.format(p=form)


def ssn_value(rng: random.Random) -> tuple[str, str, str]:
    return (
        f"{rng.randint(100, 665)}",
        f"{rng.randint(10, 99)}",
        f"{rng.randint(1000, 9999)}",
    )


def main_ssn(rng: random.Random) -> str:
    a, b, c = ssn_value(rng)
    return rng.choice(
        [
            f"SSN {a}-{b}-{c}",
            f"SSN {a} {b} {c}",
            f"SSN: {a}{b}{c}",
            f"ssn#{a}-{b}-{c}",
            f"{a}-{b}-{c}",
            f"{a} {b} {c}",
            f"social security {a}{b}{c}",
            f"Social Security No. {a}-{b}-{c}",
            f"SS# {a} {b} {c}",
            f"SSN{a}{b}{c}",
            f"insurance form had SSN {a}-{b}-{c} on it",
        ]
    )


def main_address(rng: random.Random) -> str:
    number = rng.randint(1, 9999)
    street = rng.choice(STREETS)
    city = rng.choice(CITIES)
    state = rng.choice(STATES)
    zipc = f"{rng.randint(1000, 99999):05d}"
    form = rng.choice(
        [
            f"{number} {street}",
            f"{number} {street}, {city} {state} {zipc}",
            f"{number} {street}, Apt {rng.randint(1, 40)}{rng.choice('ABC')}",
            f"{number} {street.upper()}",
            f"PO Box {rng.randint(10, 9999)}",
            f"{number} N {street}",
        ]
    )
    template = rng.choice(["lives at {a}", "{a}", "ship model to {a}", "Home: {a}", "address {a}"])
    return template.format(a=form)


def main_zip(rng: random.Random) -> str:
    zipc = f"{rng.randint(1000, 99999):05d}"
    return rng.choice(
        [
            f"{rng.choice(CITIES)}, {rng.choice(STATES)} {zipc}",
            f"ZIP {zipc}",
            f"zip code {zipc}",
            f"zip {zipc}-{rng.randint(1000, 9999)}",
            f"from {rng.choice(CITIES)} {rng.choice(STATES)} {zipc}",
        ]
    )


def main_email(rng: random.Random) -> str:
    first, last = rng.choice(FIRST).lower(), rng.choice(LAST).lower().replace("'", "")
    form = rng.choice(
        [
            f"{first}.{last}@example.org",
            f"{first[0]}{last}@example.com",
            f"{last}{rng.randint(1, 99)}@mail.example.net",
            f"{first}_{last}+3d@example.org",
            f"{first.upper()}.{last.upper()}@EXAMPLE.ORG",
        ]
    )
    return rng.choice(["{e}", "mail {e}", "send STL to {e}", "contact: {e}"]).format(e=form)


def main_url(rng: random.Random) -> str:
    form = rng.choice(
        [
            f"https://portal.example.org/patient/{rand_digits(rng, 6)}",
            f"http://example.com/{rng.choice(LAST).lower()}",
            f"www.example.org/chart?id={rand_digits(rng, 7)}",
            f"https://drive.example.com/s/{rand_digits(rng, 5)}ab",
            f"example-hospital.org/pts/{rng.choice(LAST).lower()}",
        ]
    )
    return rng.choice(["{u}", "files at {u}", "see {u} for scans"]).format(u=form)


def main_ip(rng: random.Random) -> str:
    form = rng.choice(
        [
            f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
            f"192.168.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
            f"172.16.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
            f"2001:db8::{rng.randint(1, 9999)}",
        ]
    )
    return rng.choice(["{i}", "PACS node {i}", "pushed from {i}", "workstation IP {i}"]).format(
        i=form
    )


def main_mrn(rng: random.Random) -> str:
    n = rand_digits(rng, rng.randint(5, 9))
    return rng.choice(
        [
            f"MRN {n}",
            f"MRN: {n}",
            f"MRN#{n}",
            f"mrn-{n}",
            f"MR# {n}",
            f"chart {n}",
            f"Chart #{n}",
            f"acct {n}",
            f"Account No. {n}",
            f"accession {n}",
            f"Acc# A{n}",
            f"medical record number {n}",
            f"Med Rec No {n}",
            f"FIN {n}",
            f"MRN{n}",
            f"record no. {n}",
            f"enc # {n}",
            f"see chart {n} for history",
            f"Wrong patient, belonged to MRN {n}",
        ]
    )


def main_serial(rng: random.Random) -> str:
    n = rand_digits(rng, rng.randint(6, 9))
    code = rng.choice(["PJN", "RNB", "XK", "AB", "M"]) + n + rng.choice(["", "H", "S"])
    return rng.choice(
        [
            f"SN {n}",
            f"S/N: {code}",
            f"serial no. {code}",
            f"device serial {code}",
            f"pacemaker SN# {code}",
            f"implant serial number {n}",
            f"Serial {code} explanted",
            f"sn:{n}",
        ]
    )


def main_file_name(rng: random.Random) -> str:
    first, last = rng.choice(FIRST), rng.choice(LAST).replace("'", "")
    year, month, day = rng.randint(1930, 2020), rng.randint(1, 12), rng.randint(1, 28)
    mrn = rand_digits(rng, 7)
    part = rng.choice(["heart", "liver", "skull", "pelvis", "aorta", "mandible"])
    ext = rng.choice(["stl", "obj", "3mf", "ply", "STL"])
    return rng.choice(
        [
            ("name", f"{last}_{first}_{part}.{ext}"),
            ("name", f"{first.lower()}.{last.lower()}.{part}.{ext}"),
            ("name", f"{last.upper()}-{first.upper()}_{part}_v2.{ext}"),
            ("mrn", f"{last}_{first}_MRN{mrn}_DOB{year}-{month:02d}-{day:02d}.{ext}"),
            ("mrn", f"MRN{mrn}_{part}.{ext}"),
            ("mrn", f"{part}_mrn-{mrn}_final.{ext}"),
            ("date", f"DOB{year}{month:02d}{day:02d}_{part}.{ext}"),
            ("date", f"{part}_{year}-{month:02d}-{day:02d}.{ext}"),
            ("mrn", f"acc{mrn}_{part}.{ext}"),
            ("ssn", f"{ssn_value(rng)[0]}-45-{rand_digits(rng, 4)}_{part}.{ext}"),
        ]
    )


POSITIVE_MAKERS = [
    ("name", main_name, 44),
    ("name", main_cued_name, 16),
    ("date", main_date, 40),
    ("date", glued_date, 10),
    ("phone", main_phone, 30),
    ("ssn", main_ssn, 22),
    ("address", main_address, 18),
    ("zip", main_zip, 12),
    ("email", main_email, 12),
    ("url", main_url, 10),
    ("ip", main_ip, 8),
    ("mrn", main_mrn, 34),
    ("serial", main_serial, 14),
]


def benign_rows(rng: random.Random) -> list[str]:
    rows: list[str] = []
    rows += PRODUCTS
    rows += EPONYMS
    rows += BENIGN_FILES
    rows += SERIES
    for _ in range(40):
        rows.append(
            rng.choice(
                [
                    f"{rng.choice(PRODUCTS)}, then {rng.choice(PRODUCTS)}",
                    f"Printed on {rng.choice(PRODUCTS)} in {rng.randint(2, 30)} h",
                    f"{rng.choice(EPONYMS)} planning, {rng.choice(ANATOMY)}",
                    f"Model of the {rng.choice(ANATOMY)} for {rng.choice(EPONYMS)}",
                    f"{rng.choice(ANATOMY).capitalize()}, {rng.choice(SERIES)}",
                    f"Segmented in {rng.choice(PRODUCTS)} at {rng.choice(SLICES)} mm",
                    f"{rng.choice(EPONYMS)} s/p repair, {rng.randint(2, 14)} months post-op",
                    f"Reprinted in {rng.choice(PRODUCTS)} after support failure",
                ]
            )
        )
    rows += [
        "0.625 mm slices, 120 kVp, 250 mAs",
        "Layer height 0.05 mm",
        "Slice thickness 1.25 mm",
        "Wall thickness 2 mm, hollowed",
        "Volume 123.4 cm3",
        "1:1 scale",
        "Scaled 1:2 for the tray",
        "HU threshold 226-3071",
        "Q21.3",
        "ICD-10 Q22.5",
        "C64.1 right kidney",
        "Q25.1 coarctation",
        "CPT 0559T, 0560T x2",
        "v2.1.3",
        "version 2024.2",
        "build 5.6.2-rc1",
        "2026-07",
        "July 2026",
        "Q3 2026",
        "FY2025",
        "printed 2026-07",
        "since 2019",
        "in the 1990s",
        "Age 45",
        "3 months post-op",
        "Print time 14 h 32 min",
        "took 2 days to post-process",
        "Printer J850-01",
        "Form 3B #2",
        "Printer FL-3B-02",
        "tray 12 of 14",
        "Part 3/4",
        "512 x 512, 0.7 mm pixels",
        "Lot 2319XR resin",
        "Resin lot 0042",
        "Grant-funded model",
        "Mark the resection margin in red",
        "Will reprint after QA",
        "May need a second print",
        "Frank discussion with the team about cost",
        "Hope to use it in the OR",
        "Rose-colored resin for the myocardium",
        "Summer intern segmented the vessels",
        "Surgeon asked for a hinge at the mandible",
        "Per surgeon request, cut plane at the RVOT",
        "Patient-specific cutting guide",
        "Patient moved, motion artifact on series 4",
        "Parents shown the model before surgery",
        "Case withdrawn: entered twice",
        "Withdrawn: scan quality too poor",
        "Duplicate entry",
        "Consent withdrawn by family",
        "Wrong site selected",
        "Test case, please ignore",
        "No comments",
        "n/a",
        "Dr. approved the design",
        "Reviewed by the attending before printing",
        "Run by the 3D lab, checked by radiology",
        "Model for the cardiology conference",
        "For Fontan conversion planning",
        "Glenn to Fontan, 2 stage",
        "Ross-Konno procedure",
        "Norwood with Sano shunt",
        "Bentall vs valve-sparing root, decide on model",
        "Ebstein anomaly, cone repair",
        "Le Fort I with 5 mm advancement",
        "Chiari decompression",
        "Wilms tumor, nephron-sparing",
        "Smith fracture, distal radius",
        "Jones fracture fixation",
        "Williams syndrome, supravalvar AS",
        "Down syndrome, AVSD",
        "Marfan, aortic root 48 mm",
        "Kawasaki, coronary aneurysms 8 mm",
        "Mimics 25 / 3-matic 17",
        "Mimics 25 -> 3-matic 17 -> PreForm",
        "Stratasys J850 with VeroClear and TissueMatrix",
        "BioMed Clear V1, washed 20 min",
        "Agilista, water-soluble support",
        "Ultimaker S5, PLA, 0.2 mm",
        "Form 3B+, Surgical Guide Resin, 100 um",
        "J750 DAP, GelMatrix, 18 h",
        "3D Slicer 5.6 + SlicerHeart",
        "Segmentation by threshold + region growing",
        "Sent to Materialise for printing",
        "Printed by Ricoh 3D for Healthcare",
        "Vendor: Axial3D",
        "3 copies: OR, clinic, family",
        "Rev 3 after surgeon feedback",
        "Model 2 of 3",
        "Used in OR on day of surgery",
        "Changed plan from Fontan to Glenn",
        "Sterilized: STERRAD 100NX",
        "Autoclave 121 C, 30 min",
        "Cost 450 USD",
        "2.5 h segmentation, 1 h CAD",
        "45 min design time",
        "Revision 12",
        "Study 1.2.840.113619",
        "Series 5, 0.625 mm",
        "series 3: 3D volume",
        "Room 4 printer",
        "Building B lab",
        "Tray 7",
        "Job 2231",
        "Order 117",
        "Printed 14 parts",
        "12 mm screw holes",
        "6.5 mm cannulated screws",
        "10 x 12 x 8 cm",
        "280 x 175 x 200 mm build volume",
        "Infill 15%",
        "Temp 210 C",
        "Pressure 120/80 during scan",
        "HR 72 bpm, gated",
        "EF 55%",
        "75% R-R phase",
        "BSA 1.2 m2",
        "Weight 12.4 kg",
        "1 of 2 kidneys",
        "Left > right",
        "Tumor 4.5 x 3.2 cm",
        "Margin 10 mm",
    ]
    return [casing(rng, row) if rng.random() < 0.5 else row for row in rows]


def build_main() -> list[tuple[str, str]]:
    rng = random.Random(15)
    rows: list[tuple[str, str]] = []
    for kind, make, count in POSITIVE_MAKERS:
        for _ in range(count):
            rows.append((kind, casing(rng, make(rng)) if kind != "name" else make(rng)))
    for _ in range(30):
        rows.append(main_file_name(rng))
    rows += [("benign", text) for text in benign_rows(rng)]
    return rows


# --- the held-out corpus: other names, streets and templates --------------------------------

HELD_FIRST = [
    "Priya", "Oluwaseun", "Dmitri", "Siobhan", "Mateo", "Yuki", "Ingrid", "Tobias",
    "Chiara", "Rashid", "Beatriz", "Kwame", "Harriet", "Declan", "Lucia", "Ngozi",
    "Ethan", "Olivia", "Noah", "Harper", "Liam", "Zoe", "Caleb", "Nora",
]  # fmt: skip
HELD_LAST = [
    "Raman", "Adeyemi", "Volkov", "Gallagher", "Ferreira", "Tanaka", "Lindqvist",
    "Schultz", "Romano", "Haddad", "Costa", "Mensah", "Whitaker", "Brennan", "Okafor",
    "Fischer", "Murphy", "Reyes", "Cooper", "Bennett", "Hughes", "Price", "Foster",
]  # fmt: skip
HELD_STREETS = [
    "Birchwood Drive", "Chestnut St.", "Harbor View Rd", "Franklin Avenue", "Aspen Ct",
    "Quarry Lane", "Mission St", "Orchard Blvd",
]  # fmt: skip


def heldout_positive(rng: random.Random) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []

    def name() -> tuple[str, str]:
        return rng.choice(HELD_FIRST), rng.choice(HELD_LAST)

    for _ in range(24):
        f, s = name()
        rows.append(
            (
                "name",
                rng.choice(
                    [
                        f"segmentation done by {f} {s}",
                        f"{s}, {f} - model approved",
                        f"Thanks {f} {s} for the quick turnaround",
                        f"Family of {f} {s} declined",
                        f"requested by {f} {s.upper()}",
                        f"CAD: {f} {s}",
                        f"Ref. physician {s}, {f}",
                        f"{f} {s}'s model",
                    ]
                ),
            )
        )
    for _ in range(26):
        y, m, d = rng.randint(1935, 2024), rng.randint(1, 12), rng.randint(1, 28)
        mon = MONTHS[m - 1]
        rows.append(
            (
                "date",
                rng.choice(
                    [
                        f"admitted {mon[:3]} {ordinal(d)} {y}",
                        f"Birth date: {d:02d}/{m:02d}/{y}",
                        f"surgery scheduled {y}.{m:02d}.{d:02d}",
                        f"{mon.upper()} {d} {y} scan",
                        f"dob={y}{m:02d}{d:02d}",
                        f"seen {m}-{d}-{y % 100:02d}",
                        f"on {ordinal(d)} {mon}, {y}",
                        f"DOB - {d} {mon} {y}",
                        f"died {mon} {d}, {y}",
                    ]
                ),
            )
        )
    for _ in range(16):
        area, line = rng.choice(["802", "919", "503", "720"]), f"01{rng.randint(0, 99):02d}"
        rows.append(
            (
                "phone",
                rng.choice(
                    [
                        f"Mom's cell: {area}/555-{line}",
                        f"text ({area})-555-{line} when ready",
                        f"Ph. {area}.555.{line}",
                        f"contact # 1.{area}.555.{line}",
                        f"after hours {area} 555-{line}",
                        f"+1 ({area}) 555 {line}",
                    ]
                ),
            )
        )
    for _ in range(12):
        a, b, c = ssn_value(rng)
        rows.append(
            (
                "ssn",
                rng.choice(
                    [
                        f"Soc Sec #: {a}-{b}-{c}",
                        f"SSN={a}{b}{c}",
                        f"ss no {a} {b} {c}",
                        f"patient SSN is {a}-{b}-{c}",
                        f"last SSN on file {a}.{b}.{c}",
                    ]
                ),
            )
        )
    for _ in range(12):
        rows.append(
            (
                "address",
                rng.choice(
                    [
                        f"home address {rng.randint(1, 999)} {rng.choice(HELD_STREETS)}",
                        f"{rng.randint(10, 9999)} {rng.choice(HELD_STREETS)} #{rng.randint(1, 30)}",
                        f"moved to {rng.randint(1, 999)} {rng.choice(HELD_STREETS)}, Burlington VT",
                        f"P.O. Box {rng.randint(1, 999)}, Durham NC",
                    ]
                ),
            )
        )
    for _ in range(8):
        z = f"{rng.randint(1000, 99999):05d}"
        rows.append(
            (
                "zip",
                rng.choice(
                    [f"Burlington, VT {z}", f"postal code {z}", f"ZIP: {z}-0042", f"Durham NC {z}"]
                ),
            )
        )
    for _ in range(8):
        f, s = name()
        rows.append(
            (
                "email",
                rng.choice(
                    [
                        f"reply to {f.lower()}{s.lower()}@example.edu please",
                        f"<{s.lower()}.{f[0].lower()}@hospital.example.org>",
                        f"email:{f.lower()}@example.co.uk",
                    ]
                ),
            )
        )
    for _ in range(6):
        rows.append(
            (
                "url",
                rng.choice(
                    [
                        f"uploaded to https://box.example.edu/f/{rand_digits(rng, 8)}",
                        f"link: http://www.example.edu/~{rng.choice(HELD_LAST).lower()}",
                        f"ftp://files.example.org/cases/{rand_digits(rng, 5)}",
                    ]
                ),
            )
        )
    for _ in range(6):
        rows.append(
            (
                "ip",
                rng.choice(
                    [
                        f"from host 10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}:8080",  # noqa: E501
                        f"IP={rng.randint(11, 99)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",  # noqa: E501
                        "fe80::1ff:fe23:4567:890a",
                    ]
                ),
            )
        )
    for _ in range(18):
        n = rand_digits(rng, rng.randint(6, 10))
        rows.append(
            (
                "mrn",
                rng.choice(
                    [
                        f"Hosp # {n}",
                        f"medical record: {n}",
                        f"patient ID {n}",
                        f"Acct#: {n}",
                        f"accession no {n}",
                        f"chart no. {n}",
                        f"EMPI {n}",
                        f"MRN = {n}",
                        f"Encounter {n}",
                    ]
                ),
            )
        )
    for _ in range(8):
        n = rand_digits(rng, 8)
        rows.append(
            (
                "serial",
                rng.choice(
                    [
                        f"valve serial # {n}",
                        f"SN-{n}",
                        f"S/N {rng.choice(['QX', 'BT'])}{n}",
                        f"Device SN: {n}",
                    ]
                ),
            )
        )
    for _ in range(14):
        f, s = name()
        y, m, d = rng.randint(1935, 2024), rng.randint(1, 12), rng.randint(1, 28)
        n = rand_digits(rng, 8)
        rows.append(
            rng.choice(
                [
                    ("name", f"{f}-{s}-aortic-root.stl"),
                    ("name", f"{s.upper()}_{f.upper()}.obj"),
                    ("mrn", f"mandible.MRN.{n}.stl"),
                    ("date", f"skull_{d:02d}{m:02d}{y}_dob.3mf"),
                    ("mrn", f"{s}{f[0]}_mrn{n}.stl"),
                    ("date", f"heart-{y}.{m:02d}.{d:02d}.stl"),
                ]
            )
        )
    return rows


def heldout_benign(rng: random.Random) -> list[tuple[str, str]]:
    texts = [
        "Materialise Magics 27 for support generation",
        "Printed on a Stratasys Digital Anatomy printer",
        "Formlabs Form 3L, Model Resin V3",
        "Carbon M2, KeySplint Soft",
        "EnvisionTEC Perfactory",
        "HP Multi Jet Fusion 5200, PA12",
        "Prusa i3 MK3S, PETG",
        "Bambu Lab X1 Carbon",
        "Elegoo Mars 3",
        "Anycubic Photon Mono X",
        "Siemens syngo.via",
        "Philips IntelliSpace Portal",
        "GE AW Server 3.2",
        "Vital Images Vitrea Advanced",
        "Medviso Segment CMR",
        "Mevislab 3.7",
        "Amira 2023.1",
        "Seg3D 2.4",
        "Autodesk Meshmixer",
        "Geomagic Wrap 2021",
        "Rastelli with RV-PA conduit",
        "Arterial switch (Jatene), coronary transfer",
        "Double switch: Senning + Rastelli",
        "Kawashima to Fontan completion",
        "Takeuchi repair of ALCAPA",
        "Yasui procedure",
        "Nikaidoh for TGA/VSD/PS",
        "Ravitch for pectus",
        "Nuss bar sizing model",
        "Ponseti casting reference",
        "Pavlik harness follow-up",
        "Perthes disease, femoral head",
        "Legg-Calve-Perthes",
        "Scheuermann kyphosis",
        "Klippel-Feil",
        "Sprengel deformity",
        "Madelung deformity",
        "Blount disease",
        "Osgood-Schlatter",
        "Morquio syndrome",
        "Goldenhar syndrome",
        "Binder syndrome",
        "Moebius",
        "Dandy-Walker",
        "Arnold-Chiari II",
        "Galen vein malformation",
        "Circle of Willis aneurysm, 7 mm",
        "Stanford type A dissection",
        "DeBakey I",
        "Crawford extent II TAAA",
        "Fallot with absent pulmonary valve",
        "Shone complex",
        "Taussig-Bing anomaly",
        "Scimitar syndrome",
        "Kommerell diverticulum",
        "Bochdalek hernia",
        "Meckel diverticulum",
        "Hirschsprung",
        "Zenker diverticulum",
        "Barrett esophagus",
        "Pancoast tumor",
        "Klatskin tumor",
        "Warthin tumor",
        "Brodie abscess",
        "Baker cyst",
        "Tommy John reconstruction",  # a nickname of a procedure: a hard case
        "Q20.3 TGA",
        "Q23.4 HLHS",
        "Q75.0 craniosynostosis",
        "M41.1 juvenile scoliosis",
        "S82.1 tibial plateau",
        "D33.2 brain, benign",
        "CT 0.5 mm, 100 kV, CTDIvol 3.1",
        "MR 3T, 1 mm isotropic",
        "4D flow, 30 phases",
        "US 3D volume, 0.3 mm",
        "CBCT 0.2 mm voxel",
        "Scale 0.9 for the tray",
        "Printed at 50 um",
        "Support angle 45 deg",
        "Post-cure 60 C, 60 min",
        "IPA wash 2 x 10 min",
        "Shore 50A",
        "Tensile 65 MPa",
        "Revision B",
        "2025-11",
        "Nov 2025",
        "2025",
        "Q1 2027",
        "week 32",
        "Pod 2 printer",
        "Lab 3, bench 2",
        "Box 14 in the archive",
        "Shelf C",
        "Ticket 4412",
        "Job #5531",
        "Batch 77",
        "Series 601: CTA 0.6 I26f",
        "Ax 2.0 Br40 3",
        "COR MIP 10/2",
        "VR heart",
        "SA CINE",
        "MRA TOF 3D",
        "Segmentation_v3_final_AB.stl",
        "TGA_switch_plan.obj",
        "pectus_nuss_bar.stl",
        "hip_perthes_L.3mf",
        "radius_osteotomy_12deg.stl",
        "cranio_vault_rev2.ply",
        "Discussed with cardiology and CT surgery",
        "Approved at tumor board",
        "Family wanted to keep the model",
        "Model damaged in shipping, reprinted",
        "Printing failed twice, resin tank cloudy",
        "Not printed: insurance declined",
        "Entered at the wrong site",
        "Withdrawn: study arm closed",
        "The attending surgeon reviewed it",
        "Second opinion from another center",
    ]
    return [("benign", casing(rng, t) if rng.random() < 0.4 else t) for t in texts]


def build_heldout() -> list[tuple[str, str]]:
    rng = random.Random(1515)
    return heldout_positive(rng) + heldout_benign(rng)


def write(path: Path, rows: list[tuple[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["kind", "text"])
        writer.writerows(rows)


if __name__ == "__main__":
    write(HERE / "corpus.csv", build_main())
    write(HERE / "heldout.csv", build_heldout())

"""Write heldout2.csv: a second held-out corpus, about people's names.

The first held-out corpus (make_corpus.py) showed that names are the
detector's weak kind. This one was written, with its own name pools,
sentence templates and benign texts, and committed before the detector
was changed to find more names (issue 15). Its name pools were chosen
without looking at any name list the detector reads: given names and
surnames in common use among US patients and staff of South Asian, West
African, East Asian, Hispanic, Slavic and Arabic descent, and modern US
given names. Its benign half is lab text in which given names, eponyms
and product colours that are also names appear (Amber, Grace, Ruby, Jade,
Tango, Vero, Ross, Glenn...).

Run it to rewrite heldout2.csv; the test checks the file is what it
writes. Reported only, never asserted or tuned against.
"""

import csv
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent

FIRST = [
    # South Asian
    "Aarav", "Ananya", "Vikram", "Deepika", "Rohan", "Sanjana", "Arjun", "Kavya",
    "Ishaan", "Meera", "Lakshmi", "Rahul",
    # West African
    "Chinedu", "Adaeze", "Kofi", "Abena", "Babatunde", "Folasade", "Emeka", "Yaw",
    "Chiamaka", "Oluwadamilare",
    # East Asian, romanised
    "Hiroshi", "Mei", "Jiahui", "Xiaoling", "Minjun", "Haruto", "Jun", "Thanh",
    "Linh", "Seo-yeon",
    # Hispanic
    "Alejandro", "Valentina", "Santiago", "Ximena", "Joaquin", "Camila", "Diego",
    "Guadalupe", "Itzel",
    # Slavic
    "Aleksandr", "Svetlana", "Bogdan", "Katarzyna", "Miroslav", "Yelena", "Wojciech",
    # Arabic
    "Omar", "Layla", "Yusuf", "Khalid", "Noor", "Hamza", "Zainab", "Tariq",
    # modern US
    "Aiden", "Nevaeh", "Jaxon", "Brayden", "Kinsley", "Paisley", "Skyler", "Jayden",
    "Maverick", "Oakley", "Kaylee", "Everly", "Greyson", "Brooklyn",
]  # fmt: skip
LAST = [
    "Iyer", "Chatterjee", "Reddy", "Bhattacharya", "Nair", "Sharma", "Desai", "Menon",
    "Okonkwo", "Boateng", "Asante", "Oyelaran", "Nwosu", "Owusu", "Danso", "Eze",
    "Nakamura", "Zhang", "Liu", "Park", "Choi", "Watanabe", "Huang", "Tran", "Pham",
    "Castillo", "Vargas", "Mendoza", "Gutierrez", "Navarro", "Delgado", "Ochoa",
    "Ivanova", "Petrov", "Nowak", "Wisniewski", "Kuznetsov", "Sokolov", "Horvat",
    "Al-Sayed", "Khoury", "Nasser", "Hakimi", "Mansour", "Abboud", "Saleh",
    "Dunbar", "Prescott", "Holloway", "Caldwell", "Whitfield", "Kowalczyk",
]  # fmt: skip

TEXT_TEMPLATES = [
    "Model for {f} {s} ready for pickup",
    "Per {f} {s}, reprint in white",
    "{f} {s} (mother) called about the model",
    "Surgeon: {f} {s}",
    "Seg: {f} {s}",
    "Approved by {f} {s} on rounds",
    "{s} {f} pelvis",
    "{f} {s} - DORV case",
    "Case of {f} {s}, 7 yo",
    "Handed to {f} {s} at clinic",
    "Call back {f} {s} about the guide",
    "{f} {s} and family reviewed the print",
    "{S}, {F}",
    "{fl} {sl} heart",
    "Fellow {f} {s} did the segmentation",
    "{s}, {f} ({s2}) - consent on file",
    "Printed for {f}'s surgery",
    "ask {f} {s} re: scaling",
    "{f} {s} wants it in two colours",
    "Resident {f} {s} to collect",
]
FILE_TEMPLATES = [
    "{s}_{f}_heart.stl",
    "{f}{s}_mandible.3mf",
    "{fl}_{sl}_pelvis.obj",
    "{S}-{F}.stl",
    "{f}.{s}.skull.ply",
    "{F}_{S}_TOF.stl",
    "{sl}-{fl}-liver-v2.stl",
    "{S}_{F}_R_kidney.obj",
]

BENIGN = [
    "BioMed Amber, post-cured 60 min",
    "Amber resin for the skull base",
    "Grey Resin V4 on the Form 3B+",
    "Form 3B+, Grey Pro",
    "Vero PureWhite RGD837 with Agilus30 Black",
    "Vero PureWhite and VeroMagenta",
    "TangoPlus FLX930 for the valve leaflets",
    "Tango Black Plus shore 27",
    "Jade green Agilus for the vessels",
    "Ruby red VeroMagenta arteries",
    "Crystal clear finish after polishing",
    "Rose-tinted VeroClear",
    "Clear V4, Dental LT Clear",
    "Grace period for the reprint ends Friday",
    "Grey Pro and Rigid 10K",
    "Mimics Enlight, then 3-matic",
    "Mimics Innovation Suite 26",
    "Ross-Konno with homograft",
    "Ross procedure planning model",
    "Glenn takedown, then Fontan",
    "Fontan fenestration 4 mm",
    "Norwood with Sano shunt",
    "Bentall with 25 mm valved conduit",
    "Wilms tumour, left kidney",
    "Tommy John UCL reconstruction",
    "Chiari decompression planning",
    "Le Fort III advancement",
    "Le Fort I osteotomy splint",
    "Kasai portoenterostomy",
    "Warden procedure for PAPVR",
    "Carpentier type II",
    "Sievers type 1 bicuspid valve",
    "Nakata index 180",
    "McGoon ratio 1.4",
    "Parkes Weber syndrome",
    "Brown-Sequard",
    "Mayer-Rokitansky",
    "Johnson & Johnson MedTech plate",
    "DePuy Synthes plate template",
    "Zimmer Biomet cutting guide",
    "Smith+Nephew implant sizing",
    "Stryker, Arthrex and Medtronic catalogues",
    "Brainlab Elements export",
    "Medtronic StealthStation",
    "Canon Aquilion ONE",
    "Siemens Naeotom Alpha, 0.4 mm",
    "Philips Spectral CT",
    "Materialise Magics support",
    "Digital ABS Plus, Vero Cyan-V",
    "Elastic 50A and Flexible 80A",
    "Tough 2000 for the jig",
    "Draft V2, 200 um",
    "Model V3 White",
    "Agilus30 Clear, shore 30",
    "VeroClear and Agilus30",
    "Clear guide with Grey base",
    "Printed Grey, painted Jade",
    "Ruby and Amber colour map",
    "Grace, Ruby, Jade are printer names",
    "Sent to Printer Jade",
    "Victoria Plus printer bay",
    "Form 3L named Rosie",
    "Vero Tango bundle",
    "Ultimaker Tough PLA",
    "Ember printer retired",
    "Stratasys J5 DentaJet",
    "Stanford Type B",
    "Taussig-Bing, arterial switch",
    "DiGeorge, interrupted arch",
    "Marfan, aortic root 48 mm",
    "Williams syndrome, supravalvar AS",
    "Hurler syndrome",
    "Crouzon, midface",
    "Pfeiffer syndrome vault",
    "Turner, coarctation",
    "Gerota fascia",
    "Morison pouch",
    "Hartmann pouch",
    "Meckel cave",
    "Sylvian fissure",
]


def build() -> list[tuple[str, str]]:
    rng = random.Random(20261207)
    rows: list[tuple[str, str]] = []
    for i in range(80):
        f, s, s2 = rng.choice(FIRST), rng.choice(LAST), rng.choice(LAST)
        template = rng.choice(FILE_TEMPLATES if i % 4 == 3 else TEXT_TEMPLATES)
        text = template.format(
            f=f, s=s, s2=s2, F=f.upper(), S=s.upper(), fl=f.lower(), sl=s.lower()
        )
        rows.append(("name", text))
    rows += [("benign", text) for text in BENIGN]
    return rows


def write(path: Path, rows: list[tuple[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["kind", "text"])
        writer.writerows(rows)


if __name__ == "__main__":
    write(HERE / "heldout2.csv", build())

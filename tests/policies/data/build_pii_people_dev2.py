"""Builds pii_people_dev2.jsonl, the second development set of person-name and street-address
detection, written apart from the first with other layouts, other names and other streets.

    .venv/bin/python tests/policies/data/build_pii_people_dev2.py

Where the first set holds mostly prose with a name after a title or a cue, this one holds the
shapes personal data takes in business exports and messages: CSV and TSV exports with name and
address columns (headers in several languages), JSON records, e-mail threads with "From:" and
"To:" lines and signature blocks, support tickets, HR and medical notes, shipping labels in
capitals, forms whose labels stand on the line before the value, chat transcripts in lower
case, and prose naming people with no cue before them ("Wanjiru Kamau replied ...").
Languages: English, German, French, Spanish, Italian, Dutch, Portuguese and Japanese (romanised
and in Japanese script).

Placeholders, filled from seeded pools while the text is assembled (every offset computed):

    {P} a full name, {PU} in capitals, {PL} in lower case, {G} a given name, {S} a surname
    (after a title written in the template or drawn by {T}), {A} a street line with postcode
    and city on the same line, {L} a street line alone, {M} a street line, then the postcode
    and city on the next line (only the street line is labelled), {MU} the same in capitals,
    {B} a post-office box with postcode and city, {C} a city alone, {O} a company, {n} a number.

Labels follow the held-out set's documented rules: PERSON is the name as written without its
title; ADDRESS is the street line (or the post-office box) with its number, and the postcode
and city when they follow on the same line. Names come from many cultures and about half are
unknown to the detector's lists. Hard negatives (brands, companies, products, places, street
names without numbers, code identifiers, title-case headings, words that are also names,
capitalised column values that are not people) carry no span.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

OUT = Path(__file__).with_name("pii_people_dev2.jsonl")
R = random.Random(77031)

LANGS = ("en", "de", "fr", "es", "it", "nl", "pt", "ja")

# --- names -----------------------------------------------------------------------------------
# (given, surname) pools per culture; each record draws from its language's pool most of the
# time and from the world pool otherwise.

NAMES = {
    "en": (
        "Harriet Rupert Leonie Gareth Maeve Ciaran Bronwyn Alistair Tamsin Desmond Fern Rory "
        "Marcus Delia Shona Barnaby Nadine Trevor",
        "Haworth Pennington Okonjo Carmichael Featherstone Lowther Whitlock Ramsbottom Gallagher "
        "Treadwell Hollis Merriweather Duckworth Sinclair Abernathy Kettering",
    ),
    "de": (
        "Henrike Volker Gesine Ansgar Ortrud Wolfram Imke Hartmut Swantje Eckhard Frauke Jannik "
        "Roswitha Gernot Almut Leif",
        "Vogelsang Kretschmer Dittrich Hagedorn Lüdtke Pfeiffer Obermaier Steinbrück Wiesner "
        "Brockmann Kühnel Eichhorn Trautmann Reinecke",
    ),
    "fr": (
        "Anaïs Gaspard Maëlle Baptiste Ségolène Corentin Apolline Grégoire Maïwenn Timothée "
        "Bérénice Lucas Capucine Édouard",
        "Lemoine Giraudeau Marchand Peyrefitte Aubert Lacroix Guillot Tessier Ferrand Mallet "
        "Rocheteau Vidal Besnard Carpentier",
    ),
    "es": (
        "Ximena Rodrigo Guadalupe Íker Maialen Leire Fermín Remedios Aitana Cayetano Nuria "
        "Eneko Covadonga Baltasar",
        "Quintana Echevarría Lozano Castañeda Mendizábal Ortega Herrero Azcárate Valdés Iglesias "
        "Salvatierra Goikoetxea Cuesta Barrios",
    ),
    "it": (
        "Ottavia Ruggero Benedetta Gualtiero Costanza Ermanno Vittoria Leonardo Serena Amedeo "
        "Raffaella Corrado Fiamma Ettore",
        "Brambilla Fumagalli Santoro Cattaneo Zanetti Lombardi Barbieri Morandi Sartori "
        "Pagnotta Mancuso Giordano Trevisan Valsecchi",
    ),
    "nl": (
        "Floor Niels Marit Stijn Fenna Huib Evelien Pieter Lieke Maarten Jolien Ruud Tessa Kees",
        "van der Meulen Dekker Vermeulen de Graaf Hendriks Bosman van Leeuwen Koster Postma "
        "Timmermans de Wit Veenstra Wijnands Zwart",
    ),
    "pt": (
        "Matilde Afonso Carolina Henrique Madalena Simão Benedita Vasco Lívia Otávio Iara "
        "Everton Raquel Teodoro",
        "Gouveia Teixeira Moura Barros Pinheiro Antunes Lacerda Queiroz Sampaio Mendonça "
        "Cardoso Rezende Bittencourt Peixoto",
    ),
    "ja": (
        "Haruto Yui Sota Aoi Riku Hina Ren Sakura Kaito Mio Takumi Yuna Daisuke Naoko",
        "Sato Suzuki Takahashi Tanaka Watanabe Ito Yamamoto Nakamura Kobayashi Kato Yoshida "
        "Yamaguchi Matsumoto Inoue",
    ),
    "world": (
        "Wanjiru Chidi Amara Tendai Nomvula Kofi Abebe Aarav Ananya Venkatesh Meenakshi Arjun "
        "Wei Xiaoling Jianhua Minjun Seo-yeon Thanh Linh Youssef Fatima Karim Leila Dariush "
        "Shirin Elif Mehmet Dragana Miroslav Agnieszka Zofia Oksana Bogdan Sigrid Henrik Eleni "
        "Giorgos Noa Itai Ximena Mateo Kalani Tupac Aroha Kiri",
        "Kamau Okonkwo Diallo Moyo Khumalo Mensah Tadesse Sharma Iyer Raghunathan Sundaram Gupta "
        "Zhang Liu Huang Kim Park Nguyen Tran El-Amrani Haddad Farahani Tehrani Yılmaz Demir "
        "Petrović Novák Wiśniewska Kowalski Shevchenko Lindqvist Søndergaard Papadopoulou "
        "Ben-David Quispe Mamani Kealoha Ngata Okafor Adeyemi",
    ),
}
NAMES = {k: (g.split(), re.findall(r"(?:(?:van|de|der) )*\S+", s)) for k, (g, s) in NAMES.items()}
JA_KANJI_NAMES = ["山田太郎", "佐藤花子", "鈴木一郎", "高橋美咲", "田中健太", "伊藤直子", "中村翔"]

TITLES = {
    "en": ["Mr", "Mrs", "Ms.", "Dr.", "Prof."],
    "de": ["Herr", "Frau", "Dr.", "Frau Dr."],
    "fr": ["M.", "Mme", "Dr", "Maître"],
    "es": ["Sr.", "Sra.", "D.", "Dña."],
    "it": ["Sig.", "Sig.ra", "Dott.", "Avv."],
    "nl": ["Dhr.", "Mevr.", "de heer", "mevrouw"],
    "pt": ["Sr.", "Sra.", "Dr.", "Dra."],
    "ja": ["Mr.", "Ms.", "Dr.", "Prof."],
}


def given(lang: str) -> str:
    pool = NAMES["world" if R.random() < 0.3 else lang][0]
    return R.choice(pool)


def surname(lang: str) -> str:
    pool = NAMES["world" if R.random() < 0.3 else lang][1]
    return R.choice(pool)


def full_name(lang: str) -> str:
    pool = "world" if R.random() < 0.35 else lang
    g, s = R.choice(NAMES[pool][0]), R.choice(NAMES[pool][1])
    roll = R.random()
    if roll < 0.08:
        g += " " + R.choice("ABCDEJKLMRST") + "."
    elif roll < 0.14:
        g += " " + R.choice(NAMES[pool][0])
    if pool == "ja" and R.random() < 0.3:
        return f"{s} {g}"  # family name first
    return f"{g} {s}"


# --- addresses -------------------------------------------------------------------------------
# Each returns (street line, postcode and city line) in the country's own order.


def _pick(*items):
    return R.choice(items)


def us_address():
    num = str(R.randint(2, 9800))
    street = _pick(
        "Magnolia Avenue", "Sycamore St.", "Bridgeport Road", "Kingsway", "Broadway",
        "Lakeshore Blvd", "Chestnut Hill Rd", "Ridgeview Drive", "Pleasant Valley Pkwy",
        "Wisteria Lane", "Old Mill Road", "Foxhall Court", "Juniper Trail", "Harbor View Way",
        "W 34th Street", "N Michigan Ave", "Elmhurst Circle", "Canyon Crest Dr",
    )  # fmt: skip
    line = f"{num} {street}"
    if R.random() < 0.25:
        line += _pick(", Apt 5C", " #204", ", Suite 1200", ", Unit 7")
    city = _pick(
        "Tucson, AZ 85701", "Columbus, OH 43215", "Raleigh, NC 27601", "Madison, WI 53703",
        "Sacramento, CA 95814", "Burlington, VT 05401", "Chicago, IL 60611", "Omaha, NE 68102",
    )  # fmt: skip
    return line, city


def uk_address():
    line = _pick(
        f"{R.randint(1, 140)} Kingsway", f"{R.randint(1, 90)} Mill Lane",
        f"Flat {R.randint(1, 12)}, {R.randint(2, 80)} Church Road",
        f"{R.randint(1, 60)} Thornton Gardens", f"{R.randint(3, 200)} High Street",
        f"{R.randint(1, 40)} Rosemary Close", f"{R.randint(10, 99)} Fitzroy Square",
    )  # fmt: skip
    city = _pick(
        "Cambridge CB2 1TN", "Oxford OX1 3BG", "York YO1 7HH", "Edinburgh EH1 1YZ",
        "Cardiff CF10 1EP", "Norwich NR2 1NH",
    )  # fmt: skip
    return line, city


def de_address():
    street = _pick(
        "Unter den Linden", "Am Sandtorkai", "Friedrichstraße", "Karl-Marx-Allee",
        "Berliner Str.", "An der Alster", "Theresienstraße", "Königstraße", "Zeil",
        "Mariahilfer Straße", "Bahnhofstrasse", "Neuer Wall", "Im Tal", "Lessingweg",
        "Goetheplatz", "Bockenheimer Landstraße",
    )  # fmt: skip
    num = f"{R.randint(1, 160)}{_pick('', '', '', 'a', 'b', '/3')}"
    line = f"{street} {num}"
    city = {
        "Mariahilfer Straße": "1060 Wien",
        "Bahnhofstrasse": "8001 Zürich",
        "Zeil": "60313 Frankfurt am Main",
        "Bockenheimer Landstraße": "60325 Frankfurt am Main",
        "Neuer Wall": "20354 Hamburg",
        "An der Alster": "20099 Hamburg",
        "Am Sandtorkai": "20457 Hamburg",
        "Im Tal": "80331 München",
        "Theresienstraße": "80333 München",
    }.get(street, _pick("10117 Berlin", "70173 Stuttgart", "04109 Leipzig", "01067 Dresden"))
    return line, city


def fr_address():
    num = _pick(str(R.randint(1, 140)), f"{R.randint(1, 40)} bis", f"{R.randint(1, 40)} ter")
    street = _pick(
        "avenue Foch", "rue des Écoles", "place du Capitole", "boulevard Saint-Germain",
        "rue Sainte-Catherine", "quai des Chartrons", "rue de la République", "cours Mirabeau",
        "allée des Marronniers", "chemin du Moulin", "rue Jean Jaurès", "impasse Bel-Air",
    )  # fmt: skip
    line = f"{num}{_pick(' ', ', ')}{street}"
    city = _pick(
        "75116 Paris", "31000 Toulouse", "33000 Bordeaux", "13100 Aix-en-Provence",
        "69003 Lyon", "44000 Nantes", "1003 Lausanne", "1000 Bruxelles",
    )  # fmt: skip
    return line, city


def es_address():
    street = _pick(
        "Calle de Serrano", "Avda. de América", "Paseo de la Castellana", "Plaza de Cataluña",
        "Calle Larios", "Gran Vía de les Corts Catalanes", "Calle San Fernando",
        "Avenida de los Andes", "Carrer de Mallorca", "Calle Mayor",
    )  # fmt: skip
    line = f"{street}{_pick(' ', ', ', ', n.º ')}{R.randint(1, 300)}"
    if R.random() < 0.35:
        line += _pick(", 4º izda.", ", 2.º B", ", bajo", ", piso 3, puerta 2")
    city = _pick(
        "28001 Madrid", "08008 Barcelona", "29005 Málaga", "41004 Sevilla", "50001 Zaragoza",
        "C1425 Buenos Aires", "11000 Ciudad de México",
    )  # fmt: skip
    if street == "Avenida de los Andes":
        city = "11000 Ciudad de México"
    return line, city


def it_address():
    street = _pick(
        "Via dei Condotti", "Corso Buenos Aires", "Piazza San Carlo", "Viale Europa",
        "Via Nazionale", "Via Toledo", "Corso Italia", "Via dei Mille", "Lungarno Corsini",
        "Via Cavour", "Piazza Maggiore",
    )  # fmt: skip
    line = f"{street}{_pick(' ', ', ')}{R.randint(1, 250)}{_pick('', '', '/B', ' bis')}"
    city = _pick(
        "20124 Milano MI", "00187 Roma", "10123 Torino", "80134 Napoli", "50123 Firenze",
        "40124 Bologna (BO)",
    )  # fmt: skip
    return line, city


def nl_address():
    street = _pick(
        "Herengracht", "Coolsingel", "Laan van Meerdervoort", "Oudegracht", "Vismarkt",
        "Stationsweg", "Rue Neuve", "Meir", "Lange Voorhout", "Weena", "Brouwersgracht",
    )  # fmt: skip
    line = f"{street} {R.randint(1, 900)}{_pick('', '', '-H', ' bis', 'A')}"
    city = {"Rue Neuve": "1000 Bruxelles", "Meir": "2000 Antwerpen"}.get(
        street, _pick("1017 BS Amsterdam", "3011 AD Rotterdam", "2517 AB Den Haag", "3512 JE Utrecht")
    )  # fmt: skip
    return line, city


def pt_address():
    street = _pick(
        "Rua do Ouro", "Avenida da República", "Rua Haddock Lobo", "Rua de Cedofeita",
        "Avenida Atlântica", "Largo do Chiado", "Rua Visconde de Pirajá", "Travessa da Queimada",
        "Avenida Brigadeiro Faria Lima", "Rua Direita",
    )  # fmt: skip
    line = f"{street}{_pick(', ', ' ', ', nº ')}{R.randint(1, 3000)}"
    if R.random() < 0.3:
        line += _pick(", 2º Dto", ", apto 71", ", sala 12", ", 1º andar")
    city = _pick(
        "1100-062 Lisboa", "4050-161 Porto", "01414-001 São Paulo - SP",
        "22420-040 Rio de Janeiro - RJ", "3000-214 Coimbra",
    )  # fmt: skip
    return line, city


def ja_address():
    block = f"{R.randint(1, 9)}-{R.randint(1, 30)}-{R.randint(1, 20)}"
    ward, town, city, post = _pick(
        ("Shibuya-ku", "Jingumae", "Tokyo", "150-0001"),
        ("Chiyoda-ku", "Marunouchi", "Tokyo", "100-0005"),
        ("Minato-ku", "Roppongi", "Tokyo", "106-0032"),
        ("Kita-ku", "Umeda", "Osaka", "530-0001"),
        ("Naka-ku", "Sakae", "Nagoya", "460-0008"),
        ("Chuo-ku", "Ginza", "Tokyo", "104-0061"),
    )
    if R.random() < 0.5:
        return f"{block} {town}, {ward}", f"{city} {post}"
    return f"{town} {block}, {ward}", f"{city} {post}"


def ja_kanji_address() -> str:
    return _pick(
        f"〒150-0043 東京都渋谷区道玄坂{R.randint(1, 2)}-{R.randint(1, 30)}-{R.randint(1, 9)}",
        f"東京都港区六本木{R.randint(1, 7)}-{R.randint(1, 20)}-{R.randint(1, 9)}",
        f"大阪府大阪市北区梅田{R.randint(1, 3)}丁目{R.randint(1, 9)}番{R.randint(1, 20)}号",
        f"〒460-0008 愛知県名古屋市中区栄{R.randint(1, 5)}-{R.randint(1, 20)}-{R.randint(1, 9)}",
        f"京都府京都市下京区烏丸通七条下る東塩小路町{R.randint(700, 800)}",
    )


STREETS = {
    "en": lambda: R.choice([us_address, uk_address])(),
    "de": de_address,
    "fr": fr_address,
    "es": es_address,
    "it": it_address,
    "nl": nl_address,
    "pt": pt_address,
    "ja": ja_address,
}


def po_box(lang: str) -> str:
    n = R.randint(10, 9999)
    return {
        "en": _pick(f"PO Box {n}, Tucson, AZ 85702", f"P.O. Box {n}", f"PO Box {n}, York YO1 0AA"),
        "de": _pick(f"Postfach {n}, 70049 Stuttgart", f"Postfach 10 {R.randint(10, 99)} 32"),
        "fr": _pick(f"BP {n}, 31000 Toulouse", f"B.P. {n} - 75008 Paris"),
        "es": _pick(f"Apartado de Correos {n}, 28080 Madrid", f"Apdo. {n}, 08080 Barcelona"),
        "it": _pick(f"Casella Postale {n}, 20100 Milano", f"C.P. {n}, 00100 Roma"),
        "nl": _pick(f"Postbus {n}, 1000 AA Amsterdam", f"Postbus {n}"),
        "pt": _pick(f"Apartado {n}, 1101-001 Lisboa", f"Caixa Postal {n}, 01059-970 São Paulo"),
        "ja": f"P.O. Box {n}, Tokyo Central Post Office",
    }[lang]


CITIES = {
    "en": "Chicago Manchester Toronto Dublin Melbourne Seattle",
    "de": "Hamburg Stuttgart Dresden Graz Basel",
    "fr": "Toulouse Nantes Lille Genève Montréal",
    "es": "Zaragoza Valencia Málaga Bogotá Lima",
    "it": "Torino Genova Verona Palermo",
    "nl": "Utrecht Eindhoven Gent Leiden",
    "pt": "Braga Coimbra Curitiba Recife",
    "ja": "Tokyo Osaka Kyoto Sapporo Yokohama",
}
COMPANIES = [
    "Morgan Stanley",
    "Johnson & Johnson",
    "Ernst & Young",
    "Dr. Oetker",
    "Hugo Boss",
    "Ralph Lauren",
    "Tommy Hilfiger",
    "Calvin Klein",
    "Louis Vuitton",
    "Christian Dior",
    "Hewlett Packard Enterprise",
    "Procter & Gamble",
    "Rolls-Royce",
    "Ferrero Rocher",
    "Mercedes-Benz",
    "Dolce & Gabbana",
    "Toyota Motor",
    "Siemens Healthineers",
    "Marks & Spencer",
    "Banco Santander",
    "Stella McCartney",
    "Walt Disney",
]

# --- templates -------------------------------------------------------------------------------

CSV_HEADERS = {
    "en": [("name", "address"), ("customer", "street_address"), ("full_name", "shipping_address"),
           ("Contact Name", "Mailing Address"), ("recipient", "address_line1")],
    "de": [("Name", "Adresse"), ("Kunde", "Straße"), ("Ansprechpartner", "Anschrift")],
    "fr": [("nom", "adresse"), ("client", "adresse_postale"), ("Nom complet", "Adresse")],
    "es": [("nombre", "dirección"), ("cliente", "domicilio"), ("Nombre completo", "Dirección")],
    "it": [("nome", "indirizzo"), ("cliente", "via"), ("Nominativo", "Indirizzo")],
    "nl": [("naam", "adres"), ("klant", "straat"), ("Contactpersoon", "Adres")],
    "pt": [("nome", "morada"), ("cliente", "endereço"), ("Nome completo", "Endereço")],
    "ja": [("name", "address"), ("customer_name", "street"), ("shimei", "jusho")],
}  # fmt: skip

TEMPLATES: dict[str, dict[str, list[str]]] = {
    "email": {
        "en": [
            "From: {P} <{n}@mail.example.com>\nTo: {P} <sales@example.org>\nCc: {P}\n"
            "Subject: Re: renewal\n\nHi {G},\n\nthe signed copy is in the post to {A}.\n\n"
            "Thanks,\n{P}\nSenior Buyer | {O}\n{L}",
            "On Tue, 4 Mar at 09:12, {P} <{n}@example.net> wrote:\n> Can you confirm the "
            "delivery window?\n\nConfirmed for Thursday.\n\n--\n{P}\nOperations",
            "{P} replied that the lease for {A} can start in May. {P} asked for the keys.",
        ],
        "de": [
            "Von: {P} <{n}@example.de>\nAn: {P}\nBetreff: Umzug\n\nHallo {G},\n\nab Montag "
            "gilt unsere neue Anschrift:\n{M}\n\nBeste Grüße\n{P}\nTeamleitung Einkauf",
            "{P} schrieb am Freitag, dass die Lieferung an {A} erst nächste Woche kommt.",
        ],
        "fr": [
            "De : {P} <{n}@example.fr>\nÀ : {P}\nObjet : nouvelle adresse\n\nBonjour,\n\n"
            "merci de noter notre nouvelle adresse : {A}.\n\nBien à vous,\n{P}\nDirectrice "
            "financière",
            "{P} a répondu que le bail du {A} commence en mai.",
        ],
        "es": [
            "De: {P} <{n}@example.es>\nPara: {P}\nAsunto: cambio de domicilio\n\nBuenos días:\n\n"
            "nuestra nueva sede está en {A}.\n\nUn cordial saludo,\n{P}\nDirectora comercial",
            "{P} respondió que el contrato de {A} empieza en mayo.",
        ],
        "it": [
            "Da: {P} <{n}@example.it>\nA: {P}\nOggetto: trasloco\n\nBuongiorno,\n\nil nuovo "
            "indirizzo è {A}.\n\nCordialmente,\n{P}\nUfficio acquisti",
            "{P} ha risposto che il contratto per {A} parte a maggio.",
        ],
        "nl": [
            "Van: {P} <{n}@example.nl>\nAan: {P}\nOnderwerp: verhuizing\n\nGoedemiddag,\n\n"
            "ons nieuwe adres is {A}.\n\nMet vriendelijke groet,\n{P}\nInkoop",
            "{P} antwoordde dat het huurcontract voor {A} in mei ingaat.",
        ],
        "pt": [
            "De: {P} <{n}@example.pt>\nPara: {P}\nAssunto: mudança de morada\n\nBom dia,\n\n"
            "a nova morada é {A}.\n\nCom os melhores cumprimentos,\n{P}\nDireção financeira",
            "{P} respondeu que o contrato da {A} começa em maio.",
        ],
        "ja": [
            "From: {P} <{n}@example.jp>\nTo: {P}\nSubject: office move\n\nDear {T} {S},\n\n"
            "our new office is at {A}.\n\nBest regards,\n{P}\nGeneral Affairs",
            "{K}様\n\nいつもお世話になっております。新しい住所は{J}です。\n\nよろしくお願いいたします。",
        ],
    },
    "ticket": {
        "en": [
            "[#{n}] Customer: {P}\nIssue: parcel returned to sender\nAddress on file:\n{M}\n"
            "Agent notes: {P} confirmed the unit number by phone.",
            "Ticket {n} - {PU} reports the card was charged twice. Billing address {A}.",
            "Caller {P} (account {n}) wants invoices sent to {B} instead of the office.",
        ],
        "de": [
            "Ticket {n}\nKunde: {P}\nProblem: Paket zurückgesendet\nLieferadresse:\n{M}\n"
            "Notiz: Rückruf durch {P} am Dienstag.",
            "Anfrage von {P}: Rechnungen bitte an {B} statt an {L}.",
        ],
        "fr": [
            "Ticket {n}\nClient : {P}\nProblème : colis retourné\nAdresse :\n{M}\n"
            "Note : {P} a confirmé le code d'accès.",
            "Demande de {P} : envoyer les factures à {B}.",
        ],
        "es": [
            "Incidencia {n}\nCliente: {P}\nProblema: paquete devuelto\nDirección:\n{M}\n"
            "Nota: {P} confirmó el piso por teléfono.",
            "Solicitud de {P}: enviar las facturas al {B}.",
        ],
        "it": [
            "Ticket {n}\nCliente: {P}\nProblema: pacco respinto\nIndirizzo:\n{M}\n"
            "Nota: {P} ha confermato il citofono.",
            "Richiesta di {P}: inviare le fatture a {B}.",
        ],
        "nl": [
            "Ticket {n}\nKlant: {P}\nProbleem: pakket retour\nAdres:\n{M}\n"
            "Notitie: {P} heeft het huisnummer bevestigd.",
            "Verzoek van {P}: facturen naar {B} sturen.",
        ],
        "pt": [
            "Pedido {n}\nCliente: {P}\nProblema: encomenda devolvida\nMorada:\n{M}\n"
            "Nota: {P} confirmou o andar por telefone.",
            "Pedido de {P}: enviar as faturas para o {B}.",
        ],
        "ja": [
            "Ticket {n}\nCustomer: {P}\nIssue: delivery failed\nAddress:\n{M}\n"
            "Note: {P} will be home after 18:00.",
            "お問い合わせ番号{n}: {K}様より、配送先を{J}に変更したいとのご連絡。",
        ],
    },
    "label": {
        "*": [
            "SHIP TO:\n{PU}\n{MU}\n\nFROM:\n{O}\nTRACKING {n}",
            "DELIVER TO\n{PU}\n{L}\n{n} PARCELS - HANDLE WITH CARE",
            "Recipient\n{P}\nStreet\n{L}\nPostcode / City\n{C}",
        ],
    },
    "form": {
        "*": [
            "Full name\n{P}\n\nHome address\n{L}\n\nDate of birth\n1979-11-{n2}",
            "APPLICANT: {PU}\nADDRESS: {A}\nEMPLOYER: {O}",
            "Emergency contact\n{P} (spouse)\nPhone on request",
        ],
        "de": ["Vor- und Nachname\n{P}\n\nWohnanschrift\n{L}\n\nGeburtsdatum\n12.03.1985"],
        "fr": ["Nom et prénom\n{P}\n\nAdresse\n{L}\n\nDate de naissance\n12/03/1985"],
        "es": ["Nombre y apellidos\n{P}\n\nDomicilio\n{L}\n\nFecha de nacimiento\n12/03/1985"],
        "it": ["Nome e cognome\n{P}\n\nIndirizzo di residenza\n{L}\n\nData di nascita\n12/03/1985"],
        "nl": ["Naam\n{P}\n\nAdres\n{L}\n\nGeboortedatum\n12-03-1985"],
        "pt": ["Nome completo\n{P}\n\nMorada\n{L}\n\nData de nascimento\n12/03/1985"],
    },
    "chat": {
        "en": [
            "[14:02] {g}: has anyone heard from {PL}?\n[14:03] ops-bot: no reply yet\n"
            "[14:05] {g}: ok i'll call {pl} later",
            "me: who owns the vendor account?\nassistant: it is registered to {P}.\nme: and the "
            "billing address?\nassistant: {A}",
            "ok so {PL} moved to {L} last month, can u update the crm",
        ],
        "de": ["[08:41] {g}: hat jemand {PL} erreicht?\n[08:44] {G}: ja, ruft gleich zurück"],
        "fr": ["[08:41] {g} : quelqu'un a des nouvelles de {PL} ?\n[08:44] {G} : oui"],
        "es": ["[08:41] {g}: ¿alguien sabe algo de {PL}?\n[08:44] {G}: sí, ahora llama"],
        "it": ["[08:41] {g}: qualcuno ha sentito {PL}?\n[08:44] {G}: sì, richiama lui"],
        "nl": ["[08:41] {g}: heeft iemand {PL} gesproken?\n[08:44] {G}: ja, belt zo terug"],
        "pt": ["[08:41] {g}: alguém falou com {PL}?\n[08:44] {G}: sim, já liga"],
        "ja": ["[08:41] {g}: {PL} san ni renraku tsukimashita ka?\n[08:44] {G}: hai, ato de"],
    },
    "hr": {
        "en": [
            "Onboarding checklist for {P}: laptop ordered, badge printed. Manager: {P}. "
            "Home address {A}.",
            "Exit interview - {P} (Finance). Reason: relocation to {C}. Interviewer: {T} {S}.",
        ],
        "de": ["Einstellung {P} zum 1. Juli; Vorgesetzter {P}; Wohnsitz {A}."],
        "fr": ["Embauche de {P} au 1er juillet ; manager {P} ; domicile {A}."],
        "es": ["Alta de {P} el 1 de julio; responsable {P}; domicilio {A}."],
        "it": ["Assunzione di {P} dal 1° luglio; responsabile {P}; domicilio {A}."],
        "nl": ["Indiensttreding {P} per 1 juli; leidinggevende {P}; woonadres {A}."],
        "pt": ["Admissão de {P} a 1 de julho; chefia {P}; residência {A}."],
        "ja": ["New hire {P} joins Osaka office on 1 July; mentor {P}; address {A}."],
    },
    "medical": {
        "en": [
            "Discharge summary\nPatient: {P}   DOB: 02/14/1961\nAddress: {A}\n"
            "Attending: Dr. {S}\nSeen with daughter {G}.",
            "Referral from {T} {S} regarding {P}, 54, who presents with chest pain.",
        ],
        "de": ["Arztbrief\nPatientin: {P}, geb. 14.02.1961\nAnschrift: {A}\nBehandelnd: Dr. {S}"],
        "fr": ["Compte rendu\nPatient : {P}, né le 14/02/1961\nAdresse : {A}\nMédecin : Dr {S}"],
        "es": ["Informe de alta\nPaciente: {P}\nDomicilio: {A}\nMédico: Dra. {S}"],
        "it": ["Lettera di dimissione\nPaziente: {P}\nResidenza: {A}\nMedico: Dott. {S}"],
        "nl": ["Ontslagbrief\nPatiënt: {P}\nAdres: {A}\nBehandelaar: dr. {S}"],
        "pt": ["Nota de alta\nDoente: {P}\nMorada: {A}\nMédico: Dr. {S}"],
        "ja": ["Referral letter\nPatient: {P}\nAddress: {A}\nPhysician: Dr. {S}"],
    },
    "prose": {
        "en": [
            "In the interview, {P} said the merger would close by June, while {P} declined to "
            "comment.",
            "Thanks to {P} and {P} for reviewing the draft.",
            "The board appointed {P} as chief executive; {P} stays on as chair.",
            "Please forward the minutes to {P} before the meeting.",
        ],
        "de": ["Laut {P} ist der Vertrag unterschrieben; {P} bestätigte das am Montag."],
        "fr": ["Selon {P}, le contrat est signé ; {P} l'a confirmé lundi."],
        "es": ["Según {P}, el contrato está firmado; {P} lo confirmó el lunes."],
        "it": ["Secondo {P} il contratto è firmato; {P} lo ha confermato lunedì."],
        "nl": ["Volgens {P} is het contract getekend; {P} bevestigde dat maandag."],
        "pt": ["Segundo {P}, o contrato está assinado; {P} confirmou na segunda-feira."],
        "ja": ["According to {P}, the contract is signed; {P} confirmed it on Monday."],
    },
}

NEGATIVES: dict[str, list[str]] = {
    "en": [
        "Morgan Stanley upgraded Johnson & Johnson; Ernst & Young audits both.",
        "## Quarterly Roadmap\n### Customer Success Metrics\nOwner Dashboard goes live in May.",
        "Victoria Station and Kings Cross are closed; take the Jubilee Line to Canary Wharf.",
        "We are moving from Kingsway to Broadway next spring.",
        "Order 4417 shipped via UPS Ground; 12 Items, Box 3 of 5.",
        "name,sku,price\nHoliday Bundle,HB-12,49.90\nAustin Lamp,AL-3,19.00\nGrace Chair,GC-1,89.00",
        '{"name": "Enterprise Plan", "address": null, "owner": "billing-team", "tier": 3}',
        "SUMMARY OF CHANGES\nBUG FIXES AND PERFORMANCE IMPROVEMENTS\nKNOWN ISSUES",
        "Will Rogers World Airport and the Lincoln Memorial are landmarks.",
        "class CustomerAddress(models.Model):\n    street_name = models.CharField()\n    "
        "house_number = models.IntegerField(default=1)",
        "Parkinson's disease and Alzheimer's disease are covered by the Crohn's policy too.",
        "Apple Music, Google Maps and Microsoft Teams need updates on 3 devices.",
        "The Tesla Model Y and the Ford Ranger are in stock at 2 dealers.",
        "Chapter 7: Baker Street Revisited, Section 21 Regent Street Cinema",
        "sort by name, then by address; 2 columns are hidden",
        "Next steps: Review Budget, Approve Hiring Plan, Schedule Town Hall.",
        "From: Sales Team <sales@example.com>\nTo: All Staff\nSubject: Summer Promotion",
        "Hope you had a great weekend! Grace Cathedral tours start at 10.",
    ],
    "de": [
        "Hugo Boss und Dr. Oetker melden Umsatzplus; die Zeil in Frankfurt ist belebt.",
        "Die Linden am Straßenrand werden im Mai beschnitten; Unter den Linden ist gesperrt.",
        "Im Jahr 2019 zog die Firma nach Hamburg; Am Montag 12 Teilnehmer.",
        "Kunde,Produkt,Menge\nGroßhandel Nord,Schrauben M8,200\nBaumarkt Süd,Dübel 6 mm,150",
    ],
    "fr": [
        "Louis Vuitton et Christian Dior ouvrent une boutique avenue Montaigne.",
        "Le Mont Saint-Michel et la Tour Eiffel attirent 12 millions de visiteurs.",
        "client,produit,quantité\nGrande Distribution,Vis M8,200\nBricolage Sud,Chevilles,150",
    ],
    "es": [
        "Banco Santander y El Corte Inglés patrocinan la Vuelta; la Gran Vía estará cortada.",
        "El Museo del Prado y el Palacio Real abren 7 días.",
    ],
    "it": [
        "Dolce & Gabbana e Ferrero Rocher sponsorizzano la Mille Miglia.",
        "Piazza San Marco e il Ponte di Rialto sono affollati ad agosto.",
    ],
    "nl": [
        "Albert Heijn en Philips sponsoren de Dam tot Damloop.",
        "De Herengracht en de Keizersgracht zijn onderdeel van de grachtengordel.",
    ],
    "pt": [
        "O Banco Itaú e a Natura patrocinam o Rock in Rio.",
        "A Avenida Paulista e o Largo do Chiado recebem 2 feiras.",
    ],
    "ja": [
        "Toyota Motor and Sony Group report results; Shibuya Crossing is busy.",
        "東京都の人口は約1400万人です。Tokyo Tower and Osaka Castle are landmarks.",
        "Mount Fuji, Lake Biwa and Kyoto Station appear in 3 photos.",
    ],
}


# --- assembly --------------------------------------------------------------------------------

_FIELD = re.compile(r"\{(PU|PL|pl|P|G|g|S|A|L|MU|M|B|C|O|T|K|J|n2|n)\}")


def value_of(key: str, lang: str) -> tuple[str, str | None, int | None]:
    """(text, gold type, labelled length when only a prefix is labelled)."""
    if key == "P":
        return full_name(lang), "PERSON", None
    if key == "PU":
        return full_name(lang).upper(), "PERSON", None
    if key in ("PL", "pl"):
        return full_name(lang).lower(), "PERSON", None
    if key == "G":
        return given(lang), "PERSON", None
    if key == "g":  # a chat handle: a lower-case given name
        return given(lang).lower(), None, None
    if key == "S":
        return surname(lang), "PERSON", None
    if key == "K":
        return R.choice(JA_KANJI_NAMES), "PERSON", None
    if key == "J":
        return ja_kanji_address(), "ADDRESS", None
    if key in ("A", "L", "M", "MU"):
        line, city = STREETS[lang]()
        if key == "L":
            return line, "ADDRESS", None
        if key == "A":
            return f"{line}, {city}", "ADDRESS", None
        text = f"{line}\n{city}"
        return (text.upper() if key == "MU" else text), "ADDRESS", len(line)
    if key == "B":
        return po_box(lang), "ADDRESS", None
    if key == "C":
        return R.choice(CITIES[lang].split()), None, None
    if key == "O":
        return R.choice(COMPANIES), None, None
    if key == "T":
        return R.choice(TITLES[lang]), None, None
    if key == "n2":
        return f"{R.randint(10, 28)}", None, None
    return str(R.randint(1000, 99999)), None, None


def fill(template: str, lang: str) -> tuple[str, list[list]]:
    out: list[str] = []
    spans: list[list] = []
    size = pos = 0
    for m in _FIELD.finditer(template):
        literal = template[pos : m.start()]
        out.append(literal)
        size += len(literal)
        value, kind, labelled = value_of(m.group(1), lang)
        if kind:
            spans.append([size, size + (labelled or len(value)), kind])
        out.append(value)
        size += len(value)
        pos = m.end()
    out.append(template[pos:])
    return "".join(out), spans


def csv_record(lang: str) -> tuple[str, list[list]]:
    """An export with a name column and an address column among others."""
    name_h, addr_h = R.choice(CSV_HEADERS[lang])
    sep = R.choice([",", ";", "\t"])
    layout = R.choice(["id,N,A,status", "N,email,A", "id,N,A", "N,A,city"])
    header = [{"N": name_h, "A": addr_h}.get(c, c) for c in layout.split(",")]
    lines = [sep.join(header)]
    spans: list[list] = []
    size = len(lines[0]) + 1
    for _ in range(R.randint(2, 4)):
        cells = []
        for col in layout.split(","):
            kind = None
            if col == "N":
                value = full_name(lang)
                if R.random() < 0.2:
                    value = value.upper()
                kind = "PERSON"
            elif col == "A":
                line, city = STREETS[lang]()
                value, kind = line, "ADDRESS"
            elif col == "city":
                value = R.choice(CITIES[lang].split())
            elif col == "email":
                value = f"u{R.randint(100, 999)}@example.com"
            elif col == "status":
                value = R.choice(["active", "Active", "churned", "Prospect"])
            else:
                value = str(R.randint(100, 9999))
            quoted = sep != "\t" and (sep in value or R.random() < 0.3)
            cell = f'"{value}"' if quoted else value
            if kind:
                start = size + sum(len(c) + 1 for c in cells) + (1 if quoted else 0)
                spans.append([start, start + len(value), kind])
            cells.append(cell)
        row = sep.join(cells)
        lines.append(row)
        size += len(row) + 1
    return "\n".join(lines), spans


JSON_KEYS = [
    ("name", "address"),
    ("customer", "shipping_address"),
    ("full_name", "street"),
    ("contact_name", "billing_address"),
    ("customerName", "deliveryAddress"),
    ("patient", "home_address"),
]


def json_record(lang: str) -> tuple[str, list[list]]:
    name_k, addr_k = R.choice(JSON_KEYS)
    parts: list[tuple[str, str | None]] = []
    for i in range(R.randint(1, 2)):
        name = full_name(lang)
        if R.random() < 0.15:
            name = name.lower()
        line, city = STREETS[lang]()
        parts += [
            ("{" if not i else ", {", None),
            (f'"id": {R.randint(1, 999)}, "{name_k}": "', None),
            (name, "PERSON"),
            (f'", "{addr_k}": "', None),
            (line, "ADDRESS"),
            (f'", "city": "{city}", "vip": {R.choice(["true", "false"])}}}', None),
        ]
    text, spans, size = "", [], 0
    if R.random() < 0.5:
        parts = [("[", None), *parts, ("]", None)]
    for piece, kind in parts:
        if kind:
            spans.append([size, size + len(piece), kind])
        text += piece
        size += len(piece)
    return text, spans


def build() -> list[dict]:
    records: list[dict] = []
    for kind, by_lang in TEMPLATES.items():
        for lang in LANGS:
            templates = by_lang.get(lang, []) + by_lang.get("*", [])
            for template in templates:
                for _ in range(2):
                    text, spans = fill(template, lang)
                    records.append({"kind": kind, "lang": lang, "text": text, "spans": spans})
    for lang in LANGS:
        for _ in range(4):
            text, spans = csv_record(lang)
            records.append({"kind": "csv", "lang": lang, "text": text, "spans": spans})
            text, spans = json_record(lang)
            records.append({"kind": "json", "lang": lang, "text": text, "spans": spans})
        for _ in range(3):
            text, spans = fill("Address for returns: {B}.", lang)
            records.append({"kind": "pobox", "lang": lang, "text": text, "spans": spans})
    for lang, texts in NEGATIVES.items():
        for text in texts:
            records.append({"kind": "negative", "lang": lang, "text": text, "spans": []})
    # Negatives mixed into positive records.
    for lang in LANGS:
        for _ in range(3):
            text, spans = fill(R.choice(TEMPLATES["ticket"][lang]), lang)
            neg = R.choice(NEGATIVES[lang])
            shift = len(neg) + 2
            records.append(
                {"kind": "mixed", "lang": lang, "text": neg + "\n\n" + text,
                 "spans": [[s + shift, e + shift, t] for s, e, t in spans]}
            )  # fmt: skip
    for i, record in enumerate(records):
        record["id"] = f"people2-{i:04d}"
    return [{"id": r["id"], **{k: v for k, v in r.items() if k != "id"}} for r in records]


def check(records: list[dict]) -> None:
    """Spans lie inside the text, do not overlap and hold no surrounding blanks."""
    for record in records:
        spans = sorted(record["spans"])
        for (s, e, _), nxt in zip(spans, [*spans[1:], None], strict=False):
            value = record["text"][s:e]
            assert 0 <= s < e <= len(record["text"]) and value == value.strip(), record
            assert nxt is None or e <= nxt[0], record


def main() -> None:
    records = build()
    check(records)
    with open(OUT, "w", encoding="utf-8") as fh:
        for record in records:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
    counts: dict[str, int] = {}
    for record in records:
        for _, _, kind in record["spans"]:
            counts[kind] = counts.get(kind, 0) + 1
    print(f"{len(records)} records, spans {counts}")


if __name__ == "__main__":
    main()

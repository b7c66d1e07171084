"""Builds pii_people_dev.jsonl, the labelled development set of person-name and street-address
detection.

    .venv/bin/python tests/policies/data/build_pii_people_dev.py

Records are prompts of several kinds (support tickets, e-mails, CRM rows, HR notes, chat,
code, letters) in English, German, French, Spanish, Italian, Dutch and Portuguese. Templates
hold placeholders that are filled from seeded pools while the text is assembled, so every
offset is computed, never typed:

    {P} a full name, {G} a given name alone, {S} a surname alone (after a title written in
    the template), {A} a street line with its number, postcode and city, {L} a street line
    alone.

A PERSON span covers the name without its title; an ADDRESS span covers the street line with
the number and, on the same line, the postcode and the city. The name pools mix names the
detector's gazetteer knows with names it does not (rare, non-European, invented), so recall
is not measured on the gazetteer alone. Hard-negative records (words that are also names,
companies and products named after people, cities alone, streets without a number, headings,
code identifiers, sentence-initial capitals) carry no span.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

OUT = Path(__file__).with_name("pii_people_dev.jsonl")
R = random.Random(20261204)

LANGS = ("en", "de", "fr", "es", "it", "nl", "pt")

# --- pools -----------------------------------------------------------------------------------

GIVEN = {
    "en": "James Emily Olivia Daniel Sarah Michael Jessica Thomas Hannah Priya Oluwaseun Siobhan "
    "Kwame Mei Ahmed Chloe Ethan Rebecca Nathaniel Imogen Callum Declan Keisha Tariq",
    "de": "Lukas Anna Jonas Lea Maximilian Sophie Jürgen Birgit Matthias Katharina Uwe Svenja "
    "Dieter Heike Florian Annika Malte Friederike Torben Mareike Detlef Wiebke",
    "fr": "Camille Louis Chloé Hugo Léa Mathieu Élodie Antoine Manon Théo Margaux Benoît "
    "Sylvie Gaëlle Thibault Solène Yannick Ophélie Aurélien Clémence",
    "es": "Lucía Alejandro Carmen Javier Sofía Pablo Marta Álvaro Nerea Iñigo Begoña Rocío "
    "Sergio Ainhoa Gonzalo Itziar Joaquín Montserrat Xabier Araceli",
    "it": "Giulia Alessandro Francesca Matteo Chiara Lorenzo Federica Davide Martina Gianluca "
    "Ilaria Tommaso Beatrice Niccolò Ludovica Pierluigi Ornella Saverio",
    "nl": "Daan Emma Sem Julia Lotte Bram Sanne Jeroen Femke Thijs Maartje Joost Ilse Wouter "
    "Marieke Sjoerd Anouk Gijs Roos Jelle",
    "pt": "João Ana Pedro Beatriz Tiago Inês Rui Mariana Gonçalo Leonor Duarte Catarina "
    "Thiago Larissa Vinícius Juliana Rodrigo Fernanda Caio Bruna",
}
SURNAMES = {
    "en": "Smith Johnson Brown O'Connor Patel Nguyen Okafor Whitfield Harrington Ashworth "
    "Pemberton Oyelaran McAllister Fitzgerald Thornbury Blackwood Chakraborty Kowalczyk",
    "de": "Müller Schmidt Schneider Fischer Weber Wagner Becker Hoffmann Schäfer Krüger "
    "Lindemann Brinkmann Oberhauser Kaltenbrunner Meißner Zöllner Rademacher Großkopf",
    "fr": "Martin Dubois Lefèvre Moreau Girard Dupont Rousseau Fontaine Chevalier Lemaire "
    "Delacroix Beauchamp Vasseur Marchetti Lacombe Thibodeau Desrosiers",
    "es": "García Fernández López Martínez Sánchez Pérez Gómez Ruiz Jiménez Navarro "
    "Etxeberria Urquijo Villanueva Zubiaurre Carrasco Bermúdez Arrieta",
    "it": "Rossi Russo Ferrari Esposito Bianchi Romano Colombo Ricci Marino Greco "
    "Bortolotti Scarpellini Mazzoleni Quagliarella Pellegrino Lucchesi",
    "nl": "de Jong Jansen de Vries van den Berg van Dijk Bakker Visser Smit Meijer "
    "Mulder Hoekstra Verbruggen van der Linden Brouwer Kuipers Schimmelpenninck",
    "pt": "Silva Santos Ferreira Pereira Oliveira Costa Rodrigues Martins Sousa Carvalho "
    "Albuquerque Magalhães Figueiredo Vasconcelos Cavalcanti Nogueira Brandão",
}
GIVEN = {k: v.split() for k, v in GIVEN.items()}
SURNAMES = {
    k: [s.replace("_", " ") for s in re.findall(r"(?:(?:de|van|der|den) )*\S+", v)]
    for k, v in SURNAMES.items()
}
TITLES = {
    "en": ["Mr.", "Mrs.", "Ms.", "Dr.", "Prof."],
    "de": ["Herr", "Frau", "Dr.", "Herr Dr.", "Frau Prof."],
    "fr": ["M.", "Mme", "Mme.", "Dr", "Mlle"],
    "es": ["Sr.", "Sra.", "Dr.", "Dra.", "D."],
    "it": ["Sig.", "Sig.ra", "Dott.", "Dott.ssa", "Ing."],
    "nl": ["Dhr.", "Mevr.", "Dr.", "mevrouw", "meneer"],
    "pt": ["Sr.", "Sra.", "Dr.", "Dra.", "Dona"],
}


def en_street() -> str:
    name = R.choice(
        [
            "Baker",
            "Oak",
            "Maple",
            "Elm",
            "Harbour",
            "Mill",
            "Church",
            "Victoria",
            "Kingsley",
            "Pine",
            "Cedar",
            "Highfield",
            "Willow",
            "Station",
            "Park",
            "Lincoln",
            "Washington",
            "5th",
            "42nd",
            "Riverside",
            "Old Kent",
            "Mulberry",
        ]
    )
    kind = R.choice(["Street", "St", "Avenue", "Ave", "Road", "Rd", "Lane", "Drive", "Blvd", "Boulevard", "Way", "Close", "Court", "Place"])  # fmt: skip
    number = R.choice([str(R.randint(1, 2400)), f"{R.randint(1, 300)}{R.choice('ABC')}"])
    return f"{number} {name} {kind}"


def en_address(full: bool) -> str:
    line = en_street()
    if R.random() < 0.25:
        line += R.choice([", Apt 4B", ", Suite 210", ", Flat 3", ", Unit 12"])
    if not full:
        return line
    if R.random() < 0.5:
        city, state, zip_ = R.choice(
            [("Springfield", "IL", "62704"), ("Austin", "TX", "78701"), ("Portland", "OR", "97205"),
             ("New York", "NY", "10001"), ("Boston", "MA", "02118"), ("Denver", "CO", "80202")]
        )  # fmt: skip
        return f"{line}, {city}, {state} {zip_}"
    city, post = R.choice(
        [("London", "NW1 6XE"), ("Manchester", "M1 2AB"), ("Leeds", "LS1 4DY"), ("Bristol", "BS1 5TR")]
    )  # fmt: skip
    return f"{line}, {city} {post}"


def de_address(full: bool) -> str:
    street = R.choice(
        [
            "Hauptstraße",
            "Bahnhofstraße",
            "Goethestr.",
            "Lindenweg",
            "Marktplatz",
            "Kastanienallee",
            "Schillerstraße",
            "Berliner Straße",
            "Am Mühlenbach",
            "Hafenstraße",
            "Rosengasse",
            "Uferweg",
            "Königsallee",
            "Im Grund",
        ]  # fmt: skip
    )
    if street in ("Am Mühlenbach", "Im Grund"):
        street = "Mühlenbachweg"
    line = f"{street} {R.randint(1, 180)}{R.choice(['', '', 'a', 'b'])}"
    if not full:
        return line
    post, city = R.choice(
        [("10115", "Berlin"), ("80331", "München"), ("50667", "Köln"), ("20095", "Hamburg"),
         ("1010", "Wien"), ("8001", "Zürich"), ("60311", "Frankfurt am Main")]
    )  # fmt: skip
    return f"{line}, {post} {city}"


def fr_address(full: bool) -> str:
    street = R.choice(
        [
            "rue de la Paix",
            "avenue des Champs-Élysées",
            "boulevard Haussmann",
            "place Bellecour",
            "rue du Faubourg Saint-Honoré",
            "chemin des Vignes",
            "allée des Tilleuls",
            "rue Victor Hugo",
            "quai de la Tournelle",
            "impasse des Lilas",
            "rue Nationale",
        ]
    )
    number = R.choice([str(R.randint(1, 120)), f"{R.randint(1, 60)} bis"])
    line = f"{number}{R.choice([' ', ', '])}{street}"
    if not full:
        return line
    post, city = R.choice(
        [("75002", "Paris"), ("69002", "Lyon"), ("13001", "Marseille"), ("31000", "Toulouse"),
         ("1000", "Bruxelles"), ("33000", "Bordeaux")]
    )  # fmt: skip
    return f"{line}, {post} {city}"


def es_address(full: bool) -> str:
    street = R.choice(
        [
            "Calle de Alcalá",
            "Calle Mayor",
            "Avenida de la Constitución",
            "Plaza Mayor",
            "Paseo de Gracia",
            "Calle del Carmen",
            "Avda. Diagonal",
            "C/ Gran Vía",
            "Calle Serrano",
            "Ronda de Segovia",
        ]
    )
    line = f"{street}{R.choice([' ', ', ', ', nº '])}{R.randint(1, 250)}"
    if R.random() < 0.3:
        line += R.choice([", 3º B", ", 2º izq.", ", piso 4"])
    if not full:
        return line
    post, city = R.choice(
        [("28014", "Madrid"), ("08007", "Barcelona"), ("41001", "Sevilla"), ("46002", "Valencia"),
         ("48001", "Bilbao")]
    )  # fmt: skip
    return f"{line}, {post} {city}"


def it_address(full: bool) -> str:
    street = R.choice(
        [
            "Via Roma",
            "Via Garibaldi",
            "Viale dei Mille",
            "Piazza del Duomo",
            "Corso Vittorio Emanuele II",
            "Via della Spiga",
            "Via San Gregorio",
            "Largo Argentina",
            "Via Giuseppe Verdi",
            "Vicolo Stretto",
        ]  # fmt: skip
    )
    line = f"{street}{R.choice([' ', ', '])}{R.randint(1, 200)}"
    if not full:
        return line
    post, city = R.choice(
        [("00184", "Roma"), ("20121", "Milano"), ("50122", "Firenze"), ("80132", "Napoli"),
         ("10121", "Torino (TO)"), ("40121", "Bologna")]
    )  # fmt: skip
    return f"{line}, {post} {city}"


def nl_address(full: bool) -> str:
    street = R.choice(
        [
            "Keizersgracht",
            "Prinsengracht",
            "Kalverstraat",
            "Stationsplein",
            "Beukenlaan",
            "Dorpsstraat",
            "Oudegracht",
            "Wilhelminakade",
            "Kerkweg",
            "Molendijk",
            "Avenue Louise",
            "Meir",
        ]
    )
    if street == "Meir":
        street = "Meirstraat"
    line = f"{street} {R.randint(1, 400)}{R.choice(['', '', '-2', 'A'])}"
    if not full:
        return line
    post, city = R.choice(
        [("1015 CJ", "Amsterdam"), ("3511 AB", "Utrecht"), ("3011 AD", "Rotterdam"),
         ("2000", "Antwerpen"), ("1050", "Brussel"), ("9711 LM", "Groningen")]
    )  # fmt: skip
    return f"{line}, {post} {city}"


def pt_address(full: bool) -> str:
    street = R.choice(
        [
            "Rua Augusta",
            "Avenida da Liberdade",
            "Av. Paulista",
            "Rua das Flores",
            "Travessa do Carmo",
            "Praça do Comércio",
            "Rua Oscar Freire",
            "Alameda Santos",
            "Estrada de Benfica",
            "Rua de Santa Catarina",
        ]  # fmt: skip
    )
    line = f"{street}, {R.randint(1, 2000)}"
    if R.random() < 0.25:
        line += R.choice([", 2º Esq.", ", apto 52", ", 3º andar"])
    if not full:
        return line
    post, city = R.choice(
        [("1100-053", "Lisboa"), ("4000-322", "Porto"), ("01310-100", "São Paulo"),
         ("20040-002", "Rio de Janeiro"), ("3000-150", "Coimbra")]
    )  # fmt: skip
    return f"{line}, {post} {city}"


ADDRESS = {
    "en": en_address,
    "de": de_address,
    "fr": fr_address,
    "es": es_address,
    "it": it_address,
    "nl": nl_address,
    "pt": pt_address,
}


def full_name(lang: str) -> str:
    if R.random() < 0.12:  # a name from another language: people move
        lang = R.choice(LANGS)
    given = R.choice(GIVEN[lang])
    if R.random() < 0.1:
        given += " " + R.choice(["J.", "A.", "M.", R.choice(GIVEN[lang])])
    return f"{given} {R.choice(SURNAMES[lang])}"


# --- templates -------------------------------------------------------------------------------
# Each kind maps a language to templates. Title placeholders: {T} is a title of the language.

TEMPLATES: dict[str, dict[str, list[str]]] = {
    "ticket": {
        "en": [
            "Ticket #{n}: customer {P} reports that the parcel sent to {A} never arrived. "
            "Please check with the courier and update the order.",
            "Subject: Refund request\nHi support,\nmy name is {P} and I was charged twice for "
            "order {n}. Shipping address: {A}.\nThanks",
            "Escalated by {P}. The invoice went to {L} instead of our new office; please "
            "correct the billing address.",
            "{T} {S} called about the delayed delivery to {A}. Callback requested before 5 pm.",
        ],
        "de": [
            "Ticket {n}: Kunde {P} meldet, dass das Paket an {A} nicht angekommen ist.",
            "Betreff: Adressänderung\nHallo Support,\nbitte ändern Sie meine Lieferadresse auf "
            "{A}. Vielen Dank, {P}",
            "{T} {S} hat angerufen: Die Rechnung ging an {L}, richtig wäre die neue Adresse.",
        ],
        "fr": [
            "Ticket {n} : le client {P} signale que le colis envoyé au {A} n'est jamais arrivé.",
            "Objet : changement d'adresse\nBonjour,\nje m'appelle {P}, merci de livrer "
            "désormais au {A}.\nCordialement",
            "{T} {S} a rappelé au sujet de la facture envoyée au {L}.",
        ],
        "es": [
            "Ticket {n}: el cliente {P} indica que el pedido enviado a {A} no ha llegado.",
            "Asunto: cambio de dirección\nHola,\nme llamo {P} y mi nueva dirección es {A}. "
            "Gracias.",
            "{T} {S} llamó por la factura enviada a {L}.",
        ],
        "it": [
            "Ticket {n}: il cliente {P} segnala che il pacco spedito in {A} non è arrivato.",
            "Oggetto: cambio indirizzo\nBuongiorno,\nmi chiamo {P}, il nuovo indirizzo è {A}.",
            "{T} {S} ha chiamato per la fattura inviata in {L}.",
        ],
        "nl": [
            "Ticket {n}: klant {P} meldt dat het pakket naar {A} niet is aangekomen.",
            "Onderwerp: adreswijziging\nHallo,\nmijn naam is {P}; mijn nieuwe adres is {A}.",
            "{T} {S} belde over de factuur die naar {L} is gestuurd.",
        ],
        "pt": [
            "Ticket {n}: o cliente {P} informa que a encomenda enviada para {A} não chegou.",
            "Assunto: alteração de morada\nOlá,\no meu nome é {P} e a nova morada é {A}.",
            "{T} {S} ligou sobre a fatura enviada para {L}.",
        ],
    },
    "email": {
        "en": [
            "Dear {T} {S},\n\nthank you for your letter. We will send the contract to {A} "
            "by Friday.\n\nBest regards,\n{P}\nAccount Manager",
            "Hi {G},\n\nquick reminder that the offsite is on Thursday. {P} will present the "
            "roadmap.\n\nCheers,\n{G}",
            "Hello {G},\nplease find attached the lease for {A}.\nKind regards,\n{P}",
        ],
        "de": [
            "Sehr geehrte {T} {S},\n\nanbei der Vertrag für die Wohnung in der {A}.\n\n"
            "Mit freundlichen Grüßen\n{P}",
            "Hallo {G},\n\nkannst du morgen mit {P} das Angebot besprechen?\n\nViele Grüße\n{G}",
        ],
        "fr": [
            "Bonjour {T} {S},\n\nveuillez trouver ci-joint le bail pour le {A}.\n\n"
            "Cordialement,\n{P}",
            "Salut {G},\n\n{P} passera demain pour la réunion.\n\nMerci,\n{G}",
        ],
        "es": [
            "Estimada {T} {S}:\n\nle enviamos el contrato para {A}.\n\nSaludos cordiales,\n{P}",
            "Hola {G},\n\nmañana {P} presenta el presupuesto.\n\nUn saludo,\n{G}",
        ],
        "it": [
            "Gentile {T} {S},\n\nin allegato il contratto per l'immobile in {A}.\n\n"
            "Cordiali saluti,\n{P}",
            "Ciao {G},\n\ndomani {P} presenta il budget.\n\nGrazie,\n{G}",
        ],
        "nl": [
            "Geachte {T} {S},\n\nhierbij het huurcontract voor {A}.\n\n"
            "Met vriendelijke groet,\n{P}",
            "Hoi {G},\n\nmorgen presenteert {P} de begroting.\n\nGroeten,\n{G}",
        ],
        "pt": [
            "Prezada {T} {S},\n\nsegue em anexo o contrato do imóvel na {A}.\n\n"
            "Atenciosamente,\n{P}",
            "Olá {G},\n\namanhã a {P} apresenta o orçamento.\n\nAbraços,\n{G}",
        ],
    },
    "crm": {
        "*": [
            "id,name,street,email\n{n},{P},{A},x{n}@example.com\n{n},{P},{A},y{n}@example.com",
            "Name: {P}\nAddress: {A}\nSegment: Enterprise\nOwner: {P}",
            '{{"customer": "{P}", "shipping_address": "{A}", "tier": "gold"}}',
            "| Contact | Address | Status |\n|---|---|---|\n| {P} | {A} | active |\n"
            "| {P} | {A} | churned |",
        ],
    },
    "hr": {
        "en": [
            "HR note: {P} starts on Monday as a data engineer; her manager is {P}. Payroll "
            "needs her home address, {A}.",
            "Performance review for {P}, written by {T} {S}. Strong quarter; promotion "
            "recommended.",
        ],
        "de": [
            "Personalnotiz: {P} beginnt am Montag im Vertrieb, Vorgesetzte ist {P}. "
            "Wohnanschrift: {A}.",
        ],
        "fr": [
            "Note RH : {P} rejoint l'équipe lundi ; son responsable est {P}. Adresse : {A}.",
        ],
        "es": [
            "Nota de RR. HH.: {P} se incorpora el lunes; su responsable es {P}. Domicilio: {A}.",
        ],
        "it": [
            "Nota HR: {P} entra in azienda lunedì; il responsabile è {P}. Residenza: {A}.",
        ],
        "nl": [
            "HR-notitie: {P} begint maandag; leidinggevende is {P}. Woonadres: {A}.",
        ],
        "pt": [
            "Nota de RH: {P} começa na segunda-feira; a chefia é {P}. Morada: {A}.",
        ],
    },
    "chat": {
        "en": [
            "[10:02] {G}: can someone ping {P} about the outage?\n[10:03] bot: paged on-call",
            "hey, it's {P} here, I moved to {A}, can you update my profile?",
            "summarise this thread: {G} thinks we should ship, {G} wants one more test run.",
        ],
        "de": ["[09:14] {G}: kann jemand {P} wegen des Ausfalls anrufen?"],
        "fr": ["[09:14] {G} : quelqu'un peut appeler {P} pour la panne ?"],
        "es": ["[09:14] {G}: ¿alguien puede llamar a {P} por la caída?"],
        "it": ["[09:14] {G}: qualcuno può chiamare {P} per il guasto?"],
        "nl": ["[09:14] {G}: kan iemand {P} bellen over de storing?"],
        "pt": ["[09:14] {G}: alguém pode ligar para {P} por causa da falha?"],
    },
    "code": {
        "*": [
            'def test_invoice():\n    customer = Customer(name="{P}", address="{A}")\n'
            "    assert customer.is_valid()\n",
            '# Owner: {P}\nSHIP_FROM = "{A}"\nclass MarkdownRenderer:\n    will_retry = True\n',
            "INSERT INTO contacts (full_name, street) VALUES ('{P}', '{A}');",
        ],
    },
    "letter": {
        "*": [
            "{P}\n{A}\n\nRe: your application {n}\n\nDear {T} {S},\nwe are pleased to ...",
            "From: {P}\nTo: {P}\nSubject: visit\n\nWe will meet at {A} at 10:00.",
        ],
    },
}

NEGATIVES: dict[str, list[str]] = {
    "en": [
        "Will you send the report by Friday? Mark the ticket as resolved once Bill is paid.",
        "May is the busiest month; the Summer Sale starts on June 1 and Grace periods apply.",
        "Rose Industries and Mark & Spencer Ltd signed a deal with Grace Foods Inc.",
        "The Ford Mustang, the Tesla Model 3 and the Dell XPS 13 are in the catalogue.",
        "Our offices are in Paris, Berlin, Austin and Sydney; Victoria joins next year.",
        "The parade goes down Baker Street and Oxford Street, then along Main Street.",
        "## Release Notes\n### Summer Update\nNew: Rose Gold theme, Grace Mode, Will-Call Pickup.",
        "Chapter 12 covers Route 66 and Highway 1; see Figure 3 and Table 4.",
        "Room 101 is booked; Building 7 has Floor 3 closed until 2025.",
        "def mark_done(self):\n    self.will_retry = False\n    Rose = Color('#ff007f')\n    return Bill.objects.filter(May=1)",
        "Hope this helps! Grace under pressure is what we need. Happy Holidays, Team.",
        "Jordan, Chad and Georgia are countries; Florence and Sydney are cities.",
        "Windows 11 and Office 365 ship with Teams; Alexa and Siri are assistants.",
        "Press Enter, then Shift+Tab. Click Save As to keep a copy.",
        "The Washington Post and the New York Times covered the Lincoln Memorial event.",
        "Upgrade to Python 3.12; Django 5.1 drops support for older versions.",
        "Next Monday: Quarterly Business Review, Agenda item 4, Action Items.",
        "Sales grew 12% in Q3; the Grant Thornton audit is due in March.",
    ],
    "de": [
        "Die Straße ist gesperrt; bitte über die Hauptstraße und den Marktplatz fahren.",
        "Platz 2 belegte das Team aus Köln; Weg 3 ist der kürzeste.",
        "Die Deutsche Bahn AG und die Siemens AG melden Rekordzahlen.",
        "Im Mai beginnt der Sommerschlussverkauf; Bitte Rechnung und Lieferschein prüfen.",
        "Frankfurt am Main und München sind wichtige Standorte.",
    ],
    "fr": [
        "La rue de Rivoli et l'avenue Montaigne sont piétonnes ce dimanche.",
        "Saint-Gobain et Louis Vuitton publient leurs résultats trimestriels.",
        "Lyon, Marseille et Nice accueillent le festival en juillet.",
        "Merci de vérifier la facture avant le 15 mai.",
    ],
    "es": [
        "La Calle Mayor y la Plaza de España están cerradas por obras.",
        "Banco Santander y El Corte Inglés abren nuevas tiendas en Sevilla.",
        "En mayo empieza la temporada; Gracias por tu paciencia.",
    ],
    "it": [
        "Via del Corso e Piazza Navona sono chiuse per lavori.",
        "Ferrero e Giorgio Armani S.p.A. presentano i risultati.",
        "A maggio iniziano i saldi a Milano e Firenze.",
    ],
    "nl": [
        "De Kalverstraat en het Rembrandtplein zijn afgesloten.",
        "Albert Heijn en Philips openen nieuwe vestigingen in Utrecht.",
        "In mei begint het seizoen; bedankt voor het wachten.",
    ],
    "pt": [
        "A Avenida da Liberdade e a Rua Augusta estão fechadas para obras.",
        "O Banco do Brasil e a Casas Bahia abrem novas lojas em Lisboa e Porto.",
        "Em maio começa a temporada; obrigado pela paciência.",
    ],
}


# A second batch, written apart from the first: other shapes of the same kinds.
MORE_TEMPLATES: dict[str, list[str]] = {
    "en": [
        "-----Original Message-----\nFrom: {P} <ops@example.org>\nSent: Tuesday\nTo: Support\n"
        "Subject: RE: access\n\nPlease add me to the finance group.\n\n--\n{P}\nHead of Finance",
        "Meeting notes (Q3 planning)\nAttendees: {P}, {P}, {P}\nAction: {G} to send the deck.",
        "Can you draft a reply to {P}? She wants to know whether we deliver to {A}.",
        'Translate to French: "{P} will visit our warehouse at {A} next week."',
        "Background check for applicant {P}, previous address {A}, current address {A}.",
        "Summarize: Patient {P} (DOB 1984-03-12) was referred by {T} {S} for a follow-up.",
        "thanks {G}! also pls loop in {G} from legal",
        "ok so {P} said the keys are at reception, {A}",
    ],
    "de": [
        "Protokoll: Anwesend waren {P}, {P} und {T} {S}. {G} verschickt die Unterlagen.",
        "Bitte formuliere eine Antwort an {P}, wohnhaft {A}, wegen der Mieterhöhung.",
        "Rückfrage von {T} {S}: Wird die Ware an {A} geliefert?",
    ],
    "fr": [
        "Compte rendu : étaient présents {P}, {P} et {T} {S}. {G} envoie le support.",
        "Rédige une réponse à {P}, domicilié au {A}, au sujet du loyer.",
    ],
    "es": [
        "Acta: asistieron {P}, {P} y {T} {S}. {G} enviará la presentación.",
        "Redacta una respuesta para {P}, con domicilio en {A}, sobre el alquiler.",
    ],
    "it": [
        "Verbale: presenti {P}, {P} e {T} {S}. {G} invierà la presentazione.",
        "Scrivi una risposta a {P}, residente in {A}, sull'affitto.",
    ],
    "nl": [
        "Notulen: aanwezig waren {P}, {P} en {T} {S}. {G} stuurt de presentatie.",
        "Schrijf een antwoord aan {P}, woonachtig op {A}, over de huur.",
    ],
    "pt": [
        "Ata: estiveram presentes {P}, {P} e {T} {S}. {G} envia a apresentação.",
        "Escreve uma resposta para {P}, residente na {A}, sobre a renda.",
    ],
}
MORE_NEGATIVES: dict[str, list[str]] = {
    "en": [
        "# Getting Started\n## Install\nRun `pip install atp`, then open Settings > Billing.",
        "Summer Internship Program: Apply by May 15. Grace Hopper Celebration tickets on sale.",
        "The Will Rogers Follies and Rose Bowl tickets sold out; Mark Twain House is closed.",
        "class BillingService(BaseService):\n    def will_renew(self, mark: int) -> bool:\n"
        "        return self.Rose.grace_days > mark",
        "ERROR 2024-06-01 12:00:03 PaymentGateway timeout after 30s (Stripe, Adyen)",
        "Visit Amsterdam, Lisbon and Barcelona this spring; Florence is lovely in April.",
        "Amazon Web Services, Google Cloud and Microsoft Azure all offer this.",
        "Use Jenkins or GitHub Actions; Ruby on Rails and Julia are supported.",
        "Please review the Terms and Conditions and the Privacy Policy before Monday.",
        "Dear Customer,\nYour order has shipped. Kind regards,\nThe Support Team",
        "Hi all, Happy Friday! Reminder: Town Hall at 3 pm in Conference Room B.",
        "Oxford Street, Fifth Avenue and the Champs-Élysées are famous shopping streets.",
        "We moved from Main St to a bigger office; directions are on our website.",
        "The Baker Street Irregulars met 221 times; see volume 2 of the Strand Magazine.",
        "Step 3 Drive Alignment: set motor 2 Lane Assist to on.",
        "Hope all is well. Will confirm by EOD. Best, Support",
        "Jackson Hole, Lincoln Center and Madison Square Garden are venues.",
        "Our top products: Aurora Lamp, Victoria Sofa, Grace Chair and Ivy Planter.",
    ],
    "de": [
        "Sehr geehrte Damen und Herren,\nvielen Dank für Ihre Anfrage.\nMit freundlichen Grüßen\nIhr Kundenservice",
        "Die Sparkasse Köln Bonn und die Volksbank Mittelhessen haben fusioniert.",
        "Neue Funktionen: Export nach Excel, Dunkles Design, Schnellere Suche.",
        "Die Hauptstraße ist wegen Bauarbeiten bis Ende Juni gesperrt.",
    ],
    "fr": [
        "Madame, Monsieur,\nNous avons bien reçu votre demande.\nCordialement,\nLe service client",
        "Le Crédit Agricole et la Société Générale ouvrent une agence place Bellecour.",
        "Nouveautés : Mode Sombre, Export PDF, Recherche Avancée.",
    ],
    "es": [
        "Estimado cliente:\nHemos recibido su solicitud.\nAtentamente,\nEl equipo de soporte",
        "Telefónica y Mercadona abren oficinas en la Gran Vía de Madrid.",
        "Novedades: Modo Oscuro, Exportar a PDF, Búsqueda Avanzada.",
    ],
    "it": [
        "Gentile cliente,\nabbiamo ricevuto la sua richiesta.\nCordiali saluti,\nIl servizio clienti",
        "Intesa Sanpaolo e Poste Italiane aprono nuovi sportelli in Piazza San Marco.",
    ],
    "nl": [
        "Geachte heer/mevrouw,\nWij hebben uw aanvraag ontvangen.\nMet vriendelijke groet,\nKlantenservice",
        "De Rabobank en ING openen een kantoor aan de Coolsingel in Rotterdam.",
    ],
    "pt": [
        "Caro cliente,\nrecebemos o seu pedido.\nAtenciosamente,\nApoio ao Cliente",
        "A Caixa Geral de Depósitos e a Sonae abrem lojas na Avenida da Liberdade.",
    ],
}


# --- assembly --------------------------------------------------------------------------------

_FIELD = re.compile(r"\{(P|G|S|A|L|T|n)\}")


def fill(template: str, lang: str) -> tuple[str, list[list]]:
    template = template.replace("{{", "\x00").replace("}}", "\x01")
    out: list[str] = []
    spans: list[list] = []
    size = 0
    pos = 0
    for m in _FIELD.finditer(template):
        literal = template[pos : m.start()]
        out.append(literal)
        size += len(literal)
        key = m.group(1)
        kind = None
        if key == "P":
            value, kind = full_name(lang), "PERSON"
        elif key == "G":
            value, kind = R.choice(GIVEN[lang]), "PERSON"
        elif key == "S":
            value, kind = R.choice(SURNAMES[lang]), "PERSON"
        elif key in ("A", "L"):
            value, kind = ADDRESS[lang](key == "A"), "ADDRESS"
        elif key == "T":
            value = R.choice(TITLES[lang])
        else:
            value = str(R.randint(1000, 99999))
        if kind:
            spans.append([size, size + len(value), kind])
        out.append(value)
        size += len(value)
        pos = m.end()
    out.append(template[pos:])
    text = "".join(out).replace("\x00", "{").replace("\x01", "}")
    return text, spans


def build() -> list[dict]:
    records: list[dict] = []
    for kind, by_lang in TEMPLATES.items():
        for lang in LANGS:
            templates = by_lang.get(lang) or by_lang.get("*") or []
            for template in templates:
                for _ in range(3 if kind in ("ticket", "email", "crm") else 2):
                    text, spans = fill(template, lang)
                    records.append({"kind": kind, "lang": lang, "text": text, "spans": spans})
    for lang, templates in MORE_TEMPLATES.items():
        for template in templates:
            for _ in range(2):
                text, spans = fill(template, lang)
                records.append({"kind": "more", "lang": lang, "text": text, "spans": spans})
    for lang, texts in MORE_NEGATIVES.items():
        for text in texts:
            records.append({"kind": "negative", "lang": lang, "text": text, "spans": []})
    for lang, texts in NEGATIVES.items():
        for text in texts:
            records.append({"kind": "negative", "lang": lang, "text": text, "spans": []})
    # Negatives mixed into positive records: the detector must keep both apart.
    for lang in LANGS:
        for _ in range(6):
            text, spans = fill(R.choice(TEMPLATES["ticket"][lang]), lang)
            neg = R.choice(NEGATIVES[lang])
            records.append(
                {"kind": "mixed", "lang": lang, "text": neg + "\n" + text,
                 "spans": [[s + len(neg) + 1, e + len(neg) + 1, t] for s, e, t in spans]}
            )  # fmt: skip
    for i, record in enumerate(records):
        record["id"] = f"people-{i:04d}"
    return [{"id": r["id"], **{k: v for k, v in r.items() if k != "id"}} for r in records]


def main() -> None:
    records = build()
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

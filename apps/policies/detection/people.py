"""Person names and street addresses in free text, found offline by documented heuristics.

No model and no download: a gazetteer and a few grammars, all data bundled in `people_data/`.

Person names. Runs of capitalised words ("chains", with name particles such as "van der" or
"de la" and initials inside) are the candidates. A chain is a person when
- a title stands before it (Mr, Ms, Dr, Herr, Frau, M., Mme, Sr., Sra., Sig.ra, Dhr., ...):
  the span is the words after the title, one word is enough ("Herr Müller");
- a cue stands before it: a salutation ("Dear", "Hallo", "Bonjour", "Hola", "Ciao", "Beste",
  "Olá"), a closing on the same line ("Thanks, Anna"), a field or phrase that introduces a
  name ("Name:", "my name is", "je m'appelle", "assigned to"), or it is alone on the line
  after a closing ("Best regards," / "Mit freundlichen Grüßen" / "Cordialement" ...); its
  first word must then be a known name or no common word ("Hi Team" is not a person);
- or, without context, its first word is a known given name (the 1990 US Census lists,
  public domain, plus given names common in the other languages): two or more words make a
  full name; a given name that is also a common word, a month or a place ("Will", "May",
  "Grace", "Paris") needs a known surname after it ("Will Smith", not "Grace Period"); a
  lone given name counts when it is none of those; an unknown first word counts before a
  frequent surname ("Ainhoa Martínez"), and so do initials ("J. Smith").
A chain followed by a company suffix ("GmbH", "Inc", "Industries") or an "&", or naming an
eponymous brand ("Louis Vuitton"), is a company, not a person; a chain followed by unknown
capitalised words is a title or an event ("Grace Hopper Celebration"); a word glued to code
punctuation (`Mark.objects`, `Will_run`, `Rose(`) or with a capital inside (`GitHub`) is an
identifier. A cue may also follow the name: reported speech ("Wanjiru Kamau replied",
"schrieb", "a répondu", "lo confirmó") or an e-mail address ("Ana Lima <ana@...>"); mail
headers ("An:", "De :"), requests ("on behalf of", "Anfrage von", "Pedido de") and roles
("mentor", "Vorgesetzter", "responsable") count as cues before it. After a weak cue ("with",
"and"), two or three capitalised words none of which is an ordinary word, a place or an
organisation make a full name.

Fields. A value is a name or a street because of the field holding it, in any letter case:
JSON and keyword keys ("customer", "full_name", "contactName", "shipping_address"), CSV, TSV and
Markdown columns under such headers (an unquoted address holding the separator is re-joined),
"Label: value" lines, labels alone on the line above their value ("Full name" / "Wohnanschrift"
/ "SHIP TO:" then a name and a street), and chat speakers ("[09:14] Itai:"). A vague key
("name") names a person only in a record that also holds an address or an e-mail address, or
when the value holds a known given name or surname; header lines are never names.

Letter case. Lines in capitals and runs of two or more words in capitals are read in title
case ("SHIP TO: JANE DOE"); in a line that starts in lower case (chat), a known given name
followed by a known surname is read capitalised ("call maria lopez"). The text keeps its
length, so offsets carry over. Not found: unknown names in lower case, and unknown names with
no cue on either side.

Street addresses. One grammar per way of writing a street line, each needing a house number:
number first with an English street type ("221B Baker Street", "1600 Pennsylvania Ave NW")
or a French one ("12, rue de la Paix"); street type first and number after ("Calle de
Alcalá 42", "Via Roma, 10", "Rua Augusta, 100", "Avenue Louise 54"); a German or Dutch
street word ending in a street type ("Hauptstraße 5", "Berliner Allee 12", "Keizersgracht
123"). A unit ("Apt 4B", "3º B") and a postcode with its city on the same line
("10115 Berlin", "1015 CJ Amsterdam", "London NW1 6XE", "Springfield, IL 62704") extend the
span. A street name without a number is no address, nor is a year after "in" or "since".
Also found: post-office boxes ("PO Box 4521", "Postfach 10 04 52", "Apartado de Correos 12",
"Casella Postale 3", "Postbus 2500", "BP 45"); German streets named by a preposition and a
word, the number ending the line ("Unter den Linden 77", "Am Sandtorkai 41"); any street line
ending in a number when a postcode and city follow it after a comma or on the next line
("Zeil 12, 60313 Frankfurt", "Laan van Meerdervoort 12, 2517 AB Den Haag",
"42 Kingsway\nTucson, AZ 85701", "Im Tal 118\n80331 München"); romanised Japanese addresses
around a ward or city suffix ("1-2-3 Jingumae, Shibuya-ku, Tokyo 150-0001"), and, in Japanese
script, addresses from the prefecture to the block number ("東京都渋谷区道玄坂1-2-3") and
names before an honorific ("山田太郎様").

Speed. The text is mapped once to a byte string of character classes (capital, small letter,
digit), in which the regex engine finds the runs of capitalised words and the house numbers
in C; Python looks only at runs holding a known name or following a title or a cue, and tries
the street grammars only where they can start (a house number before a street word, the
street word itself, or a word or two before it). Field stems are found with `str.find`;
postcodes, capitals and lower-case lines with patterns that start with a literal byte of the
class map; Japanese patterns run only on text holding kana or kanji.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from functools import lru_cache
from pathlib import Path

Span = tuple[int, int, str]

_DATA = Path(__file__).with_name("people_data")


def _wordset(words: str) -> frozenset[str]:
    return frozenset(words.split())


# --- character classes -----------------------------------------------------------------------


def _latin(pred) -> str:
    codes = [*range(0x41, 0x250), *range(0x1E00, 0x1F00)]  # Latin, Latin Extended Additional
    chars = "".join(chr(c) for c in codes if pred(chr(c)))
    return re.escape(chars)


_U = _latin(str.isupper)
_L = _latin(str.islower)
# A capitalised word: "Maria", "Jean-Pierre", "O'Brien", "McDonald", "D'Angelo".
_CAP = rf"(?:Mc|Mac|O['’]|D['’])?[{_U}][{_L}]+(?:-[{_U}][{_L}]+)*"
_INITIAL = rf"[{_U}]\."
_PARTICLE = r"(?:van|von|de|der|den|del|della|di|da|das|dos|do|du|des|le|la|ter|ten|zu|bin|ibn|al)"
PARTICLES = _wordset(
    "van von de der den del della di da das dos do du des le la ter ten zu bin ibn al"
)


def _class_tables() -> tuple[bytes, dict[int, str]]:
    """One byte per character: "A" for a capital, "a" for a small letter, "0" for a digit."""
    table = bytearray(range(256))
    wide: dict[int, str] = {}
    for code in (*range(0x41, 0x250), *range(0x1E00, 0x1F00)):
        char = chr(code)
        cls = "A" if char.isupper() else "a" if char.islower() else None
        if cls:
            wide[code] = cls
            if code < 256:
                table[code] = ord(cls)
    for code in b"0123456789":
        table[code] = wide[code] = ord("0")
    table[ord("\t")] = ord(" ")
    wide[ord("\t")] = " "
    wide[ord("’")] = "'"
    return bytes(table), wide


_BYTE_CLASSES, _WIDE_CLASSES = _class_tables()


def _classes(text: str) -> bytes:
    try:
        return text.encode("latin-1").translate(_BYTE_CLASSES)
    except UnicodeEncodeError:
        # Characters past Latin-1 become "?" after the map: offsets stay character offsets.
        return text.translate(_WIDE_CLASSES).encode("latin-1", "replace")


# Capitalised words with name particles and initials between them, in the class map.
# (It starts with a literal "A", which the regex engine skips to in C.)
_CHAIN = re.compile(rb"A(?:\.[ ]?A){0,3}[aA'\-]*a(?:[ ]+(?:a{1,4}[ ]+){0,2}(?:A[aA'\-]*a|A\.))*")
_BEFORE_CODE = frozenset("_.@/#$\\-`")
_AFTER_CODE = frozenset("_([{`@")

# Titles written before a name (compared without a final dot).
_TITLES = _wordset(
    """Mr Mrs Ms Mx Miss Dr Prof Herr Frau Hr Fr M Mme Mlle Mmes MM Me Sr Sra Srta Sres D Dª Dña
    Don Doña Dona Dom Sig Sig.ra Sig.na Sigg Dott Dott.ssa Ing Avv Arch Prof.ssa Dra Dr.ª Dhr
    Mevr Mevrouw Meneer Mej Ir Drs Mag Dipl.-Ing Eng Exmo Exma Madame Monsieur Mademoiselle
    Señor Señora Señorita Signor Signora Signorina Senhor Senhora Sir Dame Lady Lord
    mevrouw meneer madame monsieur mademoiselle señor señora señorita signor signora signorina
    senhor senhora dona don doña"""
)
_SALUTATIONS = (
    r"dear|hi|hello|hey|good morning|good afternoon|good evening|morning|greetings|"
    r"liebe|lieber|liebes|hallo|hi|moin|servus|guten morgen|guten tag|guten abend|grüß dich|"
    r"sehr geehrte|sehr geehrter|bonjour|bonsoir|cher|chère|chers|salut|coucou|"
    r"hola|estimado|estimada|querido|querida|buenos días|buenas tardes|buenas|"
    r"ciao|salve|gentile|gentilissima|gentilissimo|caro|cara|buongiorno|buonasera|"
    r"beste|geachte|hoi|dag|goedemorgen|goedemiddag|"
    r"olá|ola|oi|prezado|prezada|bom dia|boa tarde|"
    r"thanks|thank you|thx|cheers|regards|best|danke|merci|gracias|grazie|bedankt|"
    r"dank je|obrigado|obrigada"
)
_CUES = (
    r"my name is|my name's|name is|this is|i am|i'm|call me|"
    r"name|full name|customer name|contact|contact person|from|to|cc|bcc|attn|attention|"
    r"signed|signed by|approved by|assigned to|reported by|requested by|created by|owner|"
    r"employee|customer|patient|applicant|candidate|tenant|guest|user|manager|"
    r"account manager|assignee|reporter|author|recipient|sender|passenger|holder|"
    r"cardholder|account holder|beneficiary|first name|last name|surname|given name|"
    r"mein name ist|ich bin|ich heiße|ansprechpartner|ansprechpartnerin|kunde|kundin|"
    r"mitarbeiter|mitarbeiterin|vorname|nachname|empfänger|absender|"
    r"je m'appelle|je m’appelle|je suis|nom|prénom|nom complet|client|cliente|"
    r"interlocuteur|destinataire|expéditeur|"
    r"me llamo|mi nombre es|soy|nombre|apellido|apellidos|nombre completo|"
    r"mi chiamo|il mio nome è|sono|nome|cognome|nome completo|"
    r"mijn naam is|ik ben|naam|voornaam|achternaam|klant|contactpersoon|"
    r"meu nome é|chamo-me|eu sou|sou|nome completo|sobrenome|apelido|"
    r"met|mit|with|avec|con|com|ask|asked|tell|told|per|by|par|von|da|door|por|"
    r"and|und|et|y|e|en|"
    # e-mail headers and requests ("An: ...", "De : ...", "request from ...")
    r"an|de|para|a|à|aan|van|caller|request from|on behalf of|according to|"
    r"anfrage von|im auftrag von|laut|demande de|de la part de|selon|solicitud de|"
    r"en nombre de|según|richiesta di|per conto di|secondo|verzoek van|namens|volgens|"
    r"pedido de|em nome de|segundo|"
    r"supervisor|line manager|mentor|interviewer|vorgesetzter|vorgesetzte|betreuer|betreuerin|"
    r"responsable|responsabile|chefia|leidinggevende|referente"
)
# Words of mail headers ("An:", "De :") that are cues only before a colon.
_HEADER_CUES = frozenset(("an", "a", "à", "aan", "para", "de", "van", "da", "di"))
# Cues that only introduce a name when the word after them is a known name.
_WEAK_CUES = frozenset(
    re.split(
        r"\s*\|\s*",
        """this is|i am|i'm|ich bin|je suis|soy|sono|ik ben|eu sou|sou|met|mit|with|avec|con|com|
    ask|asked|tell|told|per|by|par|von|da|door|por|and|und|et|y|e|en|from|to|user|guest|
    customer|client|cliente|kunde|kundin|klant|manager|owner|contact|employee|name|an|de|para|
    a|à|aan|van|secondo|segundo""",
    )
)
_CUE_PHRASES = frozenset(p.strip() for p in (_SALUTATIONS + "|" + _CUES).split("|") if p.strip())
_CUE_PUNCT = " \t\"'“”«»:=,-–"
_CUE_STRIP = _CUE_PUNCT + "([{>*|."
_LINE_LEAD = frozenset(" \t-—–>*_")
# The last word of every cue and every title, in lower case without the dot.
_LAST_OF_CUE = frozenset(
    [p.split()[-1] for p in _CUE_PHRASES] + [t.lower().rstrip(".") for t in _TITLES]
)
_SALUTATION_WORDS = _wordset(
    """dear hi hello hey liebe lieber hallo moin servus bonjour bonsoir cher chere salut coucou
    hola estimado estimada querido querida ciao salve gentile caro cara buongiorno beste
    geachte hoi ola oi prezado prezada thanks danke merci gracias grazie bedankt obrigado
    obrigada"""
)
_PLACE_PREFIXES = _wordset(
    "sao san santa santo saint sainte st ste port porto new fort mount bad sankt puerto"
)
_CLOSINGS = re.compile(
    r"^[ \t>*_-]*(?:best(?: regards| wishes)?|kind regards|warm regards|regards|many thanks|"
    r"thanks(?: again| and regards)?|thank you|cheers|sincerely|yours sincerely|yours truly|"
    r"yours faithfully|all the best|talk soon|"
    r"mit freundlichen grüßen|mit freundlichen grüssen|freundliche grüße|viele grüße|"
    r"beste grüße|liebe grüße|herzliche grüße|schöne grüße|lg|vg|mfg|gruß|grüße|danke|"
    r"cordialement|bien cordialement|bien à vous|amicalement|salutations|meilleures salutations|"
    r"merci|bonne journée|"
    r"saludos|un saludo|saludos cordiales|atentamente|un abrazo|gracias|"
    r"cordiali saluti|cordialmente|distinti saluti|saluti|un saluto|grazie|a presto|"
    r"met vriendelijke groet|met vriendelijke groeten|vriendelijke groeten|groeten|"
    r"hartelijke groet|mvg|groetjes|bedankt|"
    r"atenciosamente|cumprimentos|com os melhores cumprimentos|abraços|abraço|obrigado|"
    r"obrigada|--|—|sent from my \w+)[ \t]*[,.!]?[ \t]*$",
    re.IGNORECASE,
)

# Words after which a chain is an organisation, a product or a place, not a person.
_ORG_SUFFIXES = _wordset(
    """inc inc. ltd llc llp plc corp co gmbh ag kg ohg ug se sa sas sarl sàrl srl spa s.p.a bv
    b.v nv n.v oy ab as asa aps kft sp zoo group holding holdings industries systems software
    solutions technologies technology labs lab consulting partners associates bank capital
    ventures media studio studios foundation institute university college school hospital
    clinic hotel restaurant cafe café bar airlines airline motors pharma logistics services
    international global networks digital analytics insurance energy foods brands records
    stiftung verlag werke kliniken klinik universität hochschule schule bahn versicherung
    université école banque fondation société groupe universidad escuela banco fundación
    grupo università scuola banca fondazione gruppo universiteit school stichting groep
    universidade escola fundação street st road rd avenue ave lane drive boulevard way square
    place park bridge station airport river valley mountain lake beach island county district
    award awards prize festival conference summit cup league club theatre theater museum
    gallery library center centre tower building hall house court castle palace garden
    memorial monument stadium arena bridge tunnel
    gardens church cathedral project edition series release version protocol framework
    app engine model"""
)


# --- data ------------------------------------------------------------------------------------


@lru_cache(maxsize=65536)
def _fold(word: str) -> str:
    """Lower case without accents: "Müller" and "MULLER" meet as "muller"."""
    decomposed = unicodedata.normalize("NFKD", word.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c)).replace("’", "'")


_FOLDED_CUES = {_fold(p): p for p in _CUE_PHRASES}


def _words(name: str, limit: int | None = None) -> set[str]:
    out: list[str] = []
    with open(_DATA / name, encoding="utf-8") as fh:
        for line in fh:
            if not line.startswith("#"):
                out.extend(_fold(w) for w in line.split())
    return set(out[:limit])


class _Lexicon:
    def __init__(self) -> None:
        common = _words("common_words.txt")
        places = _words("places.txt")
        particles = {"de", "van", "der", "den", "von", "da", "di", "del", "della", "dos", "das"}
        given = {w for w in _words("census_given.txt") if len(w) > 2}
        given |= _words("given_europe.txt")
        surnames = _words("census_surnames.txt") | _words("surnames_europe.txt")
        self.given = frozenset(given)
        self.surnames = frozenset(surnames - particles)
        # Enough to confirm a given name that is also a word: "Will Smith", not "Summer Sale".
        frequent = _words("census_surnames.txt", limit=5000) | _words("surnames_europe.txt")
        self.frequent_surnames = frozenset(frequent - particles - common - places)
        # A word that reads as an ordinary word or a place needs more than itself.
        self.ambiguous = frozenset(common | places)
        self.common = frozenset(common)
        # Given names that are no ordinary word: enough to read "call maria lopez" as a name.
        self.plain_given = frozenset(self.given - self.ambiguous)
        self.org = frozenset(_fold(w) for w in _ORG_SUFFIXES)
        # A chain with none of these words is a name only after a title or a cue, or alone
        # on a line (a signature).
        self.interesting = (
            frozenset(
                (self.given - self.ambiguous)
                | self.frequent_surnames
                | _SALUTATION_WORDS
                | {_fold(w) for w in _TITLES}
            )
            - PARTICLES
        )
        brands = frozenset(
            tuple(_fold(w) for w in re.findall(r"[^\W\d_]+", line))
            for line in (_DATA / "eponymous_brands.txt").read_text(encoding="utf-8").splitlines()
            if line and not line.startswith("#")
        )
        self.brands: dict[str, list[tuple[str, ...]]] = {}
        for brand in brands:
            self.brands.setdefault(brand[0], []).append(brand)


_lock = threading.Lock()
_loaded: _Lexicon | None = None


def _lexicon() -> _Lexicon:
    global _loaded
    if _loaded is None:
        with _lock:
            if _loaded is None:
                _loaded = _Lexicon()
    return _loaded


# --- addresses -------------------------------------------------------------------------------

_NAME_WORD = rf"(?:{_CAP}|\d{{1,3}}(?:st|nd|rd|th)|[{_U}]\.|[IVX]{{1,4}}\b)"
_HOUSE = r"\d{1,5}(?:[ ]?[A-Za-z](?![\w]))?(?:[-–/]\d{1,5}[A-Za-z]?)?"
_EN_TYPES = (
    r"Street|St|Avenue|Ave|Av|Road|Rd|Lane|Ln|Boulevard|Blvd|Drive|Dr|Court|Ct|Place|Pl|"
    r"Terrace|Ter|Way|Close|Crescent|Cres|Square|Sq|Parkway|Pkwy|Highway|Hwy|Circle|Cir|Row|"
    r"Mews|Gardens|Grove|Walk|Trail|Plaza|Alley|Loop|Pike|Green|Hill|Rise|Parade|Broadway|"
    r"Expressway|Freeway|Turnpike"
)
_DIRECTION = r"(?:N|S|E|W|NE|NW|SE|SW|North|South|East|West)"
_EN_STREET = (
    rf"{_HOUSE},?[ ](?:{_DIRECTION}\.?[ ])?{_NAME_WORD}(?:[ ]{_NAME_WORD}){{0,3}}[ ]"
    rf"(?:{_EN_TYPES})\b\.?(?:[ ]{_DIRECTION}\b)?"
)
_FR_TYPES = (
    r"rue|avenue|av\.|boulevard|bd|blvd|place|pl\.|chemin|allée|impasse|quai|cours|route|"
    r"passage|square|rond-point|faubourg|chaussée|voie|sentier|promenade|esplanade|parvis"
)
_LINK = (
    r"(?:de|du|des|de la|de l['’]|d['’]|la|le|les|l['’]|aux|au|sur|à|del|de los|de las|"
    r"dos|das|do|da|di|della|delle|dei|degli|dello|san|santa|são|sainte|saint|st|ste|e|y|"
    r"von|van|der|den|am|an|im|zum|zur)"
)
_ROMANCE_NAME = (
    rf"(?:{_LINK}[ ]?)?(?:{_NAME_WORD}|\d{{1,2}}(?:-[{_U}][{_L}]+)+)"
    rf"(?:[ -](?:{_LINK}[ ]?)?(?:{_NAME_WORD}|\d{{1,4}}(?=[ -][{_U}]))){{0,5}}"
)
_FR_STREET = rf"{_HOUSE},?[ ](?:(?:bis|ter|quater|B|T)[ ,]+)?(?i:{_FR_TYPES})[ ]{_ROMANCE_NAME}"
_TYPE_FIRST = (
    r"Calle|C/|c/|Avenida|Avda\.?|Av\.|Avd\.|Plaza|Pza\.|Paseo|Pº|Camino|Carrera|Ronda|"
    r"Travesía|Glorieta|Carretera|Ctra\.|Vía|"
    r"Via|V\.|Viale|V\.le|Piazza|P\.za|P\.zza|Corso|C\.so|Largo|Vicolo|Piazzale|Strada|"
    r"Lungomare|Lungotevere|Contrada|Borgo|Salita|Vico|"
    r"Rua|R\.|Travessa|Tv\.|Praça|Pç\.|Estrada|Alameda|Calçada|Beco|Rodovia|Largo|"
    r"Avenue|Rue|Boulevard|Chaussée|Place|Quai|Drève|Square|Chemin|Route|Allée|Impasse|"
    r"calle|avenida|plaza|paseo|piazza|viale|corso|rua|travessa|praça|avenue|rue"
)
_TYPE_FIRST_STREET = (
    rf"(?:{_TYPE_FIRST})[ ]{_ROMANCE_NAME},?[ ]?(?:(?:n\.?[º°o]|no\.|nº|n\.|Nr\.|nr\.)[ ]?)?"
    rf"(?:{_HOUSE}|s/n|S/N)(?![\d:.,]\d)(?:[ ]?(?:bis|ter))?"
)
_GERMANIC = (
    r"straße|strasse|str\.|weg|platz|allee|gasse|damm|ufer|chaussee|steig|pfad|stieg|zeile|"
    r"straat|laan|plein|gracht|kade|singel|dijk|steeg|dreef|hof|markt|wall|graben|"
    r"brücke|berg|feld|heide|ring|park"
)
_GERMANIC_SEPARATE = (
    r"Straße|Strasse|Str\.|Weg|Platz|Allee|Gasse|Damm|Ufer|Ring|Markt|Chaussee|Steig|"
    r"Straat|Laan|Plein|Gracht|Kade|Singel|Dijk|Weg"
)
_DE_PREFIX = r"(?:(?:Am|An der|An den|Auf der|Auf dem|Im|In der|In den|Zum|Zur|Unter den|Alte|Alter|Neue|Neuer)[ ])"
_DE_HOUSE = r"\d{1,4}(?:[ ]?[a-zA-Z](?![\w]))?(?:[-–/]\d{1,4}[a-z]?)?(?![\d.:,]\d)"
_GERMANIC_STREET = (
    rf"(?:{_DE_PREFIX}?(?:{_CAP}[ -])?[{_U}][{_L}]{{2,}}(?:-[{_U}]?[{_L}]+)*(?:{_GERMANIC})"
    rf"|(?:{_DE_PREFIX}?{_CAP}[ ])(?:{_GERMANIC_SEPARATE}))[ ]?,?[ ](?:Nr\.[ ]?)?{_DE_HOUSE}"
)
_UNIT = (
    r"(?:,?[ ](?:Apt\.?|Apartment|Suite|Ste\.?|Unit|Flat|Floor|Fl\.?|Room|Rm\.?|#|Piso|Planta|"
    r"Escalera|Esc\.|Puerta|Pta\.|Scala|Sc\.|Interno|Int\.|Piano|Bus|bus|Boîte|bte|Bte|Étage|"
    r"étage|Appt\.?|Apto\.?|apto\.?|Andar|andar|Sala|Wohnung|Whg\.|Etage|Stock|"
    r"App\.?|Bloco|Bloque|Portal)[ ]?[\w\-/º°ª]{1,6}"
    r"|,?[ ]\d{1,2}[º°ª](?:[ ]?[A-Za-z\d]{1,2}[º°ª]?)?"
    r"|,?[ ]\d{1,2}\.?[ ](?:OG|EG|DG|Etage|Stock|étage|piso|andar|verdieping))"
)
_CITY = (
    rf"{_CAP}(?:(?:[ -](?:am|an|der|sur|en|de|del|di|do|da|la|le|les|im|ob|bei|upon|on)"
    rf")?[ -]{_CAP}){{0,2}}(?:[ ]\([A-Z]{{2}}\))?"
)
_UK_POSTCODE = r"[A-Z]{1,2}\d[A-Z\d]?[ ]?\d[A-Z]{2}"
_TAIL = re.compile(
    rf"(?:{_UNIT})?(?:"
    # 10115 Berlin, 75002 Paris, 1015 CJ Amsterdam, 1200-195 Lisboa, 01310-100 São Paulo,
    # D-10115 Berlin, CH-8001 Zürich
    rf",?[ ](?:(?:[A-Z]{{1,2}}-)?\d{{4,5}}(?:-\d{{3}})?|\d{{4}}[ ]?[A-Z]{{2}})[ ]{_CITY}"
    # Springfield, IL 62704 / New York, NY 10001 / London NW1 6XE / Boston MA
    rf"|,[ ]{_CITY},?[ ](?:[A-Z]{{2}}[ ]\d{{5}}(?:-\d{{4}})?|{_UK_POSTCODE}|[A-Z]{{2}}\b)"
    rf"|,[ ]{_CITY}(?=[ \t]*(?:$|\n|[.;)]|,[ ](?:{_CAP}[ ]?)+(?:$|\n|[.;)])))"
    rf")?",
    re.MULTILINE,
)
_EDGE = r"(?<![\w./#\-])"
_NUMBER_FIRST = re.compile(rf"{_EDGE}(?:{_EN_STREET}|{_FR_STREET})(?![\w@])")
_TYPE_FIRST_LINE = re.compile(rf"{_EDGE}(?:{_TYPE_FIRST_STREET})(?![\w@])")
_GERMANIC_LINE = re.compile(rf"{_EDGE}(?:{_GERMANIC_STREET})(?![\w@])")


# Any street type of any grammar, in lower case (and the Germanic street types that end a
# word): the grammars are tried only around these words.
def _lower_words(*alternations: str) -> frozenset[str]:
    return frozenset(
        w.replace("\\", "").replace(".?", "").lower().strip(".")
        for w in "|".join(alternations).split("|")
    )


_NUMBER_FIRST_WORDS = _lower_words(_EN_TYPES, _FR_TYPES)
_TYPE_FIRST_WORDS = _lower_words(_TYPE_FIRST) | {"c/", "v.", "p.", "c.", "r.", "tv."}
_GERMANIC_WORDS = _lower_words(_GERMANIC_SEPARATE)
_STREET_WORDS = _NUMBER_FIRST_WORDS | _TYPE_FIRST_WORDS | _GERMANIC_WORDS
_STREET_SUFFIXES = tuple(w.replace("\\", "").strip(".") for w in _GERMANIC.split("|"))
_DIGITS = re.compile(rb"0+")


_YEAR = re.compile(r"(?:19|20)\d\d\b")
_BEFORE_YEAR = _wordset(
    "in since by until from of before after im seit bis ab en depuis dès desde hasta nel dal "
    "dal sinds vanaf em até"
)


def _year_not_house(text: str, s: int) -> bool:
    """ "In 2019 Park Avenue opened": a year after "in", "since", ... is no house number."""
    if not _YEAR.match(text, s):
        return False
    before = text[max(0, s - 12) : s].split()
    return bool(before) and before[-1].lower() in _BEFORE_YEAR


_LETTERS = re.compile(rb"[aA]+")


def _addresses(text: str, cls: bytes) -> list[Span]:
    """Street lines. Each grammar is tried only where it can start: at a house number before
    a street word (number first), at the street word (type first, Germanic compounds) or a
    word or two before it ("Berliner Straße 12", "Am Mühlenbach 3")."""
    # Windows around house numbers (one to five digits), merged where they overlap.
    windows: list[list[int]] = []
    for m in _DIGITS.finditer(cls):
        if m.end() - m.start() > 5:
            continue
        ws, we = max(0, m.start() - 80), min(len(text), m.end() + 100)
        if windows and ws <= windows[-1][1]:
            windows[-1][1] = we
        else:
            windows.append([ws, we])
    low = text.lower()
    found: list[tuple[int, int]] = []

    def line_start_of(pos: int) -> int:
        return text.rfind("\n", 0, pos) + 1

    for ws, we in windows:
        for m in _LETTERS.finditer(cls, ws, we):
            a, b = m.span()
            word = low[a:b]
            if word in _EXTRA_WORDS or (b - a == 1 and word in "bp" and text[b : b + 1] == "."):
                if word in _DE_PREFIX_WORDS and text[a].isupper():
                    pm = _DE_PREFIX_LINE.match(text, a)
                    if pm and _fold(pm.group(1)) not in _lexicon().common:
                        found.append(pm.span())
                else:
                    pm = _PO_BOX.search(text, max(line_start_of(a), a - 16), b + 24)
                    if pm and pm.start() <= a < pm.end():
                        found.append(pm.span())
                        continue
            if not (
                word in _STREET_WORDS
                or word.endswith(_STREET_SUFFIXES)
                or (b - a <= 2 and text[b : b + 1] in "./" and low[a : b + 1] in _STREET_WORDS)
            ):
                continue
            line_start = text.rfind("\n", 0, a) + 1
            if word in _NUMBER_FIRST_WORDS:
                for d in _DIGITS.finditer(cls, max(line_start, a - 60), a):
                    if am := _NUMBER_FIRST.match(text, d.start()):
                        found.append(am.span())
            if word in _TYPE_FIRST_WORDS or b - a <= 2:
                if am := _TYPE_FIRST_LINE.match(text, a):
                    found.append(am.span())
                continue
            if word not in _GERMANIC_WORDS and not word.endswith(_STREET_SUFFIXES):
                continue
            # A Germanic street line starts at the street word or up to three words before it.
            start = a
            for _ in range(4):
                if am := _GERMANIC_LINE.match(text, start):
                    found.append(am.span())
                if start <= line_start:
                    break
                start = max(line_start, text.rfind(" ", line_start, start - 1) + 1)
    # Streets found from the postcode after them only where no grammar found the street.
    found += [(s, e) for s, e in _anchored(text, cls) if not any(a < e and s < b for a, b in found)]
    out: list[Span] = []
    for s, e in sorted(found, key=lambda f: (f[0], -f[1])):
        if out and s < out[-1][1] or _year_not_house(text, s):
            continue
        tail = _TAIL.match(text, e)
        out.append((s, tail.end() if tail else e, "ADDRESS"))
    return out


# --- people ----------------------------------------------------------------------------------


def _after_closing(text: str, line_start: int) -> bool:
    """Whether the nearest non-empty line before `line_start` is a closing ("Best regards,")."""
    end = line_start - 1
    for _ in range(3):
        if end <= 0:
            return False
        start = text.rfind("\n", 0, end) + 1
        line = text[start:end]
        if line.strip():
            return bool(_CLOSINGS.match(line))
        end = start - 1
    return False


def _words_of(text: str, s: int, e: int) -> list[list[tuple[int, int, str]]]:
    """The capitalised words of a chain, split where a small word is no name particle."""
    groups: list[list[tuple[int, int, str]]] = [[]]
    pos = s
    for word in text[s:e].split():
        start = text.find(word, pos)
        pos = start + len(word)
        if word[0].islower():
            if word not in PARTICLES:
                groups.append([])
            continue
        if word.endswith(("'s", "’s")):
            word = word[:-2]
        elif word[-1] in "'’-":
            word = word.rstrip("'’-")
        # "GitHub", "PayPal": a capital inside a word is code or a brand, not a name.
        if not word[1:].islower() and not _INNER_CAPS.fullmatch(word) and not _initial(word):
            groups.append([])
            continue
        groups[-1].append((start, start + len(word), word))
    return [g for g in groups if g]


_INNER_CAPS = re.compile(r"(?:Mc|Mac|O['’]|D['’]|L['’])?[^\W\d_][^\W\d_]*(?:[-'’][^\W\d_]+)*")


def _context(text: str, s: int, line_start: int) -> tuple[int | None, str | None, str]:
    """What stands just before a name: (start of a title's particles or s, None) after a title;
    (None, cue, separator) after a cue; (None, None, "") otherwise."""
    left = text[max(line_start, s - 48) : s]
    core = left.rstrip(_CUE_PUNCT)
    if not core:
        return None, None, ""
    last = core[core.rfind(" ") + 1 :].lstrip("([{\"'“«>*|-").lower()
    if last.rstrip(".") not in _LAST_OF_CUE and last not in PARTICLES:
        return None, None, ""
    # A title, perhaps followed by particles: "Dr. ", "Mevr. van ".
    words = left.split()
    k = len(words)
    while k and words[k - 1] in PARTICLES:
        k -= 1
    if k and words[k - 1].rstrip(".") in _TITLES and left[-1] in " \t":
        particles = sum(len(w) + 1 for w in words[k:])
        return s - particles, None, ""
    # A cue and its separator: "Dear ", "Name: ", '{"customer": "'.
    sep = left[len(core) :]
    words = core.lower().split()[-4:]
    for n in range(len(words), 0, -1):
        phrase = " ".join(words[-n:]).lstrip("([{\"'“«>*|-")
        if phrase in _CUE_PHRASES:
            return None, phrase, sep
    return None, None, ""


def _initial(word: str) -> bool:
    return len(word) == 2 and word[1] == "."


# Words naming a team or a service desk sign letters too ("Kundenservice", "Supportteam").
_TEAM = re.compile(r"(?:service|team|dienst|support|desk|abteilung|équipe|equipo|squadra)$")


def _is_name_word(word: str) -> bool:
    return word[0].isupper()


_NEXT_WORD = re.compile(r"[ \t]+([\w.&]+)")
_POSTCODE_BEFORE = re.compile(
    r"(?<![\w.,:/-])(?:[A-Z]{1,2}-)?\d{4,5}(?:-\d{3})?(?:[ ][A-Z]{2})?[ ]\Z"
)
_STATE_ZIP_AFTER = re.compile(r",?[ ][A-Z]{2}[ ]\d{5}\b")
# First words of the names of institutions and places: "Museo del Prado", "Palazzo Vecchio".
_ORG_FIRST = _wordset(
    """museo musee museu museum palacio palazzo palais teatro theatre hotel banco banca banque
    universidad universita universite universidade hospital ospedale hopital colegio college
    instituto istituto institut fondazione fundacion parque parco mercado mercato marche
    estacion stazione gare aeropuerto aeroporto aeroport iglesia chiesa eglise catedral
    cattedrale cathedrale castillo castello chateau ponte puente pont torre lago lac monte mont
    mount lake cape fort camp klinikum"""
)
# What follows a name in a message header or a report of speech: "Ana Lima <ana@...>",
# "Satya Nadella replied", "Almut Reinecke schrieb", "Capucine Mallet a répondu".
_AFTER_NAME = re.compile(
    r"[ \t]*<[^<>\s@]+@|[ ]+(?:(?:lo|la|le|les|l['’]|gli|ihm|ihr|o|a|het)[ ]?)?(?:replied|said|says|wrote|writes|asked|confirmed|confirms|declined|"
    r"added|noted|explained|agreed|stated|told|emailed|phoned|responded|answered|mentioned|"
    r"sagte|sagt|schrieb|schreibt|bestätigte|antwortete|meinte|fragte|"
    r"a dit|a répondu|a confirmé|a écrit|a demandé|dijo|respondió|confirmó|escribió|preguntó|"
    r"ha detto|ha risposto|ha confermato|ha scritto|ha chiesto|zei|antwoordde|bevestigde|"
    r"schreef|vroeg|disse|respondeu|confirmou|escreveu|perguntou)\b"
)
_COMPANY_AFTER = re.compile(r",[ ]?(?:Inc|Ltd|LLC)\b|[ ]?&[ ]?[A-Z]")


def _person(
    text: str,
    words: list[tuple[int, int, str]],
    line_start: int,
    at_line_start: bool,
    lex: _Lexicon,
    after_cue: bool = False,
) -> tuple[int, int] | None:
    """The person named by a run of capitalised words, if any (offsets of the name)."""
    s, e = words[0][0], words[-1][1]
    folded = [_fold(w[2].rstrip(".")) for w in words]
    interesting = any(f in lex.interesting for f in folded)
    title_start, cue, sep = _context(text, s, line_start)
    # Most chains are a capitalised word that names nothing: leave them at once.
    if after_cue and title_start is None and cue is None:
        # Reported speech or a mail header after two or more unknown capitalised words.
        plain = [f for f, w in zip(folded, words, strict=True) if not _initial(w[2])]
        if not any(f in lex.ambiguous or f in lex.org for f in plain) and not _TEAM.search(
            folded[-1]
        ):
            cue, sep = "(after)", ":"
    if not interesting and title_start is None and cue is None and not at_line_start:
        return None
    # A company or a place named after someone is not that person.
    if any(f in lex.org for f in folded[1:]) or any(f in _ORG_FIRST for f in folded):
        return None
    # "Marks & Spencer"; a city after a postcode or before a state and ZIP code.
    before = text[max(0, s - 12) : s]
    if before.endswith(("& ", "&")) or _POSTCODE_BEFORE.search(before):
        return None
    if _STATE_ZIP_AFTER.match(text, e):
        return None
    m = _NEXT_WORD.match(text, e, e + 16)
    if m and m.group(1)[0].isupper() and _fold(m.group(1).rstrip(",;:")) in lex.org:
        return None
    if _COMPANY_AFTER.match(text, e, e + 8):
        return None
    for k, f in enumerate(folded):
        if f in lex.brands and any(tuple(folded[k : k + len(b)]) == b for b in lex.brands[f]):
            return None

    i = 0
    titled = title_start is not None
    strong = False
    if cue is not None:
        # A field ("Customer: ...", "name=...") introduces a name; prose ("with") hints.
        strong = cue not in _WEAK_CUES or ":" in sep or "=" in sep
    # Titles and salutations inside the chain: "Herr Dr Müller", "Olá Inês", "Dear Anna".
    while i + 1 < len(words):
        if words[i][2].rstrip(".") in _TITLES:
            titled, title_start = True, None
        elif folded[i] in _SALUTATION_WORDS:
            cue, strong = folded[i], True
        elif folded[i] in _FOLDED_CUES and folded[i] not in lex.given:  # "Contact J. Smith"
            cue = _FOLDED_CUES[folded[i]]
            strong = cue not in _WEAK_CUES
        elif (
            phrase := f"{folded[i]} {_fold(text[words[i][1] : words[i + 1][0]].strip())}"
        ) in _FOLDED_CUES:  # "Anfrage von Ortrud Vogelsang", "Pedido de Leila Park"
            cue = _FOLDED_CUES[phrase]
            strong = cue not in _WEAK_CUES
        else:
            break
        i += 1
    words = words[i:]
    folded = folded[i:]
    if words[-1][2].rstrip(".") in _TITLES:  # "Dear Mrs." with the name on the next chain
        return None
    start = title_start if title_start is not None and title_start < words[0][0] else None
    signature = False
    if not titled and cue is None and at_line_start:
        line_end = text.find("\n", e)
        line_end = len(text) if line_end < 0 else line_end
        signature = not text[e:line_end].strip(" \t,.!") and _after_closing(text, line_start)

    def end_of_name(j: int) -> int:
        """Index past the last word that still belongs to the name starting at j."""
        k = j + 1
        while k < len(words) and k - j < 4:
            f = folded[k]
            if _initial(words[k][2]):
                k += 1
                continue
            if f in lex.common and (f not in lex.surnames or f in lex.given):
                break
            # "mit Jonas Fischer das Angebot": a particle leads only to a surname.
            if words[k][0] - words[k - 1][1] > 1 and f not in lex.surnames:
                break
            k += 1
        return k

    def span(j: int) -> tuple[int, int]:
        k = end_of_name(j)
        return (words[j][0] if start is None or j else start), words[k - 1][1]

    def known(f: str) -> bool:
        return f in lex.given or f in lex.surnames

    def next_name(j: int) -> str | None:
        """The next word after j that is not an initial."""
        for k in range(j + 1, len(words)):
            if not _initial(words[k][2]):
                return folded[k]
        return None

    if titled:
        return span(0)
    f = folded[0]
    if (strong or signature) and folded[-1] in _NOT_A_NAME:
        return None
    if strong or signature:
        if f in lex.given or (f in lex.surnames and f not in lex.common):
            return span(0)
        if f not in lex.ambiguous and f not in lex.org and len(f) > 1 and not _TEAM.search(f):
            return span(0)
    elif (
        cue is not None
        and 2 <= len(words) <= 3
        and all(g not in lex.ambiguous and g not in lex.org and len(g) > 1 for g in folded)
    ):
        # After a hint ("with", "and", "by"), two or three capitalised words none of which is
        # an ordinary word, a place or an organisation read as a full name.
        return span(0)
    # No context: initials before a known surname ("J. Smith", "A. B. Jones").
    if _initial(words[0][2]):
        after = next_name(0)
        if after in lex.surnames and after not in lex.common:
            return span(0)
        return None
    # A known given name, or an unknown first word before a known surname.
    for j, f in enumerate(folded):
        if j and folded[j - 1] in _PLACE_PREFIXES:  # "São Paulo", "San Diego"
            continue
        after = next_name(j)
        # Without context, unknown capitalised words after the name make a title, an event or
        # a product ("Grace Hopper Celebration", "Will Rogers Follies").
        k = end_of_name(j)
        rest = [
            g
            for g, w in zip(folded[j + 1 : k], words[j + 1 : k], strict=True)
            if not _initial(w[2])
        ]
        if any(not known(g) for g in rest[1:]):
            continue
        if f in lex.given:
            if f not in lex.ambiguous:
                return span(j)
            if after in lex.frequent_surnames:
                return span(j)
        elif (
            after in lex.frequent_surnames
            and f not in lex.ambiguous
            and f not in lex.frequent_surnames
            and len(f) > 2
        ):
            return span(j)
    return None


def _people(text: str, cls: bytes, lex: _Lexicon) -> list[Span]:
    out: list[Span] = []
    n = len(text)
    for m in _CHAIN.finditer(cls):
        s, e = m.start(), m.end()
        # A word glued to code punctuation is an identifier: `Mark.objects`, `Will_run`, `$Rose`.
        if s:
            before = text[s - 1]
            if before.isalnum() or before in _BEFORE_CODE:
                continue
            if before in "'’" and s > 1 and text[s - 2].isalnum():
                continue
        if e < n:
            after = text[e]
            if after.isalnum() or after in _AFTER_CODE:
                continue
            if after in ".-" and e + 1 < n and (text[e + 1].isalnum() or text[e + 1] in "_("):
                continue
        j = s - 1
        while j >= 0 and text[j] in _LINE_LEAD:
            j -= 1
        at_line_start = j < 0 or text[j] == "\n"
        after_cue = bool(
            e < n and text[e] in " \t<" and " " in text[s:e] and _AFTER_NAME.match(text, e)
        )
        # The common case, capitalised words none of which is a known name, in the middle of
        # a line, after no title and no cue: nothing to look at.
        if (
            not at_line_start
            and not after_cue
            and not any(_fold(w.removesuffix("'s")) in lex.interesting for w in text[s:e].split())
        ):
            left = text[max(0, s - 24) : s]
            prev = left.rstrip(_CUE_PUNCT).rsplit(None, 1)
            word = prev[-1].strip(_CUE_STRIP).lower() if prev else ""
            if word not in _LAST_OF_CUE or (word in _HEADER_CUES and ":" not in left[-3:]):
                continue
        line_start = text.rfind("\n", 0, s) + 1
        groups = _words_of(text, s, e)
        for n_group, words in enumerate(groups):
            found = _person(
                text,
                words,
                line_start,
                at_line_start and not n_group,
                lex,
                after_cue and n_group == len(groups) - 1 and len(words) > 1,
            )
            if found:
                out.append((found[0], found[1], "PERSON"))
    return out


def find_people(text: str) -> list[Span]:
    """(start, end, type) spans, type "PERSON" or "ADDRESS", character offsets, end
    exclusive, sorted by start, non-overlapping. Pure, thread-safe, data loaded lazily once."""
    if not text:
        return []
    lex = _lexicon()
    original = text
    cls = _classes(text)
    text = _recase(text, cls, lex)
    if text is not original:
        cls = _classes(text)
    # Addresses first: "Dr" in "12 Elm Dr" and the names in "Rue Victor Hugo" are the street's.
    headers: list[tuple[int, int]] = []
    spans = sorted(
        _addresses(text, cls)
        + _people(text, cls, lex)
        + _fields(original, lex, headers)
        + _japanese(text, text.isascii())
    )
    if headers:  # column headers ("Kunde;Adresse") name fields, not people
        spans = [s for s in spans if not any(a <= s[0] < b for a, b in headers)]
    kept: list[Span] = []
    for span in spans:
        if kept and span[0] < kept[-1][1]:
            if span[1] - span[0] > kept[-1][1] - kept[-1][0]:
                kept[-1] = span
            continue
        kept.append(span)
    return kept


# --- fields: column headers, keys and labels naming a person or an address -------------------

# Stems found with str.find in the lower-cased text; each hit is then read as a JSON or
# keyword key, a CSV header cell, a "Label: value" field or a label alone on its line.
_FIELD_STEMS = (
    "name", "nom", "naam", "customer", "client", "kunde", "klant", "contact", "ansprech",
    "recipient", "destinat", "empf", "patient", "pacient", "doente", "employee", "applicant",
    "passenger", "attendee", "holder", "ship to", "deliver to", "bill to", "addr", "adres",
    "anschrift", "street", "stra", "direcci", "indirizzo", "endere", "morada", "domicilio",
    "residen", "jusho", "shimei", "cognome", "apellido", "via", "rua", "calle",
)  # fmt: skip
_PERSON_LABELS = _wordset("""name fullname customer customername client clientname cliente kunde kundin kundenname
    klant klantnaam contact contactname contactperson contactpersoon ansprechpartner
    ansprechpartnerin recipient recipientname destinataire destinatario empfanger empfangerin
    patient patientin patiente paciente patienname doente employee employeename applicant
    applicantname passenger passengername attendee guest guestname cardholder accountholder
    holder emergencycontact nominativo nometprenom nomcomplet nombreyapellidos nombrecompleto
    nomeecognome nomecompleto vorundnachname shimei nom nombre nome naam""")
_PERSON_LABEL_ENDS = ("name", "nachname", "cognome", "apellidos", "achternaam", "voornaam")
_NOT_PERSON_LABEL = (
    "user", "file", "host", "product", "company", "firm", "org", "app", "project", "table",
    "column", "field", "domain", "server", "service", "model", "plan", "brand", "device",
    "street", "city", "country", "event", "team", "group", "role", "tag", "bucket", "display",
    "key", "class", "type", "package", "module", "branch", "repo", "image", "node", "queue",
    "topic", "channel", "database", "schema", "index", "item", "sku", "category", "bank", "shop",
    "store", "site", "page", "title", "function", "method", "env", "region", "zone", "cluster",
    "container", "job", "task", "template", "file", "path", "dir", "folder", "account", "nick",
    "screen", "login", "handle", "short", "code", "sheet", "layer", "font", "color", "colour",
)  # fmt: skip
_ADDRESS_LABELS = _wordset("""street streetaddress strasse straße straat via rua calle jusho wohnsitz woonadres shipto
    deliverto billto residence line1 addressline1 address1 adresse adres domicilio morada
    endereco indirizzo direccion anschrift""")
_ADDRESS_LABEL_ENDS = (
    "address", "adresse", "adres", "anschrift", "direccion", "indirizzo", "endereco", "morada",
    "domicilio", "residenza", "address1", "addressline1", "street",
)  # fmt: skip
_NOT_ADDRESS_LABEL = (
    "email", "mail", "ip", "mac", "wallet", "web", "server", "remote", "local", "bind", "listen",
    "contract", "memory", "host", "proxy", "url", "base", "return", "sender", "reply", "node",
)  # fmt: skip
# Labels after which the next lines hold a name and then a street ("SHIP TO:\nJANE DOE\n...").
_BLOCK_LABELS = _wordset("shipto deliverto billto soldto recipient")
_NOT_A_NAME = _wordset("""plan team support service services null none true false unknown test tests admin
    default sample example bundle lamp chair table sofa desk tbd bot system assistant user
    agent operator moderator you me everyone all scheduler worker server cron monitor alert
    root host daemon job build deploy""")
_LABEL_JUNK = str.maketrans("", "", " _-./'’\"()[]#*:")
_SPLIT_VALUE = re.compile(r"[ \t]{2,}|\t|[ ]\||[(\[]|[ ]-[ ]|;")


@lru_cache(maxsize=4096)
def _label_kind(label: str) -> str | None:
    """ "PERSON" or "ADDRESS" when a key, header or label names such a field."""
    key = _fold(re.sub(r"(?<=[a-z])(?=[A-Z])", "_", label)).translate(_LABEL_JUNK)
    if not key or len(key) > 30 or not key.isalpha():
        return None
    if key in _ADDRESS_LABELS or (
        key.endswith(_ADDRESS_LABEL_ENDS) and not key.startswith(_NOT_ADDRESS_LABEL)
    ):
        return "ADDRESS"
    if key in _PERSON_LABELS or (
        key.endswith(_PERSON_LABEL_ENDS) and not key.startswith(_NOT_PERSON_LABEL)
    ):
        return "PERSON"
    return None


def _bare_label(label: str) -> bool:
    """A key as vague as "name" names people only in a record that also holds an address."""
    return _fold(label).translate(_LABEL_JUNK) in ("name", "nom", "nombre", "nome", "naam")


_NAME_VALUE = re.compile(r"[^\W\d_](?:[^\W\d_]|['’.\-])*(?:[ ][^\W\d_](?:[^\W\d_]|['’.\-])*){0,4}")


def _name_value(value: str, lex: _Lexicon, strict: bool, lone: bool = False) -> bool:
    """Whether a field's value reads as a person's name, in any letter case."""
    if not 2 <= len(value) <= 60 or not _NAME_VALUE.fullmatch(value):
        return False
    folded = [_fold(w.rstrip(".")) for w in value.split()]
    if any(f in _NOT_A_NAME or (f in lex.org and f not in lex.surnames) for f in folded):
        return False
    if all(f in lex.ambiguous or f in PARTICLES for f in folded):
        return False
    known = [f in lex.given or f in lex.surnames for f in folded]
    if lone and len(folded) == 1:  # a chat speaker: any word that is no ordinary word
        return len(folded[0]) > 2 and folded[0] not in lex.ambiguous
    if len(folded) == 1 or strict:
        first, last = folded[0], folded[-1]
        return (first in lex.given and first not in lex.ambiguous) or (
            len(folded) > 1 and last in lex.frequent_surnames and first not in lex.ambiguous
        )
    return any(known) or all(f not in lex.common for f in folded)


def _address_value(value: str) -> bool:
    """A street line: a number and a word of three letters or more, in two tokens or more."""
    if not 4 <= len(value) <= 120 or "@" in value or "://" in value or " " not in value:
        return False
    return any(c.isdigit() for c in value) and re.search(r"[^\W\d_]{3}", value) is not None


def _cells(text: str, s: int, e: int, sep: str) -> list[tuple[int, int]]:
    """Offsets of a delimited line's cell values, quotes and blanks left out."""
    out: list[tuple[int, int]] = []
    i = s
    while i <= e:
        while i < e and text[i] == " ":
            i += 1
        if i < e and text[i] == '"':
            j = text.find('"', i + 1, e)
            j = e if j < 0 else j
            out.append((i + 1, j))
            k = text.find(sep, j, e)
        else:
            k = text.find(sep, i, e)
            k = e if k < 0 else k
            j = k
            while j > i and text[j - 1] == " ":
                j -= 1
            out.append((i, j))
        if k < 0 or k >= e:
            break
        i = k + 1
    return out


def _line(text: str, pos: int) -> tuple[int, int]:
    s = text.rfind("\n", 0, pos) + 1
    e = text.find("\n", pos)
    return s, (len(text) if e < 0 else e)


def _table(
    text: str, ls: int, le: int, lex: _Lexicon, out: list[Span], headers: list[tuple[int, int]]
) -> int:
    """A header row of a CSV, TSV or Markdown table: label the name and address columns of the
    rows below it."""
    line = text[ls:le]
    sep = max(",;\t|", key=line.count)
    if line.count(sep) < 1 or ":" in line or "{" in line or "=" in line:
        return 0
    header = _cells(text, ls, le, sep)
    kinds = [_label_kind(text[a:b]) if b - a <= 30 else None for a, b in header]
    if not any(kinds):
        return 0
    labels = [text[a:b].lower() for a, b in header]
    address_col = kinds.index("ADDRESS") if "ADDRESS" in kinds else None
    headers.append((ls, le))
    strict = "ADDRESS" not in kinds and not any(
        "mail" in h or "phone" in h or "tel" in h for h in labels
    )
    pos = le + 1
    while pos < len(text):
        rs, re_ = _line(text, pos)
        if rs == re_:
            break
        row = _cells(text, rs, re_, sep)
        extra = len(row) - len(header)
        if extra and set(text[rs:re_]) <= set("|-: "):
            pos = re_ + 1
            continue
        if extra and (extra < 0 or address_col is None or extra > 3):
            break
        if extra:
            # An unquoted address holding the separator ("80B Highfield Rd, Springfield"):
            # the columns left of it align from the left, the others from the right.
            merged = (row[address_col][0], row[address_col + extra][1])
            row = [*row[:address_col], merged, *row[address_col + extra + 1 :]]
        for (a, b), kind in zip(row, kinds, strict=True):
            if kind == "PERSON" and _name_value(text[a:b], lex, strict):
                out.append((a, b, "PERSON"))
            elif kind == "ADDRESS" and _address_value(text[a:b]):
                out.append((a, b, "ADDRESS"))
        pos = re_ + 1
    return pos


def _value_span(text: str, a: int, b: int) -> tuple[int, int]:
    """A field's value up to a column gap, a bracket or a separator; blanks left out."""
    m = _SPLIT_VALUE.search(text, a, b)
    if m:
        b = m.start()
    while a < b and text[a] in " \t\"'":
        a += 1
    while b > a and text[b - 1] in " \t,.\"'":
        b -= 1
    return a, b


def _emit(text: str, a: int, b: int, kind: str, lex: _Lexicon, strict: bool, out: list) -> bool:
    a, b = _value_span(text, a, b)
    if kind == "PERSON" and _name_value(text[a:b], lex, strict):
        out.append((a, b, "PERSON"))
        return True
    if kind == "ADDRESS" and _address_value(text[a:b]):
        out.append((a, b, "ADDRESS"))
        return True
    return False


_KEY_VALUE = re.compile(r"""["']?[ \t]*[:=][ \t]*(["'])""")
_KEY_CHARS = re.compile(r"[\w\-]+")


_CHAT_SPEAKER = re.compile(
    r"\[\d{1,2}:\d\d(:\d\d)?\][ \t]*([^\W\d_](?:[^\W\d_]|['’.\- ]){0,40}?)[ \t]*:"
)


def _fields(text: str, lex: _Lexicon, headers: list[tuple[int, int]]) -> list[Span]:
    """Names and streets given as the values of fields: JSON and keyword keys, CSV and
    Markdown columns, "Label: value" lines, labels alone on the line above their value, chat
    speakers. The table header lines found are added to `headers`."""
    low = text.lower()
    hits: list[int] = []
    for stem in _FIELD_STEMS:
        i = low.find(stem)
        while i >= 0:
            hits.append(i)
            i = low.find(stem, i + len(stem))
    out: list[Span] = []
    seen_lines: set[int] = set()
    n = len(text)
    table_end = 0
    for pos in sorted(hits):
        if pos < table_end:
            continue
        # A key in JSON, a dict, YAML with quotes or keyword arguments: "name": "...".
        km = _KEY_CHARS.match(text, pos)
        ke = km.end() if km else pos
        m = _KEY_VALUE.match(text, ke) if text[ke : ke + 1] in "\"':= \t" else None
        if m:
            ks = pos
            while ks and (text[ks - 1].isalnum() or text[ks - 1] in "_-"):
                ks -= 1
        if m and ke - ks <= 30:
            kind = _label_kind(text[ks:ke])
            if kind:
                quote = m.group(1)
                vs = m.end()
                ve = text.find(quote, vs, min(n, vs + 160))
                if ve > vs:
                    window = low[max(0, ks - 300) : ks + 300]
                    strict = _bare_label(text[ks:ke]) and not (
                        "addr" in window or "@" in window or "street" in window
                    )
                    _emit(text, vs, ve, kind, lex, strict, out)
            continue
        ls, le = _line(text, pos)
        if ls in seen_lines:
            continue
        seen_lines.add(ls)
        line = text[ls:le]
        if le - ls > 300 or "(" in line or "=" in line:  # code, not a header or a label
            continue
        if any(c in line for c in ",;\t|") and (end := _table(text, ls, le, lex, out, headers)):
            table_end = end
            continue
        colon = line.find(":")
        label = line[:colon] if colon >= 0 else line
        label = label.strip(" \t*#>-|")
        kind = _label_kind(label) if len(label) <= 32 else None
        if colon >= 0 and kind and line[colon + 1 :].strip():
            # "Label: value" on one line ("APPLICANT: JOHN SMITH", "Patient: ...   DOB: ...").
            _emit(text, ls + colon + 1, le, kind, lex, False, out)
            continue
        if kind and (colon < 0 or not line[colon + 1 :].strip()):
            # A label alone on its line: the value is on the next line(s).
            key = _fold(label).translate(_LABEL_JUNK)
            ns = le + 1
            nls, nle = _line(text, ns) if ns < n else (n, n)
            if nls == nle:
                continue
            if key in _BLOCK_LABELS:
                if _emit(text, nls, nle, "PERSON", lex, False, out):
                    ns = nle + 1
                    if ns < n:
                        nls, nle = _line(text, ns)
                        _emit(text, nls, nle, "ADDRESS", lex, False, out)
                else:
                    _emit(text, nls, nle, "ADDRESS", lex, False, out)
            else:
                _emit(text, nls, nle, kind, lex, False, out)
    # Chat transcripts: "[09:14] Anna Kowalczyk: ..." names the speaker.
    i = text.find("[")
    while i >= 0:
        m = _CHAT_SPEAKER.match(text, i)
        # A lone unknown word is a speaker in a chat ("[09:14] Itai:"), not in a log with
        # seconds ("[12:00:03] Worker:"), and never a word in capitals ("ERROR").
        lone = m is not None and m.group(1) is None and m.group(2)[1:].islower()
        if m and m.group(2)[0].isupper() and _name_value(m.group(2), lex, False, lone=lone):
            out.append((m.start(2), m.end(2), "PERSON"))
        i = text.find("[", i + 1)
    return out


# --- letter case: names and streets written in capitals or in lower case ---------------------

_CAPS_WORD = re.compile(rb"AAA")
_LOWER_LINE = re.compile(rb"\n(?:\[[^\]\n]{1,20}\][ ]*[^:\n]{0,30}:)?[^aA\n]*a[^\n]*")
_CODE_CHARS = re.compile(rb"[(){}=;_]")
_CAPS_RUN = re.compile(rb"A{2,}(?:['\-]A+)*(?:[ ]+(?:A\.|A{2,}(?:['\-]A+)*))+")


_WORD_PUNCT = ",.;:!?\"'()[]«»“”¿¡"


def _lower_names(text: str, pos: int, end: int, lex: _Lexicon, pieces: list) -> None:
    """Capitalise a known given name followed by a known surname in a lower-case line."""
    words = text[pos:end].split()
    for i in range(len(words) - 1):
        w1 = words[i]
        if not w1.islower() or w1[-1] in _WORD_PUNCT:
            continue
        w1 = w1.lstrip(_WORD_PUNCT)
        f1 = w1 if w1.isascii() else _fold(w1)
        if f1 not in lex.plain_given:
            continue
        w2 = words[i + 1].rstrip(_WORD_PUNCT)
        f2 = _fold(w2)
        if not w2.islower() or f2 not in lex.surnames or f2 in lex.common:
            continue
        m = re.search(rf"(?<!\w){re.escape(w1)} {re.escape(w2)}(?!\w)", text[pos:end])
        if m:
            a = pos + m.start()
            b = a + len(w1) + 1
            pieces.append((a, a + 1, w1[0].upper()))
            pieces.append((b, b + 1, w2[0].upper()))


def _recase(text: str, cls: bytes, lex: _Lexicon) -> str:
    """The text with capitals-only lines and runs of two or more capitalised words in title
    case ("SHIP TO: JANE DOE" -> "Ship To: Jane Doe"), and, on lines without any capital, a
    known given name followed by a known surname capitalised ("call maria lopez"). Same
    length, so offsets carry over; the grammars then read it as ordinary text."""
    pieces: list[tuple[int, int, str]] = []
    if b"AA" in cls:
        done = -1
        for m in _CAPS_WORD.finditer(cls):
            ls = cls.rfind(b"\n", 0, m.start()) + 1
            if ls <= done:
                continue
            le = cls.find(b"\n", m.end())
            le = len(cls) if le < 0 else le
            if b"a" not in cls[ls:le]:  # a line in capitals: "SHIP TO: JANE DOE"
                pieces.append((ls, le, text[ls:le].title()))
                done = ls
        for m in _CAPS_RUN.finditer(cls) if b"AA AA" in cls or b"AA A." in cls else ():
            a, b = m.span()
            if (not a or cls[a - 1] not in b"aA0") and (b == len(cls) or cls[b] not in b"aA0"):
                pieces.append((a, b, text[a:b].title()))
    # Lines that start in lower case, or chat lines whose message does: "ok so maria lopez".
    for m in _LOWER_LINE.finditer(b"\n" + cls):
        a, b = m.start(), m.end() - 1
        if b"a a" in cls[a:b] and not _CODE_CHARS.search(cls, a, b):
            _lower_names(text, a, b, lex, pieces)
    if not pieces:
        return text
    out: list[str] = []
    last = 0
    for a, b, new in sorted(pieces, key=lambda p: (p[0], -p[1])):
        if a < last or len(new) != b - a:
            continue
        out.append(text[last:a])
        out.append(new)
        last = b
    out.append(text[last:])
    return "".join(out)


# --- post-office boxes, streets named by the postcode after them, Japanese addresses -------

_PO_BOX = re.compile(
    r"(?<![\w.])(?:P\.?[ ]?O\.?[ ]?Box|Post[ ]Office[ ]Box|Postfach|Postbus|"
    r"Apartado(?:[ ]de[ ]Correos)?|Apdo\.|Casella[ ][Pp]ostale|C\.[ ]?P\.|Caixa[ ]Postal|"
    r"B\.[ ]?P\.|BP|Boîte[ ]postale|Postboks)[ ]?\d{1,6}(?:[ ]\d{2,3}){0,2}(?!\d)",
    re.IGNORECASE,
)
# "Unter den Linden 77", "Am Sandtorkai 41", "An der Alster 12": a German street named by a
# preposition and a word, with no street type; the number must end the street line.
_DE_PREFIX_WORDS = _wordset("am im zum zur an auf in unter hinter vor bei beim")
_DE_PREFIX_LINE = re.compile(
    rf"(?:Am|Im|Zum|Zur|Beim|(?:An|Auf|In|Unter|Hinter|Vor|Bei)[ ](?:der|den|dem))[ ]"
    rf"({_CAP})(?:[ -]{_CAP})?[ ]\d{{1,3}}(?:[ ]?[a-z](?![\w]))?(?:[-/]\d{{1,3}}[a-z]?)?"
    rf"(?=[ ]*(?:$|[\n,;)]|\.(?:\s|$)))",
    re.MULTILINE,
)
_PO_WORDS = _wordset("box postfach postbus apartado apdo postale postal bp postboks")

_EXTRA_WORDS = _PO_WORDS | _DE_PREFIX_WORDS
_EU_POSTCODE = re.compile(rb"0{4}(?:0?-000|0| AA)?(?= A)")
_US_STATE_ZIP = re.compile(rb", AA 0{5}(?!0)")
_UK_INWARD = re.compile(rb"0 0AA(?![aA0])")  # "NW1 6XE": found from its inward half
_STREET_BEFORE = re.compile(
    rf"(?:(?<![\w.]){_CAP}(?:[ -](?:{_LINK}|{_CAP}|\d{{1,2}}(?=[ -][{_U}])))*,?[ ]"
    rf"(?:n\.?[º°o]\.?[ ]?|Nr\.[ ]?|No\.?[ ]?)?{_HOUSE}(?:[ ](?:bis|ter))?"
    rf"|(?<![\w.,/-]){_HOUSE},?[ ](?:{_LINK}[ ])?{_CAP}(?:[ -](?:{_LINK}|{_CAP})){{0,4}})"
    rf"(?:,[ ][^,\n]{{1,16}}){{0,2}}[ ]*[,\-–]?[ ]*\Z"
)
_STREET_LINE = re.compile(
    rf"(?:(?:Flat|Apt|Unit|Suite)[ ]\w{{1,5}},[ ])?(?:{_CAP}(?:[ -](?:{_LINK}|{_CAP}))*,?[ ]"
    rf"(?:n\.?[º°o]\.?[ ]?|Nr\.[ ]?|No\.?[ ]?)?{_HOUSE}(?:[ ](?:bis|ter))?"
    rf"|{_HOUSE},?[ ](?:{_LINK}[ ])?{_CAP}(?:[ -](?:{_LINK}|{_CAP})){{0,4}})"
    rf"(?:,[ ][^,\n]{{1,16}}){{0,2}}"
)
_CITY_BACK = re.compile(rf"(?:{_CAP}[ ]){{1,3}}\Z")


def _street_before(text: str, anchor: int) -> tuple[int, int] | None:
    """The street line ending just before a postcode and city that start at `anchor`, on the
    same line after a comma, or alone on the line above."""
    ls = text.rfind("\n", 0, anchor) + 1
    prefix = text[max(ls, anchor - 90) : anchor]
    if not prefix.strip():
        if ls == 0:
            return None
        ps = text.rfind("\n", 0, ls - 1) + 1
        line = text[ps : ls - 1]
        stripped = line.strip(" \t")
        m = _STREET_LINE.fullmatch(stripped)
        if not m:
            return None
        s = ps + line.find(stripped)
        return s, s + len(stripped)
    if not prefix.rstrip().endswith((",", "-", "–")):
        return None
    m = _STREET_BEFORE.search(prefix)
    if not m:
        return None
    s = anchor - len(prefix) + m.start()
    e = s + len(m.group().rstrip(" ,-–"))
    return s, e


def _anchored(text: str, cls: bytes) -> list[tuple[int, int]]:
    """Street lines that the street grammars miss ("Zeil 12, 60313 Frankfurt", "Laan van
    Meerdervoort 12, 2517 AB Den Haag", "42 Kingsway\\nTucson, AZ 85701"), found from the
    postcode and city after them."""
    found: list[tuple[int, int]] = []
    for m in _EU_POSTCODE.finditer(cls):
        p = m.start()
        if p and cls[p - 1 : p] not in b" \n" or p > 1 and cls[p - 2 : p - 1] in b"0aA":
            continue
        if span := _street_before(text, p):
            found.append((span[0], span[1]))
    for m in _US_STATE_ZIP.finditer(cls):
        c = _CITY_BACK.search(text, max(0, m.start() - 40), m.start())
        if c and (span := _street_before(text, c.start())):
            found.append((span[0], span[1]))
    for m in _UK_INWARD.finditer(cls):
        outward = re.search(rb"(?:^| )A{1,2}0A?\Z", cls[max(0, m.start() - 4) : m.start() + 1])
        if not outward:
            continue
        start = m.start() + 1 - len(outward.group().lstrip())
        c = _CITY_BACK.search(text, max(0, start - 40), start)
        if c and (span := _street_before(text, c.start())):
            found.append((span[0], span[1]))
    return found


# Romanised Japanese: "1-2-3 Jingumae, Shibuya-ku, Tokyo 150-0001", "Umeda 3-1-1, Kita-ku".
_JA_ROMAN = re.compile(
    r"(?<![\w-])(?:\d{1,4}(?:-\d{1,4}){1,3}[ ][A-Z][a-z]+(?:-[a-z]+)?|[A-Z][a-z]+(?:-[a-z]+)?[ ]"
    r"\d{1,4}(?:-\d{1,4}){1,3}),[ ][A-Z][a-z]+-(?:ku|shi|cho|machi|gun)\b"
    r"(?:,[ ][A-Z][a-z]+(?:-(?:to|fu|ken|shi))?)?(?:,?[ ]\d{3}-\d{4})?"
)
# Japanese script: a prefecture, then the city, ward and block numbers.
_JA_ADDRESS = re.compile(
    r"(?:〒?[ ]?\d{3}[-－]\d{4}[ 　]?)?(?:東京都|北海道|(?:大阪|京都)府|[一-龥]{2,3}県)"
    r"[一-龥ぁ-んァ-ヶー々ヶ]{1,24}?(?:[0-9０-９]{1,4}(?:丁目|番地?|号|[-－ー]))+[0-9０-９]{0,4}号?"
)
# A name in Japanese script before an honorific: "山田太郎様", "佐藤さん".
_JA_NAME = re.compile(r"([一-龥々]{2,5}|[ァ-ヶー・]{3,12})(?=様|さん|氏|殿|先生|くん|君)")
_JA_ROMAN_HINTS = ("-ku", "-shi", "-cho", "-machi", "-gun")
# Words before an honorific that name a group, not a person ("会員様", "皆様").
_JA_NOT_NAMES = frozenset(("会員", "利用者", "担当者", "関係者", "顧客", "各位", "皆", "お客"))


_CJK = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


def _japanese(text: str, ascii_only: bool) -> list[Span]:
    """Romanised addresses around a ward or city suffix ("-ku", "-shi"); addresses and names in
    Japanese script when the text holds kana or kanji."""
    out: list[Span] = []
    done = -1
    for hint in _JA_ROMAN_HINTS:
        i = text.find(hint)
        while i >= 0:
            ls = text.rfind("\n", 0, i) + 1
            if ls > done:
                le = text.find("\n", i)
                le = len(text) if le < 0 else le
                out.extend(
                    (m.start(), m.end(), "ADDRESS") for m in _JA_ROMAN.finditer(text, ls, le)
                )
                done = ls
            i = text.find(hint, i + 3)
    if not ascii_only and _CJK.search(text):
        out.extend((m.start(), m.end(), "ADDRESS") for m in _JA_ADDRESS.finditer(text))
        out.extend(
            (m.start(1), m.end(1), "PERSON")
            for m in _JA_NAME.finditer(text)
            if m.group(1) not in _JA_NOT_NAMES
        )
    return out

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
  lone given name counts when it is none of those.
A chain followed by a company suffix ("GmbH", "Inc", "Industries") is a company, not a
person; a word glued to code punctuation (`Mark.objects`, `Will_run`, `Rose(`) is an
identifier.

Street addresses. One grammar per way of writing a street line, each needing a house number:
number first with an English street type ("221B Baker Street", "1600 Pennsylvania Ave NW")
or a French one ("12, rue de la Paix"); street type first and number after ("Calle de
Alcalá 42", "Via Roma, 10", "Rua Augusta, 100", "Avenue Louise 54"); a German or Dutch
street word ending in a street type ("Hauptstraße 5", "Berliner Allee 12", "Keizersgracht
123"). A unit ("Apt 4B", "3º B") and a postcode with its city on the same line
("10115 Berlin", "1015 CJ Amsterdam", "London NW1 6XE", "Springfield, IL 62704") extend the
span. A street name without a number is no address.
"""

from __future__ import annotations

import re
import threading
import unicodedata
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
# A word glued to these is part of code, a path, a handle or an address.
_CHAIN = re.compile(
    rf"(?<![\w.@/#$\\\-`])(?<!\w['’])(?:{_CAP}|{_INITIAL})"
    rf"(?:[ \t]+(?:{_PARTICLE}[ \t]+){{0,2}}(?:{_CAP}|{_INITIAL}))*"
    r"(?![\w(\[{`]|\.[\w(]|-\w|@)"
)
_WORD = re.compile(rf"{_CAP}|{_INITIAL}|{_PARTICLE}")

# Titles written before a name (compared without a final dot).
_TITLES = _wordset(
    """Mr Mrs Ms Mx Miss Dr Prof Herr Frau Hr Fr M Mme Mlle Mmes MM Me Sr Sra Srta Sres D Dª Dña
    Don Doña Dona Dom Sig Sig.ra Sig.na Sigg Dott Dott.ssa Ing Avv Arch Prof.ssa Dra Dr.ª Dhr
    Mevr Mevrouw Meneer Mej Ir Drs Mag Dipl.-Ing Eng Exmo Exma Madame Monsieur Mademoiselle
    Señor Señora Señorita Signor Signora Signorina Senhor Senhora Sir Dame Lady Lord
    mevrouw meneer madame monsieur mademoiselle señor señora señorita signor signora signorina
    senhor senhora dona don doña"""
)
_TITLE_BEFORE = re.compile(
    r"(?:^|(?<=[\s(\[,;:\"'“«]))("
    + "|".join(sorted((re.escape(t) for t in _TITLES), key=len, reverse=True))
    + rf")\.?[ \t]+(?P<particles>(?:{_PARTICLE}[ \t]+){{0,2}})$"
)

_SALUTATIONS = (
    r"dear|hi|hello|hey|good morning|good afternoon|good evening|morning|greetings|"
    r"liebe|lieber|liebes|hallo|hi|moin|servus|guten (?:morgen|tag|abend)|grüß dich|"
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
    r"and|und|et|y|e|en"
)
# Cues that only introduce a name when the word after them is a known name.
_WEAK_CUES = frozenset(
    """this is|i am|i'm|ich bin|je suis|soy|sono|ik ben|eu sou|sou|met|mit|with|avec|con|com|
    ask|asked|tell|told|per|by|par|von|da|door|por|and|und|et|y|e|en|from|to|user|guest|
    customer|client|cliente|kunde|kundin|klant|manager|owner|contact|employee|name""".replace(
        "\n", ""
    ).split("|")
)
_CUE_BEFORE = re.compile(
    rf"(?:^|(?<=[\s(\[,;:\"'“«>*{{|-]))(?P<cue>{_SALUTATIONS}|{_CUES})"
    r"(?P<sep>[\"'”]?[ \t]*[:=,\-–]?[ \t]*[\"'“]?)[ \t]*$",
    re.IGNORECASE,
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
    r"cordiali saluti|distinti saluti|saluti|un saluto|grazie|a presto|"
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
    gardens church cathedral project edition series release version protocol framework
    app engine model"""
)


# --- data ------------------------------------------------------------------------------------


def _fold(word: str) -> str:
    """Lower case without accents: "Müller" and "MULLER" meet as "muller"."""
    decomposed = unicodedata.normalize("NFKD", word.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c)).replace("’", "'")


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
        self.org = frozenset(_fold(w) for w in _ORG_SUFFIXES)
        self.brands = frozenset(
            tuple(_fold(w) for w in re.findall(r"[^\W\d_]+", line))
            for line in (_DATA / "eponymous_brands.txt").read_text(encoding="utf-8").splitlines()
            if line and not line.startswith("#")
        )


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
    rf"(?:{_EN_TYPES})\b\.?(?:[ ]{_DIRECTION}\b\.?)?"
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
_ADDRESS = re.compile(
    rf"(?<![\w./#\-])(?:{_EN_STREET}|{_FR_STREET}|{_TYPE_FIRST_STREET}|{_GERMANIC_STREET})"
    r"(?![\w@])"
)


def _addresses(text: str) -> list[Span]:
    out: list[Span] = []
    for m in _ADDRESS.finditer(text):
        s, e = m.start(), m.end()
        tail = _TAIL.match(text, e)
        if tail:
            e = tail.end()
        out.append((s, e, "ADDRESS"))
    return out


# --- people ----------------------------------------------------------------------------------


def _line_bounds(text: str, s: int, e: int) -> tuple[int, int]:
    ls = text.rfind("\n", 0, s) + 1
    le = text.find("\n", e)
    return ls, (len(text) if le < 0 else le)


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


def _tokens(text: str, s: int, e: int) -> list[tuple[int, int, str]]:
    return [(m.start() + s, m.end() + s, m.group()) for m in _WORD.finditer(text[s:e])]


def _is_name_word(word: str) -> bool:
    return word[0].isupper()


def _person_in_chain(text: str, s: int, e: int, lex: _Lexicon) -> tuple[int, int] | None:
    words = [t for t in _tokens(text, s, e) if _is_name_word(t[2])]
    if not words:
        return None
    folded = [_fold(w[2].rstrip(".")) for w in words]
    # A company or a place named after someone is not that person.
    if any(f in lex.org for f in folded[1:]):
        return None
    m = re.match(r"[ \t]+([\w.&]+)", text[e : e + 16])
    if m and _fold(m.group(1).rstrip(",;:")) in lex.org:
        return None
    if re.match(r",[ ]?(?:Inc|Ltd|LLC)\b|[ ]?&[ ]?[A-Z]", text[e : e + 8]):
        return None
    if any(tuple(folded[k : k + len(b)]) == b for b in lex.brands for k in range(len(folded))):
        return None

    i = 0
    titled = False
    cue = None
    strong = False
    # Titles and salutations inside the chain: "Herr Dr Müller", "Olá Inês", "Dear Anna".
    while i + 1 < len(words):
        w = words[i][2].rstrip(".")
        if w in _TITLES:
            titled = True
        elif folded[i] in _SALUTATION_WORDS:
            cue, strong = folded[i], True
        else:
            break
        i += 1
    line_start, line_end = _line_bounds(text, s, e)
    left = text[max(line_start, s - 48) : s]
    start = None
    if not titled and cue is None:
        tm = _TITLE_BEFORE.search(left)
        if tm:
            titled = True
            # "Mevr. van Dijk": the particles belong to the name.
            if tm.group("particles"):
                start = s - len(tm.group("particles"))
    if not titled and cue is None:
        cm = _CUE_BEFORE.search(left)
        if cm:
            cue = cm.group("cue").lower()
            # A field ("Customer: ...", "name=...") introduces a name; prose ("with") hints.
            strong = cue not in _WEAK_CUES or any(c in cm.group("sep") for c in ":=")
    signature = (
        not titled
        and cue is None
        and not text[line_start:s].strip(" \t-—–>*_")
        and not text[e:line_end].strip(" \t,.!")
        and _after_closing(text, line_start)
    )
    words = words[i:]
    folded = folded[i:]
    if words[-1][2].rstrip(".") in _TITLES:  # "Dear Mrs." with the name on the next chain
        return None

    def end_of_name(j: int) -> int:
        """Index past the last word that still belongs to the name starting at j."""
        k = j + 1
        while k < len(words) and k - j < 4:
            f = folded[k]
            if len(words[k][2]) == 2 and words[k][2].endswith("."):  # an initial
                k += 1
                continue
            if f in lex.common and (f not in lex.surnames or f in lex.given):
                break
            k += 1
        return k

    def span(j: int) -> tuple[int, int]:
        k = end_of_name(j)
        return (words[j][0] if start is None or j else start), words[k - 1][1]

    def next_name(j: int) -> str | None:
        """The next word after j that is not an initial."""
        for k in range(j + 1, len(words)):
            if not (len(words[k][2]) == 2 and words[k][2].endswith(".")):
                return folded[k]
        return None

    if titled:
        return span(0)
    f = folded[0]
    if strong or signature:
        if f in lex.given or (f in lex.surnames and f not in lex.common):
            return span(0)
        if f not in lex.ambiguous and f not in lex.org and len(f) > 1:
            return span(0)
    # No context: a known given name, or an unknown first word before a known surname.
    for j, f in enumerate(folded):
        if j and folded[j - 1] in _PLACE_PREFIXES:  # "São Paulo", "San Diego"
            continue
        after = next_name(j)
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


def _people(text: str, lex: _Lexicon) -> list[Span]:
    out: list[Span] = []
    for m in _CHAIN.finditer(text):
        found = _person_in_chain(text, m.start(), m.end(), lex)
        if found:
            out.append((found[0], found[1], "PERSON"))
    return out


def find_people(text: str) -> list[Span]:
    """(start, end, type) spans, type "PERSON" or "ADDRESS", character offsets, end
    exclusive, sorted by start, non-overlapping. Pure, thread-safe, data loaded lazily once."""
    if not text:
        return []
    lex = _lexicon()
    addresses = _addresses(text)
    people = _people(text, lex)
    if addresses:
        people = [p for p in people if all(p[1] <= a[0] or p[0] >= a[1] for a in addresses)]
    spans = sorted(addresses + people)
    kept: list[Span] = []
    for span in spans:
        if kept and span[0] < kept[-1][1]:
            if span[1] - span[0] > kept[-1][1] - kept[-1][0]:
                kept[-1] = span
            continue
        kept.append(span)
    return kept

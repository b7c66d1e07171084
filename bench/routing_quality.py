"""Routing-quality simulation: the learned router on `atp/balanced` against fixed policies.

Run `python bench/routing_quality.py` (a minute or so). See docs/benchmarks.md, "Routing".
"""

from __future__ import annotations

import random

# --- realistic, varied prompt text ------------------------------------------------------------

_NAMES = [
    "Maria Garcia",
    "John Smith",
    "Wei Chen",
    "Aisha Khan",
    "Lukas Müller",
    "Sofia Rossi",
    "Kenji Tanaka",
    "Olga Petrova",
    "David Cohen",
    "Fatima Ali",
    "Pierre Dubois",
    "Emma Brown",
]
_COMPANIES = [
    "Acme Corp",
    "Globex",
    "Initech",
    "Umbrella Health",
    "Northwind Traders",
    "Contoso",
    "Stark Logistics",
    "Blue Harbor Bank",
    "Vertex Energy",
    "Pinecone Foods",
]
_CITIES = ["Berlin", "Lisbon", "Toronto", "Osaka", "Nairobi", "Austin", "Lyon", "Melbourne"]
_TOPICS = [  # subjects named in instructions
    "renewable energy storage",
    "remote work policies",
    "the quarterly sales results",
    "a new data privacy regulation",
    "supply chain delays",
    "the city's public transport plan",
    "customer churn in the mobile app",
    "a merger between two regional banks",
    "the launch of an electric delivery van",
    "hospital staffing shortages",
]
# Documents are assembled from topic vocabularies, so two documents share little beyond
# grammar, as real pasted documents do.
_TOPIC_WORDS = {
    "finance": [
        "revenue",
        "margin",
        "dividend",
        "bond yields",
        "the balance sheet",
        "operating costs",
        "shareholders",
        "the credit facility",
        "cash flow",
    ],
    "health": [
        "patients",
        "the clinic",
        "vaccination rates",
        "nurses",
        "waiting lists",
        "the new ward",
        "clinical trials",
        "hospital beds",
        "primary care",
    ],
    "transport": [
        "the tram line",
        "commuters",
        "bus routes",
        "the rail operator",
        "ticket prices",
        "cycle lanes",
        "rush-hour traffic",
        "the new station",
    ],
    "energy": [
        "solar farms",
        "the grid operator",
        "battery storage",
        "wind turbines",
        "electricity prices",
        "the heat pump subsidy",
        "gas imports",
        "power outages",
    ],
    "software": [
        "the release",
        "the database migration",
        "latency",
        "the mobile app",
        "user sign-ups",
        "the outage",
        "the API",
        "cloud spending",
    ],
    "retail": [
        "the stores",
        "online orders",
        "inventory",
        "the loyalty programme",
        "holiday sales",
        "returns",
        "suppliers",
        "shelf space",
    ],
    "education": [
        "students",
        "teachers",
        "the curriculum",
        "exam results",
        "the new campus",
        "tuition fees",
        "school meals",
        "enrolment",
    ],
    "sports": [
        "the club",
        "the coach",
        "the season",
        "ticket sales",
        "the stadium",
        "the transfer window",
        "young players",
        "the league table",
    ],
    "climate": [
        "emissions",
        "the flood defences",
        "heatwaves",
        "reforestation",
        "carbon credits",
        "the coastline",
        "water shortages",
        "wildfires",
    ],
    "legal": [
        "the court",
        "the ruling",
        "the contract",
        "the appeal",
        "the regulator",
        "liability",
        "the settlement",
        "compliance teams",
    ],
    "housing": [
        "rents",
        "the housing market",
        "mortgage rates",
        "new apartments",
        "planning permission",
        "tenants",
        "construction costs",
        "landlords",
    ],
    "food": [
        "farmers",
        "the harvest",
        "crop yields",
        "fertiliser prices",
        "food banks",
        "the restaurant sector",
        "organic produce",
        "dairy exports",
    ],
}
_VERBS = [
    "increased",
    "fell",
    "stabilised",
    "doubled",
    "came under pressure",
    "improved",
    "was delayed",
    "was reviewed",
    "surprised observers",
    "drew criticism",
]
_FRAMES = [
    "In {city}, {a} {verb} after months of uncertainty.",
    "{company} reported that {a} {verb}, while {b} remained flat.",
    "According to officials, {a} {verb} by {n} percent this year.",
    "Experts warned that {a} and {b} are closely linked.",
    "The plan focuses on {a}, with a budget of {n} million.",
    "Over the past {n} weeks, {a} {verb} and {b} {verb2}.",
    "A report published on Monday said {a} {verb} in most regions.",
    "Local leaders in {city} called for more investment in {a}.",
    "{company} expects {a} to recover once {b} improves.",
    "Critics say the changes to {a} do not address {b}.",
]
_LANGS = ["French", "German", "Spanish", "Italian", "Japanese", "Portuguese", "Dutch", "Korean"]
_FUNCS = [
    ("parse_csv", "reads a CSV file and returns a list of dicts"),
    ("merge_intervals", "merges overlapping intervals in a list of pairs"),
    ("retry", "retries a function with exponential backoff"),
    ("lru_cache", "implements an LRU cache with a fixed capacity"),
    ("validate_email", "checks whether a string is a valid email address"),
    ("flatten", "flattens an arbitrarily nested list"),
    ("rate_limiter", "implements a token bucket rate limiter"),
    ("binary_search", "finds the insertion index of a value in a sorted array"),
]
_LANGS_CODE = ["Python", "TypeScript", "Go", "Rust", "Java", "JavaScript", "C#", "Kotlin"]
_SNIPPETS = [
    "def total(items):\n    s = 0\n    for i in range(len(items) + 1):\n        s += items[i].price\n    return s",
    "function getUser(id) {\n  return fetch('/api/users/' + id).then(r => r.json).catch(e => null)\n}",
    "SELECT name, COUNT(*) FROM orders o JOIN customers c ON o.customer_id = c.id WHERE o.date > '2024-01-01'",
    "for (int i = 0; i <= arr.length; i++) {\n    sum += arr[i];\n}\nreturn sum / arr.length;",
    "async def fetch_all(urls):\n    results = []\n    for u in urls:\n        results.append(await session.get(u))\n    return results",
    "const [state, setState] = useState([]);\nuseEffect(() => { load().then(setState) });",
]


def _sentence(rng: random.Random, words: list[str]) -> str:
    a, b = rng.sample(words, 2)
    text = rng.choice(_FRAMES).format(
        a=a,
        b=b,
        verb=rng.choice(_VERBS),
        verb2=rng.choice(_VERBS),
        n=rng.randint(2, 90),
        city=rng.choice(_CITIES),
        company=rng.choice(_COMPANIES),
    )
    return text[0].upper() + text[1:]


def _paragraphs(rng: random.Random, sentences: int) -> str:
    words = _TOPIC_WORDS[rng.choice(list(_TOPIC_WORDS))]
    return " ".join(_sentence(rng, words) for _ in range(sentences))


def _code(rng: random.Random, pad: int) -> str:
    name, what = rng.choice(_FUNCS)
    lang = rng.choice(_LANGS_CODE)
    snippet = rng.choice(_SNIPPETS)
    forms = [
        f"Write a {lang} function `{name}` that {what}. Include type hints and unit tests.",
        f"Why does this code throw an exception? Fix the bug and explain.\n```\n{snippet}\n```",
        f"Refactor the following code for readability and performance:\n```\n{snippet}\n```",
        f"Implement {name} in {lang}; it {what}. Handle edge cases and return early on errors.",
        f"Review this pull request diff and point out bugs:\n```\n{snippet}\n```\nAlso suggest a test.",
        f"Convert this snippet to idiomatic {lang}, keeping the behaviour:\n{snippet}",
    ]
    text = rng.choice(forms)
    for _ in range(pad):
        text += "\n" + rng.choice(_SNIPPETS)
    return text


def _extraction(rng: random.Random, pad: int) -> str:
    person = rng.choice(_NAMES)
    company = rng.choice(_COMPANIES)
    email = person.lower().replace(" ", ".") + "@" + company.lower().split()[0] + ".com"
    doc = rng.choice(
        [
            f"Invoice #{rng.randint(1000, 9999)} from {company}, issued {rng.randint(1, 28)}/"
            f"{rng.randint(1, 12)}/2024 to {person}. Total due: ${rng.randint(100, 9000)}.00. "
            f"Contact: {email}, phone +1 555 {rng.randint(100, 999)} {rng.randint(1000, 9999)}.",
            f"Hi team, {person} from {company} ({email}) will visit {rng.choice(_CITIES)} "
            f"on {rng.randint(1, 28)} March for the contract review. Budget: "
            f"{rng.randint(5, 90)}k EUR.",
            f"Resume: {person}. Experience: {rng.randint(2, 20)} years at {company} as "
            f"engineer. Location: {rng.choice(_CITIES)}. Email {email}.",
        ]
    )
    asks = [
        "Extract the person's name, email, company and any amounts as JSON.",
        "From the text below, pull out all names, dates and monetary amounts. Return JSON.",
        "Return a JSON object with fields name, email, organization, date.",
        "List every entity (person, organization, location) in the text with its type.",
        'Fill this schema from the document: {"customer": str, "total": number, "date": str}.',
    ]
    text = rng.choice(asks) + "\n\n" + doc
    if pad:
        text += "\n" + _paragraphs(rng, pad * 3)
    return text


def _chat(rng: random.Random, pad: int) -> str:
    text = rng.choice(
        [
            "hey, how's it going?",
            f"I just got back from {rng.choice(_CITIES)}, it was lovely! Have you heard of it?",
            "what should I cook for dinner tonight, something quick?",
            "thanks a lot for the help earlier :)",
            "tell me a joke about programmers",
            f"good morning! any tips for staying motivated on a {rng.choice(['rainy', 'slow', 'long'])} day?",
            "I'm feeling a bit tired today, any ideas to relax?",
            "what's your favourite book and why?",
            "can you recommend a podcast for my commute?",
        ]
    )
    for _ in range(pad):
        text += " " + rng.choice(
            ["Also, I love hiking.", "My dog says hi!", "Weekend plans are open.", "lol"]
        )
    return text


def _reasoning(rng: random.Random, pad: int) -> str:
    a, b, c = rng.randint(2, 40), rng.randint(2, 40), rng.randint(50, 500)
    text = rng.choice(
        [
            f"Solve for x: {a}x + {b} = {c}. Show your reasoning step by step.",
            f"A tank fills at {a} litres per minute and drains at {b} litres per minute. "
            f"Starting empty, how long until it holds {c} litres? Explain.",
            f"Prove that the sum of the first {a} odd numbers is a perfect square.",
            f"If {a} workers build a wall in {b} days, how many days do {a + 3} workers need? "
            "Think carefully.",
            f"What is the probability of drawing {min(a, 4)} aces from a deck in "
            f"{min(a, 4) + 2} draws? Derive it.",
            f"A car travels {c} km at {a + 40} km/h then returns at {b + 50} km/h. "
            "What is the average speed? Reason it through.",
            "Three boxes are mislabeled: apples, oranges, mixed. You may draw one fruit from "
            "one box. How do you relabel all boxes? Explain the logic.",
        ]
    )
    for _ in range(pad):
        text += f" Then generalise to n = {rng.randint(3, 99)} and check the edge cases."
    return text


def _summarization(rng: random.Random, pad: int) -> str:
    topic = rng.choice(_TOPICS)
    ask = rng.choice(
        [
            f"Summarize this article about {topic} in three bullet points:",
            "Give me a TL;DR of the following meeting notes:",
            f"Write a one-paragraph executive summary of the report on {topic}:",
            "Condense the text below into key takeaways for a busy manager:",
            "Summarise the main points and decisions in the following:",
        ]
    )
    return ask + "\n\n" + _paragraphs(rng, 5 + pad * 4)


def _translation(rng: random.Random, pad: int) -> str:
    lang = rng.choice(_LANGS)
    ask = rng.choice(
        [
            f"Translate the following into {lang}:",
            f"Please translate this email to {lang}, keeping a formal tone:",
            f"How would a native speaker say this in {lang}?",
            f"Translate to {lang} and keep the formatting:",
        ]
    )
    return ask + "\n\n" + _paragraphs(rng, 2 + pad * 3)


CATEGORIES = {
    "code": _code,
    "extraction": _extraction,
    "chat": _chat,
    "reasoning": _reasoning,
    "summarization": _summarization,
    "translation": _translation,
}


def make_prompt(rng: random.Random, category: str, pad: int = 0) -> str:
    """A prompt of `category`; `pad` makes it longer (more context of the same kind)."""
    return CATEGORIES[category](rng, pad)

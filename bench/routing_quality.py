"""Routing-quality simulation: the learned router on `atp/balanced` against fixed policies.

Run `.venv/bin/python bench/routing_quality.py` (about ten seconds). See docs/benchmarks.md,
"Routing".
"""

from __future__ import annotations

import random
from dataclasses import dataclass

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


# --- the simulated models ------------------------------------------------------------------------

CATEGORY_NAMES = list(CATEGORIES)


@dataclass(frozen=True)
class SimModel:
    """A simulated model: true quality per category, prices, latency, failure rate."""

    name: str
    provider: str
    input_price: float  # USD per million tokens
    output_price: float
    quality: dict[str, float]
    base_latency_ms: float
    ms_per_output_token: float
    verbosity: float = 1.0
    failure_rate: float = 0.01
    listed_quality: float = 0.7  # what an admin configured: one number, no categories


def _q(code, extraction, chat, reasoning, summarization, translation) -> dict[str, float]:
    return dict(
        zip(
            CATEGORY_NAMES,
            (code, extraction, chat, reasoning, summarization, translation),
            strict=True,
        )
    )


# fmt: off
MODELS = [
    # name, provider, $/M in, $/M out,
    #   quality per category (code, extraction, chat, reasoning, summarization, translation),
    #   base latency ms, ms per output token, verbosity, failure rate, listed quality
    SimModel("frontier-xl", "bigai", 10.0, 30.0, _q(0.86, 0.93, 0.92, 0.90, 0.92, 0.91),
             1200, 22, 1.1, 0.01, 0.92),
    SimModel("reasoner-r1", "thinkco", 3.0, 12.0, _q(0.84, 0.82, 0.74, 0.95, 0.80, 0.78),
             2500, 30, 1.6, 0.02, 0.85),
    SimModel("coder-pro", "devmodels", 2.0, 6.0, _q(0.93, 0.80, 0.70, 0.80, 0.72, 0.66),
             600, 12, 1.0, 0.01, 0.78),
    SimModel("mid-general", "bigai", 1.0, 3.0, _q(0.76, 0.90, 0.89, 0.78, 0.89, 0.87),
             500, 10, 1.0, 0.01, 0.80),
    SimModel("polyglot-m", "lingua", 0.5, 1.5, _q(0.55, 0.84, 0.84, 0.58, 0.86, 0.94),
             400, 9, 1.0, 0.01, 0.70),
    SimModel("small-fast", "bigai", 0.15, 0.6, _q(0.58, 0.91, 0.90, 0.55, 0.84, 0.80),
             250, 6, 0.9, 0.01, 0.68),
    SimModel("nano", "tinyco", 0.05, 0.2, _q(0.40, 0.83, 0.86, 0.35, 0.70, 0.62),
             150, 4, 0.8, 0.02, 0.55),
]
# fmt: on
OUTPUT_TOKENS = {
    "code": 420,
    "extraction": 140,
    "chat": 90,
    "reasoning": 380,
    "summarization": 180,
    "translation": 260,
}
GRADER_NOISE = 0.12


# --- the simulation ------------------------------------------------------------------------------


@dataclass
class SimRequest:
    category: str
    body: dict
    prompt_tokens: int


def make_requests(rng: random.Random, n: int) -> list[SimRequest]:
    """`n` chat requests from a mix of categories, with varied length and wording."""
    from apps.providers.tokens import estimate_prompt_tokens

    out = []
    for _ in range(n):
        category = rng.choice(CATEGORY_NAMES)
        messages = []
        if rng.random() < 0.3:
            messages.append({"role": "system", "content": rng.choice(SYSTEM_PROMPTS)})
        messages.append({"role": "user", "content": make_prompt(rng, category, rng.randint(0, 2))})
        body = {"model": "atp/balanced", "messages": messages}
        out.append(SimRequest(category, body, estimate_prompt_tokens(body)))
    return out


SYSTEM_PROMPTS = [
    "You are a helpful assistant.",
    "You are an assistant for Acme Corp employees. Be concise.",
    "Answer accurately. If you are not sure, say so.",
]


def output_tokens(model: SimModel, req: SimRequest) -> int:
    return int(OUTPUT_TOKENS[req.category] * model.verbosity)


def cost_of(model: SimModel, req: SimRequest) -> float:
    return (
        req.prompt_tokens * model.input_price + output_tokens(model, req) * model.output_price
    ) / 1e6


def expected_quality(model: SimModel, req: SimRequest) -> float:
    return model.quality[req.category] * (1 - model.failure_rate)


def deployments() -> list:
    from decimal import Decimal

    from apps.costs.pricing import Prices
    from apps.providers.adapters.base import Target
    from apps.routing.snapshot import DeploymentInfo

    out = []
    for i, m in enumerate(MODELS):
        target = Target(
            provider_id=m.provider,
            provider_name=m.provider,
            kind="simulator",
            base_url="",
            upstream_model=m.name,
        )
        out.append(
            DeploymentInfo(
                id=f"dep-{i}",
                public_name=m.name,
                aliases=(),
                provider_id=m.provider,
                provider_name=m.provider,
                target=target,
                prices=Prices(
                    input=Decimal(str(m.input_price)), output=Decimal(str(m.output_price))
                ),
                capabilities=frozenset({"chat", "streaming", "json", "tools"}),
                context_window=128_000,
                weight=100,
                region="us-east",
                quality=m.listed_quality,
                created=0,
            )
        )
    return out


async def run_router(seed: int, learn: int, evaluate: int) -> dict:
    """The learned router on atp/balanced: `learn` requests, then `evaluate` measured."""
    from apps.routing.engine.hints import parse_hints
    from apps.routing.engine.router import BUILTIN_ROUTES, RoutingEngine
    from apps.routing.engine.stats import ObservedStats
    from apps.routing.resilience import stats as observed
    from apps.routing.snapshot import KeyInfo

    rng = random.Random(seed)
    world = random.Random(seed + 1000)
    requests = make_requests(rng, learn + evaluate)
    engine = RoutingEngine(rng=random.Random(seed + 2000))
    observed.reset()  # each seed starts with nothing observed
    tracker = ObservedStats()
    deps = deployments()
    by_name = {m.name: m for m in MODELS}
    route = BUILTIN_ROUTES["atp/balanced"]
    key = KeyInfo(
        id="k",
        tenant_id="t",
        tenant_slug="t",
        name="bench",
        allowed_models=None,
        expires_at=None,
        revoked=False,
        tenant_active=True,
    )
    chosen: list[tuple[SimRequest, SimModel]] = []
    explored = 0
    for i, req in enumerate(requests):
        request = parse_hints(req.body, {}, key, prompt_tokens=req.prompt_tokens)
        decision = engine.decide(deps, request, route, stats=tracker)
        model = by_name[decision.model]
        success = world.random() >= model.failure_rate
        latency = model.base_latency_ms + output_tokens(model, req) * model.ms_per_output_token
        latency *= world.uniform(0.8, 1.25)
        cost = cost_of(model, req)
        tracker.record(decision.deployment_id, latency_ms=latency, success=success)
        engine.learn(decision)
        request_id = f"req-{seed}-{i}"
        await engine.record_outcome(
            decision, success=success, latency_ms=latency, cost_usd=cost, request_id=request_id
        )
        if success:
            grade = min(1.0, max(0.0, world.gauss(model.quality[req.category], GRADER_NOISE)))
            await engine.record_feedback(request_id, grade)
        if i >= learn:
            chosen.append((req, model))
            explored += decision.explored
    picks: dict[str, dict[str, int]] = {c: {} for c in CATEGORY_NAMES}
    for req, model in chosen:
        picks[req.category][model.name] = picks[req.category].get(model.name, 0) + 1
    return {
        "quality": sum(expected_quality(m, r) for r, m in chosen) / len(chosen),
        "cost": sum(cost_of(m, r) for r, m in chosen) / len(chosen),
        "explored_share": explored / len(chosen),
        "clusters": len(engine.clusters.clusters),
        "picks": picks,
        "requests": [r for r, _ in chosen],
    }


def fixed_policies(requests: list[SimRequest], seed: int) -> dict[str, dict]:
    """Quality and cost per request of the fixed policies on the same requests."""
    rng = random.Random(seed + 3000)

    def measure(pick) -> dict:
        pairs = [(r, pick(r)) for r in requests]
        return {
            "quality": sum(expected_quality(m, r) for r, m in pairs) / len(pairs),
            "cost": sum(cost_of(m, r) for r, m in pairs) / len(pairs),
        }

    singles = {m.name: measure(lambda r, m=m: m) for m in MODELS}
    best = max(MODELS, key=lambda m: singles[m.name]["quality"])
    cheapest = min(MODELS, key=lambda m: singles[m.name]["cost"])
    return {
        "singles": singles,
        "best_model": best.name,
        "cheapest_model": cheapest.name,
        "always-best": singles[best.name],
        "always-cheapest": singles[cheapest.name],
        "random": measure(lambda r: rng.choice(MODELS)),
        "per-category-best": measure(
            lambda r: max(MODELS, key=lambda m: (m.quality[r.category], -cost_of(m, r)))
        ),
    }


def zero_router(singles: dict[str, dict], cost: float) -> float:
    """The best quality a fixed random mix of single models reaches at `cost`: the upper
    convex hull of the single models' (cost, quality) points (RouterBench's zero router)."""
    points = [(v["cost"], v["quality"]) for v in singles.values()]
    best = max((q for c, q in points if c <= cost), default=0.0)
    for c1, q1 in points:
        for c2, q2 in points:
            if c1 < cost < c2:
                share = (c2 - cost) / (c2 - c1)
                best = max(best, share * q1 + (1 - share) * q2)
    return best


# --- report --------------------------------------------------------------------------------------


async def simulate(seed: int, learn: int, evaluate: int) -> dict:
    router = await run_router(seed, learn, evaluate)
    fixed = fixed_policies(router.pop("requests"), seed)
    best = fixed["always-best"]
    rows = {
        "learned router (atp/balanced)": router,
        f"always-best ({fixed['best_model']})": best,
        f"always-cheapest ({fixed['cheapest_model']})": fixed["always-cheapest"],
        "random": fixed["random"],
        "per-category-best (oracle)": fixed["per-category-best"],
    }
    zero_quality = zero_router(fixed["singles"], router["cost"])
    rows["zero router at the learned router's cost"] = {
        "quality": zero_quality,
        "cost": router["cost"],
    }
    table = {
        name: {
            "quality": row["quality"],
            "cost_usd": row["cost"],
            "quality_share": row["quality"] / best["quality"],
            "cost_share": row["cost"] / best["cost"],
        }
        for name, row in rows.items()
    }
    return {
        "seed": seed,
        "table": table,
        "singles": fixed["singles"],
        "router_picks": router["picks"],
        "explored_share": router["explored_share"],
        "clusters": router["clusters"],
        "zero_router_quality": zero_quality,
    }


def main() -> None:
    import argparse
    import asyncio
    import json
    import os
    import sys
    import time
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "atp_site.settings")
    import django

    django.setup()

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--learn", type=int, default=4000)
    parser.add_argument("--evaluate", type=int, default=2000)
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args()
    started = time.time()
    runs = [asyncio.run(simulate(int(s), args.learn, args.evaluate)) for s in args.seeds.split(",")]
    report = summarise(runs, args)
    report["seconds"] = round(time.time() - started, 1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "routing_quality.json").write_text(json.dumps(report, indent=2) + "\n")
    markdown = render(report)
    (out / "routing_quality.md").write_text(markdown)
    print(markdown)


def summarise(runs: list[dict], args) -> dict:
    """Mean over seeds of every policy's figures, with the spread of the router's."""
    names = list(runs[0]["table"])
    table = {}
    for name in names:
        rows = [r["table"][name] for r in runs]
        table[name] = {
            key: sum(row[key] for row in rows) / len(rows)
            for key in ("quality", "cost_usd", "quality_share", "cost_share")
        }
        table[name]["quality_share_min"] = min(row["quality_share"] for row in rows)
        table[name]["cost_share_max"] = max(row["cost_share"] for row in rows)
    router = table["learned router (atp/balanced)"]
    zero = table["zero router at the learned router's cost"]
    return {
        "learn_requests": args.learn,
        "evaluated_requests": args.evaluate,
        "seeds": [r["seed"] for r in runs],
        "table": table,
        "bar": {
            "quality_share_at_least_0.95": router["quality_share_min"] >= 0.95,
            "cost_share_at_most_0.40": router["cost_share_max"] <= 0.40,
            "above_zero_router": all(
                r["table"]["learned router (atp/balanced)"]["quality"]
                > r["table"]["zero router at the learned router's cost"]["quality"]
                for r in runs
            ),
            "router_minus_zero_router_quality": router["quality"] - zero["quality"],
        },
        "models": [
            {
                "name": m.name,
                "input_price": m.input_price,
                "output_price": m.output_price,
                "quality": m.quality,
                "listed_quality": m.listed_quality,
                "failure_rate": m.failure_rate,
            }
            for m in MODELS
        ],
        "runs": [{k: v for k, v in r.items() if k != "table"} for r in runs],
    }


def render(report: dict) -> str:
    lines = [
        f"Learned router on `atp/balanced` after {report['learn_requests']} requests, measured "
        f"on the next {report['evaluated_requests']}; mean of seeds "
        f"{', '.join(map(str, report['seeds']))}. Shares are of the best single model "
        "(highest mean quality).",
        "",
        "| policy | quality | share of best quality | cost per request | share of best cost |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, row in report["table"].items():
        lines.append(
            f"| {name} | {row['quality']:.3f} | {row['quality_share']:.1%} | "
            f"${row['cost_usd']:.6f} | {row['cost_share']:.1%} |"
        )
    bar = report["bar"]
    lines += [
        "",
        f"Bar: >= 95% of the best model's quality in every seed: "
        f"{'met' if bar['quality_share_at_least_0.95'] else 'NOT met'}; <= 40% of its cost in "
        f"every seed: {'met' if bar['cost_share_at_most_0.40'] else 'NOT met'}; above the zero "
        f"router at equal cost in every seed: {'met' if bar['above_zero_router'] else 'NOT met'} "
        f"(+{bar['router_minus_zero_router_quality']:.3f} quality).",
        "",
        f"What the router picked per category (seed {report['seeds'][0]}, measured window):",
        "",
        "| category | picks |",
        "| --- | --- |",
    ]
    for category, picks in report["runs"][0]["router_picks"].items():
        total = sum(picks.values()) or 1
        top = sorted(picks.items(), key=lambda kv: -kv[1])[:3]
        lines.append(f"| {category} | " + ", ".join(f"{m} {n / total:.0%}" for m, n in top) + " |")
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()

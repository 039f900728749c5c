#!/usr/bin/env python3
"""Generate the English text of the mini_en demo: voice-assistant questions and commands.

    python egs/mini_en/local/generate_text.py [--seed 7] [--train 400] [--dev 100] [--test 100]
        [--teacher 5000] [--heldout 250] [--dict cmudict-en-us.dict] OUTDIR

Sentences come from templates ("is {term} the opposite of {term2}", "call doctor {surname} at
{time}", "set a timer for the {dish}" ...) whose slots are filled from word lists rich in rare
words and names, the kind of words a general first-pass language model gets wrong and an
in-domain second pass can fix. Everything is lowercase words without punctuation, and every word
is in pocketsphinx's ``cmudict-en-us.dict`` (``--dict`` checks it and fails on any OOV word), so
every reference can in principle be recognised.

One seeded stream of *distinct* sentences is cut, in order, into test, dev, train, teacher and
heldout, so no sentence appears in two of them (the teacher corpus shares no sentence with the
train/dev/test utterances either). Writes ``OUTDIR/{train,dev,test}.txt`` (one sentence per
line, the utterance texts, in generation order), ``OUTDIR/teacher.txt`` (the in-domain corpus for
``train_mlm`` and ``train_clm``) and ``OUTDIR/heldout.txt`` (held-out text for their ``--dev_text``).
The same seed and sizes always give the same files (:func:`generate` is pure Python ``random``).
"""

from __future__ import annotations

import argparse
import random
import re
from collections.abc import Iterator
from pathlib import Path

SIZES = {"test": 100, "dev": 100, "train": 400, "teacher": 5000, "heldout": 250}
"""Default number of sentences per split, in the order the sentence stream is cut."""

SPLITS = ("test", "dev", "train", "teacher", "heldout")

# --------------------------------------------------------------------------------------------
# Slot fillers (all words are in cmudict-en-us.dict; checked by --dict and the regeneration)
# --------------------------------------------------------------------------------------------

OPPOSITES = [
    ("fission", "fusion"), ("osmosis", "diffusion"), ("predator", "prey"), ("convex", "concave"),
    ("latitude", "longitude"),
    ("oxidation", "reduction"), ("acid", "alkali"), ("capitalism", "socialism"),
    ("genotype", "phenotype"), ("prologue", "epilogue"), ("optimist", "pessimist"), ("introvert", "extrovert"),
    ("proton", "electron"), ("zenith", "nadir"), ("monarchy", "democracy"),
    ("inflation", "deflation"), ("hypothesis", "theory"),
    ("weather", "climate"), ("virus", "bacteria"), ("comet", "asteroid"), ("vertebrate", "invertebrate"), ("protagonist", "antagonist"),
]

TERMS = [
    "photosynthesis", "entropy", "osmosis", "quasar", "pulsar", "nebula", "isotope",
    "catalyst", "enzyme", "chromosome", "algorithm", "paradox", "hyperbole", "nostalgia", "metaphor",
    "allegory", "tsunami", "monsoon", "tectonics", "equinox", "solstice", "eclipse", "neutrino",
    "plankton", "symbiosis", "placebo", "inflation", "recession", "tariff", "amortization", "annuity",
    "plutonium", "blockchain", "quorum", "filibuster", "gerrymandering", "sonnet", "haiku",
    "renaissance", "baroque", "impressionism", "cubism", "stoicism", "nihilism",
    "oligarchy", "serendipity", "ephemeral", "ubiquitous", "quixotic", "esoteric", "mnemonic",
    "meteorite", "oxymoron", "euphemism", "archipelago", "fjord", "savanna", "tundra", "hurricane",
    "aurora", "gravity", "relativity", "superconductivity", "insulin",
    "antibiotic", "vaccine", "antibody", "cholesterol", "metabolism", "circadian rhythm",
    "compound interest", "black hole", "dark matter", "continental drift", "natural selection",
]

SPELL_WORDS = [
    "bourgeois", "rhythm", "chrysanthemum", "pharaoh", "silhouette", "entrepreneur",
    "colonel", "queue", "yacht", "mischievous", "tungsten", "liaison", "bureaucracy", "conscientious",
    "connoisseur", "hors d'oeuvres", "rendezvous", "restaurant", "worcestershire",
    "psychology", "pneumonia", "espresso", "cappuccino", "croissant",
    "sauerkraut", "kindergarten", "mediterranean", "caribbean", "massachusetts", "connecticut",
    "mississippi", "albuquerque", "pittsburgh", "tucson", "worcester", "leicester", "edinburgh",
]

SURNAMES = [
    "nguyen", "kowalski", "yoshida", "tanaka", "schwartz", "hernandez", "patel", "gonzalez", "mueller",
    "fitzgerald", "nakamura", "ivanov", "tolstoy", "kaminski", "rossi", "bianchi",
    "dubois", "lefebvre", "andersson", "johansson", "larsen", "novak", "horvath", "papadopoulos",
    "kaplan", "goldberg", "rosenthal", "chandra", "sharma", "gupta", "kapoor", "mendoza", "castillo",
    "ramirez", "alvarez", "delgado", "wozniak", "zielinski", "abernathy", "mcallister",
    "macdonald", "murakami", "mbeki", "haddad", "nasser", "sato", "watanabe", "kimura", "takahashi",
    "rasmussen", "bergstrom", "dvorak", "sokolov", "chekhov", "fontaine", "moreau", "kessler",
]

FIRST_NAMES = [
    "siobhan", "priscilla", "ingrid", "svetlana", "giovanni", "mateo", "mustafa", "kenji",
    "hiroshi", "olga", "dmitri", "francesca", "rafael", "beatrice", "tobias", "genevieve", "lars",
    "bjorn", "astrid", "gwendolyn", "bartholomew", "cornelius", "ophelia", "imogen", "percival",
    "thaddeus", "beatrix", "ezekiel", "rosalind", "fernando", "lucia", "marguerite", "ignatius",
    "winifred", "leopold", "cassandra", "octavia", "augustine", "florence", "mohammed", "fatima",
    "jasper", "harriet", "reginald", "mildred", "clementine", "archibald", "nadia", "ravi",
]

TITLES = ["doctor", "professor", "mister", "captain", "judge", "nurse", "coach"]

DISHES = [
    "quiche", "souffle", "lasagna", "ravioli", "focaccia", "brioche",
    "tiramisu", "ratatouille", "goulash", "borscht", "burrito",
    "casserole", "meatloaf", "pot roast", "bagels", "croissants", "scones", "muffins", "brownies",
    "lentil soup", "biscotti", "cheesecake", "flan", "gumbo", "falafel",
    "granola", "dumplings", "meatballs", "pancakes", "waffles", "salmon", "broccoli", "asparagus",
    "zucchini", "eggplant", "artichokes", "brussels sprouts", "sweet potatoes", "pizza", "stew",
]

GROCERIES = [
    "kale", "cilantro", "saffron", "paprika", "oregano",
    "basil", "fennel", "nutmeg", "cinnamon", "anchovies", "sardines", "capers", "olives", "tofu",
    "kimchi", "yogurt", "buttermilk", "parmesan", "parsley", "ricotta",
    "rosemary", "avocados", "mangoes", "papayas", "apricots", "kiwis", "lemons",
    "limes", "blueberries", "raspberries", "almonds", "cashews", "pistachios", "walnuts", "oatmeal",
    "molasses", "maple syrup", "soy sauce", "vinegar", "mustard", "mayonnaise", "toothpaste",
    "detergent", "batteries", "light bulbs", "paper towels", "dish soap", "shampoo",
]

CITIES = [
    "reykjavik", "helsinki", "copenhagen", "stockholm", "oslo", "lisbon", "madrid", "barcelona",
    "marseille", "lyon", "munich", "zurich", "geneva", "vienna", "prague", "budapest", "warsaw",
    "krakow", "athens", "istanbul", "cairo", "nairobi", "lagos", "johannesburg", "casablanca",
    "mumbai", "delhi", "bangalore", "karachi", "dhaka", "bangkok", "hanoi", "jakarta",
    "manila", "seoul", "osaka", "kyoto", "shanghai", "beijing", "sydney", "melbourne", "auckland",
    "toronto", "montreal", "vancouver", "chicago", "boston", "seattle", "denver", "phoenix",
    "albuquerque", "tucson", "pittsburgh", "baltimore", "honolulu", "anchorage", "havana", "lima",
    "bogota", "santiago", "caracas", "quito",
]

COUNTRIES = [
    "iceland", "finland", "norway", "portugal", "switzerland", "austria", "hungary", "poland",
    "greece", "turkey", "egypt", "kenya", "nigeria", "ethiopia", "morocco", "tunisia", "pakistan",
    "nepal", "thailand", "vietnam", "indonesia", "malaysia", "mongolia", "kazakhstan", "uzbekistan",
    "australia", "argentina", "chile", "peru", "colombia", "venezuela", "ecuador", "bolivia",
    "uruguay", "paraguay", "canada", "mexico", "jamaica", "cuba", "madagascar", "zimbabwe",
]

LANGUAGES = [
    "french", "spanish", "german", "italian", "portuguese", "dutch", "swedish", "finnish", "polish",
    "hungarian", "greek", "turkish", "arabic", "hebrew", "hindi", "japanese", "korean", "mandarin",
    "swahili", "icelandic", "latin", "russian", "vietnamese", "tagalog",
]

TRANSLATE_WORDS = [
    "butterfly", "library", "umbrella", "grandmother", "happiness", "thunderstorm", "strawberry",
    "lighthouse", "neighbor", "breakfast", "good morning", "thank you", "congratulations",
    "excuse me", "friendship", "mountain", "bicycle", "kitchen", "chocolate", "pelican",
]

ROOMS = ["kitchen", "bedroom", "living room", "bathroom", "garage", "basement", "hallway", "attic",
         "office", "nursery", "dining room", "patio"]

DEVICES = ["lights", "heater", "thermostat", "fan", "air purifier", "television",
           "dishwasher", "coffee maker", "sprinklers", "fireplace", "ceiling fan", "radiator"]

NUMBERS = ["two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
           "fifteen", "twenty", "thirty", "forty", "fifty", "sixty", "a hundred"]

HOURS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
         "twelve", "noon", "midnight"]

MINUTES = ["", "", "fifteen", "thirty", "forty five", "o five", "twenty"]

DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "tomorrow",
        "tonight", "this weekend", "next week", "the day after tomorrow"]

MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september",
          "october", "november", "december"]

UNITS = ["ounces", "grams", "kilograms", "pounds", "teaspoons", "tablespoons", "cups", "liters",
         "milliliters", "gallons", "pints", "quarts", "inches", "centimeters", "feet", "meters",
         "miles", "kilometers", "fahrenheit", "celsius"]

UNIT_SINGULAR = ["ounce", "gram", "kilogram", "pound", "teaspoon", "tablespoon", "cup", "liter",
                 "gallon", "pint", "quart", "inch", "foot", "meter", "mile", "kilometer"]

ANIMALS = ["platypus", "anteater", "iguana", "chameleon", "armadillo", "wombat",
           "koala", "cheetah", "octopus", "jellyfish", "hummingbird", "albatross", "flamingo",
           "porcupine", "hedgehog", "walrus", "manatee", "orangutan", "gorilla", "lemur", "alpaca", "pelican", "sloth"]

COMPOSERS = ["tchaikovsky", "rachmaninoff", "debussy", "chopin", "vivaldi", "mozart", "beethoven",
             "schubert", "brahms", "stravinsky", "dvorak", "mahler", "handel", "haydn", "puccini",
             "verdi", "wagner", "gershwin", "prokofiev", "shostakovich", "ravel", "elgar", "holst", "liszt"]

GENRES = ["jazz", "blues", "reggae", "bluegrass", "flamenco", "salsa", "opera", "classical",
          "techno", "hip hop", "folk", "gospel", "country", "ambient"]

TASKS = ["water the begonias", "feed the parakeet", "renew my passport", "pay the electricity bill",
         "call the pharmacy", "pick up the dry cleaning", "take my vitamins", "walk the dog",
         "defrost the freezer", "book the plumber", "return the library books", "buy a birthday card",
         "change the air filter", "charge my laptop", "email the landlord", "refill my prescription",
         "practice the cello", "study for the chemistry exam", "order more printer ink",
         "check the tire pressure", "cancel the gym membership", "prune the begonias"]

TOPICS = ["the quarterly budget", "the thesis draft", "the chemistry lab", "the conference schedule",
          "the mortgage application", "the insurance claim", "the dentist appointment",
          "the orchestra rehearsal", "the marathon training", "the kitchen renovation",
          "the biology homework", "the vaccination records", "the tax return", "the wedding catering"]

PLACES = ["pharmacy", "bakery", "library", "museum", "post office", "hospital", "airport",
          "train station", "gas station", "hardware store", "farmers market", "aquarium",
          "planetarium", "botanical garden", "laundromat", "veterinarian", "dentist", "cathedral"]

STREETS = ["maple", "elm", "juniper", "magnolia", "sycamore", "hawthorne", "chestnut", "willow",
           "cypress", "jefferson", "lincoln", "franklin", "madison", "washington", "lexington"]

INGREDIENT_PAIRS = [("baking soda", "baking powder"), ("butter", "margarine"), ("honey", "sugar"),
                    ("yogurt", "sour cream"), ("leeks", "onions"), ("cornstarch", "flour"),
                    ("buttermilk", "milk"), ("coconut oil", "olive oil"), ("molasses", "maple syrup")]

# --------------------------------------------------------------------------------------------
# Templates: a template is a function of the random generator returning one sentence
# --------------------------------------------------------------------------------------------


def _time(r: random.Random) -> str:
    h = r.choice(HOURS)
    if h in ("noon", "midnight"):
        return h
    m = r.choice(MINUTES)
    return f"{h} {m}".strip() if m else h + r.choice(["", "", " o'clock"])


def _person(r: random.Random) -> str:
    k = r.random()
    if k < 0.45:
        return f"{r.choice(TITLES)} {r.choice(SURNAMES)}"
    if k < 0.8:
        return r.choice(FIRST_NAMES)
    return f"{r.choice(FIRST_NAMES)} {r.choice(SURNAMES)}"


def _opposite(r: random.Random) -> tuple[str, str]:
    a, b = r.choice(OPPOSITES)
    return (a, b) if r.random() < 0.5 else (b, a)


TEMPLATES = [
    lambda r: "is {} the opposite of {}".format(*_opposite(r)),
    lambda r: "what is the difference between {} and {}".format(*_opposite(r)),
    lambda r: f"what is {r.choice(TERMS)}",
    lambda r: f"explain {r.choice(TERMS)} {r.choice(['to me', 'in simple words', 'like i am five', 'briefly'])}",
    lambda r: f"what does {r.choice(TERMS)} mean",
    lambda r: f"how do you spell {r.choice(SPELL_WORDS)}",
    lambda r: f"how do you pronounce {r.choice(SURNAMES)}",
    lambda r: f"call {_person(r)} at {_time(r)}",
    lambda r: f"call {_person(r)} {r.choice(['on speaker', 'on her mobile', 'on his mobile', 'at work', 'back'])}",
    lambda r: f"text {_person(r)} that i will be {r.choice(['late', 'there at ' + _time(r), 'home soon'])}",
    lambda r: f"send an email to {r.choice(TITLES)} {r.choice(SURNAMES)} about {r.choice(TOPICS)}",
    lambda r: f"schedule a meeting with {_person(r)} on {r.choice(DAYS)} at {_time(r)}",
    lambda r: f"set a timer for the {r.choice(DISHES)}",
    lambda r: f"set a timer for {r.choice(NUMBERS)} minutes for the {r.choice(DISHES)}",
    lambda r: f"how long should i bake the {r.choice(DISHES)}",
    lambda r: f"find a recipe for {r.choice(DISHES)} with {r.choice(GROCERIES)}",
    lambda r: f"add {r.choice(GROCERIES)} to my shopping list",
    lambda r: f"add {r.choice(GROCERIES)} and {r.choice(GROCERIES)} to the grocery list",
    lambda r: "can i use {} instead of {}".format(*r.choice(INGREDIENT_PAIRS)),
    lambda r: f"remind me to {r.choice(TASKS)} {r.choice(['on ' + r.choice(DAYS[:7]), r.choice(DAYS[7:])])}",
    lambda r: f"remind me to {r.choice(TASKS)} at {_time(r)}",
    lambda r: f"wake me up at {_time(r)} {r.choice(DAYS)}",
    lambda r: f"what is the weather in {r.choice(CITIES)} {r.choice(DAYS)}",
    lambda r: f"will it rain in {r.choice(CITIES)} {r.choice(DAYS)}",
    lambda r: f"what time is it in {r.choice(CITIES)}",
    lambda r: f"what is the capital of {r.choice(COUNTRIES)}",
    lambda r: "how far is {} from {}".format(*r.sample(CITIES, 2)),
    lambda r: f"book a flight to {r.choice(CITIES)} on {r.choice(MONTHS)} {r.choice(['first', 'third', 'tenth', 'fifteenth', 'twentieth'])}",
    lambda r: f"translate {r.choice(TRANSLATE_WORDS)} into {r.choice(LANGUAGES)}",
    lambda r: f"how do you say {r.choice(TRANSLATE_WORDS)} in {r.choice(LANGUAGES)}",
    lambda r: f"turn {r.choice(['on', 'off'])} the {r.choice(DEVICES)} in the {r.choice(ROOMS)}",
    lambda r: f"dim the lights in the {r.choice(ROOMS)} to {r.choice(NUMBERS)} percent",
    lambda r: f"set the thermostat to {r.choice(['sixty', 'sixty five', 'seventy', 'seventy two', 'twenty one'])} degrees",
    lambda r: f"how many {r.choice(UNITS)} are in a {r.choice(UNIT_SINGULAR)}",
    lambda r: f"convert {r.choice(NUMBERS)} {r.choice(UNITS)} to {r.choice(UNITS)}",
    lambda r: f"play {r.choice(COMPOSERS)} in the {r.choice(ROOMS)}",
    lambda r: f"play some {r.choice(GENRES)} music",
    lambda r: f"who composed {r.choice(['the nutcracker', 'the four seasons', 'swan lake', 'the planets', 'the moonlight sonata', 'bolero'])}",
    lambda r: f"how long does a {r.choice(ANIMALS)} live",
    lambda r: f"what does a {r.choice(ANIMALS)} eat",
    lambda r: f"is a {r.choice(ANIMALS)} a mammal",
    lambda r: f"navigate to the {r.choice(PLACES)} on {r.choice(STREETS)} street",
    lambda r: f"when does the {r.choice(PLACES)} close {r.choice(DAYS)}",
    lambda r: f"find the nearest {r.choice(PLACES)}",
    lambda r: f"book a table for {r.choice(NUMBERS[:8])} at {_time(r)} {r.choice(DAYS)}",
]


def sentences(seed: int) -> Iterator[str]:
    """An endless seeded stream of distinct sentences (a repeat is skipped, never re-emitted)."""
    r = random.Random(seed)
    seen: set[str] = set()
    while True:
        s = re.sub(r"\s+", " ", r.choice(TEMPLATES)(r)).strip()
        if s not in seen:
            seen.add(s)
            yield s


def generate(seed: int = 7, sizes: dict[str, int] | None = None) -> dict[str, list[str]]:
    """The splits ``{name: sentences}``, cut in :data:`SPLITS` order from one distinct stream."""
    sizes = {**SIZES, **(sizes or {})}
    stream = sentences(seed)
    return {name: [next(stream) for _ in range(sizes[name])] for name in SPLITS}


def vocabulary() -> set[str]:
    """Every word the templates can produce (for the dictionary check)."""
    words: set[str] = set()
    for s in generate(seed=0, sizes={"teacher": 30000, "heldout": 0}).values():
        for line in s:
            words.update(line.split())
    return words


def read_dict_words(path: Path) -> set[str]:
    """Words of a CMU-style dictionary (alternate pronunciations ``word(2)`` folded)."""
    out = set()
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                out.add(re.sub(r"\(\d+\)$", "", line.split()[0]))
    return out


def oov_words(splits: dict[str, list[str]], dict_words: set[str]) -> dict[str, int]:
    """Words of the splits missing from the dictionary, with their counts."""
    counts: dict[str, int] = {}
    for lines in splits.values():
        for line in lines:
            for w in line.split():
                if w not in dict_words:
                    counts[w] = counts.get(w, 0) + 1
    return counts


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seed", type=int, default=7)
    for name in SPLITS:
        p.add_argument(f"--{name}", type=int, default=SIZES[name], help=f"sentences in {name} (default {SIZES[name]})")
    p.add_argument("--dict", type=Path, help="pronunciation dictionary: fail when a word is missing from it")
    p.add_argument("outdir", type=Path)
    args = p.parse_args(argv)
    splits = generate(args.seed, {name: getattr(args, name) for name in SPLITS})
    if args.dict:
        oov = oov_words(splits, read_dict_words(args.dict))
        if oov:
            raise SystemExit(f"generate_text: words missing from {args.dict}: {sorted(oov)}")
    args.outdir.mkdir(parents=True, exist_ok=True)
    for name, lines in splits.items():
        (args.outdir / f"{name}.txt").write_text("".join(s + "\n" for s in lines), encoding="utf-8")
    print(f"generate_text: seed {args.seed}: " + ", ".join(f"{n} {len(v)}" for n, v in splits.items())
          + f" sentences in {args.outdir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

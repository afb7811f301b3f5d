"""Varied English sentences for the synthetic corpus, written by this project (templates + word lists).

Speech in the corpus is what a presenter might say: statements, questions, lists, instructions,
contrasts and exclamations about everyday topics, so espeak-ng produces a mix of phrase lengths,
pauses and intonation contours (rises on questions, accents on contrasts).

Held-out split: every possible sentence belongs to exactly one side, decided by a hash of its
text (``is_held_out``), so a held-out sentence can never appear in training, whatever seeds or
sizes two runs use.
"""
from __future__ import annotations

import hashlib

import numpy as np

HELD_OUT_SHARE = 0.12

TOPICS: dict[str, dict[str, list[str]]] = {
    "cooking": {
        "nouns": ["the soup", "a fresh loaf", "the onions", "this recipe", "the oven", "a sharp knife",
                  "the sauce", "our dinner", "the spices", "a wooden spoon", "the dough", "the kitchen"],
        "verbs": ["needs", "deserves", "gets", "takes", "changes", "improves", "ruins", "brings out"],
        "objects": ["a little more salt", "twenty minutes", "a lot of patience", "the best flavour",
                    "a gentle heat", "the whole evening", "every single guest", "some fresh herbs"],
        "imperatives": ["chop the garlic finely", "stir the pot slowly", "taste it before serving",
                        "let the dough rest", "warm the plates", "keep the lid on"],
    },
    "travel": {
        "nouns": ["the train", "our little hotel", "the old harbour", "the mountain road", "the map",
                  "the night bus", "this city", "the border", "the tour guide", "my suitcase"],
        "verbs": ["offers", "hides", "shows", "reaches", "crosses", "follows", "misses", "leaves"],
        "objects": ["the most beautiful view", "a quiet square", "three small villages", "the coast",
                    "every morning at six", "a hidden garden", "the wrong platform", "the river"],
        "imperatives": ["book the tickets early", "pack light", "learn a few local words",
                        "walk instead of driving", "ask the people who live there", "keep a copy of your passport"],
    },
    "science": {
        "nouns": ["the experiment", "this measurement", "the new telescope", "the cell", "gravity",
                  "the sample", "our model", "the data", "light", "the magnetic field", "the reaction"],
        "verbs": ["explains", "predicts", "bends", "controls", "reveals", "depends on", "changes", "limits"],
        "objects": ["almost everything we see", "the speed of the signal", "a surprising pattern",
                    "the temperature", "the shape of the orbit", "a tiny difference", "the final answer"],
        "imperatives": ["repeat the test", "write down every number", "check the units",
                        "start with a simple question", "compare the two results", "measure it twice"],
    },
    "work": {
        "nouns": ["the meeting", "our team", "the deadline", "this project", "the new manager",
                  "the budget", "the report", "every plan", "the client", "our office"],
        "verbs": ["needs", "moves", "misses", "shapes", "supports", "blocks", "delivers", "reviews"],
        "objects": ["a clear goal", "more time than we thought", "the next step", "a short summary",
                    "the whole quarter", "one honest conversation", "better tools", "the numbers"],
        "imperatives": ["keep the meeting short", "write the goal on the board", "ask for feedback",
                        "share the plan early", "celebrate small wins", "say no more often"],
    },
    "sport": {
        "nouns": ["the match", "our coach", "the final whistle", "the goalkeeper", "the training plan",
                  "the crowd", "the second half", "this season", "the young striker", "the team"],
        "verbs": ["changes", "wins", "loses", "decides", "controls", "lifts", "tests", "rewards"],
        "objects": ["every close game", "the last ten minutes", "the whole stadium", "a lot of courage",
                    "the ball", "the other side", "the championship", "a perfect pass"],
        "imperatives": ["warm up properly", "drink enough water", "watch the ball", "trust your team",
                        "rest after a hard game", "practise the simple things"],
    },
    "nature": {
        "nouns": ["the forest", "the river", "a small bird", "the garden", "the storm", "the tide",
                  "the old oak tree", "the mountain", "spring", "the bees", "the snow"],
        "verbs": ["feeds", "covers", "shelters", "shapes", "wakes", "follows", "protects", "fills"],
        "objects": ["the whole valley", "the quiet morning", "thousands of insects", "the rocks",
                    "the flowers in May", "the edge of the lake", "every living thing", "the fields"],
        "imperatives": ["plant something this week", "walk in the park", "listen to the birds",
                        "leave the path as you found it", "water the roots, not the leaves", "look up at night"],
    },
    "music": {
        "nouns": ["the chorus", "the drummer", "this old song", "the piano", "the melody", "the band",
                  "the last concert", "the rhythm", "the violin", "our rehearsal"],
        "verbs": ["carries", "changes", "lifts", "slows", "fills", "repeats", "breaks", "joins"],
        "objects": ["the whole room", "the second verse", "a simple idea", "every listener",
                    "the quiet part", "the ending", "three notes", "the audience"],
        "imperatives": ["practise slowly", "listen to the bass", "count the beats", "sing it out loud",
                        "play it again", "tune the strings first"],
    },
    "technology": {
        "nouns": ["the new phone", "this program", "the network", "the battery", "our website",
                  "the robot", "the update", "the camera", "the screen", "the computer"],
        "verbs": ["saves", "slows down", "connects", "replaces", "tracks", "improves", "breaks", "powers"],
        "objects": ["a lot of energy", "every message", "the whole building", "the old system",
                    "our daily routine", "the picture", "a few seconds", "the results"],
        "imperatives": ["back up your files", "restart it first", "read the error message",
                        "keep it simple", "test it on a real user", "turn off what you do not need"],
    },
    "learning": {
        "nouns": ["the lesson", "a good teacher", "the homework", "this book", "the library",
                  "the exam", "the question", "practice", "the class", "a mistake"],
        "verbs": ["teaches", "shows", "changes", "builds", "opens", "tests", "rewards", "explains"],
        "objects": ["more than any lecture", "the hard part", "a new way of thinking", "our memory",
                    "the whole chapter", "real understanding", "a little every day", "the basics"],
        "imperatives": ["take short notes", "explain it to a friend", "ask one more question",
                        "sleep before the exam", "read the chapter twice", "make a small plan"],
    },
}

INTROS = ["", "", "", "Honestly,", "In my experience,", "As you can see,", "Of course,", "Believe it or not,",
          "Now,", "Today,", "Most of the time,", "Here is the thing:", "To be fair,", "Remember,", "So,"]
TIMES = ["every single day", "at the end of the week", "in the long run", "right now", "this year",
         "after a while", "in the morning", "before anything else", "sooner than you think", "over and over"]
OPINIONS = ["think", "believe", "know", "feel", "suspect", "am sure", "would say", "have learned"]
CONTRASTS = ["that is only half the story", "nobody talks about it", "it takes time",
             "the details really matter", "we can still do better", "it is not always easy",
             "the result surprised everyone", "you have to try it yourself"]
EXCLAIMS = ["Wow,", "Look,", "Imagine this:", "Listen,", "Believe me,", "Yes,"]
QUESTIONS = ["Why does", "How often does", "When did", "Where does", "What if", "Do you think", "Have you noticed how"]
NUMBERS = ["two", "three", "four", "a few", "several"]
ADJECTIVES = ["simple", "important", "strange", "beautiful", "difficult", "quiet", "surprising",
              "useful", "small", "huge", "careful", "bright", "slow", "lucky"]


def _pick(rng: np.random.Generator, items: list[str]) -> str:
    return items[int(rng.integers(len(items)))]


def _cap(text: str) -> str:
    text = " ".join(text.split())
    return text[:1].upper() + text[1:]


def _plain(noun: str) -> str:
    """'the soup' -> 'soup', so questions can say 'Why does the soup'."""
    for article in ("the ", "a ", "an ", "this ", "our ", "my ", "every "):
        if noun.startswith(article):
            return noun[len(article):]
    return noun


def _base(verb: str) -> str:
    """Third person -> base form for questions ('needs' -> 'need', 'slows down' -> 'slow down')."""
    head, _, rest = verb.partition(" ")
    if head.endswith("ies"):
        head = head[:-3] + "y"
    elif head.endswith(("shes", "ches", "sses", "xes")):
        head = head[:-2]
    elif head.endswith("s") and not head.endswith("ss"):
        head = head[:-1]
    return f"{head} {rest}".strip()


def sentence(rng: np.random.Generator) -> str:
    """One sentence from a random topic and template."""
    topic = TOPICS[_pick(rng, list(TOPICS))]
    noun, verb, obj = _pick(rng, topic["nouns"]), _pick(rng, topic["verbs"]), _pick(rng, topic["objects"])
    imperatives = topic["imperatives"]
    kind = int(rng.integers(10))
    if kind == 0:
        return _cap(f"{_pick(rng, INTROS)} {noun} {verb} {obj}.")
    if kind == 1:
        return _cap(f"{_pick(rng, INTROS)} {noun} {verb} {obj} {_pick(rng, TIMES)}.")
    if kind == 2:
        other = _pick(rng, topic["nouns"])
        return _cap(f"When {other} is {_pick(rng, ADJECTIVES)}, {noun} {verb} {obj}.")
    if kind == 3:
        q = _pick(rng, QUESTIONS)
        if q in ("What if", "Do you think", "Have you noticed how"):
            return _cap(f"{q} {noun} {verb} {obj}?")
        return _cap(f"{q} {noun} {_base(verb)} {obj}?")
    if kind == 4:
        a, b, c = rng.choice(len(topic["nouns"]), 3, replace=False)
        return _cap(f"There are {_pick(rng, NUMBERS)} things I love here: {_plain(topic['nouns'][a])}, "
                    f"{_plain(topic['nouns'][b])}, and {_plain(topic['nouns'][c])}.")
    if kind == 5:
        a, b, c = rng.choice(len(imperatives), 3, replace=False)
        return _cap(f"First, {imperatives[a]}. Then, {imperatives[b]}. And finally, {imperatives[c]}.")
    if kind == 6:
        return _cap(f"I {_pick(rng, OPINIONS)} that {noun} {verb} {obj}, but {_pick(rng, CONTRASTS)}.")
    if kind == 7:
        return _cap(f"{_pick(rng, EXCLAIMS)} {noun} {verb} {obj} {_pick(rng, TIMES)}!")
    if kind == 8:
        return _cap(f"It is not {noun} that {verb} {obj}. It is {_pick(rng, topic['nouns'])}.")
    return _cap(f"If you want {_pick(rng, ADJECTIVES)} results, {_pick(rng, imperatives)}.")


def is_held_out(text: str) -> bool:
    """Whether a sentence belongs to the held-out side (a fixed hash of its normalized text)."""
    key = " ".join(text.lower().split()).encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:4], "big") / 2**32 < HELD_OUT_SHARE


def sentences(rng: np.random.Generator, count: int, held_out: bool) -> list[str]:
    """``count`` sentences, all from the held-out side or all from the training side."""
    out: list[str] = []
    while len(out) < count:
        s = sentence(rng)
        if is_held_out(s) == held_out:
            out.append(s)
    return out


def paragraph(rng: np.random.Generator, words: int, held_out: bool) -> list[str]:
    """Sentences adding up to about ``words`` words, one side of the split."""
    out: list[str] = []
    total = 0
    while total < words:
        (s,) = sentences(rng, 1, held_out)
        out.append(s)
        total += len(s.split())
    return out

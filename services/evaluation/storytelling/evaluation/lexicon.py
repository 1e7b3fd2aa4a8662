"""Word lists (lemmas) behind the text-side measures. Small on purpose: cues, not a theory of language."""

TIME = frozenset(
    """morning afternoon evening night midnight noon dawn dusk sunrise sunset twilight
christmas halloween thanksgiving easter birthday anniversary holiday weekend winter summer autumn fall
spring o'clock clock bedtime breakfast lunch dinner new_year eve""".split()
)
# Hours and named events; dates ("yesterday", "tomorrow's") are said, not seen.
TIME_ENTITIES = frozenset({"TIME", "EVENT"})
# Things that show a moment in a picture: light and sky, festivities, seasons.
TIME_SIGNS = frozenset(
    """moon star sunrise sunset dusk dawn firework lantern candle costume pumpkin snow snowman
turkey tinsel wreath confetti anniversary graduation""".split()
)

PLACES = frozenset(
    """kitchen school classroom park store shop supermarket market street road hospital
office restaurant cafe bakery library beach garden house home room bedroom bathroom hallway station
playground church farm forest museum airport harbour harbor port yard backyard field stadium court gym
pool zoo theater theatre cinema hotel bus train subway car bridge river lake mountain village city town
square alley clinic pharmacy laundromat bank factory studio attic basement porch balcony cafeteria canteen
pitch stall platform pier quay wharf dock rink arena corridor ward garage cliff shore barnyard barn stable
study vestry chapel temple mosque terrace flat apartment nursery bakery clearing campsite hillside meadow
crossroads pavement sidewalk hall auditorium stage lab laboratory salon surgery shop deck trawler ship boat
tarmac runway staircase stairs courtyard plaza fountain market bazaar ditch sea ocean desert valley
greenhouse workshop warehouse kitchen diner bar pub cellar loft cottage hut cabin castle palace lighthouse
harbor marina pond riverbank orchard vineyard field""".split()
)
PLACE_ENTITIES = frozenset({"GPE", "LOC", "FAC"})

ROLES = frozenset(
    """nurse doctor teacher referee chef cook waiter waitress police officer policeman
firefighter farmer cashier vendor seller student pupil customer driver baker mechanic janitor librarian
coach player artist painter musician clerk pilot soldier guard shopkeeper grocer patient passenger
tourist lifeguard postman mailman fisherman priest judge scientist engineer photographer dentist
veterinarian vet principal athlete goalkeeper dancer singer magician clown violinist pianist conductor
pharmacist hairdresser barber shepherd potter gardener plumber carpenter builder surgeon bride groom
firefighter astronaut sailor captain knight monk nun king queen scout ranger porter usher""".split()
)

RELATIONS = frozenset(
    """mother father mom mum dad parent son daughter sister brother sibling grandmother
grandfather grandma grandpa grandparent grandson granddaughter aunt uncle cousin nephew niece wife husband
friend couple neighbor neighbour classmate teammate boyfriend girlfriend family twin partner fiance
fiancee stepmother stepfather""".split()
)

PEOPLE = (
    frozenset(
        """man woman boy girl child kid baby toddler person people lady gentleman teenager
adult crowd stranger""".split()
    )
    | ROLES
    | RELATIONS
)

# Attire and tools that show what a character is (a striped shirt and a whistle make a referee).
ROLE_SIGNS = frozenset(
    """uniform scrubs stethoscope apron hairnet whistle helmet overalls smock tuxedo baton clipboard
crook waterproofs bib badge lanyard goggles satchel wrench easel toque gown robe vest""".split()
)
ROLE_PHRASES = (("lab", "coat"), ("white", "coat"), ("chef", "hat"), ("peaked", "cap"), ("name", "badge"))

# Signs of a relationship a picture can show: resemblance, matching clothes, rings, generations.
RELATION_SIGNS = frozenset("twins identical matching roommate generation".split())
RELATION_PHRASES = (("same", "freckle"), ("same", "eye"), ("wedding", "ring"), ("hold", "hand"))

# Visible signs of how someone feels: faces, tears, postures, gestures.
FEELING_SIGNS = frozenset(
    """tear cry sob wail howl weep grin smile beam laugh giggle frown scowl glare blush flush red-faced
pale tremble shake wide-eyed gasp freeze clench grip pout sigh shriek cheer roar stamp droop slump hunch
clap nervously sheepishly guiltily proudly angrily anxiously delight squint peer beaming""".split()
)
FEELING_PHRASES = (
    ("bite", "her", "lip"), ("bite", "his", "lip"), ("mouth", "open"), ("raise", "his", "eyebrow"),
    ("hand", "over", "her", "mouth"), ("cover", "her", "mouth"), ("cover", "his", "mouth"),
    ("hide", "his", "face"), ("hide", "her", "face"), ("flatten", "ear"), ("chin", "in", "her", "hand"),
    ("arm", "raise"), ("knuckle", "be", "white"), ("lip", "push", "out"),
)  # fmt: skip
# Verbs after which an emotion word is a thought, not something shown ("she feels ashamed").
INNER_VERBS = frozenset({"feel", "think", "know", "wonder", "remember", "hope"})

# Changes and their traces: two of them in a story, or one tied by a linking word, show a cause and its
# effect in the same frame (a dropped tray and spaghetti on someone's shoes).
CHANGE = frozenset(
    """spill spread shatter break broken crack collapse torn rip knock tip overturn flood overflow
pour soak drench drip stain splash splatter scatter melt burn smoke muddy dent crush crooked stuck slip trip
fall drop snap erupt leak puddle skid trail print lopsided wet dripping upside crumb mess scribble soot
flooded gust wind wave flame""".split()
)

EMOTIONS = frozenset(
    """angry anger furious rage happy happiness joy joyful glad cheerful delighted sad
sadness unhappy upset surprised surprise shocked shock astonished amazed startled guilty guilt ashamed
shame embarrassed embarrassment afraid scared fear frightened terrified horrified worried worry anxious
anxiety nervous excited excitement proud pride jealous lonely bored confused confusion curious curiosity
relieved relief disappointed disappointment frustrated frustration annoyed irritated grateful hopeful
hope calm shy determined distracted thoughtful content love hate smile grin laugh cry tear frown scowl
blush sob giggle panic panicked desperate helpless eager""".split()
)

# Causal connectives as lemma sequences; "so" and "since" count only as clause connectives.
CAUSAL_PHRASES = (
    ("because",),
    ("due", "to"),
    ("as", "a", "result"),
    ("therefore",),
    ("thus",),
    ("lead", "to"),
    ("result", "in"),
    ("cause",),
    ("so", "that"),
)
CAUSAL_CONNECTIVES = frozenset({"so", "since"})
# Words that tie a visible effect to its cause: "turned inside out by a gust", "as the ball hits the net",
# "having slipped on a puck", "prints lead from...".
CAUSAL_LINKS = (
    ("by",),
    ("as",),
    ("having",),
    ("leading", "to"),
    ("lead", "out"),
    ("lead", "across"),
    ("from",),
)

# Prototype sentences per dimension for the embedding similarity cue.
PROTOTYPES: dict[str, tuple[str, ...]] = {
    "time": ("It is Christmas morning.", "It is three o'clock at night.", "It is the last day of school."),
    "location": (
        "The scene takes place in a school.",
        "They are in a grocery store.",
        "It is a busy harbour.",
    ),
    "character_role": ("The woman is a nurse.", "A referee is on the field.", "A street vendor sells fruit."),
    "character_relationship": (
        "The two children are siblings.",
        "They are a married couple.",
        "A teacher and her pupil.",
    ),
    "event": ("Something unexpected happens.", "A boy falls off his bike.", "A vase breaks on the floor."),
    "event_causal_relationship": (
        "Because the boy drew on the wall, his mother scolds him.",
        "The floor is wet, so the man slips.",
    ),
    "mental_state": ("She is angry.", "He looks surprised and guilty.", "The child is scared."),
}

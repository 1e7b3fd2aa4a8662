"""Word lists (lemmas) behind the text-side measures. Small on purpose: cues, not a theory of language."""

TIME = frozenset(
    """morning afternoon evening night midnight noon dawn dusk sunrise sunset twilight
christmas halloween thanksgiving easter birthday anniversary holiday weekend winter summer autumn fall
spring o'clock clock bedtime breakfast lunch dinner yesterday tonight today new_year eve""".split()
)
TIME_ENTITIES = frozenset({"DATE", "TIME", "EVENT"})

PLACES = frozenset(
    """kitchen school classroom park store shop supermarket market street road hospital
office restaurant cafe bakery library beach garden house home room bedroom bathroom hallway station
playground church farm forest museum airport harbour harbor port yard backyard field stadium court gym
pool zoo theater theatre cinema hotel bus train subway car bridge river lake mountain village city town
square alley clinic pharmacy laundromat bank factory studio attic basement porch balcony""".split()
)
PLACE_ENTITIES = frozenset({"GPE", "LOC", "FAC"})

ROLES = frozenset(
    """nurse doctor teacher referee chef cook waiter waitress police officer policeman
firefighter farmer cashier vendor seller student pupil customer driver baker mechanic janitor librarian
coach player artist painter musician clerk pilot soldier guard shopkeeper grocer patient passenger
tourist lifeguard postman mailman fisherman priest judge scientist engineer photographer dentist
veterinarian vet principal athlete goalkeeper dancer singer magician clown""".split()
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
